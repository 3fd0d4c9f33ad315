"""Database sources (sources/sql.py): PostgreSQL and SQLite read as Arrow batches through their
ADBC drivers, from the SQLAlchemy URLs users write; quoted table names; clear errors."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from healthscore import Project
from healthscore.config.model import Source
from healthscore.config.specs import SourceSpec
from healthscore.errors import DataError
from healthscore.sources.sql import driver_uri, sql_text
from tests.conftest import PG_DSN
from tests.projects import AS_OF, project_yml, write_project
from tests.test_sources import TYPED_ACCOUNTS, TYPED_EVENTS, _sqlite_file, assert_same_scores


def _source(url: str, **spec: Any) -> Source:
    return Source("usage_events", SourceSpec(url=url, **spec), url, "sql", None)


@pytest.mark.parametrize(("url", "uri"), [
    ("postgresql+psycopg://cs:p%40ss%2Fw@db.local:5433/prod?sslmode=require",
     "postgresql://cs:p%40ss%2Fw@db.local:5433/prod?sslmode=require"),
    ("postgresql://cs@db/prod", "postgresql://cs@db/prod"),
    ("postgresql+psycopg2://db/prod", "postgresql://db/prod"),
])
def test_a_sqlalchemy_postgresql_url_is_translated_for_libpq(url: str, uri: str) -> None:
    assert driver_uri(_source(url, table="t")) == ("postgresql", uri)


def test_a_sqlite_url_opens_its_file_read_only(tmp_path: Path) -> None:
    db = tmp_path / "crm #1.db"
    db.write_bytes(b"")
    assert driver_uri(_source(f"sqlite:///{db}", table="t")) == (
        "sqlite", f"file:{tmp_path}/crm %231.db?mode=ro")


def test_a_missing_sqlite_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        driver_uri(_source(f"sqlite:///{tmp_path}/nope.db", table="t"))
    assert err.value.message == (
        f"healthscore.yml: sources.usage_events.url: no SQLite file at {tmp_path}/nope.db. "
        f"Check the path in sqlite:///{tmp_path}/nope.db: a relative path is read from the folder "
        f"healthscore runs in ('sqlite:////abs/path.db' for an absolute one).")


@pytest.mark.parametrize(("table", "sql"), [
    ("events", 'SELECT * FROM "events"'),
    ("Events", 'SELECT * FROM "Events"'),
    ("sales.Events", 'SELECT * FROM "sales"."Events"'),
    ('"odd name"', 'SELECT * FROM "odd name"'),
    ("x; DROP TABLE y", None),
])
def test_table_names_are_quoted(table: str, sql: str | None) -> None:
    source = _source("postgresql://db/prod", table=table)
    if sql is not None:
        assert sql_text(source, "postgres") == sql
        return
    with pytest.raises(DataError) as err:
        sql_text(source, "postgres")
    assert err.value.message == (
        "healthscore.yml: sources.usage_events.table: 'x; DROP TABLE y' is not a table name. "
        "Write it as NAME or SCHEMA.NAME.")


@pytest.fixture
def no_sqlalchemy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a PostgreSQL or SQLite source must not go through SQLAlchemy's row objects."""
    from healthscore.sources import sql

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a database source was read through SQLAlchemy")

    monkeypatch.setattr(sql, "_read_sqlalchemy", refuse)


def test_sqlite_reads_through_adbc(tmp_path: Path, no_sqlalchemy: None) -> None:
    db = tmp_path / "crm.sqlite"
    write_project(tmp_path, {
        "healthscore.yml": project_yml(f"accounts: {{url: 'sqlite:///{db}', table: crm_accounts}}\n"
                                       f"usage_events: {{url: 'sqlite:///{db}', table: events}}\n"),
        "crm.sqlite": _sqlite_file,
    })
    assert_same_scores(tmp_path)


def test_other_databases_are_read_through_sqlalchemy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the path of a database without an ADBC driver here (MySQL, SQL Server...), on SQLite
    from healthscore.sources import sql

    monkeypatch.setattr(sql, "driver_uri", lambda source: ("other", source.location))
    monkeypatch.setattr(sql, "BATCH_ROWS", 2)  # several batches, one with a NULL-only column
    db = tmp_path / "crm.sqlite"
    write_project(tmp_path, {
        "healthscore.yml": project_yml(f"accounts: {{url: 'sqlite:///{db}', table: crm_accounts}}\n"
                                       f"usage_events: {{url: 'sqlite:///{db}', table: events}}\n"),
        "crm.sqlite": _sqlite_file,
    })
    assert_same_scores(tmp_path)


def test_sqlite_column_whose_type_changes_after_the_first_batch(tmp_path: Path) -> None:
    # the driver types a column from its first 1,024 rows: a text value after them is read
    # again as text, and the one bad cell of an optional column is left empty
    db = tmp_path / "crm.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE accounts (account_id TEXT, start_date TEXT)")
    con.execute("INSERT INTO accounts VALUES ('A1', '2024-01-01')")
    con.execute("CREATE TABLE events (account_id TEXT, event TEXT, timestamp TEXT, value)")
    rows = [("A1", "login", "2025-02-10", i) for i in range(1500)] + [
        ("A1", "login", "2025-02-11", "n/a"), ("A1", "login", "2025-02-12", 2.25)]
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    write_project(tmp_path, {
        "healthscore.yml": project_yml(f"accounts: {{url: 'sqlite:///{db}', table: accounts}}\n"
                                       f"usage_events: {{url: 'sqlite:///{db}', table: events}}\n"),
        "measures/usage.yml": "value_sum: {type: sum, entity: usage_events, column: value, "
                              "window: 30d, scheme: {type: linear, low: 0, high: 2}}\n",
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {value_sum: 100}}}\n",
    })
    result = Project.load(tmp_path).run(as_of=AS_OF)
    h = result.health["usage_events"]
    assert (h.rows_read, h.rows_rejected, h.blanked) == (1502, 0, {"unparseable float in value": 1})
    frame = result.to_pandas()
    assert frame["m__value_sum"].tolist() == [sum(range(1500)) + 2.25]


@pytest.mark.postgres
def test_postgresql_reads_through_adbc_with_a_quoted_mixed_case_table(
        tmp_path: Path, pg_url: str, pg_table: Any, no_sqlalchemy: None) -> None:
    import psycopg

    accounts = pg_table("accounts", "account_id text, name text, segment text, start_date date",
                        TYPED_ACCOUNTS)
    events = f"Events_{uuid.uuid4().hex[:8]}"
    conn = psycopg.connect(PG_DSN, autocommit=True)
    try:
        conn.execute(f'CREATE TABLE public."{events}" (account_id text, user_id text, event text, '
                     f'"timestamp" timestamptz, value numeric, note text)')
        with conn.cursor() as cur:
            cur.executemany(f'INSERT INTO public."{events}" VALUES (%s, %s, %s, %s, 1.25, NULL)',
                            TYPED_EVENTS)
        write_project(tmp_path, {"healthscore.yml": project_yml(
            f"accounts: {{url: '{pg_url}', table: {accounts}}}\n"
            f"usage_events: {{url: '{pg_url}', table: public.{events}}}\n")})
        assert_same_scores(tmp_path)
        write_project(tmp_path, {"healthscore.yml": project_yml(
            f"accounts: {{url: '{pg_url}', table: {accounts}}}\n"
            f"usage_events: {{url: '{pg_url}', table: {events.lower()}}}\n")})
        with pytest.raises(DataError) as err:
            Project.load(tmp_path).check()
        assert err.value.message == (
            f"healthscore.yml: sources.usage_events: cannot read {pg_url} table "
            f"{events.lower()}: Failed to prepare query: "
            f'ERROR:  relation "{events.lower()}" does not exist')
    finally:
        conn.execute(f'DROP TABLE IF EXISTS public."{events}"')
        conn.close()


@pytest.mark.postgres
def test_postgresql_table_name_in_the_wrong_case_says_so(
        tmp_path: Path, pg_url: str, pg_table: Any) -> None:
    accounts = pg_table("accounts", "account_id text, name text, segment text, start_date date",
                        TYPED_ACCOUNTS)
    write_project(tmp_path, {"healthscore.yml": project_yml(
        f"accounts: {{url: '{pg_url}', table: {accounts.upper()}}}\n"
        f"usage_events: {{path: data/usage_events.csv}}\n")})
    with pytest.raises(DataError) as err:
        Project.load(tmp_path).check()
    assert err.value.message.endswith(
        f"Table names are read as written, case and all: check '{accounts.upper()}'.")

