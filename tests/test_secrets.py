"""A database password never reaches a person: not in check or run output, the run log, data
health, an error, a page or the API; and it can come from the environment instead of YAML."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from healthscore.cli.main import app
from healthscore.config.secrets import expand_env, redact_url
from healthscore.errors import ConfigError, DataError
from healthscore.project import Project

from .conftest import PG_DSN
from .projects import ACCOUNTS, EVENTS, csv_text, write_project

PLANTED = "Pl4nted-S3cret"
TODAY = date(2025, 3, 2)


def test_redact_and_expand(monkeypatch: Any) -> None:
    assert redact_url("postgresql://cs:secret@db/prod") == "postgresql://cs:***@db/prod"
    assert redact_url("mysql://db/x?user=u&password=secret&a=1") == "mysql://db/x?user=u&password=***&a=1"
    assert redact_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    monkeypatch.setenv("HS_PW", "p@ss")
    assert expand_env("postgresql://cs:${HS_PW}@db/${HS_PW}") == "postgresql://cs:p@ss@db/p@ss"
    with pytest.raises(KeyError):
        expand_env("x${HS_NOT_SET_ANYWHERE}")


def test_a_missing_environment_variable_is_a_config_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("HS_TEST_PASSWORD", raising=False)
    write_project(tmp_path, {"healthscore.yml": """\
        name: mini
        sources:
          accounts: {path: data/accounts.csv}
          usage_events: {url: "postgresql://cs:${HS_TEST_PASSWORD}@127.0.0.1/test", table: events}
        scorecards: [default]
        """})
    with pytest.raises(ConfigError) as err:
        Project.load(tmp_path)
    assert err.value.message == (
        "healthscore.yml: sources.usage_events.url: the environment variable HS_TEST_PASSWORD is "
        "not set. Set it (e.g. export HS_TEST_PASSWORD=...) or write the value in the URL.")


@pytest.mark.postgres
def test_a_planted_password_appears_nowhere(tmp_path: Path, pg_url: str, pg_table: Any,
                                            monkeypatch: Any) -> None:
    import psycopg
    from fastapi.testclient import TestClient

    from healthscore.web.app import create_app
    from healthscore.workflow.access import hash_password

    accounts = pg_table("accounts", "account_id text, name text, segment text, start_date date",
                        list(ACCOUNTS))
    schema = f"wf_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("HS_TEST_PASSWORD", PLANTED)
    secret_url = "postgresql+psycopg://postgres:${HS_TEST_PASSWORD}@127.0.0.1:5432/test"
    write_project(tmp_path, {
        "healthscore.yml": f"""\
            name: mini
            sources:
              accounts: {{url: "{secret_url}", table: {accounts}}}
              usage_events: {{path: data/usage_events.csv}}
              ctas: {{format: workflow}}
            scorecards: [default]
            workflow: {{url: "postgresql+psycopg://postgres:{PLANTED}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"}}
            """,
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], EVENTS),
    })
    try:
        seen: list[str] = []
        runner = CliRunner()
        for args in (["check"], ["run", "--as-of", "2025-03-01"], ["show"]):
            result = runner.invoke(app, [*args, "-p", str(tmp_path)])
            assert result.exit_code == 0, result.output
            seen.append(result.output)
        project = Project.load(tmp_path)
        seen.append((tmp_path / ".healthscore" / "runs.jsonl").read_text())
        seen += [h.location for h in project.check().health.values()]
        seen.append(str(project.measure_rows("A1", "logins_30")))
        wf = project.workflow(today=TODAY)
        wf.add_user("ada", "admin", password_hash=hash_password("correct horse"))
        wf.add_user("vic", "viewer", actor="ada", password_hash=hash_password("correct horse"))
        token = wf.create_token("vic", "t", actor="vic")["token"]
        wf.close()
        client = TestClient(create_app(project, today=TODAY))
        h = {"Authorization": f"Bearer {token}"}
        for path in ("/api/data-health", "/api/admin", "/api/portfolio"):
            seen.append(client.get(path, headers=h).text)
        client.post("/api/login", json={"name": "vic", "password": "correct horse"})
        seen.append(client.get("/data-health").text)
        # an error about the source names it, without the password
        text = (tmp_path / "healthscore.yml").read_text().replace(f"table: {accounts}", "table: nope")
        (tmp_path / "healthscore.yml").write_text(text)
        with pytest.raises(DataError) as err:
            Project.load(tmp_path).check()
        seen.append(str(err.value))
        assert "postgres:***@127.0.0.1" in str(err.value)
        leaks = [s[:200] for s in seen if PLANTED in s]
        assert leaks == [], leaks
        assert any("postgres:***@" in s for s in seen)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
