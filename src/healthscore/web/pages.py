"""The HTML pages: each renders the same dict its /api twin returns; forms post to thin
handlers that call the same API functions and come back with a message."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from healthscore.errors import AuthError, HealthScoreError
from healthscore.web import api, auth, queue, trends, views
from healthscore.web.api import Id
from healthscore.web.i18n import LANGUAGES, Formatter, language_of
from healthscore.workflow.marks import MARK_REASONS
from healthscore.workflow.overrides import REASON_CODES

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
FLASH = "hs_flash"
LOGIN_CSRF = "hs_login_csrf"
LANDING = "/today"  # where signing in leads: My day, in the role's scope
router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, data: dict[str, Any], *, status: int = 200,
           user: dict[str, Any] | None = None, nav: str = "") -> HTMLResponse:
    user = user if user is not None else getattr(request.state, "user", None)
    fmt = Formatter(language_of(user, request.headers.get("accept-language", "")),
                    views.label_book(api.site_of(request)))
    flash = _read_flash(request)
    context = {"request": request, "data": data, "user": user, "nav": nav, "_": fmt.gettext,
               "unread": _unread(request, user), "label": fmt.label,
               "_n": fmt.ngettext, "stored": fmt.stored, "why": fmt.why,
               "fmt": fmt, "lang": fmt.lang, "languages": LANGUAGES, "flash": flash,
               "csrf": getattr(request.state, "csrf", None), "json": _json, **fmt.filters()}
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    if flash:
        response.delete_cookie(FLASH, path="/")
    return response


def _unread(request: Request, user: dict[str, Any] | None) -> int | None:
    """The signed-in user's unread inbox items, for the navigation of every page."""
    if not user or not user.get("name"):
        return None
    try:
        return api.site_of(request).wf.unread_count(str(user["name"]))
    except HealthScoreError:
        return None


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return {"kind": str(data["kind"]), "text": str(data["text"])}
    except (ValueError, KeyError, TypeError):
        return None


def redirect(url: str, kind: str | None = None, text: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if kind and text:
        response.set_cookie(FLASH, json.dumps({"kind": kind, "text": text[:600]}), max_age=60,
                            httponly=True, samesite="lax", path="/")
    return response


def error_page(request: Request, err: HealthScoreError, status: int | None = None) -> HTMLResponse:
    return render(request, "error.html", {"message": str(err), "kind": err.kind},
                  status=status or err.http_status)


async def page_user(request: Request) -> dict[str, Any]:
    user = auth.authenticate(request)
    await auth.check_csrf(request)
    return user


Me = Depends(page_user)


# ----------------------------------------------------------------------------- sign in


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse(LANDING, status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = LANDING) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"next": _safe_next(next), "login_csrf": token}, user={})
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/login", max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    target = _safe_next(str(form.get("next") or LANDING))
    sent, expected = str(form.get(auth.CSRF_FIELD) or ""), request.cookies.get(LOGIN_CSRF) or ""
    if not expected or not secrets.compare_digest(sent, expected):
        return redirect(f"/login?next={quote(target)}", "error",
                        "The sign-in form had expired. Please try again.")
    response = redirect(target)
    try:
        auth.sign_in(request, response, str(form.get("name") or ""), str(form.get("password") or ""))
    except HealthScoreError as err:
        return redirect(f"/login?next={quote(target)}", "error", err.message)
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else LANDING


@router.post("/logout")
def logout(request: Request, user: dict[str, Any] = Me) -> Response:
    response = redirect("/login")
    auth.sign_out(request, response)
    return response


# ----------------------------------------------------------------------------- pages


@router.get("/portfolio")
def portfolio(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "portfolio.html", api.portfolio(request, user), nav="portfolio")


@router.get("/portfolio/trends")
def portfolio_trends(request: Request, user: dict[str, Any] = Me,
                     f: trends.TrendFilter = Depends(api.trend_filter)) -> HTMLResponse:
    data = api.portfolio_trends(request, user, f)
    data["query"] = urlencode({k: v for k, v in request.query_params.items() if v})
    return render(request, "trends.html", data, nav="portfolio")


@router.get("/accounts")
def accounts(request: Request, user: dict[str, Any] = Me,
             f: views.AccountFilter = Depends(api.account_filter)) -> HTMLResponse:
    params = dict(request.query_params.items())
    try:
        data = api.accounts(request, user, f)
    except HealthScoreError as err:  # unknown columns: the list with its usual ones, and why
        if not err.message.startswith("cols:"):
            raise
        data = api.accounts(request, user, dataclasses.replace(f, cols=None))
        data["cols_error"] = err.message
        params.pop("cols", None)
    # one cols=a,b,c however the columns came, and none for the usual ones (the picker sends them)
    params.pop("cols", None)
    if data["columns"] != list(views.DEFAULT_COLUMNS):
        params["cols"] = ",".join(data["columns"])
    query = {k: v for k, v in params.items() if k not in ("sort", "desc", "page")}
    data["query"] = urlencode(query)
    data["csv_query"] = urlencode({k: v for k, v in params.items() if k != "page"})
    data["scope_query"] = urlencode({k: v for k, v in params.items() if k not in ("scope", "page")})
    data["views"] = api.saved_views("accounts", request, user)
    data["view_query"] = urlencode({k: v for k, v in params.items() if k != "page"})
    data["all_columns"] = list(views.COLUMNS)
    partial = request.headers.get("HX-Request") and request.headers.get("HX-Target") == "account-table"
    response = render(request, "_accounts_table.html" if partial else "accounts.html", data, nav="accounts")
    if request.headers.get("HX-Request"):  # the address bar shows the same query as the links
        response.headers["HX-Push-Url"] = f"/accounts?{urlencode(params)}" if params else "/accounts"
    return response


@router.get("/accounts/{account_id}")
def account(account_id: str, request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "account.html", account_page_data(request, user, account_id), nav="accounts")


def account_page_data(request: Request, user: dict[str, Any], account_id: str) -> dict[str, Any]:
    """Account 360's data: the /api twin's, and the choices its forms offer."""
    data = api.account(account_id, request, user)
    site = api.site_of(request)
    data["reason_codes"] = list(REASON_CODES)
    data["mark_reasons"] = list(MARK_REASONS)
    data["manual_measures"] = site.wf.manual_measures()
    data["entered_values"] = site.wf.entered_values(account_id, limit=10)
    data["bands"] = site.wf.band_names()
    data["playbooks"] = sorted(site.wf.wf.playbooks)
    data["templates"] = sorted(site.wf.wf.templates)
    data["escalate_to"] = [*site.wf.spec.escalation[1:], *site.wf.spec.departments]
    return data


@router.get("/accounts/{account_id}/measures/{measure}")
def measure_rows(account_id: str, measure: str, request: Request, user: dict[str, Any] = Me
                 ) -> HTMLResponse:
    data = api.measure_rows(account_id, measure, request, user)
    return render(request, "measure_rows.html", data, nav="accounts")


@router.get("/cockpit")
def cockpit(request: Request, user: dict[str, Any] = Me,
            f: queue.CockpitFilter = Depends(api.cockpit_filter)) -> HTMLResponse:
    data = api.cockpit(request, user, f)
    _queue_links(data, str(request.url.query))
    return render(request, "cockpit.html", data, nav="cockpit")


def _queue_links(data: dict[str, Any], query: str) -> None:
    """The Cockpit's links keep its filters: for sorting, paging and the scope switch."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    data["query"] = urlencode({k: v for k, v in params.items() if k not in ("sort", "desc", "page")})
    data["page_query"] = urlencode({k: v for k, v in params.items() if k != "page"})
    data["scope_query"] = urlencode({k: v for k, v in params.items()
                                     if k not in ("scope", "everyone", "page", "owner")})


@router.get("/cockpit/board")
def board(request: Request, user: dict[str, Any] = Me,
          f: queue.CockpitFilter = Depends(api.cockpit_filter)) -> HTMLResponse:
    data = api.board(request, user, f)
    data["list_query"] = urlencode(dict(request.query_params))
    data["scope_query"] = urlencode({k: v for k, v in request.query_params.items()
                                     if k not in ("scope", "everyone", "owner")})
    return render(request, "board.html", data, nav="cockpit")


@router.get("/ctas/{cta_id}")
def cta(cta_id: Id, request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "cta.html", api.cta(cta_id, request, user), nav="cockpit")


@router.get("/today")
def my_day(request: Request, user: dict[str, Any] = Me, scope: str | None = None) -> HTMLResponse:
    data = api.my_day(request, user, scope)
    return render(request, "today.html", data, nav="today")


@router.get("/search")
def search(request: Request, user: dict[str, Any] = Me, q: str = "", scope: str = "") -> Response:
    """Enter in the top bar's search: the best match's Account 360, else the accounts list
    searched for the text."""
    found = api.search_accounts(request, user, q, scope, 1)  # type: ignore[arg-type]
    if found["accounts"]:
        return RedirectResponse(f"/accounts/{quote(found['accounts'][0]['account_id'])}", status_code=303)
    return RedirectResponse(f"/accounts?{urlencode({'q': q})}", status_code=303)


@router.get("/search/suggest")
def search_suggest(request: Request, user: dict[str, Any] = Me, q: str = "", scope: str = "") -> HTMLResponse:
    """The top bar's suggestions as the user types (htmx swaps them under the box)."""
    data = api.search_accounts(request, user, q, scope)  # type: ignore[arg-type]
    return render(request, "_search.html", data)


@router.get("/today/why/{account_id}")
def my_day_why(account_id: str, request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    """The row of My day that an account's "Why?" button opens in place."""
    return render(request, "_why.html", api.my_day_why(account_id, request, user), nav="today")


@router.get("/review")
def review(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "review.html", api.review(request, user), nav="review")


@router.get("/success-plans")
def success_plans(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "plans.html", api.success_plans(request, user), nav="plans")


@router.get("/success-plans/{plan_id}")
def success_plan(plan_id: Id, request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    data = api.success_plan(plan_id, request, user)
    data["can_act"] = _can_act(request, user, data["account_id"])
    return render(request, "plan.html", data, nav="plans")


def _can_act(request: Request, user: dict[str, Any], account_id: str) -> bool:
    try:
        api.site_of(request).wf.require_act(user, account_id)
    except HealthScoreError:
        return False
    return True


@router.get("/validation/preview")
def preview(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    data = api.preview(request, user)
    return render(request, "preview.html", data, nav="validation")


@router.get("/validation")
def validation(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    try:
        data = api.validation(request, user)
    except HealthScoreError as err:
        data = {"missing": err.message}
    return render(request, "validation.html", data, nav="validation")


@router.get("/data-health")
def data_health(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "data_health.html", api.data_health(request, user), nav="data")


@router.get("/admin")
def admin(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "admin.html", api.admin(request, user), nav="admin")


@router.get("/me")
def me(request: Request, user: dict[str, Any] = Me) -> HTMLResponse:
    return render(request, "me.html", api.me(request, user), nav="me")


@router.get("/inbox")
def inbox(request: Request, user: dict[str, Any] = Me, unread: bool = False,
          page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> HTMLResponse:
    data = api.inbox(request, user, unread, page, INBOX_PAGE, None)
    return render(request, "inbox.html", data, nav="inbox")


INBOX_PAGE = 50


# ----------------------------------------------------------------------------- forms


Again = Callable[[dict[str, Any], str], Response]


async def act(request: Request, back: str, done: str, call: Callable[[dict[str, Any]], Any],
              lists: tuple[str, ...] = (), again: Again | None = None,
              blanks: tuple[str, ...] = ()) -> Response:
    """Run one form's action and go back to ``back`` with a message (or the error). The fields
    named in ``lists`` (checkboxes) keep every value sent; those in ``blanks`` are kept when
    emptied (an emptied address removes it), every other empty field is left out. On an error,
    ``again`` (when given) answers instead: the page again with what was typed and the error
    beside its field."""
    sent = await request.form()
    form: dict[str, Any] = {k: v for k, v in sent.items()
                            if k != auth.CSRF_FIELD and (v != "" or k in blanks)}
    form.update({k: sent.getlist(k) for k in lists})
    try:
        result = call(form)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        message = f"{where}: {first.get('msg')}"
        return again(form, message) if again else redirect(back, "error", message)
    except AuthError:
        raise
    except HealthScoreError as err:
        return again(form, str(err)) if again else redirect(back, "error", str(err))
    text = _done(request, done, result if isinstance(result, dict) else {})
    if isinstance(result, dict) and result.get("prompt"):
        text += " " + str(result["prompt"])
    return redirect(back, "ok", text)


# the values of a form's message that are identifiers with a label of their own
DONE_LABELLED = ("status", "role", "action")


def _done(request: Request, done: str, result: dict[str, Any]) -> str:
    """A form's message in the user's language (its values kept; a status, role or bulk
    action named by its label)."""
    user = getattr(request.state, "user", None)
    fmt = Formatter(language_of(user, request.headers.get("accept-language", "")))
    values = {k: fmt.gettext(v) if k in DONE_LABELLED and isinstance(v, str) else v
              for k, v in result.items()}
    return fmt.gettext(done, **values) if values else fmt.gettext(done)


Forms = dict[str, tuple[str, Callable[[dict[str, Any]], Any]]]


async def dispatch(request: Request, forms: Forms, action: str, what: str, back: str,
                   again: Again | None = None) -> Response:
    """The form named ``action`` of a table of (message, call) pairs."""
    if action not in forms:
        raise HealthScoreError(f"no action {action!r} on {what}.")
    done, call = forms[action]
    return await act(request, back, done, call, again=again)


def cta_again(request: Request, user: dict[str, Any], cta_id: int, action: str, back: str) -> Again | None:
    """For a form of the CTA's page or of the Cockpit sent by htmx: that page again, the form
    holding what was typed and the error beside its field (``form``); otherwise None (back
    with a message)."""
    if not request.headers.get("HX-Request"):
        return None
    path, _, query = back.partition("?")
    if path == f"/ctas/{cta_id}":
        return _again_on_cta(request, user, cta_id, action)
    if path != "/cockpit":
        return None

    def again(form: dict[str, Any], message: str) -> Response:
        data = api.cockpit(request, user, _queue_of(query))
        _queue_links(data, query)
        data["form"] = {**form_state(f"{action}-{cta_id}", form, message), "cta": cta_id}
        if data["form"]["field"] not in FIELDS.get(action, ()):
            data["form"]["field"] = ""
        response = render(request, "cockpit.html", data, nav="cockpit")
        response.headers["HX-Replace-Url"] = back
        return response
    return again


def _queue_of(query: str) -> queue.CockpitFilter:
    """The Cockpit's filter of a query string (the page a form was sent from)."""
    params: dict[str, Any] = {k: v for k, v in parse_qsl(query) if k in _QUEUE_PARAMS}
    for name in ("page", "per_page"):
        if name in params:
            params[name] = int(params[name]) if params[name].isdigit() else 1
    for name in ("desc", "everyone"):
        if name in params:
            params[name] = params[name] == "true"
    return api.cockpit_filter(**params)


_QUEUE_PARAMS = {"scope", "type", "priority", "due", "state", "band", "owner", "q", "group", "sort",
                 "desc", "page", "per_page", "everyone"}


def _again_on_cta(request: Request, user: dict[str, Any], cta_id: int, action: str) -> Again:
    def again(form: dict[str, Any], message: str) -> Response:
        data = api.cta(cta_id, request, user)
        data["form"] = form_state(action, form, message)
        response = render(request, "cta.html", data, nav="cockpit")
        response.headers["HX-Replace-Url"] = f"/ctas/{cta_id}"  # not the form's own address
        return response
    return again


def account_again(request: Request, user: dict[str, Any], account_id: str, action: str,
                  back: str) -> Again | None:
    """For an account's form sent by htmx from its Account 360 page or from one of its CTA's
    pages: that page again, the form holding what was typed and the error beside its field."""
    if not request.headers.get("HX-Request"):
        return None
    path = back.split("?")[0]
    if path.startswith("/ctas/") and path[len("/ctas/"):].isdigit():
        return _again_on_cta(request, user, int(path[len("/ctas/"):]), action)
    if path != f"/accounts/{quote(account_id)}":
        return None

    def again(form: dict[str, Any], message: str) -> Response:
        data = account_page_data(request, user, account_id)
        data["form"] = form_state(action, form, message)
        response = render(request, "account.html", data, nav="accounts")
        response.headers["HX-Replace-Url"] = path
        return response
    return again


def form_state(action: str, form: dict[str, Any], message: str) -> dict[str, Any]:
    """What a form in error shows again: the values typed, the message, and the field it names
    (when the form has that field; else the message stands above the forms)."""
    field = message.split(":", 1)[0] if ":" in message else ""
    values = {k: v for k, v in form.items() if k != "version" and isinstance(v, str)}
    known = field in values or field in FIELDS.get(action, ())
    return {"action": action, "values": values, "error": message, "field": field if known else ""}


# the typed fields of the forms that act in place, by action: an error naming one is shown beside it
FIELDS = {"close": ("outcome",), "snooze": ("until", "reason"), "escalate": ("note",),
          "comments": ("text",), "override": ("band", "score", "reason_code", "note", "expires_on"),
          "mark": ("module", "colour", "reason_code", "note", "expires_on"), "timeline": ("kind", "text"),
          "notify": ("events", "channels", "email", "webhook")}


def body(model: type[BaseModel], form: dict[str, Any]) -> Any:
    return model.model_validate(form)


def _back(request: Request, default: str) -> str:
    ref = request.headers.get("referer", "")
    host = str(request.base_url)
    return ref[len(host) - 1:] if ref.startswith(host) else default


@router.post("/accounts/{account_id}/{action}")
async def account_action(account_id: str, action: str, request: Request,
                         user: dict[str, Any] = Me) -> Response:
    back = _back(request, f"/accounts/{quote(account_id)}")  # the account's page or one of its CTAs'
    forms: Forms = {
        "override": ("Override saved.", lambda f: api.set_override(
            account_id, body(api.OverrideIn, f), request, user)),
        "override-clear": ("Override cleared.", lambda f: api.clear_override(
            account_id, body(api.Note, f), request, user)),
        "mark": ("Module marked.", lambda f: api.mark_module(
            account_id, body(api.MarkIn, f), request, user)),
        "mark-clear": ("Mark cleared.", lambda f: api.clear_mark(
            account_id, body(api.MarkClearIn, f), request, user)),
        "inputs": ("Value saved.", lambda f: api.enter_value(
            account_id, body(api.InputIn, f), request, user)),
        "flag": ("Flagged for review (CTA #{id}).", lambda f: api.flag(
            account_id, body(api.FlagIn, f), request, user)),
        "timeline": ("Logged.", lambda f: api.log_touch(account_id, body(api.TouchIn, f), request, user)),
        "ctas": ("CTA #{id} opened.", lambda f: api.open_cta(
            account_id, body(api.CtaIn, f), request, user)),
        "success-plans": ("Success plan #{id} created.", lambda f: api.create_success_plan(
            account_id, body(api.PlanIn, f), request, user)),
    }
    return await dispatch(request, forms, action, "accounts", back,
                          account_again(request, user, account_id, action, back))


@router.post("/views/{page}")
async def save_view(page: str, request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, _back(request, f"/{page}"), "View “{name}” saved.",
                     lambda f: api.save_view(page, body(api.ViewIn, f), request, user))


@router.post("/views/{page}/{view_id}/delete")
async def delete_view(page: str, view_id: Id, request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, _back(request, f"/{page}"), "View “{name}” deleted.",
                     lambda f: api.delete_view(page, view_id, request, user))


@router.post("/ctas/bulk")
async def bulk(request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, _back(request, "/cockpit"), "{changed} CTAs changed ({action}).",
                     lambda f: api.bulk(body(api.BulkIn, f), request, user), lists=("ids",))


@router.post("/ctas/{cta_id}/{action}")
async def cta_action(cta_id: Id, action: str, request: Request, user: dict[str, Any] = Me) -> Response:
    forms: Forms = {
        "close": ("CTA #{id} closed.", lambda f: api.close_cta(cta_id, body(api.CloseIn, f), request, user)),
        "snooze": ("CTA #{id} snoozed.", lambda f: api.snooze(cta_id, body(api.SnoozeIn, f), request, user)),
        "assign": ("CTA #{id} assigned to {owner}.",
                   lambda f: api.assign(cta_id, body(api.AssignIn, f), request, user)),
        "escalate": ("CTA #{id} escalated.",
                     lambda f: api.escalate(cta_id, body(api.EscalateIn, f), request, user)),
        "decide": ("Decision recorded on CTA #{id}.",
                   lambda f: api.decide(cta_id, body(api.DecideIn, f), request, user)),
        "comments": ("Comment added.", lambda f: api.comment(cta_id, body(api.CommentIn, f), request, user)),
    }
    back = _back(request, "/cockpit")
    return await dispatch(request, forms, action, "CTAs", back,
                          cta_again(request, user, cta_id, action, back))


@router.post("/tasks/{task_id}/done")
async def task_done(task_id: Id, request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, _back(request, "/cockpit"), "Task #{id} {status}.",
                     lambda f: api.task_done(task_id, body(api.TaskIn, f), request, user))


@router.post("/success-plans/{plan_id}/{action}")
async def plan_action(plan_id: Id, action: str, request: Request, user: dict[str, Any] = Me) -> Response:
    forms: Forms = {
        "goals": ("Added.", lambda f: api.add_goal(plan_id, body(api.GoalIn, f), request, user)),
        "milestones": ("Milestone added.",
                       lambda f: api.add_milestone(plan_id, body(api.MilestoneIn, f), request, user)),
        "criteria": ("Success criterion added.",
                     lambda f: api.add_criterion(plan_id, body(api.CriterionIn, f), request, user)),
    }
    return await dispatch(request, forms, action, "success plans", f"/success-plans/{plan_id}")


@router.post("/success-plans/{plan_id}/milestones/{milestone_id}/done")
async def milestone_done(plan_id: Id, milestone_id: Id, request: Request,
                         user: dict[str, Any] = Me) -> Response:
    return await act(request, f"/success-plans/{plan_id}", "Milestone done.",
                     lambda f: api.milestone_done(plan_id, milestone_id, request, user))


@router.post("/admin/users")
async def add_user(request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, "/admin", "Added {name} ({role}).",
                     lambda f: api.add_user(body(api.UserIn, f), request, user))


@router.post("/admin/users/{name}")
async def update_user(name: str, request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, "/admin", "Saved {name}.",
                     lambda f: api.update_user(name, body(api.UserUpdate, f), request, user))


@router.post("/tokens")
async def create_token(request: Request, user: dict[str, Any] = Me) -> Response:
    back = "/admin" if user["role"] == "admin" else "/me"
    done = "API token #{id} for {user}: {token} — copy it now, it is not shown again."
    return await act(request, back, done, lambda f: api.create_token(body(api.TokenIn, f), request, user))


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(token_id: Id, request: Request, user: dict[str, Any] = Me) -> Response:
    back = "/admin" if user["role"] == "admin" else "/me"
    return await act(request, back, "Token #{id} revoked.",
                     lambda f: api.revoke_token(token_id, request, user))


@router.post("/me")
async def update_me(request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, _back(request, "/me"), "Saved.",
                     lambda f: api.update_me(body(api.MeUpdate, f), request, user))


@router.post("/me/notifications")
async def my_notifications(request: Request, user: dict[str, Any] = Me) -> Response:
    def save(f: dict[str, Any]) -> Any:
        fields = {k: v for k, v in f.items() if k not in ("webhook", "webhook_remove")}
        if f.get("webhook"):  # the form's field; the API's is webhook_url
            fields["webhook_url"] = f["webhook"]
        elif f.get("webhook_remove") == "true":
            fields["webhook_url"] = ""  # an empty address removes it
        return api.set_my_notifications(body(api.NotifyIn, fields), request, user)
    return await act(request, "/me", "Notification settings saved.", save, lists=("events", "channels"),
                     again=_me_again(request, user), blanks=("email",))


def _me_again(request: Request, user: dict[str, Any]) -> Again | None:
    """The Me page again for its notification form sent by htmx: what was ticked and typed
    kept, the error beside its field."""
    if not request.headers.get("HX-Request"):
        return None

    def again(form: dict[str, Any], message: str) -> Response:
        data = api.me(request, user)
        data["form"] = {**form_state("notify", form, message),
                        "lists": {k: list(form.get(k) or []) for k in ("events", "channels")}}
        response = render(request, "me.html", data, nav="me")
        response.headers["HX-Replace-Url"] = "/me"
        return response
    return again


@router.post("/inbox/read")
async def inbox_all_read(request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, _back(request, "/inbox"), "All marked as read.",
                     lambda f: api.mark_all_read(request, user))


@router.post("/inbox/{item_id}/read")
async def inbox_read(item_id: Id, request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, _back(request, "/inbox"), "Marked as read.",
                     lambda f: api.mark_read(item_id, request, user))


@router.post("/me/password")
async def my_password(request: Request, user: dict[str, Any] = Me) -> Response:
    return await act(request, "/me", "Password changed.",
                     lambda f: api.my_password(body(api.Password, f), request, user))
