"""Write a mini healthscore project from a dict of files.

``write_project(tmp_path, {"measures/usage.yml": "...", "data/accounts.csv": None})`` starts
from :data:`MINI` (a working project), overrides or adds the given files and deletes those
mapped to ``None``. A value is text, bytes, or a callable that writes the file given its path
(for binary formats such as Parquet or Excel).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

FileBody = str | bytes | Callable[[Path], object] | None

AS_OF = "2025-03-01"

PROJECT_YML = """\
name: mini
sources:
  accounts: {path: data/accounts.csv}
  usage_events: {path: data/usage_events.csv}
scorecards: [default]
"""
MEASURES_YML = """\
logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d, scheme: {type: linear, low: 0, high: 2}}
"""  # noqa: E501
SCORECARD_YML = "groups: {usage: {weight: 100, measures: {logins_30: 100}}}\n"

# (account_id, name, segment, start_date)
ACCOUNTS = [
    ("A1", "Acme", "SMB", "2024-01-01"),
    ("A2", "Globex", "Enterprise", "2024-06-01"),
    ("A3", "Initech", "SMB", "2025-01-15"),
]
# (account_id, user_id, event, timestamp): as of 2025-03-01 A1 has 2 logins in the last 30
# days, A2 has 1, A3 has 0 (its only login is too old)
EVENTS = [
    ("A1", "u1", "login", "2025-02-10 09:00:00"),
    ("A1", "u2", "login", "2025-02-20 10:30:00"),
    ("A1", "u1", "export", "2025-02-21 11:00:00"),
    ("A2", "u3", "login", "2025-02-25 08:00:00"),
    ("A2", "u3", "export", "2025-02-25 08:05:00"),
    ("A3", "u4", "login", "2024-12-01 12:00:00"),
]
ACCOUNT_COLUMNS = ["account_id", "name", "segment", "start_date"]
EVENT_COLUMNS = ["account_id", "user_id", "event", "timestamp"]
# the scores the mini project gives as of AS_OF: linear 0..2 logins
EXPECTED = {"A1": (2.0, 100.0), "A2": (1.0, 50.0), "A3": (0.0, 0.0)}


def csv_text(columns: list[str], rows: list[tuple[object, ...]]) -> str:
    lines = [",".join(columns)]
    lines += [",".join("" if v is None else str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


MINI: dict[str, FileBody] = {
    "healthscore.yml": PROJECT_YML,
    "measures/usage.yml": MEASURES_YML,
    "scorecards/default.yml": SCORECARD_YML,
    "data/accounts.csv": csv_text(ACCOUNT_COLUMNS, ACCOUNTS),
    "data/usage_events.csv": csv_text(EVENT_COLUMNS, EVENTS),
}


def write_project(
    root: Path, files: dict[str, FileBody] | None = None, *, base: bool = True
) -> Path:
    """Write ``MINI`` (unless ``base=False``) updated with ``files`` under ``root``."""
    merged: dict[str, FileBody] = {**(MINI if base else {}), **(files or {})}
    for rel, body in merged.items():
        path = root / rel
        if body is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        elif isinstance(body, str):
            path.write_text(textwrap.dedent(body), encoding="utf-8")
        else:
            body(path)
    return root


def project_yml(sources: str, extra: str = "scorecards: [default]") -> str:
    """healthscore.yml text with the given (already indented) lines under ``sources:``."""
    return f"name: mini\nsources:\n{textwrap.indent(textwrap.dedent(sources), '  ')}{extra}\n"


def parquet_file(columns: list[str], rows: list[tuple[object, ...]]) -> Callable[[Path], None]:
    """A file body writing ``rows`` as one Parquet file (types inferred from the values)."""

    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        data = {c: [row[i] for row in rows] for i, c in enumerate(columns)}
        pq.write_table(pa.table(data), path)

    return write


Rows = list[tuple[object, ...]]


def xlsx_file(sheets: dict[str, tuple[list[str], Rows]]) -> Callable[[Path], None]:
    """A file body writing an Excel workbook: sheet name -> (header, rows), in order."""

    def write(path: Path) -> None:
        import openpyxl

        book = openpyxl.Workbook()
        book.remove(book.active)
        for name, (header, rows) in sheets.items():
            sheet = book.create_sheet(name)
            sheet.append(header)
            for row in rows:
                sheet.append(list(row))
        book.save(path)

    return write


# Local Spark sized for the tests' few dozen rows: one shuffle partition, no adaptive re-planning
# and no whole-stage code generation (the history's Spark test: 117-150 s -> 77-98 s on a busy
# two-core machine). Every local Spark test uses the same settings, so they share one session.
# Expressions are interpreted, not compiled to Java (factoryMode NO_CODEGEN, a setting Spark's
# own tests use): compiling each query's code costs more than running it on so few rows. The
# five local Spark tests: 85.5/88.4 -> 72.2/75.9 CPU s. The cluster tests keep the generated
# code (tests/test_spark_cluster.py SMALL_SQL), so both paths stay covered. No broadcast joins
# either: each broadcast is a Spark job of its own, 58 of a run's 85 (the JVM's CPU for a
# warm run of the hand-computed project: 9.5-9.6 -> 8.1-8.2 s); the standalone cluster test
# keeps them.
SMALL_SPARK = ("spark:\n  conf: {spark.sql.shuffle.partitions: 1, spark.sql.adaptive.enabled: false, "
               "spark.sql.codegen.wholeStage: false, spark.sql.codegen.factoryMode: NO_CODEGEN,\n"
               "         spark.sql.autoBroadcastJoinThreshold: -1}\n")

# The Java options of every JVM the tests start (the local driver, a cluster's master, worker,
# executors and Spark Connect server): short-lived JVMs over a few dozen rows spend most of
# their CPU compiling Spark itself, so only the quick JIT compiler (C1) and one GC thread.
# A cold local run of the hand-computed project: 106 -> 60 CPU s.
SPARK_TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


# the people the built-in playbooks reach besides CSMs and leads (their finance and sales tasks)
DEPARTMENT_PEOPLE = (("fay", "csm", "finance"), ("sam", "csm", "sales"))


def add_department_people(wf: object, actor: str, lead_team: str | None = None) -> None:
    """Add a finance and a sales person (and a lead of ``lead_team``, when given) to ``wf``."""
    people = [*DEPARTMENT_PEOPLE, *((("lee", "lead", lead_team),) if lead_team else ())]
    for name, role, team in people:
        wf.add_user(name, role, team=team, actor=actor)  # type: ignore[attr-defined]
