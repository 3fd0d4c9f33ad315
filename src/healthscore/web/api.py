"""The REST API: the JSON twin of every page, and every action the pages offer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from healthscore.errors import ForbiddenError, InvalidActionError
from healthscore.web import auth, ctas, queue, search, today, trends, views
from healthscore.web.queue import CockpitFilter
from healthscore.web.views import AccountFilter, Site

User = dict[str, Any]


async def current_user(request: Request) -> User:
    user = auth.authenticate(request)
    await auth.check_csrf(request)
    return user


Me = Annotated[User, Depends(current_user)]
MAX_ID = 2**63 - 1  # the databases' integer ids: a larger number is no id (404/422, not a crash)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class ErrorOut(BaseModel):
    """Every error the API answers: a stable kind, a message that says what and how to fix it,
    and details (e.g. the fields of a request that failed validation)."""

    error: str = Field(examples=["forbidden"])
    message: str = Field(examples=["cara: a csm acts only on their own accounts; ACC-1 is lee's."])
    details: list[Any] = Field(default_factory=list)


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not signed in, or an unknown or revoked token."},
    403: {"model": ErrorOut, "description": "Signed in, but the role or the book does not allow "
                                            "it, or the CSRF token is missing."},
    404: {"model": ErrorOut, "description": "No such account, CTA, plan, task or user."},
    409: {"model": ErrorOut, "description": "Someone changed it meanwhile: reload and try again."},
    422: {"model": ErrorOut, "description": "The request is not valid: the message and details "
                                            "name the field."},
    429: {"model": ErrorOut, "description": "Too many failed sign-ins: wait and try again."},
}
router = APIRouter(prefix="/api", responses=ERRORS)


def site_of(request: Request) -> Site:
    return request.app.state.site  # type: ignore[no-any-return]


def acting(request: Request, user: User, account_id: str) -> Site:
    """The site, once ``user`` is allowed to act on the account."""
    site = site_of(request)
    site.wf.require_act(user, account_id)
    return site


def acting_on_cta(request: Request, user: User, cta_id: int) -> Site:
    site = site_of(request)
    cta = site.wf.cta(cta_id)
    if cta.get("owner") != user["name"] or user["role"] == "viewer":
        site.wf.require_act(user, cta["account_id"])
    return site


MAX_TEXT = 10_000  # characters in any text field of a request (a note, a reason, a title...)
_CONTROL = {chr(c) for c in range(32)} - {"\n", "\r", "\t"}


class Body(BaseModel):
    """A request body: unknown keys refused, text at most MAX_TEXT characters and free of
    NUL and other control characters (line breaks and tabs are fine)."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        if isinstance(value, str) and not _CONTROL.isdisjoint(value):
            raise ValueError("must not contain control characters (such as NUL)")
        return value


# ----------------------------------------------------------------------------- session


class Login(Body):
    name: str
    password: str


@router.post("/login", tags=["session"])
def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    """Sign in with a password; sets the session cookie and returns the CSRF token."""
    return auth.sign_in(request, response, body.name, body.password)


@router.post("/logout", tags=["session"])
def logout(request: Request, response: Response, user: Me) -> dict[str, Any]:
    auth.sign_out(request, response)
    return {"signed_out": user["name"]}


class MeUpdate(Body):
    language: Literal["en", "pl", "ru", "zh"] | None = None
    email: str | None = None


@router.get("/me", tags=["session"])
def me(request: Request, user: Me) -> dict[str, Any]:
    return views.me(site_of(request), user)


@router.patch("/me", tags=["session"])
def update_me(body: MeUpdate, request: Request, user: Me) -> dict[str, Any]:
    return site_of(request).wf.update_user(user["name"], actor=user["name"], language=body.language,
                                           email=body.email)


class Password(Body):
    password: str


@router.post("/me/password", tags=["session"])
def my_password(body: Password, request: Request, user: Me) -> dict[str, Any]:
    site_of(request).wf.set_password(user["name"], body.password, actor=user["name"])
    return {"password_set": user["name"]}


class NotifyIn(Body):
    """Your notification settings: which events, on which channels, at once or in a digest
    (the inbox always gets each at once). An address left out is kept; an empty one removed."""

    events: list[str] = Field(default_factory=list,
                              examples=[["cta_assigned", "cta_escalated", "cta_mention"]])
    channels: list[Literal["inapp", "email", "webhook"]] = Field(default_factory=list,
                                                                 examples=[["inapp", "email"]])
    email: str | None = None
    webhook_url: str | None = None
    digest: bool = False


@router.get("/me/notifications", tags=["inbox"])
def my_notifications(request: Request, user: Me) -> dict[str, Any]:
    """Your notification settings and the events and channels there are."""
    return views.notify_settings(site_of(request), user)


@router.put("/me/notifications", tags=["inbox"])
def set_my_notifications(body: NotifyIn, request: Request, user: Me) -> dict[str, Any]:
    if not body.events:
        raise InvalidActionError("events: choose at least one event (to hear of nothing, turn "
                                 "every channel off).")
    site = site_of(request)
    site.wf.set_preferences(user["name"], actor=user["name"], events=body.events,
                            channels=list(body.channels), email=body.email,
                            webhook_url=body.webhook_url, digest=body.digest)
    return views.notify_settings(site, user)


@router.get("/inbox", tags=["inbox"])
def inbox(request: Request, user: Me, unread: bool = False,
          page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
          per_page: Annotated[int, Query(ge=1, le=200)] = 50,
          of: Annotated[str | None, Query(description="Whose inbox: only your own.")] = None
          ) -> dict[str, Any]:
    """Your inbox, newest first: what you were told (new CTAs, assignments, escalations,
    mentions, due work), with the unread count. Nobody reads another's inbox."""
    if of not in (None, "", user["name"]):
        raise ForbiddenError(f"{user['name']}: you see only your own inbox, not {of}'s.")
    return site_of(request).wf.inbox(user["name"], unread_only=unread, page=page, per_page=per_page)


@router.post("/inbox/{item_id}/read", tags=["inbox"])
def mark_read(item_id: Id, request: Request, user: Me) -> dict[str, Any]:
    """Mark one item of your inbox read (another's is 404, as a missing one)."""
    return site_of(request).wf.mark_read(user["name"], item_id)


@router.post("/inbox/read", tags=["inbox"])
def mark_all_read(request: Request, user: Me) -> dict[str, Any]:
    """Mark every item of your inbox read."""
    return site_of(request).wf.mark_all_read(user["name"])


# ----------------------------------------------------------------------------- reading


@router.get("/portfolio", tags=["pages"])
def portfolio(request: Request, user: Me) -> dict[str, Any]:
    return views.portfolio(site_of(request))


def account_filter(
    band: str | None = None, segment: str | None = None, csm: str | None = None,
    lifecycle_stage: str | None = None, renewal_days: str | None = None,
    min_coverage: str | None = None, open_ctas: Literal["yes", "no", ""] | None = None,
    q: str | None = None, sort: str = "score", desc: bool = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1, per_page: Annotated[int, Query(ge=1, le=1000)] = 50,
    red_module: Literal["yes", "no", ""] | None = None,
    scope: Literal["mine", "team", "all", ""] | None = None,
    cols: Annotated[list[str] | None, Query(
        description="The columns besides the name, comma-separated or repeated: account_id, "
                    "segment, csm, lifecycle_stage, arr, renewal_date, score, band, coverage, "
                    "change_30d, change_90d, red_modules, open_ctas.")] = None,
) -> AccountFilter:
    """The list's filters; an empty field (as a form sends it) means no filter."""
    days = _number("renewal_days", renewal_days, int, 0, None)
    coverage = _number("min_coverage", min_coverage, float, 0, 100)
    columns = tuple(dict.fromkeys(c.strip() for v in cols or [] for c in v.split(",") if c.strip()))
    return AccountFilter(band or None, segment or None, csm or None, lifecycle_stage or None,
                         days, coverage, open_ctas or None, q or None, sort, desc, page, per_page,
                         red_module or None, scope or None, columns or None)


def _number(name: str, text: str | None, kind: type, low: float, high: float | None) -> Any:
    if text is None or not text.strip():
        return None
    try:
        value = kind(text)
    except ValueError:
        raise InvalidActionError(f"{name}: must be a {'whole ' if kind is int else ''}number. "
                                 f"Got {text!r}.") from None
    if value < low or (high is not None and value > high):
        limits = f"between {low:g} and {high:g}" if high is not None else f"{low:g} or more"
        raise InvalidActionError(f"{name}: must be {limits}. Got {text}.")
    return value


Filter = Annotated[AccountFilter, Depends(account_filter)]


@router.get("/accounts", tags=["pages"])
def accounts(request: Request, user: Me, f: Filter) -> dict[str, Any]:
    return views.accounts(site_of(request), f, user)


CSV: dict[int | str, dict[str, Any]] = {200: {"description": "The filtered list as CSV.",
             "content": {"text/csv": {"schema": {"type": "string"}}}}}


def trend_filter(team: str | None = None, csm: str | None = None, segment: str | None = None,
                 lifecycle_stage: str | None = None,
                 months: Annotated[int, Query(ge=1, le=120)] = trends.MONTHS) -> trends.TrendFilter:
    """The trends' filters; an empty field (as a form sends it) means no filter."""
    return trends.TrendFilter(team=team or None, csm=csm or None, segment=segment or None,
                              lifecycle_stage=lifecycle_stage or None, months=months)


Trends = Annotated[trends.TrendFilter, Depends(trend_filter)]


@router.get("/portfolio/trends", tags=["pages"])
def portfolio_trends(request: Request, user: Me, f: Trends) -> dict[str, Any]:
    return trends.portfolio_trends(site_of(request), user, f)


@router.get("/portfolio/trends.csv", tags=["pages"], response_class=Response, responses=CSV)
def portfolio_trends_csv(request: Request, user: Me, f: Trends) -> Response:
    text = trends.trends_csv(trends.portfolio_trends(site_of(request), user, f))
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="portfolio-trends.csv"'})
class ViewIn(Body):
    name: str
    query: str = ""  # the list's query string: filters, sort, scope


@router.get("/views/{page}", tags=["saved views"])
def saved_views(page: str, request: Request, user: Me) -> list[dict[str, Any]]:
    """Your saved views of a list page (``accounts``), by name."""
    return site_of(request).wf.saved_views(user["name"], page)


@router.post("/views/{page}", tags=["saved views"], status_code=201)
def save_view(page: str, body: ViewIn, request: Request, user: Me) -> dict[str, Any]:
    """Save the list's query string under a name (the same name replaces it)."""
    return site_of(request).wf.save_view(user["name"], page, body.name, body.query)


@router.delete("/views/{page}/{view_id}", tags=["saved views"])
def delete_view(page: str, view_id: Id, request: Request, user: Me) -> dict[str, Any]:
    return site_of(request).wf.delete_view(user["name"], view_id)


@router.get("/accounts.csv", tags=["pages"], response_class=Response, responses=CSV)
def accounts_csv(request: Request, user: Me, f: Filter) -> Response:
    text = views.accounts_csv(site_of(request), f, user)
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="accounts.csv"'})


@router.get("/accounts/{account_id}", tags=["pages"])
def account(account_id: str, request: Request, user: Me) -> dict[str, Any]:
    return views.account(site_of(request), account_id, user)


@router.get("/accounts/{account_id}/measures/{measure}", tags=["pages"])
def measure_rows(account_id: str, measure: str, request: Request, user: Me) -> dict[str, Any]:
    return views.measure_rows(site_of(request), account_id, measure)


def cockpit_filter(
    scope: Literal["mine", "team", "all", ""] | None = None, type: str | None = None,
    priority: str | None = None, due: str | None = None,
    state: Literal["active", "snoozed", "escalated", "flagged", ""] | None = None,
    band: str | None = None, owner: str | None = None, q: str | None = None,
    group: Literal["account", "type", "due", "owner", ""] | None = None,
    sort: str = "priority", desc: bool = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=queue.MAX_QUEUE_PAGE)] = 50,
    everyone: bool = False,
) -> CockpitFilter:
    """The queue's scope, filters, order and page; ``everyone=true`` is ``scope=all``; an empty
    field (as a form sends it) means no filter."""
    return CockpitFilter(scope or ("all" if everyone else None), type or None, priority or None,
                         due or None, state or None, band or None, owner or None, q or None,
                         group or None, sort, desc, page, per_page)


Queue = Annotated[CockpitFilter, Depends(cockpit_filter)]


@router.get("/cockpit", tags=["pages"])
def cockpit(request: Request, user: Me, f: Queue) -> dict[str, Any]:
    return queue.cockpit(site_of(request), user, f)


@router.get("/cockpit/board", tags=["pages"])
def board(request: Request, user: Me, f: Queue) -> dict[str, Any]:
    """The queue's CTAs in columns by status (open, snoozed, escalated, closed recently), in
    the same scope and filters; ``per_page`` CTAs per column."""
    return queue.board(site_of(request), user, f)


@router.get("/today", tags=["pages"])
def my_day(request: Request, user: Me, scope: str | None = None) -> dict[str, Any]:
    return today.my_day(site_of(request), user, scope or None)


@router.get("/search", tags=["pages"])
def search_accounts(request: Request, user: Me, q: str = "", scope: Literal["mine", "team", "all", ""] = "",
                    limit: Annotated[int, Query(ge=1, le=search.MAX_RESULTS)] = search.SUGGESTIONS
                    ) -> dict[str, Any]:
    """Accounts whose id or name contains ``q``, best matches first, in ``scope`` (default: a
    CSM's book, a lead's team's, everyone's for admins and viewers, as the accounts list)."""
    return search.search(site_of(request), user, q, scope or None, limit)


@router.get("/today/why/{account_id}", tags=["pages"])
def my_day_why(account_id: str, request: Request, user: Me) -> dict[str, Any]:
    """Why an account of My day has its band: its weakest measures (points lost against a
    perfect score), what moved its score, and its open CTAs with their tasks."""
    return today.why(site_of(request), user, account_id)


@router.get("/review", tags=["pages"])
def review(request: Request, user: Me) -> dict[str, Any]:
    return queue.review(site_of(request), user)


@router.get("/success-plans", tags=["pages"])
def success_plans(request: Request, user: Me) -> dict[str, Any]:
    return views.success_plans(site_of(request))


@router.get("/success-plans/{plan_id}", tags=["pages"])
def success_plan(plan_id: Id, request: Request, user: Me) -> dict[str, Any]:
    return site_of(request).wf.plan_of(plan_id)


@router.get("/validation", tags=["pages"])
def validation(request: Request, user: Me) -> dict[str, Any]:
    return views.validation(site_of(request))


@router.get("/validation/preview", tags=["pages"])
def preview(request: Request, user: Me) -> dict[str, Any]:
    auth.require_role(user, "lead", "admin")  # it scores the portfolio: not for every reader
    return views.preview(site_of(request))


@router.get("/validation/report.html", tags=["pages"], response_class=FileResponse)
def validation_report(request: Request, user: Me) -> FileResponse:
    return FileResponse(views.validation_report(site_of(request)), media_type="text/html")


@router.get("/data-health", tags=["pages"])
def data_health(request: Request, user: Me) -> dict[str, Any]:
    return views.data_health(site_of(request))


@router.get("/ctas/{cta_id}", tags=["ctas"])
def cta(cta_id: Id, request: Request, user: Me) -> dict[str, Any]:
    """The CTA with its account's health, ARR and renewal, tasks, comments, escalations and
    history, and whether you may act on it (``can_act``)."""
    return ctas.cta(site_of(request), user, cta_id)


# ----------------------------------------------------------------------------- account actions


class OverrideIn(Body):
    band: str | None = None
    score: float | None = None
    reason_code: str
    note: str
    expires_on: date
    version: int | None = None  # of the override you saw: 409 if someone replaced it first


@router.post("/accounts/{account_id}/override", tags=["accounts"], status_code=201)
def set_override(account_id: str, body: OverrideIn, request: Request, user: Me) -> dict[str, Any]:
    return acting(request, user, account_id).wf.set_override(
        account_id, actor=user["name"], reason_code=body.reason_code, note=body.note,
        expires_on=body.expires_on, band=body.band or None, score=body.score,
        version=body.version)


class Note(Body):
    note: str = ""


class MarkIn(Body):
    module: str
    colour: Literal["red", "yellow", "green"]
    reason_code: str
    note: str
    expires_on: date
    version: int | None = None  # of the mark you saw: 409 if someone replaced it first


class MarkClearIn(Body):
    module: str
    note: str = ""


@router.post("/accounts/{account_id}/marks", tags=["accounts"], status_code=201)
def mark_module(account_id: str, body: MarkIn, request: Request, user: Me) -> dict[str, Any]:
    """Mark one module red, yellow or green by judgement until ``expires_on`` (seed 002)."""
    return acting(request, user, account_id).wf.mark_module(
        account_id, body.module, body.colour, actor=user["name"], reason_code=body.reason_code,
        note=body.note, expires_on=body.expires_on, version=body.version)


@router.post("/accounts/{account_id}/marks/clear", tags=["accounts"])
def clear_mark(account_id: str, body: MarkClearIn, request: Request, user: Me) -> dict[str, Any]:
    return acting(request, user, account_id).wf.clear_mark(account_id, body.module,
                                                           actor=user["name"], note=body.note)


class InputIn(Body):
    measure: str
    value: float
    note: str = ""


@router.post("/accounts/{account_id}/inputs", tags=["accounts"], status_code=201)
def enter_value(account_id: str, body: InputIn, request: Request, user: Me) -> dict[str, Any]:
    """Enter a value for one of the project's manual measures (e.g. CSM sentiment 1-5)."""
    return acting(request, user, account_id).wf.enter_value(
        account_id, body.measure, body.value, actor=user["name"], note=body.note)


@router.get("/accounts/{account_id}/inputs", tags=["accounts"])
def entered_values(account_id: str, request: Request, user: Me) -> list[dict[str, Any]]:
    """The values entered for the account, newest first."""
    wf = site_of(request).wf
    wf.account_rows(account_id)  # 404 for an unknown account
    return wf.entered_values(account_id)


@router.get("/accounts/{account_id}/marks", tags=["accounts"])
def marks(account_id: str, request: Request, user: Me) -> list[dict[str, Any]]:
    """The account's active module marks."""
    wf = site_of(request).wf
    wf.account_rows(account_id)  # 404 for an unknown account
    return wf.marks(account_id)


@router.post("/accounts/{account_id}/override/clear", tags=["accounts"])
def clear_override(account_id: str, body: Note, request: Request, user: Me) -> dict[str, Any]:
    return acting(request, user, account_id).wf.clear_override(account_id, actor=user["name"],
                                                                note=body.note)


class FlagIn(Body):
    reason: str
    priority: Literal["low", "medium", "high", "critical"] = "high"


@router.post("/accounts/{account_id}/flag", tags=["accounts"], status_code=201)
def flag(account_id: str, body: FlagIn, request: Request, user: Me) -> dict[str, Any]:
    return acting(request, user, account_id).wf.flag(account_id, body.reason, actor=user["name"],
                                                     priority=body.priority)


class TouchIn(Body):
    kind: str = "note"
    text: str


@router.post("/accounts/{account_id}/timeline", tags=["accounts"], status_code=201)
def log_touch(account_id: str, body: TouchIn, request: Request, user: Me) -> dict[str, Any]:
    return acting(request, user, account_id).wf.log(account_id, body.kind, body.text, actor=user["name"])


class CtaIn(Body):
    type: str = "risk"
    reason: str
    priority: str = "medium"
    owner: str | None = None
    due_on: date | None = None
    playbook: str | None = None


@router.post("/accounts/{account_id}/ctas", tags=["accounts"], status_code=201)
def open_cta(account_id: str, body: CtaIn, request: Request, user: Me) -> dict[str, Any]:
    return acting(request, user, account_id).wf.open_cta(
        account_id, body.type, body.reason, actor=user["name"], priority=body.priority,
        owner=body.owner or None, due_on=body.due_on, playbook=body.playbook or None)


class PlanIn(Body):
    template: str | None = None
    title: str | None = None


@router.post("/accounts/{account_id}/success-plans", tags=["success plans"], status_code=201)
def create_success_plan(account_id: str, body: PlanIn, request: Request, user: Me) -> dict[str, Any]:
    return acting(request, user, account_id).wf.create_success_plan(
        account_id, actor=user["name"], template=body.template or None, title=body.title or None)


# ----------------------------------------------------------------------------- CTA actions


class Versioned(Body):
    version: int | None = None


class CloseIn(Versioned):
    outcome: str


@router.post("/ctas/{cta_id}/close", tags=["ctas"])
def close_cta(cta_id: Id, body: CloseIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_cta(request, user, cta_id).wf.close_cta(cta_id, body.outcome, actor=user["name"],
                                                             version=body.version)


class SnoozeIn(Versioned):
    until: date
    reason: str


@router.post("/ctas/{cta_id}/snooze", tags=["ctas"])
def snooze(cta_id: Id, body: SnoozeIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_cta(request, user, cta_id).wf.snooze(cta_id, body.until, body.reason,
                                                          actor=user["name"], version=body.version)


class AssignIn(Versioned):
    owner: str


@router.post("/ctas/{cta_id}/assign", tags=["ctas"])
def assign(cta_id: Id, body: AssignIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_cta(request, user, cta_id).wf.assign(cta_id, body.owner, actor=user["name"],
                                                          version=body.version)


class EscalateIn(Versioned):
    to: str | None = None
    note: str = ""


@router.post("/ctas/{cta_id}/escalate", tags=["ctas"])
def escalate(cta_id: Id, body: EscalateIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_cta(request, user, cta_id).wf.escalate(
        cta_id, actor=user["name"], to=body.to or None, note=body.note, version=body.version)


class DecideIn(Versioned):
    decision: str


@router.post("/ctas/{cta_id}/decide", tags=["ctas"])
def decide(cta_id: Id, body: DecideIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_cta(request, user, cta_id).wf.decide(cta_id, body.decision, actor=user["name"],
                                                          version=body.version)


class CommentIn(Body):
    text: str


@router.post("/ctas/{cta_id}/comments", tags=["ctas"], status_code=201)
def comment(cta_id: Id, body: CommentIn, request: Request, user: Me) -> dict[str, Any]:
    """Comment on a CTA (open or closed); it does not change the CTA's version."""
    return acting_on_cta(request, user, cta_id).wf.comment(cta_id, body.text, actor=user["name"])


MAX_BULK = 500  # CTAs in one bulk action


class BulkIn(Body):
    """One action on many CTAs, all or nothing. Each action reads its own fields: close
    ``outcome``; snooze ``until`` and ``reason``; assign ``owner``; priority ``priority``."""

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(max_length=MAX_BULK)
    action: Literal["close", "snooze", "assign", "priority"]
    outcome: str | None = None
    until: date | None = None
    reason: str | None = None
    owner: str | None = None
    priority: Literal["low", "medium", "high", "critical"] | None = None


@router.post("/ctas/bulk", tags=["ctas"])
def bulk(body: BulkIn, request: Request, user: Me) -> dict[str, Any]:
    """Close, snooze, assign or reprioritise many CTAs in one request. All or nothing: when the
    role, the book or a CTA's state refuses any of them, nothing is written and the error's
    ``details`` name every refused CTA and why."""
    fields = body.model_dump(exclude={"ids", "action"})
    return site_of(request).wf.bulk(list(body.ids), body.action, actor=user["name"], **fields)


class TaskIn(Versioned):
    skip: bool = False


@router.post("/tasks/{task_id}/done", tags=["ctas"])
def task_done(task_id: Id, body: TaskIn, request: Request, user: Me) -> dict[str, Any]:
    site = site_of(request)
    cta_id, plan_id = site.wf.task_links(task_id)
    if cta_id is not None:
        acting_on_cta(request, user, cta_id)
    elif plan_id is not None:
        acting_on_plan(request, user, plan_id)
    return site.wf.complete_task(task_id, actor=user["name"], version=body.version, skip=body.skip)


# ----------------------------------------------------------------------------- success plans


def acting_on_plan(request: Request, user: User, plan_id: int) -> Site:
    return acting(request, user, site_of(request).wf.plan_of(plan_id)["account_id"])


class GoalIn(Body):
    title: str
    kind: Literal["goal", "initiative"] = "goal"


@router.post("/success-plans/{plan_id}/goals", tags=["success plans"], status_code=201)
def add_goal(plan_id: Id, body: GoalIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_plan(request, user, plan_id).wf.add_goal(plan_id, body.title, actor=user["name"],
                                                              kind=body.kind)


class MilestoneIn(Body):
    title: str
    due_on: date | None = None


@router.post("/success-plans/{plan_id}/milestones", tags=["success plans"], status_code=201)
def add_milestone(plan_id: Id, body: MilestoneIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_plan(request, user, plan_id).wf.add_milestone(plan_id, body.title, body.due_on,
                                                                   actor=user["name"])


@router.post("/success-plans/{plan_id}/milestones/{milestone_id}/done", tags=["success plans"])
def milestone_done(plan_id: Id, milestone_id: Id, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_plan(request, user, plan_id).wf.complete_milestone(plan_id, milestone_id,
                                                                        actor=user["name"])


class CriterionIn(Body):
    measure: str
    op: str = Field(">=", description=">=, <=, >, < or =")
    target: float
    due_on: date


@router.post("/success-plans/{plan_id}/criteria", tags=["success plans"], status_code=201)
def add_criterion(plan_id: Id, body: CriterionIn, request: Request, user: Me) -> dict[str, Any]:
    return acting_on_plan(request, user, plan_id).wf.add_criterion(
        plan_id, body.measure, body.op, body.target, body.due_on, actor=user["name"])


# ----------------------------------------------------------------------------- admin


@router.get("/admin", tags=["admin"])
def admin(request: Request, user: Me) -> dict[str, Any]:
    auth.require_role(user, "admin")
    return views.admin(site_of(request))


class UserIn(Body):
    name: str
    role: Literal["viewer", "csm", "lead", "admin"]
    team: str | None = None
    email: str | None = None
    password: str | None = None


@router.post("/users", tags=["admin"], status_code=201)
def add_user(body: UserIn, request: Request, user: Me) -> dict[str, Any]:
    from healthscore.workflow.access import hash_password

    auth.require_role(user, "admin")
    digest = hash_password(body.password) if body.password else None
    return site_of(request).wf.add_user(body.name, body.role, team=body.team or None,
                                        email=body.email or None, actor=user["name"],
                                        password_hash=digest)


class UserUpdate(Body):
    role: Literal["viewer", "csm", "lead", "admin"] | None = None
    team: str | None = None
    email: str | None = None
    language: Literal["en", "pl", "ru", "zh"] | None = None
    password: str | None = None


@router.patch("/users/{name}", tags=["admin"])
def update_user(name: str, body: UserUpdate, request: Request, user: Me) -> dict[str, Any]:
    auth.require_role(user, "admin")
    site = site_of(request)
    if body.password:
        site.wf.set_password(name, body.password, actor=user["name"])
    return site.wf.update_user(name, actor=user["name"], role=body.role, team=body.team,
                               email=body.email, language=body.language)


class TokenIn(Body):
    label: str
    user: str | None = None


@router.get("/tokens", tags=["admin"])
def tokens(request: Request, user: Me) -> list[dict[str, Any]]:
    mine = None if user["role"] == "admin" else user["name"]
    return site_of(request).wf.tokens(mine)  # type: ignore[no-any-return]


@router.post("/tokens", tags=["admin"], status_code=201)
def create_token(body: TokenIn, request: Request, user: Me) -> dict[str, Any]:
    return site_of(request).wf.create_token(body.user or user["name"], body.label, actor=user["name"])


@router.delete("/tokens/{token_id}", tags=["admin"])
def revoke_token(token_id: Id, request: Request, user: Me) -> dict[str, Any]:
    return site_of(request).wf.revoke_token(token_id, actor=user["name"])
