"""Measures on far-apart as-of dates (distinct counts: each day's rows joined to the few
dates whose window holds them; counts and sums: the days that start and stop counting on
the same dates summed first) against the definition, computed row by row, and against
close dates: rows on an as-of date, on a window's first and last day, and in the window
before it (a change)."""

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
events_30: {type: count, entity: usage_events, window: 30d}
value_90: {type: sum, entity: usage_events, column: value, window: 90d}
value_avg_30: {type: avg, entity: usage_events, column: value, window: 30d}
events_change: {type: change, of: events_30, to: absolute}
"""
NAMES = [line.split(":")[0] for line in MEASURES.splitlines()]


def _events() -> list[tuple[str, str, str, date, int]]:
    """Random rows, plus rows on each as-of date, on the first and just before the first day
    of its 30- and 90-day windows, and on the day after it."""
    rnd = random.Random(11)
    rows = [(rnd.choice("ABC"), f"u{rnd.randrange(6)}", f"m{rnd.randrange(4)}",
             date(2024, 10, 1) + timedelta(days=rnd.randrange(290)), rnd.randrange(100))
            for _ in range(400)]
    for i, d in enumerate(MONTH_ENDS):
        for back in (0, 29, 30, 59, 60, 89, 90, -1):
            rows.append(("AB"[i % 2], f"e{back % 7}", f"n{back % 3}", d - timedelta(days=back),
                         1000 + back))
    return rows


EVENTS = _events()


def _expected(day: date) -> dict[tuple[str, str], float]:
    """Each measure as of ``day`` by its definition: values seen in (day - window, day]; a
    row dated d counts for a calendar month while ``day < d + 1 month`` (Jan 29, 30 and 31
    plus a month are all Feb 28: they no longer count on Feb 28)."""
    ev = pd.DataFrame(EVENTS, columns=["account_id", "user_id", "module", "day", "value"])

    def distinct(column: str, since: date, until: date, rows: pd.DataFrame = ev) -> pd.Series:
        rows = rows[(rows.day > since) & (rows.day <= until)]
        return rows.groupby("account_id")[column].nunique()

    def rows(days: int, back: int = 0) -> pd.DataFrame:
        return ev[(ev.day > day - timedelta(days=days + back)) & (ev.day <= day - timedelta(days=back))]

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
        mine = {w: rows(w)[rows(w).account_id == account] for w in (30, 90)}
        out[(account, "events_30")] = len(mine[30])
        out[(account, "value_90")] = mine[90].value.sum()
        out[(account, "value_avg_30")] = mine[30].value.mean() if len(mine[30]) else None
        before_30 = rows(30, 30)
        out[(account, "events_change")] = len(mine[30]) - (before_30.account_id == account).sum()
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    entries = ", ".join(f"{n}: {{weight: 12.5, scheme: {{type: linear, low: 0, high: 5}}}}"
                        for n in NAMES)
    root = write_project(tmp_path_factory.mktemp("distinct"), {
        "healthscore.yml": project_yml("accounts: {path: data/accounts.csv}\n"
                                       "usage_events: {path: data/usage_events.csv}\n"),
        "measures/usage.yml": MEASURES,
        "scorecards/default.yml": f"groups: {{all: {{weight: 100, measures: {{{entries}}}}}}}\n",
        "data/accounts.csv": csv_text(["account_id", "segment", "start_date"],
                                      [(a, "SMB", s) for a, s in ACCOUNTS]),
        "data/usage_events.csv": csv_text(
            ["account_id", "user_id", "event", "module", "timestamp", "value"],
            [(a, u, "login", m, f"{d} 12:00:00", v) for a, u, m, d, v in EVENTS]),
    }, base=False)
    return Project.load(root)


def _values(frame: pd.DataFrame, day: date) -> dict[tuple[str, str], float]:
    rows = frame[frame.as_of.astype(str) == day.isoformat()]
    values = {(r.account_id, n): getattr(r, f"m__{n}") for r in rows.itertuples() for n in NAMES}
    return {k: None if v != v else v for k, v in values.items()}  # NaN: none


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


def test_the_dates_of_a_pass_decide_whether_they_are_far_apart(project: Project) -> None:
    """A run of every day in passes of 30: each pass's days are close, though the run spans a
    year (its rows are summed by day, not first by the dates they count on)."""
    from healthscore.measures import asof
    from healthscore.measures.build import MeasureBuilder

    builder = MeasureBuilder(project.config, {}, None)  # type: ignore[arg-type]
    builder.span = asof.Span(date(2025, 1, 1), date(2025, 12, 31))
    builder.n_dates, builder.days = 30, 29
    assert not builder._far_apart()
    builder.n_dates, builder.days = 12, 334
    assert builder._far_apart()
    builder.n_dates, builder.days = 1, 0
    assert builder._far_apart()
