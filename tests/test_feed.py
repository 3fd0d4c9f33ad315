"""Scores upserted into a database table (the real PostgreSQL server, and SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from healthscore import Project
from healthscore.cli.main import app
from healthscore.errors import HealthScoreError

from .conftest import PG_DSN
from .projects import write_project

DAY, NEXT = date(2025, 3, 1), date(2025, 3, 3)


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    import psycopg

    name = f"feed_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def scored(tmp_path: Path) -> Project:
    proj = Project.load(write_project(tmp_path))
    proj.run(dates=[DAY, NEXT], apply_rules=False)
    return proj


def _rows(url: str, table: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.text(f"SELECT * FROM {table} ORDER BY as_of, account_id"))]
    finally:
        engine.dispose()


def test_upsert_by_account_and_day_on_postgresql(scored: Project, schema: str) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test"
    table = f"{schema}.health_scores"
    runner = CliRunner()
    r = runner.invoke(app, ["export", "-p", str(scored.root), "--to", url, "--table", table,
                            "--as-of", DAY.isoformat()])
    assert r.exit_code == 0, r.output
    assert "Upserted 3 row(s) into " in r.output
    assert scored.export_to(url, table, NEXT) == 3
    wf = scored.workflow(today=NEXT)
    try:  # an override set after the first export: exporting NEXT again updates its rows only
        wf.add_user("ada", "admin")
        wf.set_override("A3", actor="ada", reason_code="relationship", note="renewal signed",
                        band="green", expires_on=date(2099, 12, 31))  # active whatever today is
    finally:
        wf.close()
    assert scored.export_to(url, table, NEXT) == 3
    rows = _rows("postgresql+psycopg://postgres@127.0.0.1:5432/test", table)
    assert [(r["as_of"], r["account_id"]) for r in rows] == [
        (DAY, "A1"), (DAY, "A2"), (DAY, "A3"), (NEXT, "A1"), (NEXT, "A2"), (NEXT, "A3")]
    a3 = {r["as_of"]: r for r in rows if r["account_id"] == "A3"}
    assert (a3[DAY]["band"], a3[NEXT]["band"], a3[NEXT]["system_band"]) == ("red", "green", "red")
    assert a3[NEXT]["score"] is None or isinstance(a3[NEXT]["score"], float)
    assert isinstance(a3[DAY]["score"], float) and a3[DAY]["change_7d"] is None
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        cols = {c["name"]: str(c["type"]) for c in sa.inspect(engine).get_columns("health_scores",
                                                                                  schema=schema)}
        pk = sa.inspect(engine).get_pk_constraint("health_scores", schema=schema)["constrained_columns"]
    finally:
        engine.dispose()
    assert (cols["as_of"], cols["score"], cols["change_30d"], cols["band"]) == (
        "DATE", "DOUBLE PRECISION", "DOUBLE PRECISION", "TEXT")
    assert sorted(pk) == ["account_id", "as_of"]


def test_bad_targets_say_what_to_fix_and_write_nothing(scored: Project, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    assert scored.export_to(db, "scores", DAY) == 3
    with pytest.raises(HealthScoreError) as err:
        scored.export_to(db, "scores; drop table x", DAY)
    assert err.value.message == ("--table: 'scores; drop table x' is not a table name. Write NAME "
                                 "or SCHEMA.NAME (letters, digits and _).")
    with pytest.raises(HealthScoreError) as err:
        scored.export_to("postgresql://u:${NO_SUCH_PASSWORD_VAR}@127.0.0.1/test", "scores", DAY)
    assert err.value.message == "--to: the environment variable NO_SUCH_PASSWORD_VAR is not set."
    with pytest.raises(HealthScoreError) as err:
        scored.export_to("postgresql://u:secret@127.0.0.1:1/test", "scores", DAY)
    assert "secret" not in err.value.message and "could not write scores" in err.value.message
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE narrow (account_id TEXT, as_of DATE, score REAL, "
                             "PRIMARY KEY (account_id, as_of))"))
    engine.dispose()
    with pytest.raises(HealthScoreError) as err:
        scored.export_to(db, "narrow", DAY)
    assert err.value.message.startswith(f"--to: {db}: table narrow has no column 'name' (of name, ")
    assert err.value.message.endswith("Add the columns, or drop the table to have it made again.")
    assert _rows(db, "narrow") == []
