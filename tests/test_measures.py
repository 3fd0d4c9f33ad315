"""Every measure type, computed by hand on a tiny portfolio, for several as-of dates at once."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from healthscore import Project
from tests.projects import SMALL_SPARK, csv_text, project_yml, write_project

ACCOUNTS = csv_text(
    ["account_id", "segment", "start_date", "licensed_seats", "churn_date"],
    [("A", "SMB", "2025-01-01", 4, None), ("B", "SMB", "2025-02-01", 0, None),
     ("C", "SMB", "2025-01-01", 2, "2025-03-05")],
)
EVENTS = csv_text(
    ["account_id", "user_id", "event", "module", "timestamp", "value"],
    [
        ("A", "u1", "login", "m1", "2025-01-05 10:00:00", 5),
        ("A", "u2", "login", "m2", "2025-02-10 10:00:00", 7),
        ("A", "u1", "export", "m1", "2025-02-28 23:59:00", 1),
        ("A", "u1", "login", "m1", "2025-03-01 00:00:00", 3),
        ("B", "u9", "login", "m1", "2025-02-15 08:00:00", 2),
        ("C", "u5", "login", "m1", "2025-02-01 08:00:00", 4),
        ("C", "u5", "login", "m1", "2025-03-04 08:00:00", 4),
    ],
)
TICKETS = csv_text(
    ["ticket_id", "account_id", "priority", "type", "opened_at", "closed_at"],
    [
        ("T1", "A", "P1", "bug", "2025-01-10", "2025-02-15"),
        ("T2", "A", "P2", "question", "2025-02-20", None),
        ("T3", "B", "P1", "bug", "2025-02-27", "2025-03-01"),
    ],
)
SURVEYS = csv_text(
    ["account_id", "kind", "score", "responded_at"],
    [("A", "nps", 9, "2025-01-15"), ("A", "nps", 5, "2025-02-20"), ("B", "nps", 10, "2024-01-01")],
)
MANUAL = csv_text(
    ["account_id", "measure", "value", "entered_at"],
    [("A", "sentiment", 4, "2025-02-01"), ("B", "sentiment", 2, "2024-06-01")],
)
MEASURES = """\
logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d}
events_all: {type: count, entity: usage_events}
value_30: {type: sum, entity: usage_events, column: value, window: 30d}
value_avg_30: {type: avg, entity: usage_events, column: value, window: 30d}
value_max_30: {type: max, entity: usage_events, column: value, window: 30d}
value_min_all: {type: min, entity: usage_events, column: value}
users_30: {type: count_distinct, entity: usage_events, column: user_id, window: 30d}
modules_all: {type: count_distinct, entity: usage_events, column: module}
days_since_use: {type: days_since, entity: usage_events}
open_tickets: {type: count, entity: tickets, mode: open}
open_p1: {type: count, entity: tickets, mode: open, filter: "priority = 'P1'"}
tickets_month: {type: count, entity: tickets, window: 1 month}
nps: {type: latest, entity: surveys, column: score, filter: "kind = 'nps'", window: 365d}
logins_change: {type: change, of: logins_30, to: absolute}
tenure: {type: tenure}
seats: {type: attribute, column: licensed_seats}
per_seat: {type: ratio, numerator: users_30, denominator: accounts.licensed_seats}
combo: {type: expression, expr: "logins_30 * 10 + coalesce(nps, 0)"}
sentiment: {type: manual, max_age: 90d}
"""
NAMES = [line.split(":")[0] for line in MEASURES.splitlines()]
ENTRIES = ", ".join(
    f"{n}: {{weight: {100 / len(NAMES)}, scheme: {{type: linear, low: 0, high: 1}}}}"
    for n in NAMES
)
SCORECARD = f"groups: {{all: {{weight: 100, measures: {{{ENTRIES}}}}}}}\n"
N = None
# as of 2025-02-28 and 2025-03-05, hand-computed (None = no data)
EXPECTED = {
    ("A", "2025-02-28"): dict(
        logins_30=1, events_all=3, value_30=8, value_avg_30=4, value_max_30=7, value_min_all=1,
        users_30=2, modules_all=2, days_since_use=0, open_tickets=1, open_p1=0, tickets_month=1,
        nps=5, logins_change=0, tenure=58, seats=4, per_seat=0.5, combo=15, sentiment=4),
    ("B", "2025-02-28"): dict(
        logins_30=1, events_all=1, value_30=2, value_avg_30=2, value_max_30=2, value_min_all=2,
        users_30=1, modules_all=1, days_since_use=13, open_tickets=1, open_p1=1, tickets_month=1,
        nps=N, logins_change=1, tenure=27, seats=0, per_seat=N, combo=10, sentiment=N),
    ("A", "2025-03-05"): dict(
        logins_30=2, events_all=4, value_30=11, value_avg_30=11 / 3, value_max_30=7,
        value_min_all=1, users_30=2, modules_all=2, days_since_use=4, open_tickets=1, open_p1=0,
        tickets_month=1, nps=5, logins_change=1, tenure=63, seats=4, per_seat=0.5, combo=25,
        sentiment=4),
    ("B", "2025-03-05"): dict(
        logins_30=1, events_all=1, value_30=2, value_avg_30=2, value_max_30=2, value_min_all=2,
        users_30=1, modules_all=1, days_since_use=18, open_tickets=0, open_p1=0, tickets_month=1,
        nps=N, logins_change=1, tenure=32, seats=0, per_seat=N, combo=10, sentiment=N),
}


def build_project(root, engine: str = "duckdb", spark: str = SMALL_SPARK):  # type: ignore[no-untyped-def]
    """The hand-computed project (also used to compare engines); on Spark with the ``spark:``
    section given (none: "")."""
    return write_project(root, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\n"
            "usage_events: {path: data/usage_events.csv}\n"
            "tickets: {path: data/tickets.csv}\n"
            "surveys: {path: data/surveys.csv}\n"
            "manual_values: {path: data/manual.csv}\n",
            f"scorecards: [default]\nengine: {engine}" + (f"\n{spark}".rstrip("\n") if engine == "spark"
                                                          else "")),
        "measures/usage.yml": MEASURES,
        "scorecards/default.yml": SCORECARD,
        "data/accounts.csv": ACCOUNTS, "data/usage_events.csv": EVENTS,
        "data/tickets.csv": TICKETS, "data/surveys.csv": SURVEYS, "data/manual.csv": MANUAL,
    }, base=False)


@pytest.fixture(scope="module", params=["together", "one by one"])
def frame(request, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Both dates in one pass (running sums over close dates), and each date alone (rows
    joined to the one date whose window holds them): the same numbers either way."""
    import pandas as pd

    project = Project.load(build_project(tmp_path_factory.mktemp("measures")))
    dates = [_d("2025-02-28"), _d("2025-03-05")]
    if request.param == "together":
        return project.run(dates=dates).to_pandas()
    return pd.concat([project.run(dates=[d]).to_pandas() for d in dates], ignore_index=True)


def _d(text: str):  # type: ignore[no-untyped-def]
    from datetime import date

    return date.fromisoformat(text)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_measure_values_by_hand(frame, key) -> None:  # type: ignore[no-untyped-def]
    account, day = key
    row = frame[(frame.account_id == account) & (frame.as_of.astype(str) == day)].iloc[0]
    got = {n: row[f"m__{n}"] for n in NAMES}
    for name, want in EXPECTED[key].items():
        value = got[name]
        if want is None:
            assert value is None or math.isnan(value), (name, value)
        else:
            assert value == pytest.approx(want), (name, value, want)


def test_churned_account_leaves_the_portfolio(frame) -> None:  # type: ignore[no-untyped-def]
    # C churned on 2025-03-05: scored on 2025-02-28, gone on 2025-03-05
    c = frame[frame.account_id == "C"]
    assert sorted(c.as_of.astype(str)) == ["2025-02-28"]


def test_the_running_values_kept_from_the_measures_are_those_of_the_contributions(
        tmp_path: Path) -> None:
    """A run of several dates keeps the running values of its last date from the measures
    (where the running window left them): the same values, nulls included, as merging every
    contribution again, for every account active then."""
    from healthscore import pipeline
    from healthscore.measures.carry import Carry
    from healthscore.pipeline.incremental import distinct_measures

    config = Project.load(build_project(tmp_path)).config
    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None)
        carry = Carry()
        dates = [_d("2025-01-31"), _d("2025-02-28"), _d("2025-03-05")]
        engine.to_arrow(pipeline.scores_expr(config, loaded, dates, carry=carry))
        assert carry.measures is not None
        distinct = distinct_measures(config)
        from_measures = _by_account(engine.to_arrow(carry.kept(distinct)).to_pandas())
        carry.measures = None  # the contributions merged again
        merged = _by_account(engine.to_arrow(carry.kept(distinct)).to_pandas())
    finally:
        engine.close()
    assert from_measures.account_id.tolist() == ["A", "B"]  # C churned before the last date
    # running sums, a latest value and its time, a distinct count joined beside them
    assert set(from_measures.columns) >= {"logins_30", "nps", "nps__ts", "users_30"}
    assert from_measures.logins_30__prev.isna().tolist() == [False, True]  # B: none, not 0
    assert list(from_measures.columns) == list(merged.columns)
    pd.testing.assert_frame_equal(from_measures, merged)


def _by_account(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("account_id").reset_index(drop=True)


def test_a_small_run_merges_its_stored_contributions_to_the_same_measures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of few account-dates stores its stacked contributions before they merge (a big
    one merges them straight from the union): the measures are the same either way."""
    from healthscore import pipeline
    from healthscore.pipeline import score

    config = Project.load(build_project(tmp_path)).config
    dates = [_d("2025-01-31"), _d("2025-02-28"), _d("2025-03-05")]
    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None)
        small = score.measures_expr(config, loaded, dates)
        monkeypatch.setattr(score, "SMALL_RUN", 0)
        big = score.measures_expr(config, loaded, dates)
        sql = {name: str(engine.con.compile(t)) for name, t in (("small", small), ("big", big))}
        frames = {name: engine.to_arrow(t).to_pandas().sort_values(["account_id", "k"])
                  .reset_index(drop=True) for name, t in (("small", small), ("big", big))}
    finally:
        engine.close()
    assert "UNION ALL" not in sql["small"] and "UNION ALL" in sql["big"]
    assert len(frames["small"]) == 7  # A, B on three dates; C (churned) on one
    pd.testing.assert_frame_equal(frames["small"], frames["big"])
