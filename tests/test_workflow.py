"""The workflow store on SQLite and on PostgreSQL: rules -> plan -> apply, CTAs, playbooks,
escalation, overrides, success plans, timeline, notifications, concurrency, bad input."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socketserver
import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from healthscore.demo.population import CSMS
from healthscore.errors import ConfigError, ConflictError, ForbiddenError, InvalidActionError, NotFoundError
from healthscore.project import Project
from healthscore.templates import write_template
from healthscore.workflow.service import Workflow

from .conftest import PG_DSN, PG_URL, built_once, copy_project, migrated_store

TODAY = date(2026, 11, 2)
DATES = [date(2026, 9, 30), date(2026, 10, 31)]


@pytest.fixture(scope="module")
def project(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The eight-categories demo with CSMS[0]'s book handed to cara, scored on DATES (rules not
    applied): built once for every module that uses it (this one and test_inbox's), each of
    which gets its own copy of the project folder (the data, which no test writes, is shared)."""

    def build(folder: Path) -> None:
        shutil.copytree(demo_data, folder / "data", copy_function=shutil.copyfile)  # writable
        hand_book_to(folder / "data", CSMS[0], "cara")
        write_template(folder / "p", "eight-categories", folder / "data")
        Project.load(folder / "p").run(dates=DATES, apply_rules=False)

    built = built_once(tmp_path_factory, "workflow-demo", build)
    return Project.load(copy_project(built / "p", tmp_path_factory.mktemp("wf") / "p"))


def hand_book_to(data: Path, csm: str, user: str) -> None:
    """Give ``csm``'s accounts (today and in the account history) to the test user ``user``."""
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    accounts = pcsv.read_csv(data / "accounts.csv")
    i = accounts.column_names.index("csm")
    col = pc.if_else(pc.equal(accounts["csm"], csm), user, accounts["csm"])
    pcsv.write_csv(accounts.set_column(i, "csm", col), data / "accounts.csv")
    history = pq.read_table(data / "account_history.parquet")
    i = history.column_names.index("csm")
    col = pc.if_else(pc.equal(history["csm"], csm), user, history["csm"])
    pq.write_table(history.set_column(i, "csm", col), data / "account_history.parquet")


@pytest.fixture(params=["sqlite", "postgres"])
def wf(request: pytest.FixtureRequest, project: Project, tmp_path: Path) -> Iterator[Workflow]:
    if request.param == "sqlite":
        url = f"sqlite:///{migrated_store(tmp_path / 'wf.db')}"  # migrated once a worker
        schema = None
    else:
        request.getfixturevalue("pg_url")
        import psycopg

        schema = f"wf_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    w = Workflow(project.config, project.store, url=url, today=TODAY)
    w.add_user("ada", "admin")
    w.add_user("lee", "lead", team="emea", actor="ada")
    w.add_user("cara", "csm", team="emea", actor="ada")
    w.add_user("vic", "viewer", actor="ada")
    w.add_user("fay", "csm", team="finance", actor="ada")  # the playbooks' finance owner
    w.add_user("sam", "csm", team="sales", actor="ada")  # and sales
    try:
        yield w
    finally:
        w.close()
        if schema:
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _an_account(w: Workflow) -> str:
    """An account of cara's (a csm in lee's team)."""
    scores = w.scores()
    return str(scores.loc[scores["csm"] == "cara", "account_id"].iloc[0])


# ----------------------------------------------------------------------------- rules, plan, apply


def test_plan_writes_nothing_and_apply_does_exactly_the_plan(wf: Workflow) -> None:
    plan = wf.plan()
    assert plan.open and plan.band_changes
    assert wf.ctas() == [] and wf.audit("cta") == []
    by_rule = {o["rule"] for o in plan.open}
    assert {"nps_detractor", "sponsor_left"} <= by_rule
    summary = wf.apply(plan)
    opened = wf.ctas()
    assert len(opened) == len(plan.open) == len(summary["opened"])
    assert {(c["account_id"], c["rule"]) for c in opened} == {(o["account_id"], o["rule"]) for o in plan.open}
    nps = next(c for c in opened if c["rule"] == "nps_detractor")
    assert [t["title"] for t in nps["tasks"]][0] == "Read the comment and the account's recent history"
    assert nps["tasks"][1]["due_on"] == (TODAY + timedelta(days=2)).isoformat()
    assert nps["module"] == "sentiment" and nps["source"] == "rule"
    # the same facts again: nothing new, every match is skipped as already open
    again = wf.plan()
    assert again.open == [] and again.band_changes == []
    assert len(again.skipped) == len(plan.open)
    assert {s["why"] for s in again.skipped} == {"already open"}


def test_apply_refuses_a_plan_the_store_has_moved_past(wf: Workflow) -> None:
    plan = wf.plan()
    wf.flag(_an_account(wf), "Champion sounded worried on the call", actor="cara")
    with pytest.raises(ConflictError, match="changed since this plan was made"):
        wf.apply(plan)
    assert len(wf.ctas()) == 1  # only the flag: nothing of the plan was written


def test_plan_and_apply_plans_again_when_someone_writes_meanwhile(wf: Workflow) -> None:
    """What 'run' and 'daily' do: a busy team's notes between the plan and its apply make the
    plan stale; it is made again, not failed (apply --plan FILE keeps the strict check above)."""
    account = _an_account(wf)
    rules = wf._svc_rules
    real, made = rules.plan, []

    def plan_then_a_colleague_writes(*args: Any, **kwargs: Any) -> Any:
        plan = real(*args, **kwargs)
        made.append(plan)
        if len(made) <= 2:  # the first two plans go stale before they are applied
            wf.log(account, "note", f"busy morning {len(made)}", actor="cara")
        return plan

    rules.plan = plan_then_a_colleague_writes  # type: ignore[method-assign]
    summary = wf.plan_and_apply()
    assert len(made) == 3 and len(summary["opened"]) == len(made[2].open) > 0
    assert len([t for t in wf.timeline(account) if t["text"].startswith("busy morning")]) == 2
    made.clear()
    with pytest.raises(ConflictError, match="changed since this plan was made"):
        wf.plan_and_apply(attempts=2)  # a store that never stops changing: it gives up
    assert len(made) == 2


def test_closed_cta_cools_down_and_cleared_condition_closes(wf: Workflow) -> None:
    wf.apply(wf.plan())
    cta = next(c for c in wf.ctas() if c["owner"] == "cara")  # one of cara's
    wf.close_cta(cta["id"], "resolved: talked it through", actor="cara")
    skipped = [s for s in wf.plan().skipped
               if s["account_id"] == cta["account_id"] and s["rule"] == cta["rule"]]
    assert skipped == [{"account_id": cta["account_id"], "rule": cta["rule"], "why": "closed within 14 days"}]


# ----------------------------------------------------------------------------- CTAs by hand


def test_flag_escalate_decide_and_review_list(wf: Workflow) -> None:
    account = _an_account(wf)
    c = wf.flag(account, "Budget freeze announced", actor="cara")
    assert c["flagged"] and c["source"] == "manual" and c["owner"] == "cara"
    assert [r["id"] for r in wf.review_list()] == [c["id"]]
    up = wf.escalate(c["id"], actor="cara", note="needs the lead")
    assert up["escalation_level"] == 1
    wf.escalate(c["id"], actor="lee", to="finance", note="payment plan?")
    steps = wf.escalations(c["id"])
    assert [(e["to"], e["by"], e["automatic"]) for e in steps] == [("lead", "cara", False),
                                                                    ("finance", "lee", False)]
    wf.decide(c["id"], "Offer a quarterly payment plan", actor="lee")
    assert wf.review_list()[0]["decision"] == "Offer a quarterly payment plan"
    wf.escalate(c["id"], actor="lee")
    wf.escalate(c["id"], actor="lee")
    with pytest.raises(InvalidActionError, match=r"already at the top of the chain \(ceo\)"):
        wf.escalate(c["id"], actor="lee")


def test_overdue_ctas_escalate_automatically(wf: Workflow, project: Project, tmp_path: Path) -> None:
    account = _an_account(wf)
    c = wf.open_cta(account, "risk", "Renewal at risk", actor="cara", due_on=TODAY - timedelta(days=10))
    assert c["overdue"]
    plan = wf.plan()
    assert plan.escalate == [c["id"]]
    wf.apply(plan)
    assert wf.cta(c["id"])["escalation_level"] == 1
    assert wf.escalations(c["id"])[0]["automatic"] is True


def test_playbook_tasks_finish_with_a_prompt_to_close(wf: Workflow) -> None:
    c = wf.open_cta(_an_account(wf), "risk", "Invoice 45 days late", actor="cara", playbook="late_payment")
    assert len(c["tasks"]) == 5
    last = None
    for t in c["tasks"]:
        last = wf.complete_task(t["id"], actor="cara")
    assert last is not None and last["all_done"] is True
    assert last["prompt"].startswith(f"every task of CTA #{c['id']} is done: close it with an outcome")


def test_bad_input_is_refused_and_changes_nothing(wf: Workflow) -> None:
    account = _an_account(wf)
    c = wf.open_cta(account, "activity", "Plan the QBR", actor="cara")
    wf.close_cta(c["id"], "done", actor="cara")
    before = len(wf.audit())
    with pytest.raises(InvalidActionError, match=rf"^CTA #{c['id']} is closed: cannot close it.$"):
        wf.close_cta(c["id"], "again", actor="cara")
    with pytest.raises(NotFoundError, match=r"^no account 'NOPE' in the latest scores \(2026-10-31\)"):
        wf.open_cta("NOPE", "risk", "x", actor="cara")
    with pytest.raises(InvalidActionError, match=r"^type: must be one of risk, opportunity, lifecycle, "
                                                 r"activity. Got 'panic'.$"):
        wf.open_cta(account, "panic", "x", actor="cara")
    with pytest.raises(InvalidActionError, match=r"^note: say why the system score is wrong"):
        wf.set_override(account, actor="cara", reason_code="relationship", note=" ", band="green",
                        expires_on=TODAY + timedelta(days=30))
    with pytest.raises(InvalidActionError, match=r"^expires_on: 2026-11-01 is not in the future"):
        wf.set_override(account, actor="cara", reason_code="relationship", note="n", band="green",
                        expires_on=date(2026, 11, 1))
    with pytest.raises(ForbiddenError, match=r"^vic is a viewer: this needs a csm, lead or admin.$"):
        wf.flag(account, "x", actor="vic")
    with pytest.raises(ForbiddenError, match="this needs an admin"):
        wf.add_user("eve", "admin", actor="cara")
    with pytest.raises(NotFoundError, match="no user named 'mallory'"):
        wf.flag(account, "x", actor="mallory")
    assert len(wf.audit()) == before


# ----------------------------------------------------------------------------- overrides


def test_override_beside_the_system_score_audited_and_lapsing(wf: Workflow, project: Project,
                                                               tmp_path: Path) -> None:
    account = _an_account(wf)
    system = wf.account(account)
    wf.set_override(account, actor="cara", reason_code="relationship", note="Sponsor just renewed verbally",
                    band="green", expires_on=TODAY + timedelta(days=30))
    final = wf.final(account)
    assert final["system_band"] == system["band"] and final["final_band"] == "green"
    assert final["override"]["system_score"] == pytest.approx(system["score"])
    audit = wf.audit("override")
    assert (audit[-1]["action"], audit[-1]["actor"], audit[-1]["after"]["band"]) == ("set", "cara", "green")
    wf.apply(wf.plan())  # rules never touch an override
    assert wf.final(account)["final_band"] == "green"
    later = Workflow(project.config, project.store, url=wf.store.url, today=TODAY + timedelta(days=31))
    try:
        plan = later.plan()
        assert len(plan.lapse) == 1
        later.apply(plan)
        assert later.final(account)["final_band"] == system["band"]
        kinds = [e["kind"] for e in later.timeline(account)]
        assert "override_lapsed" in kinds and "override_set" in kinds
    finally:
        later.close()


# ----------------------------------------------------------------------------- concurrency


def test_two_users_saving_the_same_cta_one_wins_the_other_gets_a_conflict(wf: Workflow) -> None:
    c = wf.open_cta(_an_account(wf), "risk", "Renewal at risk", actor="cara")
    wf.assign(c["id"], "lee", actor="cara", version=c["version"])
    with pytest.raises(ConflictError, match=rf"CTA #{c['id']} was changed by someone else"):
        wf.snooze(c["id"], TODAY + timedelta(days=5), "on holiday", actor="lee", version=c["version"])
    assert wf.cta(c["id"])["owner"] == "lee" and wf.cta(c["id"])["snoozed_until"] is None


@pytest.mark.postgres
def test_concurrent_commits_on_postgresql_lose_nothing(project: Project, pg_url: str) -> None:
    """Two sessions load the same CTA and both save: the second commit is refused."""
    import psycopg
    from sqlalchemy.orm.exc import StaleDataError

    from healthscore.tables import Cta

    schema = f"wf_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    w = Workflow(project.config, project.store, url=f"{PG_URL}?options=-csearch_path%3D{schema}", today=TODAY)
    try:
        c = w.open_cta(_an_account(w), "risk", "Renewal at risk", actor="healthscore")
        s1, s2 = w.store.sessions(), w.store.sessions()
        a, b = s1.get(Cta, c["id"]), s2.get(Cta, c["id"])
        assert a is not None and b is not None
        a.owner, b.owner = "first", "second"
        s1.commit()
        with pytest.raises(StaleDataError):
            s2.commit()
        s2.rollback()
        s1.close()
        s2.close()
        assert w.cta(c["id"])["owner"] == "first" and w.cta(c["id"])["version"] == 2
    finally:
        w.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


# ----------------------------------------------------------------------------- success plans, timeline


def test_success_plan_from_template_with_criteria_checked_on_apply(wf: Workflow) -> None:
    account = _an_account(wf)
    p = wf.create_success_plan(account, actor="cara", template="onboarding")
    assert [g["kind"] for g in p["goals"]] == ["goal", "initiative", "initiative", "initiative"]
    assert len(p["milestones"]) == 3 and len(p["tasks"]) == 3 and p["progress"] == 0.0
    assert {"roles", "reporting", "communication", "education", "tools"} <= set(p["details"])
    assert [t["side"] for t in p["tasks"]] == ["ours", "customer", "customer"]
    crit = p["criteria"][0]
    assert (crit["measure"], crit["op"], crit["target"]) == ("logins_30d", ">=", 20.0)
    done = wf.complete_milestone(p["id"], p["milestones"][0]["id"], actor="cara")
    assert done["progress"] == pytest.approx(round(100 / 7, 1))
    with pytest.raises(InvalidActionError) as err:
        wf.add_goal(p["id"], "Win them back", actor="cara", kind="wish")
    assert err.value.message == "kind: 'wish' is not a kind of goal. Use one of: goal, initiative."
    wf.apply(wf.plan())
    checked = wf.plan_of(p["id"])["criteria"][0]
    logins = wf.account(account)["m__logins_30d"]
    assert checked["value"] == pytest.approx(logins) and checked["met"] == (logins >= 20)


def test_every_owner_is_a_person_the_work_reaches(wf: Workflow) -> None:
    """Playbook, success-plan and escalation owners resolve to users (seed 002's teams, the
    lead, the VP CS and the CEO), never to the owner's name itself."""
    account = _an_account(wf)
    c = wf.open_cta(account, "risk", "Invoice 45 days late", actor="cara", playbook="late_payment")
    assert [(t["role"], t["owner"]) for t in c["tasks"]] == [
        ("csm", "cara"), ("csm", "cara"), ("csm", "cara"), ("finance", "fay"), ("finance", "fay")]
    p = wf.create_success_plan(account, actor="cara", template="recovery")
    assert [(t["role"], t["owner"]) for t in p["tasks"]] == [
        ("lead", "lee"), ("csm", "cara"), ("csm", "cara")]
    wf.escalate(c["id"], actor="cara")
    wf.escalate(c["id"], actor="lee")  # -> vp_cs: an admin by default
    up = wf.escalate(c["id"], actor="lee", to="finance", note="payment plan?")
    assert [(e["to"], e["holder"]) for e in wf.escalations(c["id"])] == [
        ("lead", "lee"), ("vp_cs", "ada"), ("finance", "fay")]
    assert up["escalation_level"] == 2
    said = [t["text"] for t in wf.timeline(account)]
    assert f"CTA #{c['id']} escalated to finance (fay) by lee: payment plan?" in said
    with pytest.raises(InvalidActionError) as err:
        wf.open_cta(account, "risk", "Who?", actor="cara", owner="nobody")
    assert err.value.message == ("owner: no user or owner named 'nobody'. Owners: csm, ceo, finance, "
                                 "lead, product, sales, support, vp_cs; or a user's name.")


def test_an_owner_nobody_holds_stops_the_plan(wf: Workflow) -> None:
    wf.update_user("fay", actor="ada", team="billing")  # finance is left with nobody
    with pytest.raises(ConfigError) as err:
        wf.plan()
    assert err.value.message == (
        "healthscore.yml: workflow.owners.finance: nobody holds it: it is the team 'finance', which "
        "has no user. Add one (healthscore users add NAME --role csm --team finance) or point it "
        "at a person in healthscore.yml (workflow: {owners: {finance: {user: NAME}}}).")
    assert wf.ctas() == []
    with pytest.raises(ConfigError, match="workflow.owners.finance: nobody holds it"):
        wf.open_cta(_an_account(wf), "risk", "Late", actor="cara", playbook="late_payment")
    assert wf.ctas() == []  # nothing half-written


def test_owner_names_are_checked_when_the_project_loads(tmp_path: Path) -> None:
    from healthscore.config.specs import WorkflowSpec
    from healthscore.workflow.config import load_workflow

    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "legal.yml").write_text(
        "contract_review:\n  tasks:\n    - {title: Read the contract, role: legal}\n")
    with pytest.raises(ConfigError) as err:
        load_workflow(tmp_path, [])
    assert err.value.message == (
        "playbooks/legal.yml: contract_review.tasks[0].role: no owner named 'legal', so its work "
        "would go to nobody. Owners: csm, ceo, finance, lead, product, sales, support, vp_cs. "
        "Declare it in healthscore.yml: workflow: {owners: {legal: {user: NAME}}} (or team: TEAM, "
        "or role: lead).")
    spec = WorkflowSpec.model_validate({"owners": {"legal": {"team": "legal"}}})
    assert load_workflow(tmp_path, [], spec).owners["legal"].team == "legal"
    with pytest.raises(ConfigError, match=r"escalation\[2\]: no owner named 'coo'"):
        load_workflow(tmp_path, [], WorkflowSpec(escalation=["csm", "lead", "coo"]))


def test_an_owner_is_one_user_team_or_role(tmp_path: Path) -> None:
    from healthscore.config.load import load_project_spec as load_project

    root = tmp_path / "p"
    write_template(root, "starter", tmp_path / "none")
    text = (root / "healthscore.yml").read_text()
    (root / "healthscore.yml").write_text(
        text + "workflow:\n  owners:\n    vp_cs: {user: Maria, team: leadership}\n")
    with pytest.raises(ConfigError) as err:
        load_project(root)
    assert err.value.message == (
        "healthscore.yml: workflow.owners.vp_cs: give exactly one of user, team or role, e.g. "
        "{team: finance}. Got user, team.")


def test_timeline_holds_everything_newest_first(wf: Workflow) -> None:
    account = _an_account(wf)
    wf.log(account, "call", "Quarterly check-in, all good", actor="cara")
    wf.flag(account, "Rumours of a reorg", actor="cara")
    kinds = [e["kind"] for e in wf.timeline(account)]
    assert kinds[:2] == ["flag", "call"]
    with pytest.raises(InvalidActionError, match=r"^kind: must be one of note, call, meeting, email"):
        wf.log(account, "fax", "x", actor="cara")


def test_quadrants_place_every_account_with_a_motion(wf: Workflow) -> None:
    q = wf.quadrants()
    n = len(wf.scores())
    assert sum(c["count"] for c in q["maturity"]) == n
    assert {c["motion"] for c in q["maturity"]} >= {"Minimal touch or let go."}
    ranges = wf.score_ranges()
    assert sum(r["count"] for r in ranges) == n and ranges[0]["name"] == "rescue"
    wf.spec = wf.spec.model_copy(update={"temperature": "logins_30d"})
    hot = wf.quadrants()["temperature"]
    assert sum(c["count"] for c in hot) == n
    cell = next(c for c in hot if c["health"] == "high" and c["temperature"] == "low")
    assert cell["motion"].startswith("Fix temperature first")
    wf.spec = wf.spec.model_copy(update={"temperature": "gmv_everywhere"})
    with pytest.raises(InvalidActionError, match="workflow.temperature: 'gmv_everywhere' is not a measure"):
        wf.quadrants()


# ----------------------------------------------------------------------------- notifications


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/down":  # a chat service that is down
            self.send_response(503)
            self.end_headers()
            return
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept a message."""

    messages: list[str] = []

    def handle(self) -> None:
        self.wfile.write(b"220 test\r\n")
        data, in_data = [], False
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if in_data:
                if line == ".":
                    in_data = False
                    _Smtp.messages.append("\n".join(data))
                    self.wfile.write(b"250 queued\r\n")
                else:
                    data.append(line)
                continue
            cmd = line.split(" ")[0].upper()
            if cmd == "DATA":
                in_data = True
                self.wfile.write(b"354 go on\r\n")
            elif cmd == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            elif cmd == "EHLO":
                self.wfile.write(b"250 test\r\n")
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def servers() -> Iterator[tuple[str, int]]:
    _Hook.received.clear()
    _Smtp.messages.clear()
    http = HTTPServer(("127.0.0.1", 0), _Hook)
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    for srv in (http, smtp):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{http.server_port}/hook", smtp.server_address[1]
    finally:
        http.shutdown()
        smtp.shutdown()
        smtp.server_close()
        http.server_close()


def test_notifications_by_webhook_and_email_instant_or_digest(project: Project, tmp_path: Path,
                                                              servers: tuple[str, int]) -> None:
    hook, port = servers
    notify = project.config.workflow.notifications.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port})
    spec = project.config.workflow.model_copy(update={"notifications": notify})
    config = dataclasses.replace(project.config, workflow=spec)
    w = Workflow(config, project.store, url=f"sqlite:///{tmp_path / 'n.db'}", today=TODAY)
    try:
        w.add_user("ada", "admin")
        w.add_user("cara", "csm", actor="ada")
        w.add_user("dan", "csm", actor="ada")
        w.set_preferences("cara", actor="ada", webhook_url=hook, email="cara@example.com",
                          events=["cta_opened", "cta_escalated"])
        w.set_preferences("dan", actor="ada", email="dan@example.com", digest=True)
        account = str(w.scores()["account_id"].iloc[0])
        c = w.open_cta(account, "risk", "Renewal at risk", actor="ada", owner="cara")
        w.open_cta(account, "activity", "Book the QBR", actor="ada", owner="dan")
        w.open_cta(account, "activity", "Send the recap", actor="ada", owner="dan")
        w.assign(c["id"], "cara", actor="ada")  # cta_assigned: cara did not ask for it
        counts = w.flush_notifications()
        assert counts == {"sent": 2, "failed": 0}
        assert _Hook.received == [{"text": f"CTA #{c['id']} for {account}: Renewal at risk"}]
        assert len(_Smtp.messages) == 1 and "To: cara@example.com" in _Smtp.messages[0]
        assert w.send_digest() == {"sent": 1, "failed": 0}
        digest = _Smtp.messages[1]
        assert "To: dan@example.com" in digest and "Book the QBR" in digest and "Send the recap" in digest
        sent = w.notifications()
        assert {n["status"] for n in sent} == {"sent"} and len(sent) == 4
    finally:
        w.close()


def test_chat_notifications_go_through_apprise_urls_and_failures_are_logged(
        project: Project, tmp_path: Path, servers: tuple[str, int]) -> None:
    hook, _ = servers
    w = Workflow(project.config, project.store, url=f"sqlite:///{tmp_path / 'a.db'}", today=TODAY)
    try:
        w.add_user("ada", "admin")
        w.add_user("cara", "csm", actor="ada")
        w.add_user("dan", "csm", actor="ada")
        apprise_json = hook.replace("http://", "json://")  # Apprise's own JSON format
        w.set_preferences("cara", actor="ada", webhook_url=apprise_json, events=["cta_opened"])
        w.set_preferences("dan", actor="ada", webhook_url=hook.replace("/hook", "/down"),
                          events=["cta_opened"])
        with pytest.raises(InvalidActionError) as err:
            w.set_preferences("dan", actor="ada", webhook_url="ftp://files.example.com/x")
        assert err.value.message.startswith("webhook: ftp://files.example.com/x is not a notification "
                                            "address. Give an http(s) webhook (Slack-compatible) or an "
                                            "Apprise URL such as slack://")
        account = str(w.scores()["account_id"].iloc[0])
        w.open_cta(account, "risk", "Budget cut", actor="ada", owner="cara")
        w.open_cta(account, "risk", "Champion left", actor="ada", owner="dan")
        assert w.flush_notifications() == {"sent": 1, "failed": 1}
        (got,) = _Hook.received
        assert got["message"].endswith(": Budget cut") and got["type"] == "info"
        (failed,) = w.notifications(status="failed")
        assert failed["user"] == "dan" and failed["error"].startswith("RuntimeError: the service refused")
    finally:
        w.close()


# ----------------------------------------------------------------------------- CTAs feed the score


def test_a_module_colour_comes_from_its_ctas_and_touches_feed_measures(tmp_path: Path) -> None:
    """Seed 002: no CTA -> green, an open CTA -> yellow, a critical one -> red."""
    from .projects import write_project

    root = write_project(tmp_path, {
        "healthscore.yml": "name: mods\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.csv}\n"
                           "  ctas: {format: workflow}\n  touches: {format: workflow}\n"
                           "scorecards: [default]\n",
        "measures/modules.yml": (
            "onboarding_open: {type: count, entity: ctas, mode: open, filter: \"module = 'onboarding'\"}\n"
            "onboarding_critical: {type: count, entity: ctas, mode: open, open_from: critical_at,"
            " filter: \"module = 'onboarding'\"}\n"
            "onboarding_colour: {type: expression, expr: \"case when onboarding_critical > 0 then 0"
            " when onboarding_open > 0 then 50 else 100 end\", scheme: {type: linear, low: 0, high: 100}}\n"
            "calls_logged_30d: {type: count, entity: touches, filter: \"type = 'call'\", window: 30d,"
            " scheme: {type: linear, low: 0, high: 2}}\n"),
        "scorecards/default.yml": "groups: {onboarding: {weight: 60, measures: {onboarding_colour: 100}},\n"
                                  "         engagement: {weight: 40, measures: {calls_logged_30d: 100}}}\n",
    })
    project = Project.load(root)
    project.run(as_of=TODAY.isoformat())
    scores = project.scores().to_pandas().set_index("account_id")
    assert set(scores["m__onboarding_colour"]) == {100.0}
    w = project.workflow(today=TODAY)
    try:
        w.add_user("ada", "admin")
        c1 = w.open_cta("A1", "lifecycle", "Kickoff slipped", actor="ada", module="onboarding")
        c2 = w.open_cta("A2", "lifecycle", "Data integration stuck", actor="ada", module="onboarding")
        w.mark_critical(c2["id"], actor="ada")
        w.log("A1", "call", "Agreed a new kickoff date", actor="ada")
        assert c1["id"] == 1
    finally:
        w.close()
    project.run(as_of=TODAY.isoformat())  # the day the workflow opened the CTAs and logged the call
    after = project.scores().to_pandas().set_index("account_id")
    assert after.loc["A1", "m__onboarding_colour"] == 50.0
    assert after.loc["A2", "m__onboarding_colour"] == 0.0
    assert after.loc["A3", "m__onboarding_colour"] == 100.0
    assert after.loc["A1", "m__calls_logged_30d"] == 1.0


# ----------------------------------------------------------------------------- CLI


def test_workflow_from_the_command_line(tmp_path: Path, project: Project) -> None:
    from healthscore.cli.main import app

    from .conftest import CliRunner

    root = tmp_path / "cli"
    shutil.copytree(project.root, root, ignore=shutil.ignore_patterns(".healthscore"))  # data: absolute
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(app, [*args, "-p", str(root)], env={"HEALTHSCORE_USER": ""})

    assert cli("users", "add", "ada", "--role", "admin").exit_code == 0
    assert cli("users", "add", "cara", "--role", "csm", "--as", "ada").exit_code == 0
    # the rules' playbooks need finance, sales and a lead: the run stops before it scores
    result = cli("run", "--as-of", "2026-10-31")
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        "error: healthscore.yml: workflow.owners.finance: nobody holds it: it is the team "
        "'finance', which has no user. Add one (healthscore users add NAME --role csm --team "
        "finance) or point it at a person in healthscore.yml (workflow: {owners: {finance: "
        "{user: NAME}}}).")
    assert not (root / ".healthscore" / "snapshots").exists()
    for name, role, team in (("lee", "lead", "emea"), ("fay", "csm", "finance"), ("sam", "csm", "sales")):
        assert cli("users", "add", name, "--role", role, "--team", team, "--as", "ada").exit_code == 0
    result = cli("run", "--as-of", "2026-10-31")
    assert result.exit_code == 0, result.output
    assert "CTA(s) opened" in result.output
    plan = json.loads(cli("plan", "--json").output)
    assert plan["open"] == [] and plan["as_of"] == "2026-10-31"
    assert plan["skipped"] and {s["why"] for s in plan["skipped"]} == {"already open"}
    text = cli("plan").output
    assert f"  Skipped {len(plan['skipped'])} rule match(es) that would open a CTA again:" in text
    for rule in {s["rule"] for s in plan["skipped"]}:
        n = sum(s["rule"] == rule for s in plan["skipped"])
        assert f"    {n} already open (rule {rule}): " in text
    listed = json.loads(cli("cta", "list", "--json").output)
    assert cli("cta", "list").output.rstrip().splitlines()[-1].startswith(f"{len(listed)} CTAs: ")
    ctas = [c for c in listed if c["owner"] == "cara"]
    first = ctas[0]["id"]
    result = cli("cta", "close", str(first), "--outcome", "done")
    assert result.exit_code == 1 and "say who you are: --as NAME, or set HEALTHSCORE_USER." in result.output
    assert cli("cta", "close", str(first), "--outcome", "done", "--as", "cara").exit_code == 0
    result = cli("cta", "close", str(first), "--outcome", "done", "--as", "cara")
    assert result.exit_code == 1 and f"CTA #{first} is closed: cannot close it." in result.output
    account = ctas[0]["account_id"]
    result = cli("override", "set", account, "--band", "green", "--reason-code", "relationship",
                 "--note", "verbal renewal", "--expires", "2020-01-01", "--as", "cara")
    assert result.exit_code == 1 and "expires_on: 2020-01-01 is not in the future" in result.output
    result = cli("override", "set", account, "--band", "green", "--reason-code", "relationship",
                 "--note", "verbal renewal", "--expires", "soon", "--as", "cara")
    assert result.exit_code == 1 and ("--expires: 'soon' is neither a date nor a duration. Write "
                                      "YYYY-MM-DD, or e.g. 90d or '3 months'.") in result.output
    # a users add that cannot succeed says so before it asks for a password
    result = cli("users", "add", "eve", "--role", "viewer", "--password")
    assert result.exit_code == 1 and "say who you are" in result.output and "Password" not in result.output
    result = cli("override", "set", account, "--band", "green", "--reason-code", "relationship",
                 "--note", "verbal renewal", "--expires", "90d", "--as", "cara")
    from datetime import date as day
    from datetime import timedelta

    assert result.exit_code == 0 and f"until {day.today() + timedelta(days=90)}." in result.output
    assert cli("override", "clear", account, "--note", "back", "--as", "cara").exit_code == 0
    assert cli("flag", account, "--reason", "reorg", "--as", "cara").exit_code == 0
    assert account in cli("review").output
    assert cli("log", account, "--kind", "call", "--text", "spoke to the CFO", "--as", "cara").exit_code == 0
    assert "spoke to the CFO" in cli("timeline", account, "--json").output
    assert "Minimal touch or let go." in cli("quadrants").output
    # a csm cannot act on another csm's account from the CLI either (nor from Python or the API)
    scores = Project.load(root).final_scores()
    other = str(scores.loc[scores["csm"] != "cara", ["account_id", "csm"]].iloc[0]["account_id"])
    owner = str(scores.set_index("account_id").loc[other, "csm"])
    result = cli("override", "set", other, "--band", "red", "--reason-code", "known_issue",
                 "--note", "x", "--expires", "2099-01-01", "--as", "cara")
    assert result.exit_code == 1
    assert f"cara: a csm acts only on their own accounts; {other} is {owner}'s." in result.output


# ----------------------------------------------------------------------------- races


def _race(*calls: Any) -> list[Any]:
    """Run the calls at the same moment in threads; each result is a value or the exception."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except Exception as err:  # noqa: BLE001 - the race's loser is part of the result
            out[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_two_overrides_of_one_account_at_once_one_wins(wf: Workflow, project: Project) -> None:
    """Two users, each in their own session, replace the override they both saw (same version)
    at the same moment: every round exactly one wins and the other gets a conflict; and
    however they race, the database holds one open override per account."""
    from functools import partial

    account = _an_account(wf)
    other = Workflow(project.config, project.store, url=wf.store.url, today=TODAY)
    until = TODAY + timedelta(days=30)
    green = partial(wf.set_override, account, actor="cara", reason_code="relationship", note="a",
                    band="green", expires_on=until)
    red = partial(other.set_override, account, actor="lee", reason_code="known_issue", note="b",
                  band="red", expires_on=until)
    try:
        seen = wf.set_override(account, actor="ada", reason_code="other", note="start", band="yellow",
                               expires_on=until)
        for _ in range(8):
            wins = _race(partial(green, version=seen["version"]), partial(red, version=seen["version"]))
            assert sorted(type(w).__name__ for w in wins) == ["ConflictError", "dict"], wins
            assert len(wf.overrides()) == 1
            seen = next(w for w in wins if isinstance(w, dict))
        wf.clear_override(account, actor="ada")
        for _ in range(4):  # no version given: both may win in turn, never both open
            _race(green, red)
            assert len(wf.overrides()) == 1
            wf.clear_override(account, actor="ada")
    finally:
        other.close()


def test_a_no_op_change_with_a_stale_version_is_a_conflict(wf: Workflow, project: Project) -> None:
    """An assign to the current owner (no change) with the version both saw races a real change:
    exactly one wins, because every write moves and checks the version."""
    from functools import partial

    c = wf.open_cta(_an_account(wf), "risk", "Renewal at risk", actor="cara")
    other = Workflow(project.config, project.store, url=wf.store.url, today=TODAY)
    try:
        for _ in range(6):
            fresh = wf.cta(c["id"])
            target = "lee" if fresh["owner"] != "lee" else "cara"
            wins = _race(partial(wf.assign, c["id"], target, actor="ada", version=fresh["version"]),
                         partial(other.assign, c["id"], fresh["owner"], actor="ada",
                                 version=fresh["version"]))
            assert sorted(type(w).__name__ for w in wins) == ["ConflictError", "dict"], wins
    finally:
        other.close()


def test_two_snoozes_of_one_cta_at_once_one_wins(wf: Workflow, project: Project) -> None:
    from functools import partial

    c = wf.open_cta(_an_account(wf), "risk", "Renewal at risk", actor="cara")
    other = Workflow(project.config, project.store, url=wf.store.url, today=TODAY)
    try:
        for i in range(6):
            fresh = wf.cta(c["id"])
            wins = _race(partial(wf.snooze, c["id"], TODAY + timedelta(days=3 + i), "holiday",
                                 actor="cara", version=fresh["version"]),
                         partial(other.snooze, c["id"], TODAY + timedelta(days=20 + i), "later",
                                 actor="lee", version=fresh["version"]))
            assert sorted(type(w).__name__ for w in wins) == ["ConflictError", "dict"], wins
    finally:
        other.close()


def test_two_marks_of_one_module_at_once_one_wins(wf: Workflow, project: Project) -> None:
    """Module marks race like overrides: with the version both saw exactly one wins; without
    one, the database still holds one open mark per account and module."""
    from functools import partial

    account = _an_account(wf)
    module = project.config.scorecards[-1].groups[0].path
    other = Workflow(project.config, project.store, url=wf.store.url, today=TODAY)
    until = TODAY + timedelta(days=30)
    red = partial(wf.mark_module, account, module, "red", actor="cara",
                  reason_code="renewal_risk", note="a", expires_on=until)
    green = partial(other.mark_module, account, module, "green", actor="lee",
                    reason_code="relationship", note="b", expires_on=until)
    try:
        seen = wf.mark_module(account, module, "yellow", actor="ada", reason_code="other",
                              note="start", expires_on=until)
        for _ in range(6):
            wins = _race(partial(red, version=seen["version"]),
                         partial(green, version=seen["version"]))
            assert sorted(type(w).__name__ for w in wins) == ["ConflictError", "dict"], wins
            assert len(wf.marks(account)) == 1
            seen = wf.marks(account)[0]
        for _ in range(4):
            _race(red, green)
            assert len(wf.marks(account)) == 1
    finally:
        other.close()


def test_the_migration_keeps_the_newest_of_two_open_overrides(tmp_path: Path) -> None:
    """A store written before the one-open-override rule may hold two: upgrading keeps the newest."""
    import sqlalchemy as sa
    from alembic import command

    from healthscore.workflow.db import Store, alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
        for i in (1, 2):
            conn.execute(sa.text(
                "INSERT INTO overrides (id, version, account_id, band, reason_code, note, expires_on, "
                "set_by, set_at) VALUES (:i, 1, 'ACC-1', 'red', 'other', 'n', '2030-01-01', 'ada', "
                "'2026-01-01 00:00:00')"), {"i": i})
    engine.dispose()
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, ended_at IS NULL, end_reason FROM overrides "
                                        "ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, 0, "replaced"), (2, 1, None)]
    finally:
        store.close()


def test_bulk_is_all_or_nothing_and_names_each_refusal(wf: Workflow) -> None:
    mine = _an_account(wf)
    scores = wf.scores()
    theirs = str(scores.loc[scores["csm"] != "cara", "account_id"].iloc[0])
    ids = [wf.open_cta(mine, "risk", f"mine {i}", actor="ada")["id"] for i in range(3)]
    other = wf.open_cta(theirs, "risk", "theirs", actor="ada")["id"]
    closed = wf.close_cta(wf.open_cta(mine, "risk", "done", actor="ada")["id"], "resolved", actor="ada")["id"]
    before = len(wf.audit())
    with pytest.raises(ForbiddenError) as refused:
        wf.bulk([*ids, other, closed], "priority", actor="cara", priority="critical")
    assert refused.value.details == [
        f"CTA #{other}: cara: a csm acts only on their own accounts; {theirs} is "
        f"{scores.set_index('account_id').at[theirs, 'csm']}'s.",
        f"CTA #{closed}: CTA #{closed} is closed: cannot reprioritise it."]
    assert refused.value.message.startswith("priority: 2 of 5 CTAs refused, so none was changed.")
    assert len(wf.audit()) == before and {wf.cta(i)["priority"] for i in ids} == {"medium"}
    done = wf.bulk([*ids, ids[0]], "priority", actor="cara", priority="critical")
    assert done["changed"] == 3 and all(wf.cta(i)["critical"] for i in ids)
    assert [e["text"] for e in wf.timeline(mine)][:1] == [f"CTA #{ids[-1]} priority set to critical"]


def _touch_project(tmp_path: Path, touch: str, line: str | None = "segment = 'Enterprise'") -> Project:
    from .projects import EVENTS, csv_text, write_project

    root = write_project(tmp_path, {
        "healthscore.yml": f"""\
            name: mini
            sources:
              accounts: {{path: data/accounts.csv}}
              usage_events: {{path: data/usage_events.csv}}
            scorecards: [default]
            workflow: {{high_touch: {json.dumps(line)}}}
            """.replace("workflow: {high_touch: null}", ""),
        "measures/usage.yml": """\
            exports_30: {type: count, entity: usage_events, filter: "event = 'export'", window: 30d,
                         scheme: {type: linear, low: 0, high: 1}}
            """,
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {exports_30: 100}}}\n",
        "rules/default.yml": f"""\
            exporter:
              when: "exports_30 >= 1"
              touch: {touch}
              cta: {{type: opportunity, reason: Exports data, due_in: 7d}}
            """,
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], EVENTS),
    })
    return Project.load(root)


@pytest.mark.parametrize(("touch", "opened"), [("all", ["A1", "A2"]), ("low", ["A1"]), ("high", ["A2"])])
def test_the_large_customer_line_decides_which_rules_raise_ctas(tmp_path: Path, touch: str,
                                                                 opened: list[str]) -> None:
    """Seed 002: above the line (A2, Enterprise) CSMs raise CTAs from the success plan's
    objectives; below it (A1, SMB) the rules raise them. Both export, so both match the rule."""
    project = _touch_project(tmp_path / "p", touch)
    project.run(as_of="2025-03-01", apply_rules=False)
    wf = Workflow(project.config, project.store, url=f"sqlite:///{tmp_path / 'wf.db'}",
                  today=date(2025, 3, 2))
    try:
        assert [o["account_id"] for o in wf.plan().open] == opened
    finally:
        wf.close()


def test_the_large_customer_line_is_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _touch_project(tmp_path / "a", "low", line=None).check_config()  # as 'check' and 'run' do
    assert err.value.message == (
        "rules/default.yml: exporter.touch: 'low' needs the large-customer line: set "
        "workflow.high_touch in healthscore.yml (e.g. \"arr >= 100000\"), or drop touch.")
    with pytest.raises(ConfigError) as err:
        _touch_project(tmp_path / "b", "low", line="revenue >= 100000").check_config()
    assert err.value.message.startswith(
        "healthscore.yml: workflow.high_touch: unknown name 'revenue' in 'revenue >= 100000'. Use a "
        "measure of the project's scorecards")


def test_saved_views_are_each_users_own(wf: Workflow) -> None:
    first = wf.save_view("cara", "accounts", " Red renewals ", "?band=red&renewal_days=90&sort=arr&page=3&q=")
    assert (first["name"], first["query"]) == ("Red renewals", "band=red&renewal_days=90&sort=arr")
    again = wf.save_view("cara", "accounts", "Red renewals", "band=red&sort=score")  # same name: replaced
    assert again["id"] == first["id"] and again["query"] == "band=red&sort=score"
    wf.save_view("cara", "accounts", "All mine", "scope=mine")
    wf.save_view("lee", "accounts", "Red renewals", "band=red")
    assert [v["name"] for v in wf.saved_views("cara", "accounts")] == ["All mine", "Red renewals"]
    assert [v["owner"] for v in wf.saved_views("lee")] == ["lee"]
    with pytest.raises(NotFoundError) as err:
        wf.delete_view("lee", first["id"])  # not lee's
    assert err.value.message == f"saved view #{first['id']}: lee has no such view."
    assert wf.delete_view("cara", first["id"])["name"] == "Red renewals"
    assert [v["name"] for v in wf.saved_views("cara")] == ["All mine"]
    with pytest.raises(InvalidActionError) as bad:
        wf.save_view("cara", "portfolio", "x", "")
    assert bad.value.message == "page: must be one of accounts. Got 'portfolio'."
    with pytest.raises(InvalidActionError) as unnamed:
        wf.save_view("cara", "accounts", "  ", "band=red")
    assert unnamed.value.message == "name: give the view a name of 1 to 100 characters."
