"""The same small dataset read from every kind of source gives the same scores; data health."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from healthscore import Project
from healthscore.errors import ConfigError, DataError
from tests.projects import (
    ACCOUNT_COLUMNS,
    ACCOUNTS,
    AS_OF,
    EVENT_COLUMNS,
    EVENTS,
    PROJECT_YML,
    csv_text,
    parquet_file,
    project_yml,
    write_project,
    xlsx_file,
)

# account_id, m__logins_30, s__logins_30, score, band, coverage
EXPECTED = [
    ("A1", 2.0, 100.0, 100.0, "green", 100.0),
    ("A2", 1.0, 50.0, 50.0, "yellow", 100.0),
    ("A3", 0.0, 0.0, 0.0, "red", 100.0),
]
COLUMNS = ["account_id", "m__logins_30", "s__logins_30", "score", "band", "coverage"]

# the same rows with real dates and times instead of text
TYPED_ACCOUNTS = [(a, n, s, date.fromisoformat(d)) for a, n, s, d in ACCOUNTS]
TYPED_EVENTS = [(a, u, e, datetime.fromisoformat(t)) for a, u, e, t in EVENTS]


def run(root: Path) -> tuple[list[tuple[Any, ...]], Any]:
    result = Project.load(root).run(as_of=AS_OF)
    frame = result.to_pandas()
    assert list(frame["as_of"].astype(str).unique()) == [AS_OF]
    rows = sorted(frame[COLUMNS].itertuples(index=False, name=None))
    return rows, result


def assert_same_scores(root: Path) -> None:
    rows, result = run(root)
    assert rows == EXPECTED
    health = {k: (h.rows_read, h.rows_rejected, h.reasons) for k, h in result.health.items()}
    assert health == {"accounts": (3, 0, {}), "usage_events": (6, 0, {})}
    assert result.health["usage_events"].newest == date(2025, 2, 25)
    assert result.warnings == []


def sources(accounts: str, events: str) -> str:
    return project_yml(f"accounts: {accounts}\nusage_events: {events}\n")


# ----------------------------------------------------------------------------- files


def test_csv(mini: Path) -> None:
    assert_same_scores(mini)


def _csv_parts(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "part-1.csv").write_text(csv_text(EVENT_COLUMNS, EVENTS[:3]))
    (folder / "part-2.csv").write_text(csv_text(EVENT_COLUMNS, EVENTS[3:]))


@pytest.mark.parametrize("events", [
    "{path: 'data/events/*.csv'}",
    "{path: data/events/, format: csv}",
], ids=["glob", "folder"])
def test_csv_parts_are_all_read(tmp_path: Path, events: str) -> None:
    # regression: only the first file of a glob or folder of CSV parts used to be read
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.csv}", events),
        "data/events": _csv_parts,
    })
    assert_same_scores(tmp_path)


def test_file_names_are_used_as_they_are(tmp_path: Path) -> None:
    # users never rename files: spaces, brackets and parentheses in a name are fine
    # (regression: '[final]' used to be read as a glob pattern -> "no file at")
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: 'data/CRM export [final] (2).csv'}",
                                   "{path: 'data/Usage Events 2025.csv'}"),
        "data/CRM export [final] (2).csv": csv_text(ACCOUNT_COLUMNS, ACCOUNTS),
        "data/Usage Events 2025.csv": csv_text(EVENT_COLUMNS, EVENTS),
    })
    assert_same_scores(tmp_path)


def test_parquet_file_with_typed_columns(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.parquet}", "{path: data/events.parquet}"),
        "data/accounts.parquet": parquet_file(ACCOUNT_COLUMNS, TYPED_ACCOUNTS),
        "data/events.parquet": parquet_file(EVENT_COLUMNS, TYPED_EVENTS),
    })
    assert_same_scores(tmp_path)


def test_parquet_file_with_text_columns(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.csv}", "{path: data/events.parquet}"),
        "data/events.parquet": parquet_file(EVENT_COLUMNS, EVENTS),
    })
    assert_same_scores(tmp_path)


def _parquet_parts(folder: Path) -> None:
    (folder / "month=2025-02").mkdir(parents=True)
    parquet_file(EVENT_COLUMNS, TYPED_EVENTS[:2])(folder / "part-0.parquet")
    parquet_file(EVENT_COLUMNS, TYPED_EVENTS[2:5])(folder / "part-1.parquet")
    parquet_file(EVENT_COLUMNS, TYPED_EVENTS[5:])(folder / "month=2025-02" / "part-2.parquet")
    (folder / "_SUCCESS").write_text("")


@pytest.mark.parametrize("path", ["data/events/", "data/events", "'data/events/*.parquet'"])
def test_parquet_folder_of_parts(tmp_path: Path, path: str) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.csv}", f"{{path: {path}}}"),
        "data/events": _parquet_parts,
    })
    if "*" in path:  # a glob does not descend into sub-folders: move the nested part up
        nested = tmp_path / "data/events/month=2025-02/part-2.parquet"
        nested.rename(tmp_path / "data/events/part-2.parquet")
    assert_same_scores(tmp_path)


# ----------------------------------------------------------------------------- Excel


def _workbook(events: list[tuple[Any, ...]], first: str = "Events") -> Callable[[Path], None]:
    sheets = {"Events": (EVENT_COLUMNS, events), "Notes": (["exported by"], [("the CRM",)])}
    return xlsx_file({first: sheets[first], **sheets})


@pytest.mark.parametrize("typed", [True, False], ids=["date-cells", "text-dates"])
def test_excel_first_sheet(tmp_path: Path, typed: bool) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.xlsx}", "{path: data/events.xlsx}"),
        "data/accounts.xlsx": xlsx_file(
            {"Accounts": (ACCOUNT_COLUMNS, TYPED_ACCOUNTS if typed else ACCOUNTS)}),
        "data/events.xlsx": _workbook(TYPED_EVENTS if typed else EVENTS),
    })
    assert_same_scores(tmp_path)


def test_excel_date_cells_are_real_dates(tmp_path: Path) -> None:
    # the fixture really writes date cells, not text that looks like a date
    import openpyxl

    xlsx_file({"Accounts": (ACCOUNT_COLUMNS, TYPED_ACCOUNTS)})(tmp_path / "a.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "a.xlsx").active
    assert sheet["D2"].is_date and isinstance(sheet["D2"].value, datetime)


@pytest.mark.parametrize("typed", [True, False], ids=["date-cells", "text-dates"])
def test_excel_sheet_selection(tmp_path: Path, typed: bool) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.csv}",
                                   "{path: data/crm.xlsx, sheet: Events}"),
        "data/crm.xlsx": _workbook(TYPED_EVENTS if typed else EVENTS, first="Notes"),
    })
    assert_same_scores(tmp_path)


def test_excel_missing_sheet(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.csv}",
                                   "{path: data/crm.xlsx, sheet: Usage}"),
        "data/crm.xlsx": _workbook(EVENTS, first="Notes"),
    })
    with pytest.raises(DataError) as excinfo:
        Project.load(tmp_path).run(as_of=AS_OF)
    assert str(excinfo.value) == (
        f"healthscore.yml: sources.usage_events.sheet: no sheet 'Usage' in "
        f"{tmp_path / 'data/crm.xlsx'}. Sheets: Notes, Events."
    )


# ----------------------------------------------------------------------------- databases


def _duckdb_file(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE TABLE crm_accounts (account_id VARCHAR, name VARCHAR, "
                    "segment VARCHAR, start_date DATE)")
        con.executemany("INSERT INTO crm_accounts VALUES (?, ?, ?, ?)", TYPED_ACCOUNTS)
        con.execute("CREATE TABLE events (account_id VARCHAR, user_id VARCHAR, event VARCHAR, "
                    "timestamp TIMESTAMP)")
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", TYPED_EVENTS)
    finally:
        con.close()


@pytest.mark.parametrize("events", [
    "{path: data/crm.duckdb, format: duckdb, table: events}",
    "{path: data/crm.duckdb, query: \"SELECT *, NULL AS module FROM events WHERE event <> ''\"}",
], ids=["table", "query"])
def test_duckdb_file(tmp_path: Path, events: str) -> None:
    # the query also returns an all-NULL column (regression: DuckDB refused NULL-typed columns)
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/crm.duckdb, format: duckdb, table: crm_accounts}",
                                   events),
        "data/crm.duckdb": _duckdb_file,
    })
    assert_same_scores(tmp_path)


def _sqlite_file(path: Path) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE crm_accounts (account_id TEXT, name TEXT, segment TEXT, "
                    "start_date TEXT)")
        con.executemany("INSERT INTO crm_accounts VALUES (?, ?, ?, ?)", ACCOUNTS)
        con.execute("CREATE TABLE events (account_id TEXT, user_id TEXT, event TEXT, "
                    "timestamp TEXT, module TEXT)")
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, NULL)", EVENTS)
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize("events", [
    "table: events",
    "query: \"SELECT account_id, user_id, event, timestamp FROM events WHERE event != ''\"",
], ids=["table", "query"])
def test_sqlite_url(tmp_path: Path, events: str) -> None:
    db = tmp_path / "crm.sqlite"
    write_project(tmp_path, {
        "healthscore.yml": sources(f"{{url: 'sqlite:///{db}', table: crm_accounts}}",
                                   f"{{url: 'sqlite:///{db}', {events}}}"),
        "crm.sqlite": _sqlite_file,
    })
    assert_same_scores(tmp_path)


def test_sqlite_integer_ids_with_nulls_and_mixed_types(tmp_path: Path) -> None:
    # regression: read through pandas, an integer column with a NULL became float
    # (1001 -> '1001.0', so every event had an unknown account) and a column of mixed
    # types (SQLite allows it) failed the whole source
    db = tmp_path / "crm.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE accounts (account_id INTEGER, start_date TEXT)")
    con.executemany("INSERT INTO accounts VALUES (?, ?)", [(1001, "2024-01-01"),
                                                          (1002, "2024-01-01")])
    con.execute("CREATE TABLE events (account_id INTEGER, event TEXT, timestamp TEXT, value)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [
        (1001, "login", "2025-02-10", 1.5), (1001, "login", "2025-02-11", "n/a"),
        (None, "login", "2025-02-11", None), (1002, "login", "2025-02-12", 2),
    ])
    con.commit()
    con.close()
    write_project(tmp_path, {"healthscore.yml": sources(
        f"{{url: 'sqlite:///{db}', table: accounts}}",
        f"{{url: 'sqlite:///{db}', table: events, max_rejected_share: 0.5}}")})
    rows, result = run(tmp_path)
    # the login with value 'n/a' still counts: only its (optional) value cell is left empty
    assert [r[:3] for r in rows] == [("1001", 2.0, 100.0), ("1002", 1.0, 50.0)]
    h = result.health["usage_events"]
    assert (h.rows_read, h.rows_rejected) == (4, 1)
    assert h.reasons == {"missing account_id": 1}
    assert h.blanked == {"unparseable float in value": 1}
    assert h.examples == [
        f"sqlite:///{db} table events row 3, column 'account_id': missing account_id (value None)",
    ]
    assert h.notes == [
        f"sqlite:///{db} table events: 1 cell(s) could not be read and were left empty, their rows "
        f"kept (unparseable float in value: 1). First: row 2, column 'value' (value 'n/a').",
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["table", "query"])
def test_postgresql_url(tmp_path: Path, pg_url: str, pg_table: Any, how: str) -> None:
    accounts = pg_table("accounts", "account_id text, name text, segment text, start_date date, "
                        "licensed_seats integer", [(*a, None) for a in TYPED_ACCOUNTS])
    events = pg_table("events", "account_id text, user_id text, event text, "
                      "\"timestamp\" timestamp, value numeric, module text",
                      [(*e, None, None) for e in TYPED_EVENTS])
    read = f"table: {events}" if how == "table" else (
        f"query: \"SELECT account_id, user_id, event, timestamp, value FROM {events} "
        f"WHERE event IS NOT NULL\"")
    write_project(tmp_path, {"healthscore.yml": sources(
        f"{{url: '{pg_url}', table: {accounts}}}", f"{{url: '{pg_url}', {read}}}")})
    assert_same_scores(tmp_path)


# ----------------------------------------------------------------------------- column mapping

MAPPED_ACCOUNTS = csv_text(["Account ID", "Company", "Tier", "Customer Since"], ACCOUNTS)
# the file also has a column literally called 'event' (junk): the mapping wins
MAPPED_EVENTS = csv_text(["Acct", "User", "Action", "When", "event"],
                         [(*e, "junk") for e in EVENTS])
MAPPING = ("columns: {account_id: 'Account ID', name: Company, segment: Tier, "
           "start_date: 'Customer Since'}")
EVENT_MAPPING = "columns: {account_id: Acct, user_id: User, event: Action, timestamp: When}"


def test_column_mapping_csv(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources(f"{{path: data/Accounts.csv, {MAPPING}}}",
                                   f"{{path: data/Events.csv, {EVENT_MAPPING}}}"),
        "data/Accounts.csv": MAPPED_ACCOUNTS,
        "data/Events.csv": MAPPED_EVENTS,
    })
    assert_same_scores(tmp_path)
    frame = Project.load(tmp_path).scores(AS_OF).to_pandas()
    assert sorted(zip(frame["account_id"], frame["name"], frame["segment"], strict=True)) == [
        ("A1", "Acme", "SMB"), ("A2", "Globex", "Enterprise"), ("A3", "Initech", "SMB")]


def test_column_mapping_excel(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.csv}",
                                   f"{{path: data/Events.xlsx, {EVENT_MAPPING}}}"),
        "data/Events.xlsx": xlsx_file({"Sheet1": (["Acct", "User", "Action", "When"],
                                                  TYPED_EVENTS)}),
    })
    assert_same_scores(tmp_path)


# ----------------------------------------------------------------------------- data health

BAD_ACCOUNTS = csv_text([*ACCOUNT_COLUMNS, "arr"], [
    (*ACCOUNTS[0], 100), (*ACCOUNTS[1], 200), (*ACCOUNTS[2], 300),
    ("A4", "Umbrella", "SMB", "2024-03-01", 400),
    ("A1", "Acme again", "SMB", "2024-02-01", 500),  # row 5: duplicate account_id
    ("A5", "Hooli", "SMB", "01/02/2024", 600),  # row 6: unparseable date
    ("", "Nobody", "SMB", "2024-01-01", 700),  # row 7: missing account_id
    ("A6", "Vandelay", "SMB", "2024-01-01", -5),  # row 8: negative arr
])
BAD_EVENTS = csv_text(EVENT_COLUMNS, [
    *EVENTS,
    ("A9", "u9", "login", "2025-02-10 09:00:00"),  # row 7: unknown account_id
    ("A1", "u1", "login", "last tuesday"),  # row 8: unparseable timestamp
    ("A1", "u1", "", "2025-02-10 09:00:00"),  # row 9: missing event
    ("A5", "u5", "login", "2025-02-10 09:00:00"),  # row 10: its account was rejected
])
INVOICES = csv_text(["invoice_id", "account_id", "issued_at", "due_at", "amount"], [
    ("I1", "A1", "2025-01-01", "2025-01-31", 100),
    ("I2", "A2", "2025-01-01", "2025-01-31", -20),  # row 2: negative amount
    ("I1", "A2", "2025-01-05", "2025-02-04", 30),  # row 3: duplicate invoice_id
    ("I3", "A3", "2025-01-05", "", 30),  # row 4: missing due_at
])


def test_data_health_reports_rejected_rows_with_reasons_and_row_numbers(tmp_path: Path) -> None:
    write_project(tmp_path, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\n"
            "usage_events: {path: data/usage_events.csv}\n"
            "invoices: {path: data/invoices.csv, max_rejected_share: 1}\n",
            "scorecards: [default]\nsettings: {max_rejected_share: 0.5}"),
        "data/accounts.csv": BAD_ACCOUNTS,
        "data/usage_events.csv": BAD_EVENTS,
        "data/invoices.csv": INVOICES,
    })
    rows, result = run(tmp_path)
    # rejected rows are left out; the first A1 row is kept, A5 and the rest are not scored
    assert rows == [*EXPECTED, ("A4", 0.0, 0.0, 0.0, "red", 100.0)]

    accounts = result.health["accounts"]
    assert (accounts.rows_read, accounts.rows_rejected, accounts.rows_kept) == (8, 4, 4)
    assert accounts.reasons == {
        "missing account_id": 1, "unparseable date in start_date": 1, "negative arr": 1,
        "duplicate account_id": 1,
    }
    assert accounts.examples == [
        "data/accounts.csv row 7, column 'account_id': missing account_id (value None)",
        "data/accounts.csv row 6, column 'start_date': unparseable date in start_date "
        "(value '01/02/2024')",
        "data/accounts.csv row 8, column 'arr': negative arr (value '-5')",
        "data/accounts.csv row 5, column 'account_id': duplicate account_id (value 'A1'; "
        "row 1 is kept)",
    ]
    events = result.health["usage_events"]
    assert (events.rows_read, events.rows_rejected) == (10, 4)
    assert events.reasons == {
        "missing event": 1, "unparseable timestamp in timestamp": 1, "unknown account_id": 2,
    }
    assert events.examples == [
        "data/usage_events.csv row 9, column 'event': missing event (value None)",
        "data/usage_events.csv row 8, column 'timestamp': unparseable timestamp in timestamp "
        "(value 'last tuesday')",
        "data/usage_events.csv row 7, column 'account_id': unknown account_id (value 'A9')",
        "data/usage_events.csv row 10, column 'account_id': unknown account_id (value 'A5')",
    ]
    invoices = result.health["invoices"]
    assert (invoices.rows_read, invoices.rows_rejected) == (4, 3)
    assert invoices.reasons == {
        "missing due_at": 1, "negative amount": 1, "duplicate invoice_id": 1,
    }
    assert invoices.examples == [
        "data/invoices.csv row 4, column 'due_at': missing due_at (value None)",
        "data/invoices.csv row 2, column 'amount': negative amount (value '-20')",
        "data/invoices.csv row 3, column 'invoice_id': duplicate invoice_id (value 'I1'; "
        "row 1 is kept)",
    ]
    assert result.warnings == [
        "accounts: 4 of 8 rows rejected (missing account_id: 1, unparseable date in "
        "start_date: 1, negative arr: 1, duplicate account_id: 1). First: "
        + "; ".join(accounts.examples[:3]) + ".",
        "usage_events: 4 of 10 rows rejected (missing event: 1, unparseable timestamp in "
        "timestamp: 1, unknown account_id: 2). First: " + "; ".join(events.examples[:3]) + ".",
        "invoices: 3 of 4 rows rejected (missing due_at: 1, negative amount: 1, "
        "duplicate invoice_id: 1). First: " + "; ".join(invoices.examples[:3]) + ".",
    ]
    # the run log keeps the same health
    logged = Project.load(tmp_path).last_run()
    assert logged is not None
    assert logged["health"]["accounts"]["examples"] == accounts.examples


def test_data_health_examples_are_capped_at_five(tmp_path: Path) -> None:
    events = [("A9", "u", "login", f"2025-02-{d:02d}") for d in range(1, 9)]
    write_project(tmp_path, {
        "healthscore.yml": project_yml("accounts: {path: data/accounts.csv}\n"
                                       "usage_events: {path: data/usage_events.csv, "
                                       "max_rejected_share: 1}\n"),
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, EVENTS + events),
    })
    _, result = run(tmp_path)
    h = result.health["usage_events"]
    assert (h.rows_read, h.rows_rejected, h.reasons) == (14, 8, {"unknown account_id": 8})
    assert h.examples == [
        f"data/usage_events.csv row {n}, column 'account_id': unknown account_id (value 'A9')"
        for n in range(7, 12)
    ]


def test_check_reports_health_without_scoring(tmp_path: Path) -> None:
    write_project(tmp_path, {"data/usage_events.csv": BAD_EVENTS,
                             "healthscore.yml": project_yml(
                                 "accounts: {path: data/accounts.csv}\n"
                                 "usage_events: {path: data/usage_events.csv, "
                                 "max_rejected_share: 0.5}\n")})
    checked = Project.load(tmp_path).check()
    h = checked.health["usage_events"]
    assert (h.rows_read, h.rows_rejected) == (10, 4)
    assert h.reasons == {"missing event": 1, "unparseable timestamp in timestamp": 1,
                         "unknown account_id": 2}
    assert not (tmp_path / ".healthscore" / "snapshots").exists()


def test_rejected_rows_name_the_users_column_and_a_count_limit_fails_the_run(tmp_path: Path) -> None:
    """A mapped column is named as the user wrote it; max_rejected_rows fails a run that the
    share alone would let through, and nothing is written."""
    renamed = BAD_EVENTS.replace("timestamp", "When", 1)
    write_project(tmp_path, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\n"
            "usage_events: {path: data/usage_events.csv, columns: {timestamp: When}}\n",
            "scorecards: [default]\nsettings: {max_rejected_share: 0.5}"),
        "data/accounts.csv": BAD_ACCOUNTS,
        "data/usage_events.csv": renamed,
    })
    _, result = run(tmp_path)
    assert ("data/usage_events.csv row 8, column 'When' (timestamp): unparseable timestamp in "
            "timestamp (value 'last tuesday')") in result.health["usage_events"].examples
    text = (tmp_path / "healthscore.yml").read_text()
    (tmp_path / "healthscore.yml").write_text(text.replace("max_rejected_share: 0.5}",
                                                           "max_rejected_share: 0.5, max_rejected_rows: 3}"))
    shutil.rmtree(tmp_path / ".healthscore")
    with pytest.raises(DataError) as err:
        Project.load(tmp_path).run(as_of=AS_OF)
    assert err.value.message.startswith(
        "healthscore.yml: sources.accounts: 4 of 8 rows (50.0%) in ")
    assert err.value.message.endswith(
        "are invalid (missing account_id: 1, unparseable date in start_date: 1, negative arr: 1, "
        "duplicate account_id: 1), more than the allowed 3 rows. Fix the data or raise "
        "'max_rejected_rows'. First problems:")
    assert not (tmp_path / ".healthscore" / "snapshots").exists() or not any(
        (tmp_path / ".healthscore" / "snapshots").glob("as_of=*"))


def test_one_bad_optional_cell_keeps_the_account(tmp_path: Path) -> None:
    """A renewal date nobody can read empties that cell; the account and its events stay."""
    accounts = csv_text(["account_id", "name", "segment", "start_date", "renewal_date"],
                        [("A1", "Acme", "SMB", "2024-01-01", "soon"),
                         ("A2", "Globex", "Enterprise", "2024-06-01", "2026-05-31"),
                         ("A3", "Initech", "SMB", "2025-01-15", "")])
    write_project(tmp_path, {"data/accounts.csv": accounts})
    rows, result = run(tmp_path)
    assert [r[0] for r in rows] == ["A1", "A2", "A3"]
    assert [r[1] for r in rows] == [2.0, 1.0, 0.0]  # A1's logins still count
    h = result.health["accounts"]
    assert (h.rows_rejected, h.reasons, h.blanked) == (0, {}, {"unparseable date in renewal_date": 1})
    assert h.notes == ["data/accounts.csv: 1 cell(s) could not be read and were left empty, their "
                       "rows kept (unparseable date in renewal_date: 1). First: row 1, column "
                       "'renewal_date' (value 'soon')."]
    assert result.health["usage_events"].reasons == {}  # no 'unknown account_id'
    assert any(w.startswith("accounts: data/accounts.csv: 1 cell(s) could not be read")
               for w in result.warnings)
    # a bad key still rejects the row
    bad_key = accounts.replace("A3,Initech", ",Initech")
    write_project(tmp_path, {"data/accounts.csv": bad_key,
                             "healthscore.yml": PROJECT_YML.replace(
                                 "{path: data/accounts.csv}",
                                 "{path: data/accounts.csv, max_rejected_share: 0.5}").replace(
                                 "{path: data/usage_events.csv}",
                                 "{path: data/usage_events.csv, max_rejected_share: 0.5}")})
    _, result = run(tmp_path)
    assert result.health["accounts"].reasons == {"missing account_id": 1}


def test_a_latin1_csv_says_so_and_reads_with_its_encoding(tmp_path: Path) -> None:
    latin = ("account_id,name,segment,start_date\nA1,Caf\xe9 M\xfcller,SMB,2024-01-01\n"
             "A2,Globex,Enterprise,2024-06-01\nA3,Initech,SMB,2025-01-15\n").encode("latin-1")
    write_project(tmp_path, {"data/accounts.csv": latin})
    with pytest.raises(DataError) as err:
        run(tmp_path)
    assert err.value.message == (
        f"healthscore.yml: sources.accounts: {tmp_path / 'data/accounts.csv'} is not UTF-8 text. "
        f"Give its encoding on the source, e.g. 'accounts: {{path: ..., encoding: latin-1}}' (or "
        f"cp1252, utf-16), or save the file as UTF-8.")
    yml = PROJECT_YML.replace("{path: data/accounts.csv}", "{path: data/accounts.csv, encoding: latin-1}")
    write_project(tmp_path, {"data/accounts.csv": latin, "healthscore.yml": yml})
    rows, result = run(tmp_path)
    assert rows == EXPECTED
    names = Project.load(tmp_path).final_scores().set_index("account_id")["name"]
    assert names["A1"] == "Café Müller"
    write_project(tmp_path, {"healthscore.yml": yml.replace("latin-1", "klingon")})
    with pytest.raises(ConfigError) as bad:
        Project.load(tmp_path)
    assert bad.value.message == ("healthscore.yml: sources.accounts.encoding: unknown encoding "
                                 "'klingon'. Write e.g. utf-8, latin-1, cp1252 or utf-16.")


def test_text_of_only_whitespace_is_missing(tmp_path: Path) -> None:
    # typed columns are not stripped on reading: a required text cell of spaces or tabs is
    # missing; text that only starts with whitespace is kept (as it is)
    events = [(a, u, e, datetime.fromisoformat(t)) for a, u, e, t in EVENTS]
    events += [("A1", "u1", "  ", datetime(2025, 2, 26)), ("A2", "u3", "\t\n", datetime(2025, 2, 26)),
               ("A2", "u3", " export", datetime(2025, 2, 26))]
    write_project(tmp_path, {
        "healthscore.yml": sources("{path: data/accounts.csv}",
                                   "{path: data/events.parquet, max_rejected_share: 0.5}"),
        "data/events.parquet": parquet_file(EVENT_COLUMNS, events),
    })
    h = run(tmp_path)[1].health["usage_events"]
    assert (h.rows_read, h.rows_rejected, h.reasons) == (9, 2, {"missing event": 2})
    assert h.examples == [
        "data/events.parquet row 7, column 'event': missing event (value '  ')",
        "data/events.parquet row 8, column 'event': missing event (value '\\t\\n')",
    ]
