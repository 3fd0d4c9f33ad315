"""The REST API and the pages, in process: sign-in, sessions, CSRF, tokens, rate limiting, the
role x endpoint matrix, stable error bodies, and each page agreeing with its JSON twin."""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select

from healthscore.project import Project
from healthscore.tables import User
from healthscore.web.app import create_app
from healthscore.workflow.access import hash_password
from healthscore.workflow.service import Workflow

from .conftest import copy_project, migrated_store
from .projects import add_department_people

TODAY = date(2026, 11, 2)
PASSWORD = "correct horse"
CSM, OTHER_CSM, LEAD, VIEWER, ADMIN = "Anna Kowalska", "Lars Andersen", "Nora Lindqvist", "vic", "ada"


@pytest.fixture(scope="module")
def project(scored_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The eight-categories demo scored on 2026-09-30 and 2026-10-31 (rules not applied)."""
    return Project.load(copy_project(scored_demo, tmp_path_factory.mktemp("web") / "p"))


@functools.cache
def _digest() -> str:
    """PASSWORD hashed once for every Site (by the tests' cheap hasher, see conftest)."""
    return hash_password(PASSWORD)


def _add_users(wf: Workflow) -> dict[str, str]:
    """A user per role (and the department's people) added to ``wf``; a token for each role's."""
    digest = _digest()
    for name, role, team in ((ADMIN, "admin", None), (LEAD, "lead", "North"),
                             (CSM, "csm", "North"), (OTHER_CSM, "csm", "South"),
                             (VIEWER, "viewer", None)):
        wf.add_user(name, role, team=team, password_hash=digest,
                    actor="healthscore" if role == "admin" else ADMIN)
    add_department_people(wf, ADMIN)
    return {n: wf.create_token(n, "tests", actor=n)["token"] for n in (ADMIN, LEAD, CSM, OTHER_CSM, VIEWER)}


@functools.cache
def _store_with_users(root: Path) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """A migrated store holding ``_add_users``'s users and tokens, made once per project folder
    and copied by each Site: adding them is a dozen commits, each waiting for the disk."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="healthscore-site-") as folder:
        db = migrated_store(Path(folder) / "wf.db")
        wf = Project.load(root).workflow(url=f"sqlite:///{db}", today=TODAY)
        try:
            tokens = _add_users(wf)
        finally:
            wf.close()
        return db.read_bytes(), tuple(tokens.items())


class Site:
    """One app over a fresh workflow store, with a user per role and a token for each."""

    def __init__(self, project: Project, db: Path) -> None:
        content, tokens = _store_with_users(project.root)
        db.write_bytes(content)
        self.app = create_app(project, url=f"sqlite:///{db}", today=TODAY)
        self.wf: Workflow = self.app.state.site.wf
        self.tokens = dict(tokens)
        scores = self.wf.scores()
        self.own = str(scores.loc[scores["csm"] == CSM, "account_id"].iloc[0])
        self.other = str(scores.loc[scores["csm"] == OTHER_CSM, "account_id"].iloc[0])
        self.client = TestClient(self.app)

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def cta(self, account: str, **kw: Any) -> int:
        return int(self.wf.open_cta(account, "risk", "test", actor=ADMIN, **kw)["id"])

    def plan(self, account: str) -> dict[str, Any]:
        plan = self.wf.create_success_plan(account, actor=ADMIN, template="onboarding")
        return plan


def serving(project: Project, db: Path) -> Iterator[Site]:
    """A ``Site`` over ``project`` with its workflow store at ``db``, closed after use."""
    s = Site(project, db)
    try:
        yield s
    finally:
        s.client.close()
        s.wf.close()


@pytest.fixture
def site(project: Project, tmp_path: Path) -> Iterator[Site]:
    yield from serving(project, tmp_path / "wf.db")


def login(site: Site, name: str, password: str = PASSWORD) -> str:
    r = site.client.post("/api/login", json={"name": name, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


# ----------------------------------------------------------------------------- sign in


def test_no_credentials_is_401_with_a_stable_body(site: Site) -> None:
    r = site.client.get("/api/portfolio")
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized", "details": [],
                        "message": "sign in first: no session cookie or API token "
                                   "(send 'Authorization: Bearer <token>')."}


def test_wrong_password_and_unknown_user_get_the_same_answer(site: Site) -> None:
    for name in (CSM, "nobody"):
        r = site.client.post("/api/login", json={"name": name, "password": "wrong password"})
        assert r.status_code == 401
        assert r.json()["message"] == "login: wrong user name or password."


def test_failed_logins_are_rate_limited(site: Site) -> None:
    for _ in range(5):
        assert site.client.post("/api/login", json={"name": CSM, "password": "nope-nope"}).status_code == 401
    r = site.client.post("/api/login", json={"name": CSM, "password": PASSWORD})
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited"
    assert r.json()["message"] == ("login: too many failed attempts from this address. "
                                   "Try again in 15 minute(s).")
    # another user from the same address is not locked out by these five
    assert site.client.post("/api/login", json={"name": LEAD, "password": PASSWORD}).status_code == 200


def test_session_cookie_is_httponly_samesite_and_secure_when_asked(project: Project, tmp_path: Path) -> None:
    site = Site(project, tmp_path / "wf.db")
    r = site.client.post("/api/login", json={"name": CSM, "password": PASSWORD})
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    secure = TestClient(create_app(project, url=f"sqlite:///{tmp_path / 'wf.db'}", secure_cookies=True))
    r = secure.post("/api/login", json={"name": CSM, "password": PASSWORD})
    assert "Secure" in r.headers["set-cookie"]
    with site.wf.store.session() as s:
        assert str(s.scalar(select(User.password_hash).where(User.name == CSM))).startswith("$argon2id$")


def test_passwords_are_hashed_by_argon2id_at_the_recommended_cost(product_passwords: Any) -> None:
    """The product's hasher (the tests sign in with a cheap one, see conftest): argon2id with
    RFC 9106's low-memory parameters; a hash it makes checks and needs no rehash."""
    digest = product_passwords.hash(PASSWORD)
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert product_passwords.verify(digest, PASSWORD)
    assert not product_passwords.check_needs_rehash(digest)


def test_cookie_changes_need_the_csrf_token(site: Site) -> None:
    csrf = login(site, CSM)
    body = {"kind": "call", "text": "Spoke to the sponsor"}
    r = site.client.post(f"/api/accounts/{site.own}/timeline", json=body)
    assert r.status_code == 403
    assert r.json()["message"] == ("csrf: the form is missing its CSRF token or it is out of date. "
                                   "Reload the page and try again.")
    assert site.wf.timeline(site.own) == []  # nothing written
    r = site.client.post(f"/api/accounts/{site.own}/timeline", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    assert site.client.get("/api/me").json()["name"] == CSM  # reading needs no token


def test_logout_ends_the_session(site: Site) -> None:
    csrf = login(site, CSM)
    assert site.client.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert site.client.get("/api/me").status_code == 401


def test_revoked_token_is_refused(site: Site) -> None:
    made = site.wf.create_token(CSM, "crm sync", actor=CSM)
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert site.client.get("/api/me", headers=headers).status_code == 200
    assert site.client.delete(f"/api/tokens/{made['id']}", headers=headers).status_code == 200
    r = site.client.get("/api/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["message"] == "token: unknown or revoked API token. Create one on the Admin page."
    assert made["token"] not in str(site.wf.tokens())  # only the hash is kept


def test_password_change_signs_out_everywhere(site: Site) -> None:
    csrf = login(site, CSM)
    r = site.client.post("/api/me/password", json={"password": "short"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422
    assert r.json()["message"] == "password: must be at least 8 characters. Got 5."
    r = site.client.post("/api/me/password", json={"password": "a much longer one"},
                         headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert site.client.get("/api/me").status_code == 401
    login(site, CSM, "a much longer one")


# ----------------------------------------------------------------------------- role x endpoint


READ = ["GET /api/portfolio", "GET /api/accounts", "GET /api/accounts.csv", "GET /api/accounts/{own}",
        "GET /api/cockpit", "GET /api/cockpit/board", "GET /api/review", "GET /api/success-plans",
        "GET /api/success-plans/{plan}",
        "GET /api/data-health", "GET /api/ctas/{cta}", "GET /api/me", "GET /api/tokens"]
ACTIONS = [
    ("POST /api/accounts/{acc}/override", {"band": "red", "reason_code": "relationship",
                                          "note": "sponsor left", "expires_on": "2026-12-31"}),
    ("POST /api/accounts/{acc}/override/clear", {"note": "back to normal"}),
    ("POST /api/accounts/{acc}/marks", {"module": "usage", "colour": "red",
                                       "reason_code": "renewal_risk", "note": "stopped logging in",
                                       "expires_on": "2026-12-31"}),
    ("POST /api/accounts/{acc}/marks/clear", {"module": "usage", "note": "back to normal"}),
    ("POST /api/accounts/{acc}/flag", {"reason": "renewal at risk"}),
    ("POST /api/accounts/{acc}/timeline", {"kind": "meeting", "text": "QBR held"}),
    ("POST /api/accounts/{acc}/ctas", {"type": "opportunity", "reason": "wants more seats"}),
    ("POST /api/accounts/{acc}/success-plans", {"template": "recovery"}),
    ("POST /api/ctas/{close}/close", {"outcome": "resolved"}),
    ("POST /api/ctas/{snooze}/snooze", {"until": "2026-11-20", "reason": "on holiday"}),
    ("POST /api/ctas/{assign}/assign", {"owner": "ada"}),
    ("POST /api/ctas/{escalate}/escalate", {"note": "no answer"}),
    ("POST /api/ctas/{decide}/decide", {"decision": "call the CFO"}),
    ("POST /api/ctas/{comment}/comments", {"text": "left a voicemail"}),
    ("POST /api/tasks/{task}/done", {}),
    ("POST /api/success-plans/{plan}/goals", {"title": "Go live"}),
    ("POST /api/success-plans/{plan}/milestones", {"title": "Kick-off", "due_on": "2026-11-30"}),
    ("POST /api/success-plans/{plan}/milestones/{milestone}/done", None),
    ("POST /api/success-plans/{plan}/criteria", {"measure": "active_users_30d", "op": ">=",
                                                 "target": 10, "due_on": "2027-01-31"}),
]
ADMIN_ONLY = [("GET /api/admin", None), ("POST /api/users", {"name": "newbie", "role": "viewer"}),
              ("PATCH /api/users/vic", {"team": "EMEA"})]
ANYONE = [("POST /api/tokens", {"label": "my script"}), ("PATCH /api/me", {"language": "pl"})]
# who may act: on their own accounts / on another team's accounts
OWN = {ADMIN: True, LEAD: True, CSM: True, VIEWER: False}
OTHER = {ADMIN: True, LEAD: False, CSM: False, VIEWER: False}


def _targets(site: Site, account: str) -> dict[str, Any]:
    plan = site.plan(account)
    task_cta = site.wf.open_cta(account, "risk", "late payment", actor=ADMIN, playbook="late_payment") \
        if "late_payment" in site.wf.wf.playbooks else site.wf.open_cta(account, "risk", "t", actor=ADMIN)
    ids: dict[str, Any] = {"acc": account, "plan": plan["id"], "milestone": plan["milestones"][0]["id"],
                           "task": task_cta["tasks"][0]["id"] if task_cta["tasks"] else None}
    for key in ("close", "snooze", "assign", "escalate", "decide", "comment"):
        ids[key] = site.cta(account)
    site.wf.set_override(account, actor=ADMIN, reason_code="other", note="set up", band="green",
                         expires_on=date(2026, 12, 1))
    site.wf.mark_module(account, "usage", "green", actor=ADMIN, reason_code="other",
                        note="set up", expires_on=date(2026, 12, 1))
    return ids


def _call(site: Site, who: str, spec: str, body: Any, ids: dict[str, Any]) -> Any:
    method, path = spec.split(" ")
    url = path.format(**ids)
    kwargs: dict[str, Any] = {"headers": site.as_(who)}
    if body is not None:
        kwargs["json"] = body
    return site.client.request(method, url, **kwargs)


@pytest.mark.parametrize("who", [ADMIN, LEAD, CSM, VIEWER])
def test_role_endpoint_matrix(site: Site, who: str) -> None:
    """Every cell: reads are open to every role; actions on an account are allowed for its CSM,
    their team's lead and admins; users and roles only for admins; own tokens and settings for all."""
    read_ids = {"own": site.own, "plan": site.plan(site.own)["id"], "cta": site.cta(site.own)}
    cells: list[tuple[str, bool, Any]] = []
    for spec in READ:
        r = _call(site, who, spec, None, read_ids)
        cells.append((spec, True, r))
    for account, allowed in ((site.own, OWN[who]), (site.other, OTHER[who])):
        ids = _targets(site, account)
        for spec, body in ACTIONS:
            if "{task}" in spec and ids["task"] is None:
                continue
            cells.append((f"{spec} [{'own' if account == site.own else 'other'}]", allowed,
                          _call(site, who, spec, body, ids)))
    for spec, body in ADMIN_ONLY:
        cells.append((spec, who == ADMIN, _call(site, who, spec, body, {})))
    for spec, body in ANYONE:
        cells.append((spec, True, _call(site, who, spec, body, {})))
    wrong = []
    for spec, allowed, r in cells:
        ok = r.status_code in (200, 201) if allowed else (
            r.status_code == 403 and r.json()["error"] == "forbidden")
        if not ok:
            want = "2xx" if allowed else "403"
            wrong.append(f"{who} {spec}: expected {want}, got {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert len(cells) == len(READ) + 2 * len(ACTIONS) + len(ADMIN_ONLY) + len(ANYONE)


# the same actions called on the library (as the CLI and Python do), keyed like ACTIONS
LIBRARY: dict[str, Any] = {
    "override": lambda w, who, i: w.set_override(i["acc"], actor=who, reason_code="relationship",
                                                  note="sponsor left", band="red",
                                                  expires_on=date(2026, 12, 31)),
    "override/clear": lambda w, who, i: w.clear_override(i["acc"], actor=who, note="back"),
    "marks": lambda w, who, i: w.mark_module(i["acc"], "usage", "red", actor=who,
                                             reason_code="renewal_risk", note="stopped logging in",
                                             expires_on=date(2026, 12, 31)),
    "marks/clear": lambda w, who, i: w.clear_mark(i["acc"], "usage", actor=who, note="back"),
    "flag": lambda w, who, i: w.flag(i["acc"], "renewal at risk", actor=who),
    "timeline": lambda w, who, i: w.log(i["acc"], "meeting", "QBR held", actor=who),
    "ctas": lambda w, who, i: w.open_cta(i["acc"], "opportunity", "more seats", actor=who),
    "success-plans": lambda w, who, i: w.create_success_plan(i["acc"], actor=who, template="recovery"),
    "close": lambda w, who, i: w.close_cta(i["close"], "resolved", actor=who),
    "snooze": lambda w, who, i: w.snooze(i["snooze"], date(2026, 11, 20), "holiday", actor=who),
    "assign": lambda w, who, i: w.assign(i["assign"], "ada", actor=who),
    "escalate": lambda w, who, i: w.escalate(i["escalate"], actor=who, note="no answer"),
    "decide": lambda w, who, i: w.decide(i["decide"], "call the CFO", actor=who),
    "task": lambda w, who, i: w.complete_task(i["task"], actor=who),
    "goals": lambda w, who, i: w.add_goal(i["plan"], "Go live", actor=who),
    "milestones": lambda w, who, i: w.add_milestone(i["plan"], "Kick-off", date(2026, 11, 30), actor=who),
    "milestone": lambda w, who, i: w.complete_milestone(i["plan"], i["milestone"], actor=who),
    "criteria": lambda w, who, i: w.add_criterion(i["plan"], "active_users_30d", ">=", 10,
                                                   date(2027, 1, 31), actor=who),
}


@pytest.mark.parametrize("who", [ADMIN, LEAD, CSM, VIEWER])
def test_role_action_matrix_in_the_library_matches_the_api(site: Site, who: str) -> None:
    """The CLI and Python refuse what the API refuses, with the same message."""
    from healthscore.errors import ForbiddenError

    wrong = []
    for account, allowed in ((site.own, OWN[who]), (site.other, OTHER[who])):
        lib, api = _targets(site, account), _targets(site, account)
        for key, call in LIBRARY.items():
            if key == "task" and lib["task"] is None:
                continue
            spec = next(sp for sp, _ in ACTIONS if key in sp.split("/")[-1] or sp.endswith("/" + key)
                        or ("{" + key + "}") in sp)
            body = dict(ACTIONS)[spec]
            try:
                call(site.wf, who, lib)
                got = None
            except ForbiddenError as err:
                got = err.message
            r = _call(site, who, spec, body, api)
            expected = None if allowed else r.json().get("message")
            if (got is None) != allowed or (not allowed and got != expected):
                wrong.append(f"{who} {key} [{account}]: library {got!r}, API {r.status_code} {expected!r}")
    assert not wrong, "\n".join(wrong)


# the same actions typed on the command line, keyed like LIBRARY
CLI: dict[str, str] = {
    "override": "override set {acc} --band red --reason-code relationship --note sponsor-left "
                "--expires 2027-06-30",
    "override/clear": "override clear {acc} --note back",
    "marks": "mark set {acc} usage --colour red --reason-code renewal_risk --note stopped "
             "--expires 2027-06-30",
    "marks/clear": "mark clear {acc} usage --note back",
    "flag": "flag {acc} --reason renewal-at-risk",
    "timeline": "log {acc} --kind meeting --text QBR-held",
    "ctas": "cta open {acc} --type opportunity --reason more-seats",
    "success-plans": "success-plan create {acc} --template recovery",
    "close": "cta close {close} --outcome resolved",
    "snooze": "cta snooze {snooze} --until 2027-01-20 --reason holiday",
    "assign": "cta assign {assign} --to ada",
    "escalate": "cta escalate {escalate} --note no-answer",
    "decide": "cta decide {decide} --decision call-the-CFO",
    "task": "task done {task}",
    "goals": "success-plan goal {plan} --title Go-live",
    "milestones": "success-plan milestone {plan} --title Kick-off --due 2027-01-30",
    "milestone": "success-plan milestone-done {plan} {milestone}",
    "criteria": "success-plan criterion {plan} --measure active_users_30d --op >= --target 10 "
                "--due 2027-01-31",
}


@pytest.fixture
def cli_project(project: Project, site: Site, tmp_path: Path) -> Path:
    """A copy of the project whose workflow store is the site's, as a team's server would have."""
    import shutil

    root = tmp_path / "cli"
    shutil.copytree(project.root, root)
    with (root / "healthscore.yml").open("a") as f:
        f.write(f"\nworkflow:\n  url: {site.wf.store.url}\n")
    return root


@pytest.mark.parametrize("who", [ADMIN, LEAD, CSM, VIEWER])
def test_role_action_matrix_on_the_cli_matches_the_library(site: Site, cli_project: Path,
                                                           who: str) -> None:
    """Every action the CLI offers is refused for the same actors, with the library's message."""
    from healthscore.cli.main import app
    from healthscore.errors import ForbiddenError

    from .conftest import CliRunner

    assert set(CLI) == set(LIBRARY)
    runner = CliRunner()
    wrong = []
    for account, allowed in ((site.own, OWN[who]), (site.other, OTHER[who])):
        lib, cli = _targets(site, account), _targets(site, account)
        for key, line in CLI.items():
            if key == "task" and lib["task"] is None:
                continue
            try:
                LIBRARY[key](site.wf, who, lib)
                expected = None
            except ForbiddenError as err:
                expected = err.message
            if key == "override/clear":  # the library's call cleared the one set up
                site.wf.set_override(account, actor=ADMIN, reason_code="other", note="again",
                                     band="green", expires_on=date(2027, 6, 30))
            if key == "marks/clear":
                site.wf.mark_module(account, "usage", "green", actor=ADMIN, reason_code="other",
                                    note="again", expires_on=date(2027, 6, 30))
            args = [*line.format(**cli).split(), "--as", who, "-p", str(cli_project)]
            r = runner.invoke(app, args)
            said = " ".join(r.output.split())
            if (expected is None) != allowed:
                wrong.append(f"{who} {key} [{account}]: library {expected!r}")
            elif allowed and r.exit_code != 0:
                wrong.append(f"{who} {key} [{account}]: CLI exit {r.exit_code}: {said[:300]}")
            elif not allowed and (r.exit_code != 1 or f"error: {expected}" not in said):
                wrong.append(f"{who} {key} [{account}]: CLI exit {r.exit_code} {said[:300]!r}, "
                             f"library {expected!r}")
    assert not wrong, "\n".join(wrong)


def test_refusals_say_why_and_write_nothing(site: Site) -> None:
    before = len(site.wf.audit())
    r = site.client.post(f"/api/accounts/{site.other}/flag", json={"reason": "x"}, headers=site.as_(CSM))
    assert r.status_code == 403
    assert r.json()["message"] == (f"{CSM}: a csm acts only on their own accounts; "
                                   f"{site.other} is {OTHER_CSM}'s.")
    r = site.client.post(f"/api/accounts/{site.own}/flag", json={"reason": "x"}, headers=site.as_(VIEWER))
    assert r.json()["message"] == f"{VIEWER} is a viewer: this needs a csm, lead or admin."
    r = site.client.get("/api/admin", headers=site.as_(LEAD))
    assert r.json()["message"] == f"{LEAD} is a lead: this needs admin."
    assert len(site.wf.audit()) == before


def test_cockpit_shows_my_ctas_and_a_lead_sees_the_team(site: Site) -> None:
    mine = site.wf.open_cta(site.own, "risk", "mine", actor=ADMIN, owner=CSM)["id"]
    theirs = site.wf.open_cta(site.other, "risk", "theirs", actor=ADMIN, owner=OTHER_CSM)["id"]
    ids = lambda who: {c["id"] for c in site.client.get("/api/cockpit", headers=site.as_(who)).json()["ctas"]}  # noqa: E731
    assert ids(CSM) == {mine}
    assert ids(OTHER_CSM) == {theirs}
    assert ids(LEAD) == {mine}  # North team only
    everyone = site.client.get("/api/cockpit?everyone=true", headers=site.as_(ADMIN)).json()
    assert {mine, theirs} <= {c["id"] for c in everyone["ctas"]}


# ----------------------------------------------------------------------------- bad input


def test_validation_errors_are_stable_json(site: Site) -> None:
    h = site.as_(CSM)
    r = site.client.post(f"/api/accounts/{site.own}/override", json={"band": "red"}, headers=h)
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_request", "message": "request: body.reason_code: Field required",
        "details": ["body.reason_code: Field required", "body.note: Field required",
                    "body.expires_on: Field required"]}
    r = site.client.post(f"/api/accounts/{site.own}/timeline", json={"text": "x", "colour": "red"}, headers=h)
    assert r.json()["message"] == "request: body.colour: Extra inputs are not permitted"
    r = site.client.get("/api/accounts?per_page=5000", headers=h)
    assert r.json()["message"] == "request: query.per_page: Input should be less than or equal to 1000"


def test_business_errors_carry_their_status(site: Site) -> None:
    h = site.as_(CSM)
    r = site.client.post(f"/api/accounts/{site.own}/override", headers=h, json={
        "band": "red", "reason_code": "relationship", "note": "x", "expires_on": "2026-01-01"})
    assert (r.status_code, r.json()["error"]) == (422, "invalid_action")
    assert r.json()["message"] == ("expires_on: 2026-01-01 is not in the future. "
                                   "An override needs an expiry after today (2026-11-02).")
    r = site.client.get("/api/accounts/NOPE-1", headers=h)
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    gone = "no account 'NOPE-1' in the latest scores (2026-10-31). Check the id."
    for method, path, body in (("GET", "/api/accounts/NOPE-1/inputs", None),
                               ("GET", "/api/accounts/NOPE-1/marks", None),
                               ("POST", "/api/accounts/NOPE-1/timeline", {"kind": "note", "text": "x"})):
        r = site.client.request(method, path, headers=site.as_(ADMIN), json=body)
        assert (r.status_code, r.json()["message"]) == (404, gone), (path, r.text)
    r = site.client.get("/api/accounts?sort=colour", headers=h)
    assert r.json()["message"].startswith("sort: must be one of account_id, name, segment")
    r = site.client.post("/api/ctas/999999/close", json={"outcome": "x"}, headers=h)
    assert r.status_code == 404
    assert r.json()["message"] == "no CTA #999999. List them with 'healthscore cta list'."


def test_stale_version_is_a_conflict(site: Site) -> None:
    cid = site.cta(site.own)
    h = site.as_(CSM)
    r = site.client.post(f"/api/ctas/{cid}/decide", json={"decision": "a", "version": 1}, headers=h)
    assert r.status_code == 200
    r = site.client.post(f"/api/ctas/{cid}/decide", json={"decision": "b", "version": 1}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "conflict"


# ----------------------------------------------------------------------------- data views


def test_accounts_filter_sort_page_and_csv(site: Site) -> None:
    h = site.as_(VIEWER)
    everyone = site.client.get("/api/accounts?per_page=1000", headers=h).json()
    scores = site.wf.scores()
    assert everyone["total"] == len(scores)
    stored = site.app.state.site.store.read(date(2026, 10, 31), primary_only=True).to_pandas()
    offered = {c: sorted(stored[c].dropna().astype(str).unique())  # the system's bands
               for c in ("band", "segment", "csm", "lifecycle_stage")}
    assert everyone["choices"] == offered and len(offered["csm"]) > 1
    for page in ("cockpit", "cockpit/board"):
        assert site.client.get(f"/api/{page}", headers=h).json()["bands"] == offered["band"]
    red = site.client.get("/api/accounts?band=red&sort=arr&desc=true&per_page=1000", headers=h).json()
    assert red["total"] == int((scores["band"] == "red").sum())
    arr = [a["arr"] for a in red["accounts"]]
    assert arr == sorted(arr, reverse=True)
    page2 = site.client.get("/api/accounts?per_page=10&page=2", headers=h).json()
    ids = [a["account_id"] for a in everyone["accounts"]]
    assert [a["account_id"] for a in page2["accounts"]] == ids[10:20]
    name = everyone["accounts"][0]["name"]
    found = site.client.get(f"/api/accounts?q={name[:6].lower()}", headers=h).json()
    assert name in {a["name"] for a in found["accounts"]}
    site.cta(site.own)
    with_ctas = site.client.get("/api/accounts?open_ctas=yes", headers=h).json()
    assert [a["account_id"] for a in with_ctas["accounts"]] == [site.own]
    r = site.client.get("/api/accounts.csv?band=red", headers=h)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == red["total"] and {r["band"] for r in rows} == {"red"}


def test_account_360_has_breakdown_history_and_final_band(site: Site) -> None:
    h = site.as_(CSM)
    site.client.post(f"/api/accounts/{site.own}/override", headers=h, json={
        "band": "green", "reason_code": "renewal_signal", "note": "signed early", "expires_on": "2026-12-31"})
    a = site.client.get(f"/api/accounts/{site.own}", headers=h).json()
    assert [x["as_of"] for x in a["history"]] == ["2026-09-30", "2026-10-31"]
    card = a["scorecards"][0]
    assert abs(sum(m["contribution"] for m in card["measures"]) - card["score"]) < 0.1
    assert a["final"]["final_band"] == "green" and a["final"]["system_band"] == card["band"]
    assert a["timeline"][0]["kind"] == "override_set"
    assert a["can_act"] is True
    other = site.client.get(f"/api/accounts/{site.own}", headers=site.as_(OTHER_CSM)).json()
    assert other["can_act"] is False


def test_portfolio_json(site: Site) -> None:
    p = site.client.get("/api/portfolio", headers=site.as_(VIEWER)).json()
    assert sum(b["accounts"] for b in p["bands"]) == p["accounts"]
    assert sum(d["accounts"] for d in p["distribution"]) == p["accounts"]
    assert {"renewals_90d", "trending_down", "quadrants", "stale", "by_csm"} <= set(p)
    spec = site.wf.spec  # the quadrants follow the workflow settings, not only the scores
    site.wf.spec = spec.model_copy(update={"temperature": "gmv_everywhere"})
    q = site.client.get("/api/portfolio", headers=site.as_(VIEWER)).json()["quadrants"]
    assert q["error"].startswith("workflow.temperature: 'gmv_everywhere' is not a measure")
    site.wf.spec = spec
    assert site.client.get("/api/portfolio", headers=site.as_(VIEWER)).json()["quadrants"] == p["quadrants"]


def test_data_health_and_missing_validation(site: Site) -> None:
    h = site.as_(VIEWER)
    d = site.client.get("/api/data-health", headers=h).json()
    assert {s["entity"] for s in d["sources"]} >= {"accounts", "invoices"}
    r = site.client.get("/api/validation", headers=h)
    assert r.status_code == 404
    assert r.json()["message"] == "no validation yet: run 'healthscore validate' to backtest the score."


# ----------------------------------------------------------------------------- pages


PAGES = ["/today", "/portfolio", "/accounts", "/accounts/{own}", "/cockpit", "/cockpit/board", "/ctas/{cta}",
         "/review", "/success-plans", "/success-plans/{plan}", "/validation", "/data-health", "/admin", "/me"]


def test_every_page_renders_and_matches_its_json_twin(site: Site) -> None:
    login(site, ADMIN)
    ids = {"own": site.own, "plan": site.plan(site.own)["id"], "cta": site.cta(site.own)}
    for page in PAGES:
        r = site.client.get(page.format(**ids))
        assert r.status_code == 200, (page, r.text[:300])
        assert "https://" not in r.text and "http://" not in r.text.replace("http://testserver", "")
    first = site.client.get("/api/accounts").json()["accounts"][0]
    assert first["name"] in site.client.get("/accounts").text
    a = site.client.get(f"/api/accounts/{site.own}").json()
    assert a["name"] in site.client.get(f"/accounts/{site.own}").text


def test_pages_redirect_to_login_and_forms_need_csrf(site: Site) -> None:
    r = site.client.get("/accounts", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/accounts")
    login(site, CSM)
    r = site.client.post(f"/accounts/{site.own}/timeline", data={"kind": "note", "text": "hi"})
    assert r.status_code == 403
    assert "csrf" in r.text


def test_form_post_changes_and_comes_back_with_a_message(site: Site) -> None:
    page = site.client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = site.client.post("/login", data={"name": CSM, "password": PASSWORD, "csrf_token": token,
                                         "next": f"/accounts/{site.own}"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/accounts/{site.own}")
    page = site.client.get(f"/accounts/{site.own}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = site.client.post(f"/accounts/{site.own}/override", data={
        "band": "red", "reason_code": "known_issue", "note": "outage", "expires_on": "2026-12-31",
        "csrf_token": csrf})
    assert r.status_code == 200 and "Override saved." in r.text
    assert site.wf.final(site.own)["final_band"] == "red"
    r = site.client.post(f"/accounts/{site.own}/override", data={
        "band": "red", "reason_code": "known_issue", "note": "outage", "expires_on": "2020-01-01",
        "csrf_token": csrf})
    assert "expires_on: 2020-01-01 is not in the future." in r.text


def test_login_form_needs_its_csrf_cookie(site: Site) -> None:
    r = site.client.post("/login", data={"name": CSM, "password": PASSWORD, "csrf_token": "forged"},
                         follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert site.client.get("/api/me").status_code == 401


def test_language_is_per_user(site: Site) -> None:
    csrf = login(site, CSM)
    site.client.patch("/api/me", json={"language": "pl"}, headers={"X-CSRF-Token": csrf})
    page = site.client.get("/portfolio").text
    assert '<html lang="pl"' in page
    r = site.client.patch("/api/me", json={"language": "fr"}, headers={"X-CSRF-Token": csrf})
    assert r.json()["message"] == "request: body.language: Input should be 'en', 'pl', 'ru' or 'zh'"


def test_openapi_lists_every_api_route_and_docs_are_offline(site: Site) -> None:
    spec = site.client.get("/openapi.json").json()
    routes = {r.path for r in site.app.routes if getattr(r, "path", "").startswith("/api/")}
    assert routes <= set(spec["paths"])
    docs = site.client.get("/docs").text
    assert "/static/vendor/swagger-ui-bundle.js" in docs and "cdn" not in docs
    assert site.client.get("/static/vendor/swagger-ui-bundle.js").status_code == 200


def test_responses_carry_server_timing_and_security_headers(site: Site) -> None:
    r = site.client.get("/api/portfolio", headers=site.as_(VIEWER))
    assert re.fullmatch(r"app;dur=\d+\.\d", r.headers["server-timing"])
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_first_admin_from_the_command_line_can_sign_in(project: Project, tmp_path: Path) -> None:
    import shutil

    from healthscore.cli.main import app

    from .conftest import CliRunner

    root = tmp_path / "cli"
    shutil.copytree(project.root, root)
    runner = CliRunner()
    r = runner.invoke(app, ["users", "add", "ada", "--role", "admin", "--password-stdin", "-p", str(root)],
                      input="short\n")
    assert r.exit_code == 1 and "password: must be at least 8 characters. Got 5." in r.output
    r = runner.invoke(app, ["users", "add", "ada", "--role", "admin", "--password-stdin", "-p", str(root)],
                      input=f"{PASSWORD}\n")
    assert r.exit_code == 0 and "Added ada (admin). They can sign in to the web app" in r.output
    r = runner.invoke(app, ["users", "token", "ada", "--label", "sync", "-p", str(root)])
    token = re.search(r"(hs_\S+)", r.output).group(1)  # type: ignore[union-attr]
    client = TestClient(create_app(Project.load(root), today=TODAY))
    assert client.post("/api/login", json={"name": "ada", "password": PASSWORD}).status_code == 200
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "admin" and "password_hash" not in me


def test_empty_filter_fields_mean_any_and_bad_numbers_say_so(site: Site) -> None:
    h = site.as_(VIEWER)
    everyone = site.client.get("/api/accounts", headers=h).json()["total"]
    r = site.client.get("/api/accounts?band=&renewal_days=&min_coverage=&open_ctas=", headers=h)
    assert r.status_code == 200 and r.json()["total"] == everyone
    r = site.client.get("/api/accounts?renewal_days=soon", headers=h)
    assert (r.status_code, r.json()["message"]) == (422, "renewal_days: must be a whole number. Got 'soon'.")
    r = site.client.get("/api/accounts?min_coverage=120", headers=h)
    assert r.json()["message"] == "min_coverage: must be between 0 and 100. Got 120."


def test_an_override_is_the_band_on_every_surface(site: Site, project: Project, tmp_path: Path) -> None:
    """List, band filter, portfolio, export, rules and Account 360 all show the final band."""
    import dataclasses

    before = site.wf.scores()
    prev = site.wf.scores(date(2026, 9, 30)).set_index("account_id")["band"]
    mine = before[(before["csm"] == CSM) & (before["band"] != "red")]
    account = next(a for a in mine["account_id"] if prev.get(a) not in (None, "red"))
    system = str(before.set_index("account_id").loc[account, "band"])
    h = site.as_(CSM)
    p = site.client.get("/api/portfolio", headers=h).json()  # kept until the scores change
    assert (next(b["accounts"] for b in p["bands"] if b["band"] == "red"), p["overridden"]) == (
        int((before["band"] == "red").sum()), 0)
    r = site.client.post(f"/api/accounts/{account}/override", headers=h, json={
        "band": "red", "reason_code": "known_issue", "note": "CEO said they are leaving",
        "expires_on": "2026-12-31"})
    assert r.status_code == 201, r.text
    red = site.client.get("/api/accounts?band=red&per_page=1000&scope=all", headers=h).json()
    row = next(a for a in red["accounts"] if a["account_id"] == account)
    assert (row["band"], row["system_band"]) == ("red", system)
    want = int((before["band"] == "red").sum()) + 1
    assert red["total"] == want
    p = site.client.get("/api/portfolio", headers=h).json()
    assert next(b["accounts"] for b in p["bands"] if b["band"] == "red") == want
    assert p["overridden"] == 1
    a360 = site.client.get(f"/api/accounts/{account}", headers=h).json()
    assert a360["final"]["final_band"] == "red"
    rows = list(csv.DictReader(io.StringIO(site.client.get("/api/accounts.csv?band=red", headers=h).text)))
    assert account in {r["account_id"] for r in rows}
    # the rules read the final band (and may name the system's)
    facts = site.wf.facts().set_index("account_id")
    assert (facts.loc[account, "band"], facts.loc[account, "system_band"]) == ("red", system)
    opened = {(o["account_id"], o["rule"]) for o in site.wf.plan().open}
    assert (account, "turned_red") in opened
    # the CRM feed (Project.export) of a project whose workflow store is this one
    spec = project.config.workflow.model_copy(update={"url": f"sqlite:///{tmp_path / 'wf.db'}"})
    team = Project(dataclasses.replace(project.config, workflow=spec))
    out = team.export(tmp_path / "feed.csv")
    feed = {r["account_id"]: r for r in csv.DictReader(out.open())}
    assert (feed[account]["band"], feed[account]["system_band"], feed[account]["override"]) == (
        "red", system, "known_issue")
    assert team.portfolio()["overridden"] == 1


def test_rows_behind_a_measure_page_and_twin(site: Site) -> None:
    h = site.as_(VIEWER)
    data = site.client.get(f"/api/accounts/{site.own}/measures/logins_30d", headers=h).json()
    value = site.wf.scores().set_index("account_id").loc[site.own, "m__logins_30d"]
    assert data["counted"] == value == data["value"]
    assert data["filter"] == "event = 'login'" and data["total"] >= data["counted"]
    assert sum(r["counted"] for r in data["rows"]) == data["counted"]  # all counted rows are shown
    login(site, VIEWER)
    page = site.client.get(f"/accounts/{site.own}/measures/logins_30d")
    assert page.status_code == 200 and "event = &#39;login&#39;" in page.text
    assert f'href="/accounts/{site.own}/measures/logins_30d"' in site.client.get(f"/accounts/{site.own}").text
    r = site.client.get(f"/api/accounts/{site.own}/measures/nope", headers=h)
    assert (r.status_code, r.json()["message"]) == (
        404, "measure: the project has no measure 'nope'.")
    assert site.client.get("/api/accounts/NOPE/measures/logins_30d", headers=h).status_code == 404


def test_the_review_meeting_lists_modules_csms_marked(site: Site) -> None:
    """Seed 002: a CSM may flag a module by judgement, with no CTA behind it; the review meeting
    sees it beside the flagged and escalated CTAs, red before yellow, a green mark not at all."""
    until = TODAY + timedelta(days=30)
    for account, module, colour in ((site.own, "engagement", "yellow"), (site.own, "sentiment", "red"),
                                     (site.own, "usage", "green")):
        site.wf.mark_module(account, module, colour, actor=CSM, reason_code="relationship",
                            note=f"{module} by judgement", expires_on=until)
    data = site.client.get("/api/review", headers=site.as_(LEAD)).json()
    seen = [(m["account_id"], m["module"], m["colour"], m["label"], m["set_by"]) for m in data["marks"]]
    assert seen == [(site.own, "sentiment", "red", "Sentiment", CSM),
                    (site.own, "engagement", "yellow", "Engagement", CSM)]
    assert data["ctas"] == []
    login(site, LEAD)
    page = site.client.get("/review").text
    assert "Modules marked by CSMs" in page and "Nothing to review." in page
    assert page.count(f'<a href="/accounts/{site.own}">') == 2 and "sentiment by judgement" in page
    assert "usage by judgement" not in page
    site.wf.clear_mark(site.own, "sentiment", actor=CSM)
    assert [m["module"] for m in site.client.get("/api/review", headers=site.as_(LEAD)).json()["marks"]] == [
        "engagement"]


def test_dry_run_page_for_leads_and_admins(site: Site) -> None:
    r = site.client.get("/api/validation/preview", headers=site.as_(CSM))
    assert (r.status_code, r.json()["message"]) == (403, f"{CSM} is a csm: this needs lead or admin.")
    data = site.client.get("/api/validation/preview", headers=site.as_(LEAD)).json()
    assert data["changed"] == [] and data["band_changes"] == 0 and data["moves"] == []
    assert data["accounts"] == len(site.wf.scores())
    login(site, ADMIN)
    page = site.client.get("/validation/preview")
    assert page.status_code == 200 and "No scorecard changed since the latest snapshot." in page.text
    assert 'href="/validation/preview"' in site.client.get("/validation").text


def test_pages_show_the_numbers_of_their_json_twins(site: Site) -> None:
    """Not only status codes: each page prints the numbers its twin returns."""
    import html as html_lib

    login(site, ADMIN)

    def text(path: str) -> str:
        return html_lib.unescape(site.client.get(path).text)

    p = site.client.get("/api/portfolio").json()
    page = text("/portfolio")  # "/" is My day now
    assert f"{p['accounts']:,} accounts" in page and f"{p['average_score']:,.1f}" in page
    for b in p["bands"]:
        assert f'<p class="big">{b["accounts"]:,}</p>' in page, b
    listing = site.client.get("/api/accounts?per_page=50").json()
    page = text("/accounts")
    for a in listing["accounts"]:
        assert a["account_id"] in page and f"{a['score']:,.1f}" in page, a
    one = site.client.get(f"/api/accounts/{site.own}").json()
    page = text(f"/accounts/{site.own}")
    card = one["scorecards"][0]
    assert f"{card['score']:,.1f}" in page and f"{card['coverage']:,.0f}%" in page
    for m in card["measures"]:
        assert f"{m['contribution']:,.2f}" in page, m


def test_an_override_replaced_meanwhile_is_a_conflict(site: Site) -> None:
    h = site.as_(CSM)
    body = {"band": "red", "reason_code": "known_issue", "note": "leaving", "expires_on": "2026-12-31"}
    first = site.client.post(f"/api/accounts/{site.own}/override", headers=h, json=body).json()
    again = site.client.post(f"/api/accounts/{site.own}/override", headers=h,
                             json={**body, "band": "yellow", "version": first["version"]})
    assert again.status_code == 201, again.text
    stale = site.client.post(f"/api/accounts/{site.own}/override", headers=h,
                             json={**body, "band": "green", "version": first["version"]})
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"
    assert site.wf.final(site.own)["final_band"] == "yellow"


def test_login_limits_hold_per_name_across_addresses() -> None:
    from healthscore.errors import RateLimitError
    from healthscore.web.auth import LoginLimiter

    limiter = LoginLimiter(attempts=5)
    for i in range(20):  # one guess from each of 20 addresses
        limiter.check(f"10.0.0.{i}", "Anna")
        limiter.failed(f"10.0.0.{i}", "Anna")
    with pytest.raises(RateLimitError, match=r"^login: too many failed attempts for anna\. "):
        limiter.check("10.0.0.99", "anna")
    limiter.check("10.0.0.99", "lars")  # another name from a fresh address still may try


def test_request_text_is_bounded_and_plain_and_responses_are_not_cached(site: Site) -> None:
    h = site.as_(CSM)
    before = len(site.wf.audit())
    long = site.client.post(f"/api/accounts/{site.own}/timeline", headers=h,
                            json={"kind": "note", "text": "x" * 10_001})
    assert long.status_code == 422 and long.json()["error"] == "invalid_request"
    assert "text" in long.json()["message"] and "10000" in long.json()["message"]
    nul = site.client.post(f"/api/accounts/{site.own}/flag", headers=h, json={"reason": "a\x00b"})
    assert nul.status_code == 422 and "control characters" in nul.json()["message"]
    ok = site.client.post(f"/api/accounts/{site.own}/timeline", headers=h,
                          json={"kind": "note", "text": "line one\nline two\tok"})
    assert ok.status_code == 201
    assert len(site.wf.audit()) == before + 1  # only the good note was written
    assert site.client.get("/api/portfolio", headers=h).headers["cache-control"] == "no-store"
    assert "no-store" not in site.client.get("/static/app.css").headers.get("cache-control", "")


def test_user_names_are_unique_whatever_their_case(site: Site) -> None:
    from healthscore.errors import InvalidActionError

    with pytest.raises(InvalidActionError, match=r"^user 'ADA' already exists \(as 'ada'\)\.$"):
        site.wf.add_user("ADA", "viewer", actor=ADMIN)
    with pytest.raises(InvalidActionError, match="control characters"):
        site.wf.add_user("eve\x00", "viewer", actor=ADMIN)


# ----------------------------------------------------------------------------- operations


def test_health_readiness_and_metrics_for_monitoring(site: Site) -> None:
    r = site.client.get("/healthz")  # no sign-in: a load balancer asks
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    ready = site.client.get("/readyz").json()
    assert ready == {"status": "ready", "store": "ok", "snapshots": 2, "newest": "2026-10-31",
                     "age_days": (TODAY - date(2026, 10, 31)).days, "daily": None, "problems": []}
    site.cta(site.own)
    site.client.get("/api/portfolio", headers=site.as_(CSM))
    site.client.get(f"/api/accounts/{site.own}", headers=site.as_(CSM))
    site.client.get("/api/accounts/NOPE", headers=site.as_(CSM))
    text = site.client.get("/metrics").text
    assert 'healthscore_http_requests_total{method="GET",route="/api/portfolio",status="200"} 1.0' in text
    # one series per route, not per account
    assert 'route="/api/accounts/{account_id}",status="200"} 1.0' in text
    assert 'route="/api/accounts/{account_id}",status="404"} 1.0' in text
    assert f"healthscore_snapshot_age_days {float((TODAY - date(2026, 10, 31)).days)}" in text
    open_ctas = len(site.wf.ctas(status="open"))
    assert f'healthscore_ctas{{state="open"}} {float(open_ctas)}' in text
    assert 'healthscore_http_request_seconds_bucket{le="0.005",method="GET",route="/healthz"}' in text


def test_not_ready_without_a_store_or_scores(project: Project, tmp_path: Path) -> None:
    import shutil

    (tmp_path / "store").mkdir()
    app = create_app(project, url=f"sqlite:///{tmp_path / 'store' / 'wf.db'}", today=TODAY)
    client = TestClient(app)
    assert client.get("/readyz").status_code == 200
    shutil.rmtree(tmp_path / "store")
    app.state.site.wf.store.engine.dispose()
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready" and body["store"] == "unreachable"
    assert body["problems"][0].startswith(f"workflow store sqlite:///{tmp_path / 'store' / 'wf.db'}: "
                                          f"cannot reach it: ")
    empty = tmp_path / "empty"
    shutil.copytree(project.root, empty, ignore=shutil.ignore_patterns(".healthscore"))
    client = TestClient(create_app(Project.load(empty), url=f"sqlite:///{tmp_path / 'e.db'}", today=TODAY))
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["problems"] == ["no scores stored yet: run 'healthscore run' or 'healthscore daily'."]
    assert client.get("/healthz").status_code == 200


def test_openapi_documents_every_error_with_its_body(site: Site) -> None:
    spec = site.client.get("/openapi.json").json()
    assert spec["components"]["schemas"]["ErrorOut"]["required"] == ["error", "message"]
    ops = [(path, method, op) for path, item in spec["paths"].items() if path.startswith("/api/")
           for method, op in item.items()]
    assert len(ops) > 30
    for path, method, op in ops:
        for code in ("401", "403", "404", "409", "422", "429"):
            (content,) = op["responses"][code]["content"].values()  # the CSV twin's too
            ref = content["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorOut", (method, path, code)
    # and the bodies are that shape
    body = site.client.get("/api/accounts/NOPE", headers=site.as_(CSM)).json()
    assert set(body) == {"error", "message", "details"} and body["error"] == "not_found"


def test_huge_numbers_in_paths_and_queries_are_refused_not_crashed(site: Site) -> None:
    h = site.as_(ADMIN)
    huge = "9" * 30
    for method, path in (("GET", f"/api/ctas/{huge}"), ("POST", f"/api/ctas/{huge}/close"),
                         ("POST", f"/api/tasks/{huge}/done"), ("GET", f"/api/success-plans/{huge}"),
                         ("GET", f"/api/accounts?page={huge}"), ("GET", f"/api/accounts?per_page={huge}"),
                         ("GET", "/api/ctas/-1")):
        body = {"outcome": "x"} if path.endswith("/close") else ({} if method == "POST" else None)
        r = site.client.request(method, path, headers=h, json=body)
        assert r.status_code in (404, 422), (method, path, r.status_code, r.text[:200])
        assert r.json()["error"] in ("not_found", "invalid_request"), (path, r.json())


# ----------------------------------------------------------------------------- the work queue


def _queue(site: Site, who: str, query: str = "") -> dict[str, Any]:
    r = site.client.get(f"/api/cockpit?{query}", headers=site.as_(who))
    assert r.status_code == 200, r.text
    return dict(r.json())


def _own_ctas(site: Site, n: int, owner: str = CSM) -> list[int]:
    account = site.own if owner == CSM else site.other
    return [int(site.wf.open_cta(account, "risk", f"queue {i}", actor=ADMIN, owner=owner)["id"])
            for i in range(n)]


def test_queue_pages_reach_every_cta_of_the_team_and_admins_see_all(site: Site) -> None:
    mine = _own_ctas(site, 130)  # more than the old cap of 100
    theirs = _own_ctas(site, 3, owner=OTHER_CSM)
    seen: list[int] = []
    first = _queue(site, LEAD, "per_page=50")
    assert (first["scope"], first["total"], first["pages"]) == ("team", 130, 3)
    for page in range(1, first["pages"] + 1):
        seen += [c["id"] for c in _queue(site, LEAD, f"per_page=50&page={page}")["ctas"]]
    assert sorted(seen) == sorted(mine) and len(seen) == len(set(seen))
    everyone = _queue(site, ADMIN, "per_page=500")  # an admin's default is every open CTA
    assert everyone["scope"] == "all" and everyone["total"] == 133
    assert {c["id"] for c in everyone["ctas"]} == {*mine, *theirs}
    assert everyone["scopes"] == {"mine": 0, "team": 0, "all": 133}
    assert _queue(site, CSM, "scope=all")["total"] == 133  # reading is open to every role
    assert _queue(site, OTHER_CSM)["total"] == 3


def test_queue_rows_carry_the_accounts_health_arr_and_renewal_and_states(site: Site) -> None:
    cid = _own_ctas(site, 1)[0]
    site.wf.snooze(cid, date(2026, 11, 20), "on holiday", actor=ADMIN)
    site.wf.escalate(cid, actor=ADMIN, note="no answer")
    (row,) = _queue(site, CSM)["ctas"]
    account = site.client.get("/api/accounts?per_page=1000", headers=site.as_(CSM)).json()
    facts = next(a for a in account["accounts"] if a["account_id"] == site.own)
    assert {k: row[k] for k in ("score", "band", "arr", "renewal_date", "account_name")} == {
        "score": facts["score"], "band": facts["band"], "arr": facts["arr"],
        "renewal_date": facts["renewal_date"], "account_name": facts["name"]}
    assert (row["snoozed"], row["escalated"], row["can_act"]) == (True, True, True)
    assert [c["id"] for c in _queue(site, CSM, "state=snoozed")["ctas"]] == [cid]
    assert _queue(site, CSM, "state=active")["ctas"] == []
    html = site.client.get("/cockpit", headers=site.as_(CSM)).text
    assert "snoozed until" in html and "escalated" in html


def test_queue_is_sorted_searched_and_filtered_as_asked(site: Site) -> None:
    scores = site.wf.scores().sort_values("arr")
    accounts = [str(a) for a in scores.loc[scores["csm"] == CSM, "account_id"]][:4]
    for i, account in enumerate(accounts):
        site.wf.open_cta(account, "risk", f"sorted {i}", actor=ADMIN, owner=CSM,
                         priority=["low", "critical", "medium", "high"][i],
                         due_on=date(2026, 11, 10 + (3 - i)))
    by_arr = _queue(site, CSM, "sort=arr&desc=true")["ctas"]
    assert [c["arr"] for c in by_arr] == sorted((c["arr"] for c in by_arr), reverse=True)
    assert [c["priority"] for c in _queue(site, CSM)["ctas"]] == ["critical", "high", "medium", "low"]
    assert [c["due_on"] for c in _queue(site, CSM, "sort=due_on")["ctas"]] == [
        "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"]
    assert [c["reason"] for c in _queue(site, CSM, "q=SORTED 2")["ctas"]] == ["sorted 2"]
    assert [c["priority"] for c in _queue(site, CSM, "priority=high")["ctas"]] == ["high"]
    site.wf.open_cta(accounts[0], "risk", "late", actor=ADMIN, owner=CSM, due_on=date(2026, 10, 1))
    site.wf.open_cta(accounts[0], "risk", "soon", actor=ADMIN, owner=CSM, due_on=date(2026, 11, 5))
    grouped = _queue(site, CSM, "group=due&sort=arr&desc=true")["ctas"]
    assert [c["group"] for c in grouped] == ["overdue", "this week", *["later"] * 4]
    assert [c["arr"] for c in grouped[2:]] == sorted((c["arr"] for c in grouped[2:]), reverse=True)
    html = site.client.get("/cockpit?group=due", headers=site.as_(CSM)).text
    groups = re.findall(r'scope="colgroup">([^<]+)</th>', html)
    assert groups == ["overdue", "this week", "later"]
    by_type = _queue(site, CSM, "group=type")
    assert by_type["group"] == "type" and {c["group"] for c in by_type["ctas"]} == {"risk"}
    r = site.client.get("/api/cockpit?sort=colour", headers=site.as_(CSM))
    assert r.status_code == 422
    assert r.json()["message"] == ("sort: must be one of priority, due_on, score, arr, renewal_date, "
                                   "account_name, owner, opened_at, id. Got 'colour'.")


def test_bulk_assign_of_20_ctas_is_one_request(site: Site) -> None:
    ids = _own_ctas(site, 20)
    before = len(site.wf.audit("cta"))
    r = site.client.post("/api/ctas/bulk", headers=site.as_(LEAD),
                         json={"ids": ids, "action": "assign", "owner": LEAD})
    assert r.status_code == 200, r.text
    assert (r.json()["action"], r.json()["changed"]) == ("assign", 20)
    assert {site.wf.cta(i)["owner"] for i in ids} == {LEAD}
    assert len(site.wf.audit("cta")) == before + 20
    r = site.client.post("/api/ctas/bulk", headers=site.as_(LEAD),
                         json={"ids": ids[:5], "action": "priority", "priority": "critical"})
    assert r.status_code == 200 and {site.wf.cta(i)["priority"] for i in ids[:5]} == {"critical"}
    r = site.client.post("/api/ctas/bulk", headers=site.as_(LEAD), json={
        "ids": ids[5:8], "action": "snooze", "until": "2026-11-30", "reason": "renewal season"})
    assert r.status_code == 200 and {site.wf.cta(i)["snoozed_until"] for i in ids[5:8]} == {"2026-11-30"}
    r = site.client.post("/api/ctas/bulk", headers=site.as_(LEAD),
                         json={"ids": ids[8:], "action": "close", "outcome": "resolved"})
    assert r.status_code == 200 and {site.wf.cta(i)["status"] for i in ids[8:]} == {"closed"}


def test_bulk_refusal_names_each_cta_and_writes_nothing(site: Site) -> None:
    own, theirs = _own_ctas(site, 2), _own_ctas(site, 1, owner=OTHER_CSM)
    before = len(site.wf.audit())
    r = site.client.post("/api/ctas/bulk", headers=site.as_(CSM),
                         json={"ids": [*own, *theirs], "action": "close", "outcome": "done"})
    assert r.status_code == 403
    refusal = f"{CSM}: a csm acts only on their own accounts; {site.other} is {OTHER_CSM}'s."
    assert r.json() == {
        "error": "forbidden", "details": [f"CTA #{theirs[0]}: {refusal}"],
        "message": f"close: 1 of 3 CTAs refused, so none was changed. Leave them out or fix them "
                   f"and try again. CTA #{theirs[0]}: {refusal}"}
    assert len(site.wf.audit()) == before
    assert {site.wf.cta(i)["status"] for i in [*own, *theirs]} == {"open"}
    r = site.client.post("/api/ctas/bulk", headers=site.as_(VIEWER),
                         json={"ids": own, "action": "assign", "owner": VIEWER})
    assert (r.status_code, len(r.json()["details"])) == (403, 2)
    r = site.client.post("/api/ctas/bulk", headers=site.as_(CSM), json={"ids": own, "action": "snooze"})
    assert r.status_code == 422 and r.json()["message"] == "until: snooze needs until and reason."
    r = site.client.post("/api/ctas/bulk", headers=site.as_(CSM), json={"ids": [], "action": "close",
                                                                       "outcome": "done"})
    assert r.status_code == 422 and r.json()["message"] == "ids: choose at least one CTA."
    r = site.client.post("/api/ctas/bulk", headers=site.as_(CSM), json={"ids": list(range(1, 502)),
                                                                       "action": "close", "outcome": "x"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert len(site.wf.audit()) == before


def test_bulk_form_on_the_cockpit_changes_every_ticked_cta(site: Site) -> None:
    ids = _own_ctas(site, 3)
    login(site, LEAD)
    page = site.client.get("/cockpit").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = site.client.post("/ctas/bulk", data={"csrf_token": csrf, "ids": [str(i) for i in ids],
                                            "action": "assign", "owner": LEAD},
                         headers={"referer": "http://testserver/cockpit?sort=arr"})
    assert r.status_code == 200 and "3 CTAs changed (assign)." in r.text
    assert {site.wf.cta(i)["owner"] for i in ids} == {LEAD}


def test_controls_a_user_may_not_use_are_not_shown(site: Site) -> None:
    plays = "late_payment" if "late_payment" in site.wf.wf.playbooks else None
    mine = site.wf.open_cta(site.own, "risk", "mine", actor=ADMIN, owner=CSM, playbook=plays)
    theirs = site.wf.open_cta(site.other, "risk", "theirs", actor=ADMIN, owner=OTHER_CSM, playbook=plays)
    login(site, CSM)
    html = site.client.get("/cockpit?scope=all").text
    assert f'action="/ctas/{mine["id"]}/close"' in html and f'value="{mine["id"]}" form="bulk"' in html
    assert f'action="/ctas/{theirs["id"]}/close"' not in html
    assert f'value="{theirs["id"]}" form="bulk"' not in html
    for t in theirs["tasks"]:
        assert f'action="/tasks/{t["id"]}/done"' not in html
    # owners are chosen from the users who may own a CTA (not viewers), not typed
    owners = re.findall(r'<select name="owner" required aria-label="New owner">(.*?)</select>', html)
    assert owners and set(re.findall(r"<option[^>]*>([^<]+)</option>", owners[0])) == {
        ADMIN, LEAD, CSM, OTHER_CSM, "fay", "sam"}
    other = site.client.get(f"/accounts/{site.other}").text
    assert f'action="/ctas/{theirs["id"]}/close"' not in other
    # every Done button has a name of its own
    names = re.findall(r'aria-label="(Done: [^"]+)"', site.client.get(f"/accounts/{site.own}").text)
    assert len(names) == len(mine["tasks"]) and len(set(names)) == len(names)


def test_pages_have_a_skip_link_and_are_compressed(site: Site) -> None:
    login(site, ADMIN)
    ids = {"own": site.own, "plan": site.plan(site.own)["id"], "cta": site.cta(site.own)}
    for page in PAGES:
        r = site.client.get(page.format(**ids), headers={"Accept-Encoding": "gzip"})
        assert '<a class="skip" href="#main">Skip to content</a>' in r.text, page
        assert '<main id="main"' in r.text, page
        assert r.headers.get("content-encoding") == "gzip", page
    r = site.client.get("/api/cockpit", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("content-encoding") == "gzip" and r.json()["total"] == 1


# ----------------------------------------------------------------------------- my day


def test_my_day_lists_my_book_and_the_switch_widens_it(site: Site) -> None:
    import pandas as pd

    mine = site.wf.open_cta(site.own, "risk", "overdue call", actor=ADMIN, owner=CSM,
                            due_on=date(2026, 11, 1), playbook="late_payment")
    theirs = site.cta(site.other, owner=OTHER_CSM, due_on=date(2026, 11, 5))
    later = site.cta(site.own, owner=CSM, due_on=date(2026, 12, 31))  # not due this week
    day = _day(site, CSM)
    assert day["scope"] == "mine" and [c["id"] for c in day["ctas"]] == [mine["id"]]
    assert day["ctas"][0]["overdue"] is True and later not in [c["id"] for c in day["ctas"]]
    due = sorted(t["id"] for t in mine["tasks"] if t["due_on"] <= "2026-11-09" and t["owner"] == CSM)
    assert due and sorted(t["id"] for t in day["tasks"]) == due
    assert {t["account_id"] for t in day["tasks"]} == {site.own}
    scores = site.wf.scores()
    book = scores[scores["csm"] == CSM]
    renews = pd.to_datetime(book["renewal_date"])
    soon = book[(renews >= pd.Timestamp(TODAY)) & (renews <= pd.Timestamp(2027, 1, 31))]
    expected = soon.sort_values(["renewal_date", "account_id"])["account_id"].head(10).tolist()
    assert [a["account_id"] for a in day["renewals"]] == expected
    falling = day["falling"]
    assert falling and {a["csm"] for a in falling} == {CSM}
    assert [a["change_30d"] for a in falling if not a["turned"]] == sorted(
        a["change_30d"] for a in falling if not a["turned"])
    assert day["accounts"] == len(book)
    everyone = _day(site, ADMIN)
    assert everyone["scope"] == "all" and {mine["id"], theirs} <= {c["id"] for c in everyone["ctas"]}
    assert {mine["id"], theirs} <= {c["id"] for c in _day(site, CSM, "scope=all")["ctas"]}
    assert _day(site, LEAD)["scope"] == "team"
    r = site.client.get("/api/today?scope=planet", headers=site.as_(CSM))
    assert r.status_code == 422
    assert r.json()["message"] == "scope: must be one of mine, team, all. Got 'planet'."
    login(site, CSM)
    html = site.client.get("/today").text
    assert "overdue call" in html and f'href="/accounts/{site.own}"' in html


def test_my_day_ranks_the_worst_band_and_says_why_in_place(site: Site) -> None:
    scores = site.wf.scores().drop_duplicates("account_id")
    worst_band = _day(site, ADMIN)["worst_band"]
    red = scores[scores["band"] == worst_band].sort_values(["arr", "score", "account_id"],
                                                            ascending=[False, True, True])
    assert [a["account_id"] for a in _day(site, ADMIN)["worst"]] == red["account_id"].head(10).tolist()
    mine = _day(site, CSM)["worst"]
    assert {a["csm"] for a in mine} <= {CSM} and all(a["band"] == worst_band for a in mine)
    account = str(red["account_id"].iloc[0])
    own = site.wf.open_cta(account, "risk", "why test", actor=ADMIN, owner=OTHER_CSM, playbook="late_payment")
    why = site.client.get(f"/api/today/why/{account}", headers=site.as_(OTHER_CSM)).json()
    assert why["band"] == site.wf.final(account)["final_band"] and why["account_id"] == account
    lost = [m["points_lost"] for m in why["weakest"]]
    assert lost == sorted(lost, reverse=True) and all(x > 0 for x in lost) and len(lost) <= 3
    card = site.client.get(f"/api/accounts/{account}", headers=site.as_(ADMIN)).json()["scorecards"][0]
    perfect = {m["measure"]: m["effective_weight"] * (100 - m["score"]) / 100
               for m in card["measures"] if m["has_data"]}
    assert why["weakest"][0]["measure"] == max(sorted(perfect), key=lambda k: perfect[k])
    ctas = {c["id"]: c for c in why["ctas"]}
    assert own["id"] in ctas and {c["account_id"] for c in why["ctas"]} == {account}
    assert ctas[own["id"]]["can_act"] is True  # the owner may act on it, not being the account's CSM
    viewer = site.client.get(f"/api/today/why/{account}", headers=site.as_(VIEWER)).json()
    assert not any(c["can_act"] for c in viewer["ctas"])
    login(site, CSM)
    html = site.client.get(f"/today/why/{account}", headers={"HX-Request": "true", "HX-Target": "why-3"}).text
    assert html.lstrip().startswith("{#") is False and '<tr id="why-3" class="why">' in html
    assert f'href="/ctas/{own["id"]}"' in html


def _day(site: Site, who: str, query: str = "") -> dict[str, Any]:
    r = site.client.get(f"/api/today?{query}", headers=site.as_(who))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_signing_in_lands_on_my_day(site: Site) -> None:
    page = site.client.get("/login")
    assert 'name="next" value="/today"' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = site.client.post("/login", data={"name": CSM, "password": PASSWORD, "csrf_token": token},
                         follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/today")
    assert site.client.get("/", follow_redirects=False).headers["location"] == "/today"


def _button_names(html: str) -> list[str]:
    """The accessible name of each <button>: its aria-label, else its text."""
    names = []
    for attrs, text in re.findall(r"<button([^>]*)>(.*?)</button>", html, re.S):
        label = re.search(r'aria-label="([^"]*)"', attrs)
        names.append(label.group(1) if label else re.sub(r"<[^>]+>|\s+", " ", text).strip())
    return names


def test_no_two_buttons_on_a_page_share_a_name(site: Site) -> None:
    plan = site.plan(site.own)
    for owner in (CSM, OTHER_CSM):
        site.wf.open_cta(site.own, "risk", "two of them", actor=ADMIN, owner=owner, playbook="late_payment")
    site.wf.flag(site.own, "to review", actor=ADMIN, priority="critical")
    site.wf.create_token(ADMIN, "second", actor=ADMIN)
    login(site, ADMIN)
    ids = {"own": site.own, "plan": plan["id"], "cta": site.cta(site.own)}
    wrong = {}
    for page in PAGES:
        names = _button_names(site.client.get(page.format(**ids)).text)
        if page in ("/cockpit", "/accounts/{own}"):  # two CTAs with the same tasks
            assert sum(n.startswith("Done: ") for n in names) >= 8, (page, names)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            wrong[page] = twice
    assert not wrong, wrong


@pytest.mark.parametrize("who", [ADMIN, LEAD, CSM, VIEWER])
def test_bulk_follows_the_role_matrix(site: Site, who: str) -> None:
    """Bulk actions are allowed and refused exactly like the single ones (OWN / OTHER)."""
    bodies = {"close": {"outcome": "resolved"}, "snooze": {"until": "2026-11-20", "reason": "holiday"},
              "assign": {"owner": ADMIN}, "priority": {"priority": "high"}}
    wrong = []
    for account, allowed in ((site.own, OWN[who]), (site.other, OTHER[who])):
        for action, fields in bodies.items():
            ids = [site.cta(account), site.cta(account)]
            r = site.client.post("/api/ctas/bulk", headers=site.as_(who),
                                 json={"ids": ids, "action": action, **fields})
            ok = r.status_code == 200 if allowed else (r.status_code == 403 and len(r.json()["details"]) == 2)
            if not ok:
                wrong.append(f"{who} {action} [{account}]: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)


# ----------------------------------------------------------------------------- a CTA's page


def _cta_page(site: Site, who: str, cta_id: int) -> dict[str, Any]:
    r = site.client.get(f"/api/ctas/{cta_id}", headers=site.as_(who))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_cta_page_shows_account_tasks_comments_escalations_and_history(site: Site) -> None:
    opened = site.wf.open_cta(site.own, "risk", "late payment", actor=ADMIN, owner=CSM,
                              priority="high", playbook="late_payment", due_on=date(2026, 11, 9))
    cid, first = opened["id"], opened["tasks"][0]
    h = site.as_(CSM)
    assert site.client.post(f"/api/tasks/{first['id']}/done", json={}, headers=h).status_code == 200
    r = site.client.post(f"/api/ctas/{cid}/comments", json={"text": "Left a voicemail"}, headers=h)
    assert r.status_code == 201 and r.json()["kind"] == "cta_comment"
    assert site.client.post(f"/api/ctas/{cid}/escalate", json={"note": "no answer"},
                            headers=h).status_code == 200
    assert site.client.post(f"/api/ctas/{cid}/snooze", json={"until": "2026-11-20", "reason": "holiday"},
                            headers=h).status_code == 200
    cta = _cta_page(site, CSM, cid)
    facts = next(a for a in site.client.get("/api/accounts?per_page=1000", headers=h).json()["accounts"]
                 if a["account_id"] == site.own)
    assert {k: cta[k] for k in ("account_name", "band", "score", "arr", "renewal_date")} == {
        "account_name": facts["name"], "band": facts["band"], "score": facts["score"],
        "arr": facts["arr"], "renewal_date": facts["renewal_date"]}
    assert (cta["reason"], cta["status"], cta["owner"], cta["priority"], cta["due_on"]) == (
        "late payment", "open", CSM, "high", "2026-11-09")
    assert (cta["snoozed"], cta["escalated"], cta["can_act"]) == (True, True, True)
    assert [t["status"] for t in cta["tasks"]] == ["done"] + ["open"] * (len(cta["tasks"]) - 1)
    assert [(c["actor"], c["text"]) for c in cta["comments"]] == [(CSM, "Left a voicemail")]
    assert [(e["level"], e["to"], e["by"], e["note"]) for e in cta["escalations"]] == [
        (1, "lead", CSM, "no answer")]
    assert [(h["entity"], h["action"], h["actor"]) for h in cta["history"]] == [
        ("cta", "open", ADMIN), ("task", "done", CSM), ("cta", "comment", CSM),
        ("cta", "escalated", CSM), ("cta", "snoozed", CSM)]
    assert [h["kind"] for h in cta["history"]] == [
        "cta_opened", "task_done", "cta_comment", "cta_escalated", "cta_snoozed"]
    changes = {h["action"]: h["changes"] for h in cta["history"]}
    assert changes["snoozed"] == {"snoozed_until": [None, "2026-11-20"], "snooze_reason": [None, "holiday"]}
    assert changes["escalated"] == {"escalation_level": [0, 1]}
    assert changes["comment"] == {"text": [None, "Left a voicemail"]}
    assert changes["done"]["status"] == ["open", "done"]
    assert sorted(cta["assignable"]) == sorted([ADMIN, LEAD, CSM, OTHER_CSM, "fay", "sam"])
    # another team's CSM reads it all but may act on nothing
    theirs = _cta_page(site, OTHER_CSM, cid)
    assert (theirs["can_act"], theirs["assignable"], theirs["escalate_to"]) == (False, [], [])
    assert theirs["history"] == cta["history"]


def test_cta_page_renders_its_twin_with_controls_only_for_who_may_act(site: Site) -> None:
    opened = site.wf.open_cta(site.own, "risk", "late payment", actor=ADMIN, owner=CSM,
                              playbook="late_payment")
    cid = opened["id"]
    site.wf.comment(cid, "Sponsor on leave until the 20th", actor=CSM)
    login(site, CSM)
    html = site.client.get(f"/ctas/{cid}").text
    cta = _cta_page(site, CSM, cid)
    assert f"CTA #{cid}" in html and cta["account_name"] in html and "Sponsor on leave until the 20th" in html
    for t in cta["tasks"]:
        assert f'action="/tasks/{t["id"]}/done"' in html and str(escape(t["title"])) in html
    for action in ("close", "snooze", "assign", "escalate", "comments"):
        assert f'action="/ctas/{cid}/{action}"' in html
    assert 'hx-target="#cta-detail" hx-select="#cta-detail"' in html  # the forms act in place
    login(site, OTHER_CSM)
    other = site.client.get(f"/ctas/{cid}").text
    assert "Sponsor on leave until the 20th" in other and f'action="/ctas/{cid}/' not in other
    assert 'action="/tasks/' not in other and "<textarea" not in other
    # the Cockpit's rows and Account 360 link to it
    login(site, CSM)
    assert f'href="/ctas/{cid}"' in site.client.get("/cockpit").text
    assert f'href="/ctas/{cid}"' in site.client.get(f"/accounts/{site.own}").text
    r = site.client.get("/ctas/999999")
    assert r.status_code == 404 and "no CTA #999999" in r.text


def test_comments_keep_the_cta_version_and_say_what_is_wrong(site: Site) -> None:
    cid = site.cta(site.own, owner=CSM)
    version = site.wf.cta(cid)["version"]
    h = site.as_(CSM)
    r = site.client.post(f"/api/ctas/{cid}/comments", json={"text": "  "}, headers=h)
    assert (r.status_code, r.json()["message"]) == (422, "text: write the comment.")
    r = site.client.post(f"/api/ctas/{cid}/comments", json={"text": "hi"}, headers=site.as_(VIEWER))
    assert (r.status_code, r.json()["message"]) == (
        403, f"{VIEWER} is a viewer: this needs a csm, lead or admin.")
    r = site.client.post(f"/api/ctas/{cid}/comments", json={"text": "hi"}, headers=site.as_(OTHER_CSM))
    assert r.status_code == 403
    assert site.wf.comments(cid) == []
    site.client.post(f"/api/ctas/{cid}/comments", json={"text": "one"}, headers=h)
    site.wf.close_cta(cid, "resolved", actor=CSM)
    site.client.post(f"/api/ctas/{cid}/comments", json={"text": "after closing"}, headers=h)
    assert [c["text"] for c in site.wf.comments(cid)] == ["one", "after closing"]
    assert site.wf.cta(cid)["version"] == version + 1  # the close only
    # the form comes back to the CTA's page with a message
    login(site, CSM)
    page = site.client.get(f"/ctas/{cid}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = site.client.post(f"/ctas/{cid}/comments", data={"csrf_token": csrf, "text": "third"},
                         headers={"referer": f"http://testserver/ctas/{cid}"})
    assert r.status_code == 200 and "Comment added." in r.text and "third" in r.text
    assert str(r.url).endswith(f"/ctas/{cid}")


# ----------------------------------------------------------------------------- the board


def _board(site: Site, who: str, query: str = "") -> dict[str, list[int]]:
    r = site.client.get(f"/api/cockpit/board?{query}", headers=site.as_(who))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["total"] == sum(c["total"] for c in data["columns"])
    return {c["status"]: [x["id"] for x in c["ctas"]] for c in data["columns"]}


def test_board_puts_the_queue_in_columns_by_status(site: Site) -> None:
    from healthscore.tables import Cta

    active, snoozed, escalated, both, closed, long_ago = _own_ctas(site, 6)
    theirs = _own_ctas(site, 1, owner=OTHER_CSM)[0]
    site.wf.snooze(snoozed, date(2026, 11, 20), "holiday", actor=CSM)
    site.wf.escalate(escalated, actor=CSM, note="no answer")
    site.wf.snooze(both, date(2026, 11, 20), "holiday", actor=CSM)
    site.wf.escalate(both, actor=CSM, note="no answer")
    site.wf.set_priority(active, "critical", actor=CSM)
    for cid in (closed, long_ago):
        site.wf.close_cta(cid, "resolved", actor=CSM)
    with site.wf.store.session() as s:  # closed eight days before the app's today
        s.get(Cta, long_ago).closed_at = s.get(Cta, long_ago).closed_at.replace(day=1, month=10)  # type: ignore[union-attr]
        s.commit()
    assert _board(site, CSM) == {"open": [active], "snoozed": [snoozed],
                                 "escalated": [escalated, both], "closed": [closed]}
    assert _board(site, OTHER_CSM) == {"open": [theirs], "snoozed": [], "escalated": [], "closed": []}
    everyone = _board(site, ADMIN)
    assert everyone["open"] == [active, theirs]  # sorted like the queue: priority first
    # the queue's filters, and per_page per column
    assert _board(site, CSM, "priority=critical") == {"open": [active], "snoozed": [], "escalated": [],
                                                      "closed": []}
    assert _board(site, CSM, "per_page=1")["escalated"] == [escalated]
    r = site.client.get("/api/cockpit/board?per_page=1", headers=site.as_(CSM)).json()
    assert [c["total"] for c in r["columns"]] == [1, 1, 2, 1]
    assert _board(site, ADMIN, f"q={site.other}") == {"open": [theirs], "snoozed": [], "escalated": [],
                                                      "closed": []}
    login(site, CSM)
    html = site.client.get("/cockpit/board").text
    for cid in (active, snoozed, escalated, both, closed):
        assert f'href="/ctas/{cid}"' in html
    assert f'href="/ctas/{long_ago}"' not in html
    more = site.client.get("/cockpit/board?per_page=1").text  # one escalated CTA left out: a link
    assert '<a href="/cockpit?per_page=1&amp;state=escalated">1 more</a>' in more
    assert 'href="/cockpit/board?' in site.client.get("/cockpit?sort=arr").text  # the switch


def test_a_cta_form_in_error_keeps_what_was_typed_beside_the_error(site: Site) -> None:
    cid = site.cta(site.own, owner=CSM)
    login(site, CSM)
    page = site.client.get(f"/ctas/{cid}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    htmx = {"HX-Request": "true", "referer": f"http://testserver/ctas/{cid}"}
    r = site.client.post(f"/ctas/{cid}/snooze", headers=htmx, data={
        "csrf_token": csrf, "until": "2026-10-01", "reason": "Customer on holiday"})
    assert r.status_code == 200 and str(r.url).endswith(f"/ctas/{cid}/snooze")  # no redirect
    assert r.headers["HX-Replace-Url"] == f"/ctas/{cid}"  # the address bar keeps the CTA's page
    html = r.text
    assert re.search(r'<input type="date" name="until" [^>]*value="2026-10-01" aria-invalid="true" '
                     r'aria-describedby="error-snooze-until" autofocus>', html)
    assert ('<small class="field-error" id="error-snooze-until" role="alert">until: 2026-10-01 is not '
            'in the future. Snooze to a later date.</small>') in html
    assert re.search(r'name="reason" [^>]*value="Customer on holiday">', html)
    assert 'value="Customer on holiday"' not in html.split('action="/ctas/')[0]  # only in its form
    assert site.wf.cta(cid)["snoozed_until"] is None
    # a comment of blanks: the error under the box (the box keeps nothing but blanks)
    r = site.client.post(f"/ctas/{cid}/comments", headers=htmx, data={"csrf_token": csrf, "text": "   "})
    assert 'id="error-comments-text" role="alert">text: write the comment.</small>' in r.text
    assert 'aria-describedby="error-comments-text" autofocus>   </textarea>' in r.text
    # an error of no field of the form shows at the top of the CTA's part
    r = site.client.post(f"/ctas/{cid}/close", headers=htmx,
                         data={"csrf_token": csrf, "outcome": "done", "version": "99"})
    assert re.search(r'<p class="flash error" role="alert">CTA #\d+[^<]*</p>', r.text), r.text[:2000]
    assert 'value="done"' in r.text and site.wf.cta(cid)["status"] == "open"
    # without htmx: back to the page with the message, as every form
    r = site.client.post(f"/ctas/{cid}/snooze", headers={"referer": f"http://testserver/ctas/{cid}"},
                         data={"csrf_token": csrf, "until": "2026-10-01", "reason": "x"})
    assert str(r.url).endswith(f"/ctas/{cid}") and "is not in the future" in r.text


def test_search_finds_accounts_by_name_or_id_in_the_users_scope(site: Site) -> None:
    scores = site.wf.scores().drop_duplicates("account_id").set_index("account_id")
    other_name = str(scores.at[site.other, "name"])
    mine = site.client.get("/api/search", params={"q": other_name}, headers=site.as_(CSM)).json()
    assert mine["scope"] == "mine" and site.other not in [a["account_id"] for a in mine["accounts"]]
    assert all(a["csm"] == CSM for a in mine["accounts"])
    every = site.client.get("/api/search", params={"q": other_name, "scope": "all"},
                            headers=site.as_(CSM)).json()
    assert every["accounts"][0]["account_id"] == site.other
    by_id = site.client.get("/api/search", params={"q": site.own.lower()}, headers=site.as_(CSM)).json()
    assert by_id["accounts"][0]["account_id"] == site.own  # the id itself first
    assert by_id["accounts"][0]["band"] == scores.at[site.own, "band"]
    admin = site.client.get("/api/search", params={"q": other_name}, headers=site.as_(ADMIN)).json()
    assert admin["scope"] == "all" and admin["accounts"][0]["account_id"] == site.other
    lead = site.client.get("/api/search", params={"q": site.own}, headers=site.as_(LEAD)).json()
    assert lead["scope"] == "team" and lead["accounts"][0]["account_id"] == site.own  # Anna is in North
    assert site.client.get("/api/search", params={"q": "   "}, headers=site.as_(CSM)).json()["accounts"] == []
    r = site.client.get("/api/search", params={"q": "a", "scope": "planet"}, headers=site.as_(CSM))
    assert r.status_code == 422
    login(site, CSM)
    r = site.client.get("/search", params={"q": site.own}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/accounts/{site.own}")
    r = site.client.get("/search", params={"q": "no such account anywhere"}, follow_redirects=False)
    assert r.headers["location"] == "/accounts?q=no+such+account+anywhere"
    html = site.client.get("/search/suggest", params={"q": other_name}).text
    assert "No account in your book matches." in html and "Search every account" in html


def test_the_accounts_list_opens_on_my_book_and_switches_scope(site: Site) -> None:
    scores = site.wf.scores().drop_duplicates("account_id")
    mine = site.client.get("/api/accounts?per_page=1000", headers=site.as_(CSM)).json()
    assert mine["scope"] == "mine" and {a["csm"] for a in mine["accounts"]} == {CSM}
    assert mine["total"] == int((scores["csm"] == CSM).sum()) == mine["scopes"]["mine"]
    north = {u["name"] for u in site.wf.users() if u.get("team") == "North"}
    team = site.client.get("/api/accounts?per_page=1000", headers=site.as_(LEAD)).json()
    assert team["scope"] == "team" and {a["csm"] for a in team["accounts"]} <= north
    assert team["total"] == int(scores["csm"].isin(north).sum())
    every = site.client.get("/api/accounts?scope=all&per_page=1", headers=site.as_(CSM)).json()
    assert every["total"] == len(scores) == mine["scopes"]["all"]
    assert site.client.get("/api/accounts?per_page=1", headers=site.as_(ADMIN)).json()["scope"] == "all"
    csv = site.client.get("/api/accounts.csv", headers=site.as_(CSM)).text
    assert len(csv.strip().splitlines()) == mine["total"] + 1  # the CSV is the same book
    r = site.client.get("/api/accounts?scope=planet", headers=site.as_(CSM))
    assert r.status_code == 422
    login(site, CSM)
    html = site.client.get("/accounts?sort=arr&desc=true&band=red").text
    assert '<input type="hidden" name="sort" value="arr">' in html
    assert '<input type="hidden" name="desc" value="true">' in html
    assert 'href="/accounts?sort=arr&amp;desc=true&amp;band=red&scope=all"' in html


def test_saved_views_of_the_accounts_list_are_saved_opened_and_deleted(site: Site) -> None:
    r = site.client.post("/api/views/accounts", headers=site.as_(CSM),
                         json={"name": "Red book", "query": "band=red&sort=arr&page=2"})
    assert r.status_code == 201 and r.json()["query"] == "band=red&sort=arr"
    view = r.json()
    mine = site.client.get("/api/views/accounts", headers=site.as_(CSM)).json()
    assert [v["name"] for v in mine] == ["Red book"]
    assert site.client.get("/api/views/accounts", headers=site.as_(OTHER_CSM)).json() == []
    r = site.client.delete(f"/api/views/accounts/{view['id']}", headers=site.as_(OTHER_CSM))
    assert r.status_code == 404
    login(site, CSM)
    html = site.client.get("/accounts?band=red&sort=arr").text
    assert '<a href="/accounts?band=red&amp;sort=arr">Red book</a>' in html
    assert '<input type="hidden" name="query" value="band=red&amp;sort=arr">' in html
    r = site.client.delete(f"/api/views/accounts/{view['id']}", headers=site.as_(CSM))
    assert r.status_code == 200
    assert site.client.get("/api/views/accounts", headers=site.as_(CSM)).json() == []
