"""count_distinct on far-apart as-of dates (each day's rows joined to the few dates whose
window holds them) against the definition, computed row by row, and against close dates
(running islands): values seen on an as-of date, a window's first and last day, and the
window before it (a change)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pandas as pd
import pytest

from healthscore import Project
from tests.projects import csv_text, project_yml, write_project

MONTH_ENDS = [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30),
              date(2025, 5, 31), date(2025, 6, 30)]
ACCOUNTS = [("A", "2024-12-01"), ("B", "2024-12-01"), ("C", "2025-02-15")]
MEASURES = """\
users_30: {type: count_distinct, entity: usage_events, column: user_id, window: 30d}
modules_90: {type: count_distinct, entity: usage_events, column: module, window: 90d}
users_month: {type: count_distinct, entity: usage_events, column: user_id, window: 1 month}
users_change: {type: change, of: users_30, to: absolute}
"""
NAMES = [line.split(":")[0] for line in MEASURES.splitlines()]


def _events() -> list[tuple[str, str, str, date]]:
    """Random rows, plus rows on each as-of date, on the first and just before the first day
    of its 30- and 90-day windows, and on the day after it."""
    rnd = random.Random(11)
    rows = [(rnd.choice("ABC"), f"u{rnd.randrange(6)}", f"m{rnd.randrange(4)}",
             date(2024, 10, 1) + timedelta(days=rnd.randrange(290))) for _ in range(400)]
    for i, d in enumerate(MONTH_ENDS):
        for back in (0, 29, 30, 89, 90, -1):
            rows.append(("AB"[i % 2], f"e{back % 7}", f"n{back % 3}", d - timedelta(days=back)))
    return rows


EVENTS = _events()


def _expected(day: date) -> dict[tuple[str, str], float]:
    """Each measure as of ``day`` by its definition: values seen in (day - window, day]; a
    row dated d counts for a calendar month while ``day < d + 1 month`` (Jan 29, 30 and 31
    plus a month are all Feb 28: they no longer count on Feb 28)."""
    ev = pd.DataFrame(EVENTS, columns=["account_id", "user_id", "module", "day"])

    def distinct(column: str, since: date, until: date, rows: pd.DataFrame = ev) -> pd.Series:
        rows = rows[(rows.day > since) & (rows.day <= until)]
        return rows.groupby("account_id")[column].nunique()

    in_month = ev[[(d + pd.DateOffset(months=1)).date() > day for d in ev.day]]
    now = distinct("user_id", day - timedelta(days=30), day)
    before = distinct("user_id", day - timedelta(days=60), day - timedelta(days=30))
    out: dict[tuple[str, str], float] = {}
    for account, start in ACCOUNTS:
        if date.fromisoformat(start) > day:
            continue
        out[(account, "users_30")] = now.get(account, 0)
        out[(account, "modules_90")] = distinct("module", day - timedelta(days=90), day).get(account, 0)
        out[(account, "users_month")] = distinct("user_id", date.min, day, in_month).get(account, 0)
        out[(account, "users_change")] = now.get(account, 0) - before.get(account, 0)
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    entries = ", ".join(f"{n}: {{weight: 25, scheme: {{type: linear, low: 0, high: 5}}}}"
                        for n in NAMES)
    root = write_project(tmp_path_factory.mktemp("distinct"), {
        "healthscore.yml": project_yml("accounts: {path: data/accounts.csv}\n"
                                       "usage_events: {path: data/usage_events.csv}\n"),
        "measures/usage.yml": MEASURES,
        "scorecards/default.yml": f"groups: {{all: {{weight: 100, measures: {{{entries}}}}}}}\n",
        "data/accounts.csv": csv_text(["account_id", "segment", "start_date"],
                                      [(a, "SMB", s) for a, s in ACCOUNTS]),
        "data/usage_events.csv": csv_text(
            ["account_id", "user_id", "event", "module", "timestamp"],
            [(a, u, "login", m, f"{d} 12:00:00") for a, u, m, d in EVENTS]),
    }, base=False)
    return Project.load(root)


def _values(frame: pd.DataFrame, day: date) -> dict[tuple[str, str], float]:
    rows = frame[frame.as_of.astype(str) == day.isoformat()]
    return {(r.account_id, n): getattr(r, f"m__{n}") for r in rows.itertuples() for n in NAMES}


def test_far_apart_dates_count_what_each_window_holds(project: Project) -> None:
    frame = project.run(dates=MONTH_ENDS).to_pandas()
    for day in MONTH_ENDS:
        assert _values(frame, day) == _expected(day), day


def test_far_apart_dates_agree_with_close_ones(project: Project) -> None:
    """Every day of the last two months in one run: the month ends read the same values."""
    days = [MONTH_ENDS[-3] + timedelta(days=i) for i in range((MONTH_ENDS[-1] - MONTH_ENDS[-3]).days + 1)]
    close = project.run(dates=days).to_pandas()
    far = project.run(dates=MONTH_ENDS).to_pandas()
    for day in MONTH_ENDS[-2:]:
        assert _values(close, day) == _values(far, day), day
