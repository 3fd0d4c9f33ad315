"""The exact text of every DataError, and that a failed run writes nothing to the state folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from healthscore import Project
from healthscore.errors import DataError
from tests.projects import (
    AS_OF,
    EVENT_COLUMNS,
    EVENTS,
    PROJECT_YML,
    csv_text,
    project_yml,
    write_project,
    xlsx_file,
)


def sources(events: str, accounts: str = "{path: data/accounts.csv}") -> str:
    return project_yml(f"accounts: {accounts}\nusage_events: {events}\n")


def fail(root: Path) -> DataError:
    with pytest.raises(DataError) as excinfo:
        Project.load(root).run(as_of=AS_OF)
    return excinfo.value


def state_files(root: Path) -> list[str]:
    state = root / ".healthscore"
    return sorted(str(p.relative_to(root)) for p in state.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- columns


def test_missing_required_column_lists_the_columns_found(tmp_path: Path) -> None:
    write_project(tmp_path, {"data/usage_events.csv": "account_id,Event Type,timestamp\n"
                                                      "A1,login,2025-02-10\n"})
    err = fail(tmp_path)
    assert str(err) == (
        f"healthscore.yml: sources.usage_events: {tmp_path / 'data/usage_events.csv'} has no "
        f"column 'event', needed for usage_events.event. Map it with 'columns: {{event: <your "
        f"column name>}}'. Columns found: account_id, Event Type, timestamp."
    )
    assert err.details == []


def test_missing_mapped_column_names_the_mapping(tmp_path: Path) -> None:
    # the text used to say "has no column 'Event' (mapped from 'Event')"
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/usage_events.csv, columns: {event: Event}}")})
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.usage_events: {tmp_path / 'data/usage_events.csv'} has no "
        f"column 'Event' (from 'columns: {{event: Event}}'), needed for usage_events.event. Map "
        f"it with 'columns: {{event: <your column name>}}'. Columns found: account_id, user_id, "
        f"event, timestamp."
    )


def test_missing_mapped_optional_column_is_an_error_too(tmp_path: Path) -> None:
    # a typo in a mapping of an optional column used to leave the column silently empty
    write_project(tmp_path, {"healthscore.yml": sources(
        "{path: data/usage_events.csv}", "{path: data/accounts.csv, columns: {segment: Tier}}")})
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.accounts: {tmp_path / 'data/accounts.csv'} has no column "
        f"'Tier' (from 'columns: {{segment: Tier}}'), needed for accounts.segment. Map it with "
        f"'columns: {{segment: <your column name>}}'. Columns found: account_id, name, segment, "
        f"start_date."
    )


# ----------------------------------------------------------------------------- rejected rows

TOO_MANY = csv_text(EVENT_COLUMNS, [
    *EVENTS,
    ("A9", "u9", "login", "2025-02-10"),  # row 7
    ("A1", "u1", "login", "yesterday"),  # row 8
])


def test_more_rejected_rows_than_allowed(tmp_path: Path) -> None:
    write_project(tmp_path, {"data/usage_events.csv": TOO_MANY})
    err = fail(tmp_path)
    assert err.message == (
        f"healthscore.yml: sources.usage_events: 2 of 8 rows (25.0%) in "
        f"{tmp_path / 'data/usage_events.csv'} are invalid (unparseable timestamp in timestamp: "
        f"1, unknown account_id: 1), more than the allowed 5%. Fix the data or raise "
        f"'max_rejected_share'. First problems:"
    )
    assert err.details == [
        "data/usage_events.csv row 8, column 'timestamp': unparseable timestamp in timestamp "
        "(value 'yesterday')",
        "data/usage_events.csv row 7, column 'account_id': unknown account_id (value 'A9')",
    ]
    assert str(err) == "\n".join([err.message, *(f"  - {d}" for d in err.details)])


@pytest.mark.parametrize("where", ["source", "settings"])
def test_max_rejected_share_can_be_raised(tmp_path: Path, where: str) -> None:
    text = (sources("{path: data/usage_events.csv, max_rejected_share: 0.25}")
            if where == "source" else
            PROJECT_YML + "settings: {max_rejected_share: 0.25}\n")
    write_project(tmp_path, {"data/usage_events.csv": TOO_MANY, "healthscore.yml": text})
    result = Project.load(tmp_path).run(as_of=AS_OF)
    assert result.health["usage_events"].rows_rejected == 2


def test_source_share_overrides_the_setting(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "data/usage_events.csv": TOO_MANY,
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\n"
            "usage_events: {path: data/usage_events.csv, max_rejected_share: 0.1}\n",
            "scorecards: [default]\nsettings: {max_rejected_share: 0.5}"),
    })
    assert "more than the allowed 10%." in fail(tmp_path).message


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize(("path", "shown"), [
    ("data/events.csv", "data/events.csv"),
    ("'data/events/*.parquet'", "data/events/*.parquet"),
    ("data/empty/", "data/empty"),
], ids=["file", "glob", "empty-folder"])
def test_no_file_at_path(tmp_path: Path, path: str, shown: str) -> None:
    write_project(tmp_path, {"healthscore.yml": sources(f"{{path: {path}}}")})
    (tmp_path / "data/empty").mkdir()
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.usage_events.path: no file at {tmp_path / shown}. "
        f"Check the path (relative to the project folder)."
    )


def test_missing_sheet(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/events.xlsx, sheet: Usage}"),
        "data/events.xlsx": xlsx_file({"Events": (EVENT_COLUMNS, EVENTS), "Notes": ([], [])}),
    })
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.usage_events.sheet: no sheet 'Usage' in "
        f"{tmp_path / 'data/events.xlsx'}. Sheets: Events, Notes."
    )


def test_unreadable_excel_file(tmp_path: Path) -> None:
    write_project(tmp_path, {"healthscore.yml": sources("{path: data/events.xlsx}"),
                             "data/events.xlsx": b"not a workbook"})
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.usage_events: cannot read {tmp_path / 'data/events.xlsx'}: "
        f"File is not a zip file"
    )


# ----------------------------------------------------------------------------- databases


def test_duckdb_file_needs_table_or_query(tmp_path: Path) -> None:
    write_project(tmp_path, {"healthscore.yml": sources("{path: data/crm.duckdb}"),
                             "data/crm.duckdb": b""})
    assert str(fail(tmp_path)) == (
        "healthscore.yml: sources.usage_events: a DuckDB file needs 'table' or 'query'."
    )


def test_unreadable_duckdb_file(tmp_path: Path) -> None:
    db = tmp_path / "data/crm.duckdb"
    write_project(tmp_path, {"healthscore.yml": sources("{path: data/crm.duckdb, table: events}"),
                             "data/crm.duckdb": b"not a database"})
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.usage_events: cannot read {db}: IO Error: The file \"{db}\" "
        f"exists, but it is not a valid DuckDB database file!"
    )


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events (account_id TEXT, user_id TEXT, event TEXT, timestamp TEXT)")
    con.commit()
    con.close()


@pytest.mark.parametrize(("read", "driver_says"), [
    ("table: usage", "table usage: [SQLite] Failed to prepare query: no such table: usage"),
    ("query: 'SELECT account_id, evnt FROM events'",
     "query: [SQLite] Failed to prepare query: no such column: evnt"),
    ("query: 'SELEKT * FROM events'",
     "query: [SQLite] Failed to prepare query: near \"SELEKT\": syntax error"),
], ids=["table", "column", "syntax"])
def test_unreadable_sqlite_query(tmp_path: Path, read: str, driver_says: str) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    write_project(tmp_path, {"healthscore.yml": sources(f"{{url: '{url}', {read}}}"),
                             "crm.sqlite": _sqlite})
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.usage_events: cannot read {url} {driver_says}"
    )


def test_unreadable_sqlite_database(tmp_path: Path) -> None:
    # a missing file is named (SQLite would make an empty one and then find no table)
    path = tmp_path / "no/such/folder/crm.sqlite"
    url = f"sqlite:///{path}"
    write_project(tmp_path, {"healthscore.yml": sources(f"{{url: '{url}', table: events}}")})
    assert str(fail(tmp_path)) == (
        f"healthscore.yml: sources.usage_events.url: no SQLite file at {path}. Check the path in "
        f"{url}: a relative path is read from the folder healthscore runs in "
        f"('sqlite:////abs/path.db' for an absolute one)."
    )


@pytest.mark.parametrize(("url", "shown"), [
    ("nosuchdb://analyst:s3cr3t@db.example.com:5432/crm",
     "nosuchdb://analyst:***@db.example.com:5432/crm"),
    ("nosuchdb://db.example.com/crm?user=analyst&password=s3cr3t&sslmode=require",
     "nosuchdb://db.example.com/crm?user=analyst&password=***&sslmode=require"),
    ("nosuchdb://analyst@db.example.com/crm", "nosuchdb://analyst@db.example.com/crm"),
], ids=["password", "password-in-query", "no-password"])
def test_database_password_is_hidden(tmp_path: Path, url: str, shown: str) -> None:
    write_project(tmp_path, {"healthscore.yml": sources(f"{{url: '{url}', table: events}}")})
    err = fail(tmp_path)
    assert str(err) == (
        f"healthscore.yml: sources.usage_events: cannot read {shown}: "
        f"Can't load plugin: sqlalchemy.dialects:nosuchdb"
    )
    assert "s3cr3t" not in str(err) and "w0rd" not in str(err)


def test_database_password_with_an_at_sign(tmp_path: Path) -> None:
    # SQLAlchemy ends the password at the first '@' and used to show the rest as a "port"
    # ("invalid literal for int() with base 10: 'w0rd@db.example.com'")
    url = "postgresql+psycopg://analyst:p@ss:w0rd@db.example.com/crm"
    write_project(tmp_path, {"healthscore.yml": sources(f"{{url: '{url}', table: events}}")})
    assert str(fail(tmp_path)) == (
        "healthscore.yml: sources.usage_events.url: the user name or password in "
        "postgresql+psycopg://analyst:***@db.example.com/crm contains '@'. Write it as %40 in "
        "a URL."
    )


@pytest.mark.postgres
def test_unreadable_postgresql_table_hides_the_password(tmp_path: Path, pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:s3cr3t@")  # trust auth: any password works
    write_project(tmp_path, {"healthscore.yml": sources(
        f"{{url: '{url}', table: hs_no_such_table_x}}")})
    err = fail(tmp_path)
    assert str(err) == (
        "healthscore.yml: sources.usage_events: cannot read "
        "postgresql+psycopg://postgres:***@127.0.0.1:5432/test table hs_no_such_table_x: "
        "Failed to prepare query: ERROR:  relation \"hs_no_such_table_x\" does not exist"
    )


@pytest.mark.postgres
def test_unreachable_postgresql_server_hides_the_password(tmp_path: Path, pg_url: str) -> None:
    url = "postgresql+psycopg://postgres:s3cr3t@127.0.0.1:1/test"  # nothing listens on port 1
    write_project(tmp_path, {"healthscore.yml": sources(f"{{url: '{url}', table: events}}")})
    message = str(fail(tmp_path))
    assert message.startswith(
        "healthscore.yml: sources.usage_events: cannot read "
        "postgresql+psycopg://postgres:***@127.0.0.1:1/test: [libpq] Failed to connect: "
        "connection to server at \"127.0.0.1\", port 1 failed: Connection refused"
    )
    assert "s3cr3t" not in message


# ----------------------------------------------------------------------------- state folder

FAILURES: dict[str, dict[str, Any]] = {
    "missing-column": {"data/usage_events.csv": "account_id,timestamp\nA1,2025-02-10\n"},
    "too-many-rejected": {"data/usage_events.csv": TOO_MANY},
    "no-file": {"data/usage_events.csv": None},
    "unreadable-database": {"healthscore.yml": sources("{url: 'sqlite:///nowhere/x.db', "
                                                       "table: t}")},
}


@pytest.mark.parametrize("files", FAILURES.values(), ids=FAILURES.keys())
def test_failed_run_writes_nothing(tmp_path: Path, files: dict[str, Any]) -> None:
    write_project(tmp_path, files)
    fail(tmp_path)
    assert state_files(tmp_path) == []
    assert Project.load(tmp_path).last_run() is None


def test_failed_run_keeps_the_previous_snapshots(tmp_path: Path) -> None:
    write_project(tmp_path)
    Project.load(tmp_path).run(as_of=AS_OF)
    before = {f: (tmp_path / f).read_bytes() for f in state_files(tmp_path)}
    assert any(f.startswith(".healthscore/snapshots/as_of=2025-03-01/") for f in before)
    (tmp_path / "data/usage_events.csv").write_text(TOO_MANY)
    fail(tmp_path)
    assert {f: (tmp_path / f).read_bytes() for f in state_files(tmp_path)} == before


def test_failed_run_creates_no_state_folder(tmp_path: Path) -> None:
    write_project(tmp_path, {"data/usage_events.csv": None})
    fail(tmp_path)
    assert not (tmp_path / ".healthscore").exists()


# ----------------------------------------------------------------------------- validation


def test_validate_without_any_churn_says_so_and_how_to_give_it(tmp_path: Path) -> None:
    """No churn_date, no outcomes: the message names the missing data, not the date range,
    and comes before anything is scored."""
    write_project(tmp_path)
    seen: list[str] = []
    with pytest.raises(DataError) as excinfo:
        Project.load(tmp_path).validate(progress=seen.append)
    assert str(excinfo.value) == (
        "validate: the data records no churn, so there is nothing to check the score against: "
        "no account in the accounts source (data/accounts.csv) has a churn_date. To validate "
        "against churn, add a churn_date column to the accounts source (the day each lost "
        "account churned, blank for the others), or an 'outcomes' source with rows of kind "
        "churn (account_id, kind, occurred_at), or a 'subscriptions' source (churn is derived "
        "from its periods). See docs/validation.md.")
    assert not any(step.startswith("scoring") for step in seen)


def test_validate_with_outcomes_but_none_of_the_kind_names_the_outcomes_source(tmp_path: Path) -> None:
    outcomes = "account_id,kind,occurred_at\nA1,churn,2025-02-01\n"
    write_project(tmp_path, {
        "healthscore.yml": project_yml("accounts: {path: data/accounts.csv}\n"
                                       "usage_events: {path: data/usage_events.csv}\n"
                                       "outcomes: {path: data/outcomes.csv}\n"),
        "data/outcomes.csv": outcomes})
    with pytest.raises(DataError) as excinfo:
        Project.load(tmp_path).validate(outcome="renewal")
    assert str(excinfo.value) == (
        "validate: the data records no renewal, so there is nothing to check the score against: "
        "the outcomes source (data/outcomes.csv) has no row of kind renewal. To validate "
        "against renewal, add an 'outcomes' source with rows of kind renewal (account_id, kind, "
        "occurred_at), or a 'subscriptions' source. See docs/validation.md.")
