"""How the next day's tables are filled behind the run: the worker only runs statements made
for it (no table description read back); the values stay a cold run's."""

from __future__ import annotations

import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from healthscore import Project
from healthscore.engine.adapter import DuckDBEngine

from .projects import ACCOUNT_COLUMNS, ACCOUNTS, EVENT_COLUMNS, csv_text, parquet_file, write_project
from .test_incremental import DAY, KEPT, _frame

TICKET_COLUMNS = ["ticket_id", "account_id", "opened_at"]


def _parquet_project(root: Path) -> Path:
    """Usage events (the biggest source) and tickets, both read from Parquet files."""
    first = datetime(2025, 2, 1, 9)
    events = [(a, f"u{i % 3}", "login", first + timedelta(days=i % 40, hours=i % 5))
              for i in range(60) for a in ("A1", "A2", "A3") if (i + len(a)) % 4]
    tickets = [(f"T{i}", ("A1", "A2")[i % 2], first + timedelta(days=3 * i)) for i in range(14)]
    return write_project(root, {
        "healthscore.yml": "name: mini\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.parquet}\n"
                           "  tickets: {path: data/tickets.parquet}\nscorecards: [default]\n",
        "measures/usage.yml": """\
logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d, scheme: {type: linear, low: 0, high: 20}}
tickets_14: {type: count, entity: tickets, window: 14d, scheme: {type: linear, low: 3, high: 0}}
""",  # noqa: E501
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {logins_30: 60, "
                                  "tickets_14: 40}}}\n",
        "data/accounts.csv": csv_text(ACCOUNT_COLUMNS, ACCOUNTS),
        "data/usage_events.csv": None,
        "data/usage_events.parquet": parquet_file(EVENT_COLUMNS, events),
        "data/tickets.parquet": parquet_file(TICKET_COLUMNS, tickets),
    })


def test_the_workers_read_no_table_description_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filled_tables: list[str]) -> None:
    """Each table the next day fills behind is created and filled by one call of the engine:
    its description is read on this thread (from an empty twin), never by a worker, which
    would wait for Python's lock while this thread compiles."""
    from ibis.backends.duckdb import Backend

    project = Project.load(_parquet_project(tmp_path / "p"))
    project.run(dates=[KEPT - timedelta(days=1), KEPT], apply_rules=False)
    described: list[str] = []
    get_schema = Backend.get_schema

    def spy(self, name, *a, **k):  # type: ignore[no-untyped-def]
        if threading.current_thread() is not threading.main_thread():
            described.append(name)
        return get_schema(self, name, *a, **k)

    monkeypatch.setattr(Backend, "get_schema", spy)
    result = project.run(as_of=DAY, apply_rules=False)
    assert result.incremental == f"{DAY} computed from the state kept as of {KEPT}"
    assert len(filled_tables) > 5 and described == []
    assert _frame(result).account_id.tolist() == ["A1", "A2", "A3"]


def test_the_worker_gets_pythons_lock_back_quickly_while_the_queue_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the next day's tables are filled behind, Python switches threads every 0.1 ms
    (the worker waits for the lock after each statement while this thread compiles); the
    process's own interval is back once the run is done."""
    project = Project.load(_parquet_project(tmp_path / "p"))
    project.run(dates=[KEPT - timedelta(days=1), KEPT], apply_rules=False)
    intervals: list[float] = []
    make = DuckDBEngine.make_table

    def noted(self, name, *a):  # type: ignore[no-untyped-def]
        if threading.current_thread() is not threading.main_thread():
            intervals.append(sys.getswitchinterval())
        make(self, name, *a)

    monkeypatch.setattr(DuckDBEngine, "make_table", noted)
    before = sys.getswitchinterval()
    result = project.run(as_of=DAY, apply_rules=False)
    assert result.incremental == f"{DAY} computed from the state kept as of {KEPT}"
    assert len(intervals) > 5 and max(intervals) == pytest.approx(0.0001, rel=0.05)
    assert sys.getswitchinterval() == before == 0.005


def test_overlapping_queues_keep_the_quick_switch_until_the_last_one_closes() -> None:
    """Runs in threads of one process (the web app's) may overlap: the interval goes back to
    the process's own when the last queue closes, not when the first does."""
    from healthscore.pipeline.incremental import Queued

    before = sys.getswitchinterval()
    engines = [DuckDBEngine(), DuckDBEngine()]
    try:
        first, second = Queued(engines[0]), Queued(engines[1])
        first.close()
        assert sys.getswitchinterval() == pytest.approx(0.0001, rel=0.05)
        second.close()
        assert sys.getswitchinterval() == before
    finally:
        for engine in engines:
            engine.close()
