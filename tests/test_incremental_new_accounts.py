"""The next day from the kept state for accounts with no kept values (new customers on the
day: a start date moved before it, a churn date taken away): every row of theirs joins the
day's cut tables and its one measures pipeline, and each measure kind gives a cold run's
value, whether the account is a customer on the kept date too (its contributions up to that
date are its own, not kept values) or from the new day only."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from healthscore import Project
from healthscore.pipeline import incremental

from .projects import csv_text, write_project
from .test_incremental import KEYS, _state_day

KEPT, DAY = date(2025, 3, 10), date(2025, 3, 11)
ACCOUNT_COLUMNS = ["account_id", "name", "segment", "start_date", "churn_date", "contract_type"]
LATER = "2025-06-01"  # a start date after the new day: not a customer yet, nothing kept
ACCOUNTS = [("A1", "Acme", "SMB", "2024-01-01", "", "Month-to-month"),  # kept as of KEPT
            ("N1", "Hooli", "SMB", LATER, "", "Month-to-month"),
            ("N2", "Stark", "Enterprise", LATER, "", "One year"),
            ("N3", "Wayne", "SMB", "2024-06-01", "2025-03-01", "One year")]  # gone before KEPT
NEW = {"N1": {"start_date": "2025-02-01"},  # a customer on the kept date too
       "N2": {"start_date": str(DAY)},  # from the new day only
       "N3": {"churn_date": ""}}  # not gone after all
FIRST = date(2025, 1, 1)
EVENT_COLUMNS = ["account_id", "user_id", "event", "module", "timestamp", "value"]
# every account's events from FIRST to the new day: users, modules and values that vary
EVENTS = [(a, f"{a}-u{i % (n + 2)}", "login" if i // (n + 1) % 3 else "export", f"m{i % (n + 3)}",
           f"{FIRST + timedelta(days=i)} 0{n}:00:00", str(float((i * 7 + n) % 23)))
          for n, a in enumerate(["A1", "N1", "N2", "N3"])
          for i in range(0, (DAY - FIRST).days + 1, n + 1)]
TICKET_COLUMNS = ["ticket_id", "account_id", "opened_at", "closed_at"]
TICKETS = [(f"T{a}{i}", a, opened, closed) for a in ("A1", "N1", "N2", "N3")
           for i, (opened, closed) in enumerate([
               ("2025-02-01 09:00:00", "2025-03-11 10:00:00"),  # closes on DAY
               ("2025-02-01 09:00:00", "2025-03-05 10:00:00"),  # closed before KEPT
               ("2025-02-15 09:00:00", ""),  # open since before KEPT
               ("2025-03-11 09:00:00", ""),  # opens on DAY
               ("2025-03-06 09:00:00", "")])]  # open 3 days from DAY on
INVOICE_COLUMNS = ["invoice_id", "account_id", "issued_at", "due_at", "paid_at", "amount"]
INVOICES = [(f"I{a}{i}", a, issued, due, paid, amount) for a in ("A1", "N1", "N2", "N3")
            for i, (issued, due, paid, amount) in enumerate([
                ("2025-01-10 00:00:00", "2025-02-10 00:00:00", "2025-03-11 00:00:00", "120.5"),
                ("2025-02-20 00:00:00", "2025-03-05 00:00:00", "", "80"),
                ("2025-01-02 00:00:00", "2025-01-20 00:00:00", "2025-01-15 00:00:00", "40")])]
HISTORY = [("N1", "2024-12-01", "Two year"), ("N1", "2025-03-11", "One year"),
           ("N3", "2025-02-01", "Two year"), ("A1", "2025-03-01", "Two year")]

PROJECT = """\
name: mini
sources:
  accounts:
    path: data/accounts.csv
    attributes: {contract_type: string}
  usage_events: {path: data/usage_events.csv}
  tickets: {path: data/tickets.csv}
  invoices: {path: data/invoices.csv}
  account_history: {path: data/account_history.csv}
scorecards: [default]
"""
# one measure of each kind the next day cuts (and a change, which reads the previous window)
MEASURES = {
    "logins_30": "{type: count, entity: usage_events, filter: \"event = 'login'\", window: 30d}",
    "events_ever": "{type: count, entity: usage_events}",
    "value_14": "{type: sum, entity: usage_events, column: value, window: 14d}",
    "value_avg_7": "{type: avg, entity: usage_events, column: value, window: 7d}",
    "value_min_5": "{type: min, entity: usage_events, column: value, window: 5d}",
    "value_max_5": "{type: max, entity: usage_events, column: value, window: 5d}",
    "last_module": "{type: latest, entity: usage_events, column: module, window: 30d}",
    "last_export": "{type: days_since, entity: usage_events, filter: \"event = 'export'\"}",
    "users_7d": "{type: count_distinct, entity: usage_events, column: user_id, window: 7d}",
    "users_change": "{type: change, of: users_7d, to: absolute}",
    "modules_3d": "{type: count_distinct, entity: usage_events, column: module, window: 3d}",
    "open_tickets": "{type: count, entity: tickets, mode: open}",
    "stale_tickets": "{type: count, entity: tickets, mode: open, open_after: 3d}",
    "owed": "{type: sum, entity: invoices, column: amount, mode: open}",
    "overdue": "{type: count, entity: invoices, mode: open, open_from: due_at, open_after: 1d}",
    "contract": "{type: attribute, column: contract_type}",
}
SCHEMES = {"last_module": "{type: category, map: {m1: 100, m2: 50}, default: 0}",
           "contract": "{type: category, map: {two year: 100, one year: 70}, default: 10}"}


def _measures() -> str:
    scheme = "{type: linear, low: 0, high: 10}"
    return "".join(f"{n}: {spec[:-1]}, scheme: {SCHEMES.get(n, scheme)}}}\n"
                   for n, spec in MEASURES.items())


def _project(root: Path, accounts: list[tuple[str, ...]]) -> Path:
    weights = ", ".join(f"{n}: {100 / len(MEASURES):g}" for n in MEASURES)
    return write_project(root, {
        "healthscore.yml": PROJECT,
        "measures/usage.yml": _measures(),
        "scorecards/default.yml": f"groups: {{all: {{weight: 100, measures: {{{weights}}}}}}}\n",
        "data/accounts.csv": csv_text(ACCOUNT_COLUMNS, accounts),
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, EVENTS),
        "data/tickets.csv": csv_text(TICKET_COLUMNS, TICKETS),
        "data/invoices.csv": csv_text(INVOICE_COLUMNS, INVOICES),
        "data/account_history.csv": csv_text(["account_id", "valid_from", "contract_type"],
                                             HISTORY),
    })


def _edited(accounts: list[tuple[str, ...]], changes: dict[str, dict[str, str]]
            ) -> list[tuple[str, ...]]:
    return [tuple(changes.get(row[0], {}).get(c, v) for c, v in zip(ACCOUNT_COLUMNS, row,
                                                                     strict=True))
            for row in accounts]


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project scored up to KEPT, where A1 alone is a customer (its state kept)."""
    root = _project(tmp_path_factory.mktemp("kept") / "p", ACCOUNTS)
    Project.load(root).run(dates=[KEPT - timedelta(days=1), KEPT], apply_rules=False)
    assert _state_day(root) == str(KEPT)
    return root


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh project on the edited accounts, scored cold on DAY and (--full) on the day
    after: what the next day and the day after it must give, however the new accounts are
    scored."""
    root = _project(tmp_path_factory.mktemp("cold") / "p", _edited(ACCOUNTS, NEW))
    Project.load(root).run(as_of=DAY, apply_rules=False)
    Project.load(root).run(as_of=DAY + timedelta(days=1), apply_rules=False, full=True)
    return root


def _scores(root: Path, day: date = DAY) -> pd.DataFrame:
    frame = Project.load(root).scores(day, primary_only=False).to_pandas()
    return frame.sort_values(KEYS).reset_index(drop=True)


@pytest.mark.parametrize("folded", [incremental.FOLDED, 0], ids=["one-pipeline", "two"])
def test_new_accounts_on_the_next_day_have_a_cold_runs_value_of_every_measure_kind(
        kept: Path, cold: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folded: int,
        filled_tables: list[str]) -> None:
    """N1 (a customer since before the kept date), N2 (from the new day) and N3 (its churn
    date taken away) have no kept values: with few such accounts they are scored in the one
    measures pipeline of the day (one carried table made), else in a second one over their
    rows alone; either way every column is a cold run's, and so is the next day after it."""
    accounts = _edited(ACCOUNTS, NEW)
    root = tmp_path / "next"
    shutil.copytree(kept, root)
    (root / "data" / "accounts.csv").write_text(csv_text(ACCOUNT_COLUMNS, accounts),
                                                encoding="utf-8")
    monkeypatch.setattr(incremental, "FOLDED", folded)
    result = Project.load(root).run(as_of=DAY, apply_rules=False)
    assert result.incremental == f"{DAY} computed from the state kept as of {KEPT}"
    pipelines = [n for n in filled_tables if n.startswith("hs_carry_sparse_")]
    assert len(pipelines) == (1 if folded else 2)

    scores, expected = _scores(root), _scores(cold)
    assert sorted(scores.account_id) == ["A1", "N1", "N2", "N3"]
    assert {c for c in scores.columns if c.startswith("m__")} == {f"m__{n}" for n in MEASURES}
    differing = _differing(scores, expected)
    assert not differing, "\n".join(differing)
    running = pd.read_parquet(root / ".healthscore" / incremental.FOLDER / incremental.RUNNING)
    assert sorted(running.account_id) == ["A1", "N1", "N2", "N3"]  # kept for the day after

    after = DAY + timedelta(days=1)  # from the state this day kept: still a cold run's
    again = Project.load(root).run(as_of=after, apply_rules=False)
    assert again.incremental == f"{after} computed from the state kept as of {DAY}"
    differing = _differing(_scores(root, after), _scores(cold, after))
    assert not differing, "\n".join(differing)


def _differing(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The columns where ``a`` and ``b`` (the same accounts, in order) differ, each with the
    accounts it differs for (floats to 1e-9)."""
    assert list(a.columns) == list(b.columns) and a[KEYS].equals(b[KEYS])
    out = []
    for col in a.columns:
        left, right = a[col], b[col]
        same = (left == right) | (left.isna() & right.isna())
        if left.dtype.kind == "f":
            same |= (left - right).abs() < 1e-9
        if not same.all():
            out.append(f"{col}: {', '.join(a.account_id[~same])}")
    return out
