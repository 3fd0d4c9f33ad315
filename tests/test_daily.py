"""The daily job: one command for cron, its exit codes, its lock, its log line, a kill midway."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from healthscore import Project
from healthscore.cli.main import app
from healthscore.errors import HealthScoreError
from healthscore.project.daily import LOCK, LOG, run_daily

from .conftest import run_script
from .projects import PROJECT_YML, write_project

DAY = date(2025, 3, 1)  # the mini project's data runs up to here
NEXT = date(2025, 3, 3)
RULES = """\
low_logins:
  when: "logins_30 < 1"
  cta: {type: risk, reason: No logins in 30 days, priority: high, due_in: 1d}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    yml = PROJECT_YML.replace("{path: data/usage_events.csv}",
                              "{path: data/usage_events.csv, stale_after: 30d}")
    return write_project(tmp_path, {"rules/default.yml": RULES, "healthscore.yml": yml})


def _log(root: Path) -> list[dict]:
    lines = (root / ".healthscore" / LOG).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_day_scores_applies_reminds_and_sends_once(project: Path) -> None:
    first = run_daily(Project.load(project), today=DAY)
    assert first.status == "ok" and first.exit_code == 0 and first.warnings == []
    assert first.counts["ctas_opened"] == 1  # A3: no login in 30 days
    assert first.counts["rows"] == 3
    assert {"score", "overdue", "digest", "total"} <= set(first.seconds)
    assert Project.load(project).store.dates() == [DAY]
    again = run_daily(Project.load(project), today=DAY)
    assert again.counts["ctas_opened"] == 0  # the CTA is open already
    assert "overdue" not in again.seconds and "digest" not in again.seconds  # once a day
    later = run_daily(Project.load(project), today=NEXT)
    assert later.counts["overdue_reminded"] == 1  # due the day after DAY, still open on NEXT
    log = _log(project)
    assert [(e["day"], e["status"], e["exit"]) for e in log] == [
        ("2025-03-01", "ok", 0), ("2025-03-01", "ok", 0), ("2025-03-03", "ok", 0)]
    assert set(log[0]) == {"at", "day", "status", "exit", "seconds", "counts", "warnings", "error"}


def test_exit_codes_on_the_command_line(project: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["daily", "-p", str(project), "--as-of", "2025-03-01", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["ctas_opened"] == 1
    # weeks after the newest event the usage source is stale: finished, with warnings
    r = runner.invoke(app, ["daily", "-p", str(project), "--as-of", "2025-06-30"])
    assert r.exit_code == 2, r.output
    assert "warning: usage_events: newest row is from 2025-02-25" in " ".join(r.output.split())
    assert _log(project)[-1]["status"] == "warnings"
    # a broken source: an error, exit 1, logged, and nothing new stored
    (project / "data" / "usage_events.csv").unlink()
    r = runner.invoke(app, ["daily", "-p", str(project), "--as-of", "2025-07-31"])
    assert r.exit_code == 1
    assert "error: " in r.output and "usage_events" in r.output
    assert _log(project)[-1]["status"] == "error" and _log(project)[-1]["exit"] == 1
    assert date(2025, 7, 31) not in Project.load(project).store.dates()
    r = runner.invoke(app, ["daily", "-p", str(project), "--as-of", "July"])
    assert r.exit_code == 1
    assert "error: --as-of: 'July' is not a date. Write it as YYYY-MM-DD." in r.output


def test_a_second_run_waits_or_says_why(project: Path) -> None:
    proj = Project.load(project)
    proj.config.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(proj.config.state_dir / LOCK)
    with lock:
        with pytest.raises(HealthScoreError) as err:
            run_daily(proj, today=DAY, wait=0.2)
    assert err.value.message == (
        f"daily: another daily run of this project is still going (it holds "
        f"{proj.config.state_dir / LOCK}). Let it finish, or pass --wait SECONDS to queue behind it.")
    assert proj.store.dates() == []  # it did not score
    assert _log(project)[-1]["status"] == "error"
    assert run_daily(proj, today=DAY).status == "ok"  # the lock went with its holder


KILLED = """
import os, sys
from datetime import date
from healthscore import Project
from healthscore.project.daily import run_daily
from healthscore.store import snapshots

def checkpoint(step):
    if step == sys.argv[2]:
        os._exit(9)  # a kill: no finally, no cleanup, no lock release by the process

snapshots._checkpoint = checkpoint
run_daily(Project.load(sys.argv[1]), today=date.fromisoformat(sys.argv[3]))
"""


@pytest.mark.parametrize("step", ["staged", "moved old"])
def test_a_run_killed_midway_leaves_the_last_good_day(project: Path, step: str) -> None:
    def stored(proj: Project) -> object:
        return proj.store.read(DAY).to_pandas().sort_values("account_id").reset_index(drop=True)

    run_daily(Project.load(project), today=DAY)
    before = stored(Project.load(project))
    # the next run rescores DAY (say, after a data fix): killed before or in the middle of
    # its swap, the day holds either the old scores or the new ones (here the same), never none
    code = run_script(KILLED, str(project), step, DAY.isoformat(), timeout=300)
    assert code.returncode == 9, code.stderr
    proj = Project.load(project)
    assert proj.store.dates() == [DAY]
    assert stored(proj).equals(before)
    assert run_daily(proj, today=NEXT).status == "ok"  # the lock is free, the store whole
    assert proj.store.dates() == [DAY, NEXT]


def test_every_command_in_the_operations_guide_runs(project: Path, pg_url: str) -> None:
    import uuid

    import psycopg

    from .conftest import PG_DSN

    schema = f"ops_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        _run_the_guide(project, schema)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _run_the_guide(project: Path, schema: str) -> None:
    import re
    import shlex

    text = (Path(__file__).parents[1] / "docs" / "operations.md").read_text()
    lines, served = [], []
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.S):
        for line in body.splitlines():
            line = line.split(" #")[0].strip()
            if lang == "ini" and line.startswith("ExecStart="):
                lines.append(line[len("ExecStart="):])
            elif lang == "cron" and line and not line.startswith("#"):
                lines.append(line.split(None, 5)[5].split("&&", 1)[1].split(">>")[0])
            elif lang == "bash" and line.startswith("healthscore serve "):
                served.append(line)
            elif lang == "bash" and line.startswith("healthscore "):
                lines.append(line)
    assert len(lines) == 9 and len(served) == 1
    runner = CliRunner()
    (project / "backups").mkdir()
    for line in lines:
        line = line.replace("/srv/healthscore/project", str(project))
        line = line.replace("cs:${CRM_DB_PASSWORD}@crm-db/analytics", "postgres@127.0.0.1:5432/test")
        line = line.replace("health.scores", f"{schema}.scores")
        args = shlex.split(line.replace("/backups/", f"{project / 'backups'}/"))
        assert args[0].endswith("healthscore"), line
        if args[1] == "daily" and "--as-of" not in args:
            args += ["--as-of", DAY.isoformat()]
        r = runner.invoke(app, args[1:])
        assert r.exit_code in (0, 2), (line, r.output)
    assert len(_log(project)) == 6
    assert len(list((project / "backups").glob("*.tar.gz"))) == 1
    # the serve line, served for real (on a free port) until it answers
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    line = served[0].replace("/srv/healthscore/project", str(project)).replace("8000", str(port))
    exe = Path(sys.executable).with_name("healthscore")
    proc = subprocess.Popen([str(exe), *shlex.split(line)[1:]], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as r:
                    ready = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.3)
    finally:
        proc.terminate()
        said = proc.communicate(timeout=30)[0]
    assert "The daily job runs here every day at 06:30." in said
    assert ready["daily"]["status"] in ("ok", "warnings")  # the runs above, read by the server


def test_history_keep_removes_old_snapshots_but_never_the_newest(project: Path) -> None:
    yml = project / "healthscore.yml"
    yml.write_text(yml.read_text() + "history: {keep: 91d}\n")
    proj = Project.load(project)
    proj.run(dates=[date(2024, 11, 29), date(2024, 11, 30), date(2024, 12, 1)], apply_rules=False)
    r = run_daily(proj, today=DAY)  # keeps as-of dates from DAY - 91 days = 2024-11-30 on
    assert r.counts["snapshots_removed"] == 1
    assert proj.store.dates() == [date(2024, 11, 30), date(2024, 12, 1), DAY]
    assert not list(proj.config.state_dir.glob(".trash-*"))
    assert proj.store.prune(date(2030, 1, 1)) == [date(2024, 11, 30), date(2024, 12, 1)]
    assert proj.store.dates() == [DAY]  # the newest stays, however old
    yml.write_text(yml.read_text().replace("keep: 91d", "keep: 90d"))
    with pytest.raises(HealthScoreError) as err:
        Project.load(project)
    assert err.value.message == (
        "healthscore.yml: history.keep: '90d' is too short: keep at least 91 days, since the "
        "90-day change of every score reads the snapshot from 90 days before. Write e.g. '400d', "
        "or remove the key to keep everything.")


def test_the_web_process_runs_the_daily_job_on_its_schedule(project: Path) -> None:
    from fastapi.testclient import TestClient

    from healthscore.web.app import create_app

    proj = Project.load(project)
    web = create_app(proj, daily_at="06:30", url=f"sqlite:///{project / 'wf.db'}")
    with TestClient(web) as client:  # the scheduler lives as long as the server
        scheduler = web.state.scheduler
        assert scheduler.running
        job = scheduler.get_job("daily")
        assert str(job.trigger) == "cron[hour='6', minute='30']"
        assert (job.next_run_time.hour, job.next_run_time.minute) == (6, 30)
        ran = job.func()  # what the trigger calls at 06:30
        assert ran["status"] in ("ok", "warnings")  # the mini data is old: stale warnings
        assert client.get("/readyz").json()["daily"]["status"] == ran["status"]
    assert not scheduler.running
    with pytest.raises(HealthScoreError) as err:
        create_app(proj, daily_at="25:00")
    assert err.value.message == ("--daily-at: '25:00' is not a time of day. Write HH:MM (24-hour "
                                 "clock, the server's time zone), e.g. 06:30.")
    r = CliRunner().invoke(app, ["serve", "-p", str(project), "--daily-at", "6.30"])
    assert r.exit_code == 1 and "--daily-at: '6.30' is not a time of day." in r.output


def test_a_bug_is_one_line_with_its_own_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from healthscore.cli.common import INTERNAL, handle_errors

    cli = typer.Typer()

    @cli.command()
    @handle_errors
    def boom(kind: str) -> None:
        if kind == "bug":
            raise KeyError("[scores] column")
        raise HealthScoreError("scores: the [red] band is not configured.")

    runner = CliRunner()
    r = runner.invoke(cli, ["bug"])
    assert r.exit_code == INTERNAL == 3
    said = " ".join(r.output.split())
    assert said == ("internal error: KeyError: '[scores] column'. This is a bug in healthscore, not "
                    "in your input: rerun with HEALTHSCORE_DEBUG=1 to see where, and report it.")
    r = runner.invoke(cli, ["input"])
    assert r.exit_code == 1 and " ".join(r.output.split()) == (
        "error: scores: the [red] band is not configured.")  # brackets are text, not markup
    monkeypatch.setenv("HEALTHSCORE_DEBUG", "1")
    r = runner.invoke(cli, ["bug"])
    assert isinstance(r.exception, KeyError)  # the traceback, for whoever debugs it
