"""The in-app inbox and the notification settings, on SQLite and PostgreSQL: an escalation,
an assignment, a mention in a comment and a due task reach their user's inbox (as they chose),
unread counts go down as items are marked read, and nobody reads or marks another's inbox.
The migration that brings the inbox (0009) upgrades an older store and downgrades again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from healthscore.errors import InvalidActionError, NotFoundError
from healthscore.project import Project
from healthscore.workflow.service import Workflow

from .test_workflow import TODAY, _an_account, project, wf

__all__ = ["project", "wf"]  # the shared fixtures of tests/test_workflow.py


def test_an_escalation_reaches_the_leads_inbox_and_marking_read_counts_down(wf: Workflow) -> None:
    account = _an_account(wf)
    c = wf.open_cta(account, "risk", "Renewal at risk", actor="cara", owner="cara")
    assert wf.unread_count("cara") == 1  # her own CTA: cta_opened
    assert wf.unread_count("lee") == 0
    wf.escalate(c["id"], actor="cara", note="needs the lead")
    box = wf.inbox("lee")
    assert box["unread"] == 1 and box["total"] == 1
    (item,) = box["items"]
    assert item["event"] == "cta_escalated" and item["cta_id"] == c["id"] and item["account_id"] == account
    assert item["text"] == f"CTA #{c['id']} for {account} escalated to lead (lee): Renewal at risk"
    assert item["read_at"] is None
    read = wf.mark_read("lee", item["id"])
    assert read["read_at"] is not None and read["unread"] == 0
    assert wf.mark_read("lee", item["id"])["read_at"] == read["read_at"]  # again: unchanged
    assert wf.inbox("lee", unread_only=True)["items"] == []
    assert wf.inbox("lee")["total"] == 1


def test_nobody_reads_or_marks_another_users_inbox(wf: Workflow) -> None:
    account = _an_account(wf)
    wf.open_cta(account, "risk", "Budget cut", actor="ada", owner="cara")
    (item,) = wf.inbox("cara")["items"]
    with pytest.raises(NotFoundError) as err:
        wf.mark_read("lee", item["id"])
    assert err.value.message == f"inbox item #{item['id']}: lee has no such item."
    with pytest.raises(NotFoundError) as err:
        wf.mark_read("cara", 999_999)
    assert err.value.message == "inbox item #999999: cara has no such item."
    assert wf.unread_count("cara") == 1
    with pytest.raises(NotFoundError) as err:
        wf.inbox("nobody")
    assert err.value.message == "no user named 'nobody'. Add one with 'healthscore users add'."
    with pytest.raises(InvalidActionError) as bad:
        wf.inbox("cara", per_page=0)
    assert bad.value.message == "page must be 1 or more and per_page between 1 and 200."


def test_mark_all_read_and_paging_newest_first(wf: Workflow) -> None:
    account = _an_account(wf)
    ids = [wf.open_cta(account, "activity", f"Step {i}", actor="ada", owner="cara")["id"] for i in range(5)]
    first = wf.inbox("cara", per_page=2)
    assert [i["cta_id"] for i in first["items"]] == [ids[4], ids[3]]
    assert first["pages"] == 3 and first["unread"] == 5
    assert [i["cta_id"] for i in wf.inbox("cara", page=3, per_page=2)["items"]] == [ids[0]]
    assert wf.mark_all_read("cara") == {"user": "cara", "marked": 5, "unread": 0}
    assert wf.mark_all_read("cara")["marked"] == 0 and wf.unread_count("cara") == 0


def test_settings_choose_events_and_channels(wf: Workflow) -> None:
    account = _an_account(wf)
    wf.set_preferences("cara", actor="cara", events=["cta_assigned"], channels=["inapp"])
    assert wf.user("cara")["notify_channels"] == ["inapp"]
    c = wf.open_cta(account, "risk", "Not wanted", actor="ada", owner="lee")  # cta_opened: not chosen
    wf.assign(c["id"], "cara", actor="ada")
    assert [i["event"] for i in wf.inbox("cara")["items"]] == ["cta_assigned"]
    wf.set_preferences("cara", actor="cara", channels=[])  # no channel at all: nothing arrives
    wf.assign(c["id"], "lee", actor="ada")
    wf.assign(c["id"], "cara", actor="ada")
    assert wf.unread_count("cara") == 1
    with pytest.raises(InvalidActionError) as err:
        wf.set_preferences("cara", actor="cara", channels=["inapp", "sms"])
    assert err.value.message == "channels: unknown 'sms'. Channels: inapp, email, webhook."
    with pytest.raises(InvalidActionError) as err:
        wf.set_preferences("cara", actor="cara", channels=["email"])
    assert err.value.message == ("email: give an email address to get notifications by email "
                                 "(or leave the email channel off).")
    with pytest.raises(InvalidActionError) as err:
        wf.set_preferences("cara", actor="cara", channels=["webhook"])
    assert err.value.message == ("webhook: give a webhook address to get notifications by chat "
                                 "(or leave the chat channel off).")
    assert wf.user("cara")["notify_channels"] == []  # the refused changes wrote nothing
    saved = wf.set_preferences("cara", actor="cara", email="cara@example.com", channels=["email", "inapp"])
    assert saved["notify_channels"] == ["inapp", "email"] and saved["email"] == "cara@example.com"


def test_a_mention_in_a_comment_reaches_the_named_user(wf: Workflow) -> None:
    account = _an_account(wf)
    c = wf.open_cta(account, "risk", "Champion left", actor="ada", owner="cara")
    wf.comment(c["id"], "@LEE can you call their CFO? cc @cara", actor="cara")
    (item,) = wf.inbox("lee")["items"]
    assert item["event"] == "cta_mention" and item["cta_id"] == c["id"]
    assert item["text"] == (f"cara mentioned you on CTA #{c['id']} for {account}: "
                            f"@LEE can you call their CFO? cc @cara")
    assert [i["event"] for i in wf.inbox("cara")["items"]] == ["cta_opened"]  # not her own mention


def test_due_tasks_and_overdue_ctas_reach_their_owners(wf: Workflow, project: Project) -> None:
    account = _an_account(wf)
    c = wf.open_cta(account, "risk", "Renewal at risk", actor="ada", owner="cara", playbook="late_payment")
    wf.mark_all_read("cara")
    later = Workflow(project.config, project.store, url=wf.store.url, today=TODAY + timedelta(days=40))
    try:
        later.notify_overdue()
        events = [(i["event"], i["cta_id"]) for i in later.inbox("cara")["items"]]
    finally:
        later.close()
    assert ("cta_overdue", c["id"]) in events
    mine = [t for t in c["tasks"] if t["owner"] == "cara"]
    assert mine and events.count(("task_due", c["id"])) == len(mine)


def test_the_inbox_migration_upgrades_an_older_store_and_downgrades(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic import command

    from healthscore.workflow.db import Store, alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0008")
        conn.execute(sa.text(
            "INSERT INTO users (id, name, role, created_at, created_by, language, notify_events, digest) "
            "VALUES (1, 'ada', 'admin', '2026-01-01 00:00:00', 'healthscore', 'en', '[]', 0)"))
        assert "inbox" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    store = Store(url)  # opening it upgrades to the newest schema
    try:
        with store.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT notify_channels FROM users")).scalar() is None
            conn.execute(sa.text("INSERT INTO inbox (user, at, event, text) VALUES "
                                 "('ada', '2026-01-02 00:00:00', 'mention', 'hi')"))
            assert conn.execute(sa.text("SELECT count(*) FROM inbox WHERE read_at IS NULL")).scalar() == 1
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("inbox")}
            assert "ix_inbox_user_read" in indexes
            command.downgrade(alembic_config(conn), "0008")
            assert "inbox" not in sa.inspect(conn).get_table_names()
            assert "notify_channels" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}
            command.upgrade(alembic_config(conn), "head")
            assert "inbox" in sa.inspect(conn).get_table_names()
    finally:
        store.close()


def test_the_cli_lists_and_marks_ones_inbox(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from healthscore.cli.main import app
    from tests.projects import AS_OF, write_project

    root = write_project(tmp_path)
    project = Project.load(root)
    project.run(as_of=AS_OF, apply_rules=False)
    w = project.workflow()
    try:
        w.add_user("ada", "admin")
        w.add_user("cara", "csm", actor="ada")
        for reason in ("Budget cut", "Champion left"):
            w.open_cta("A1", "risk", reason, actor="ada", owner="cara")
        first = w.inbox("cara")["items"][-1]["id"]
    finally:
        w.close()
    runner = CliRunner()
    r = runner.invoke(app, ["inbox", "-p", str(root), "--as", "cara", "--json"])
    assert r.exit_code == 0, r.output
    box = json.loads(r.output)
    assert box["unread"] == 2 and [i["text"].split(": ")[1] for i in box["items"]] == ["Champion left",
                                                                                      "Budget cut"]
    r = runner.invoke(app, ["inbox", "-p", str(root), "--as", "cara", "--read", str(first), "--unread"])
    assert r.exit_code == 0 and "Inbox of cara: 1 unread" in r.output and "Champion left" in r.output
    r = runner.invoke(app, ["inbox", "-p", str(root), "--as", "ada", "--read", str(first)])
    assert r.exit_code == 1 and f"inbox item #{first}: ada has no such item." in r.output
    r = runner.invoke(app, ["inbox", "-p", str(root), "--as", "cara", "--read-all", "--json"])
    assert json.loads(r.output)["unread"] == 0


@pytest.mark.parametrize(("lang", "forms"), [
    ("en", ["1 notification", "2 notifications", "5 notifications", "22 notifications"]),
    ("pl", ["1 powiadomienie", "2 powiadomienia", "5 powiadomień", "22 powiadomienia"]),
    ("ru", ["1 уведомление", "2 уведомления", "5 уведомлений", "22 уведомления"]),
    ("zh", ["1 条通知", "2 条通知", "5 条通知", "22 条通知"]),
])
def test_the_inbox_counts_take_each_languages_plural(lang: str, forms: list[str]) -> None:
    from healthscore.web.i18n import Formatter

    f = Formatter(lang)
    assert [f.ngettext("{n} notification", "{n} notifications", n) for n in (1, 2, 5, 22)] == forms
    unread = [f.ngettext("{n} unread", "{n} unread", n) for n in (1, 5)]
    assert unread == {"en": ["1 unread", "5 unread"], "pl": ["1 nieprzeczytane", "5 nieprzeczytanych"],
                      "ru": ["1 непрочитанное", "5 непрочитанных"], "zh": ["1 条未读", "5 条未读"]}[lang]
