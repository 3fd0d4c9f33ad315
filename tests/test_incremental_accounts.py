"""The next day from the kept state when the accounts file changed between the runs: a start
or churn date moved across the kept date or the new one, an account deleted or added, its
segment, stage, owner or attributes changed. Whatever the edit, the new date equals a cold
run of it on the same files, on every column."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from healthscore import Project

from .projects import EVENT_COLUMNS, csv_text, write_project
from .test_incremental import KEYS, _same, _state_day

KEPT, DAY = date(2025, 3, 10), date(2025, 3, 11)
COLUMNS = ["account_id", "name", "segment", "start_date", "churn_date", "lifecycle_stage", "csm",
           "licensed_seats", "contract_type", "monthly_charges"]
Row = tuple[str, ...]
ACCOUNTS: list[Row] = [
    ("A1", "Acme", "SMB", "2024-01-01", "", "adoption", "ada", "5", "Month-to-month", "30"),
    ("A2", "Globex", "Enterprise", "2024-06-01", "", "adoption", "bob", "10", "Two year", "90"),
    ("A3", "Initech", "SMB", "2025-01-15", "", "onboarding", "ada", "3", "One year", "50"),
    ("A4", "Umbrella", "SMB", "2024-03-01", "2025-02-28", "renewal", "bob", "4",
     "Month-to-month", "20"),  # gone before the kept date
    ("A5", "Hooli", "Enterprise", "2025-03-11", "", "onboarding", "ada", "8", "Two year",
     "70"),  # starts on the new date
    ("A6", "Stark", "SMB", "2025-03-20", "", "onboarding", "bob", "2", "Month-to-month",
     "10"),  # starts after it
]
# logins of every account, before its start too: A1 every 2 days, A2 every 3...
FIRST = date(2025, 1, 1)
EVENTS = [(a, f"{a}-u{i % 3}", "login", f"{FIRST + timedelta(days=i)} 09:00:00")
          for n, a in enumerate(["A1", "A2", "A3", "A4", "A5", "A6"], start=2)
          for i in range(0, (DAY - FIRST).days + 1, n)]
HISTORY = [("A1", "2024-01-01", "Month-to-month"), ("A1", "2025-03-11", "Two year"),
           ("A2", "2025-02-01", "Two year")]  # A1's contract changes on the new date

PROJECT = """\
name: mini
sources:
  accounts:
    path: data/accounts.csv
    attributes: {contract_type: string, monthly_charges: float}
  usage_events: {path: data/usage_events.csv, max_rejected_share: 1}
  account_history: {path: data/account_history.csv, max_rejected_share: 1}
scorecards: [monthly, default]
"""
MEASURES = """\
logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d, scheme: {type: linear, low: 0, high: 15}}
logins_ever: {type: count, entity: usage_events, scheme: {type: linear, low: 0, high: 60}}
last_login: {type: days_since, entity: usage_events, scheme: {type: linear, low: 10, high: 0}}
users_7d: {type: count_distinct, entity: usage_events, column: user_id, window: 7d, scheme: {type: linear, low: 0, high: 3}}
users_change: {type: change, of: users_7d, to: absolute, scheme: {type: linear, low: -2, high: 2}}
users_per_seat: {type: ratio, numerator: users_7d, denominator: accounts.licensed_seats, scheme: {type: linear, low: 0, high: 1}}
tenure: {type: tenure, unit: days, scheme: {type: linear, low: 0, high: 400}}
stage: {type: attribute, column: lifecycle_stage, scheme: {type: category, map: {adoption: 100, renewal: 60}, default: 30}}
contract: {type: attribute, column: contract_type, scheme: {type: category, map: {two year: 100, one year: 70}, default: 10}}
charges: {type: attribute, column: monthly_charges, scheme: {type: percentile, by: segment}}
"""  # noqa: E501
SCORECARDS = {
    "scorecards/monthly.yml": "when: \"contract_type = 'Month-to-month'\"\n"
                              "groups: {usage: {weight: 60, measures: {logins_30: 50, last_login: 50}},"
                              " terms: {weight: 40, measures: {charges: 100}}}\n",
    "scorecards/default.yml": "groups: {usage: {weight: 50, measures: {logins_30: 20, logins_ever: 20, "
                              "last_login: 20, users_7d: 20, users_change: 10, users_per_seat: 10}}, "
                              "account: {weight: 50, measures: {tenure: 30, stage: 30, contract: 20, "
                              "charges: 20}}}\n",
}


def _project(root: Path, accounts: list[Row]) -> Path:
    return write_project(root, {
        "healthscore.yml": PROJECT,
        "measures/usage.yml": MEASURES,
        **SCORECARDS,
        "data/accounts.csv": csv_text(COLUMNS, accounts),
        "data/usage_events.csv": csv_text(EVENT_COLUMNS, EVENTS),
        "data/account_history.csv": csv_text(["account_id", "valid_from", "contract_type"], HISTORY),
    })


def _edited(changes: dict[str, dict[str, str] | None], added: list[Row] = ()) -> list[Row]:  # type: ignore[assignment]
    """ACCOUNTS with each changed account's fields replaced (None: the account deleted)."""
    out = []
    for row in ACCOUNTS:
        change = changes.get(row[0], {})
        if change is None:
            continue
        out.append(tuple(change.get(c, v) for c, v in zip(COLUMNS, row, strict=True)))
    return [*out, *added]


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project scored on the two days up to KEPT: its state kept as of KEPT."""
    root = _project(tmp_path_factory.mktemp("kept") / "p", ACCOUNTS)
    Project.load(root).run(dates=[KEPT - timedelta(days=1), KEPT], apply_rules=False)
    assert _state_day(root) == str(KEPT)
    return root


def _next_day_against_cold(kept: Path, where: Path, accounts: list[Row],
                           day: date = DAY) -> str:
    """Copy the kept project, write ``accounts`` into it, run ``day`` from the kept state,
    and compare every column with a cold run of ``day`` in a fresh project on the same
    files; the run's note."""
    root = where / "next"
    shutil.copytree(kept, root)
    (root / "data" / "accounts.csv").write_text(csv_text(COLUMNS, accounts), encoding="utf-8")
    result = Project.load(root).run(as_of=day, apply_rules=False)
    cold_root = _project(where / "cold", accounts)
    cold = Project.load(cold_root).run(as_of=day, apply_rules=False)
    assert cold.incremental == ""  # (a fresh project: no state, no stored date)
    scores, expected = _scores(root, day), _scores(cold_root, day)
    if expected is None:  # (no account is a customer on the date: nothing is stored)
        assert scores is None
    else:
        assert scores is not None
        _same(scores, expected)
    return result.incremental


def _scores(root: Path, day: date) -> pd.DataFrame | None:
    """Every scored row of ``day`` (every scorecard), None when the date is not stored."""
    project = Project.load(root)
    if day not in project.store.dates():
        return None
    frame = project.scores(day, primary_only=False).to_pandas()
    return frame.sort_values(KEYS).reset_index(drop=True)


FROM_STATE = f"{DAY} computed from the state kept as of {KEPT}"
LATE_A3 = ("late rows in usage_events dated 2025-01-01, 2025-01-05, 2025-01-09, 2025-01-13, "
           "2025-01-17 ...: recomputing 2025-03-09, 2025-03-10 and 2025-03-11 from the sources")


@pytest.mark.parametrize("changes, added, note", [
    pytest.param({"A2": {"start_date": str(DAY)}}, [],
                 f"{FROM_STATE}, and from their whole history for 1 account whose start date "
                 f"moved after {KEPT}: A2", id="start-after-the-kept-date"),
    pytest.param({"A2": {"start_date": "2025-03-15"}, "A6": {"start_date": "2025-02-01"},
                  "A5": {"start_date": str(KEPT)}}, [], FROM_STATE,
                 id="start-after-the-new-date-or-before-the-kept-one"),
    pytest.param({"A3": {"churn_date": str(KEPT)}, "A2": {"churn_date": str(DAY)},
                  "A1": {"churn_date": "2025-03-05"}, "A4": {"churn_date": ""}}, [], FROM_STATE,
                 id="gone-on-or-before-the-kept-date-on-the-new-date-not-gone"),
    pytest.param({"A3": None}, [], LATE_A3, id="deleted"),  # its rows are now rejected
    pytest.param({}, [("A7", "Wayne", "SMB", "2025-02-01", "", "adoption", "ada", "1", "One year",
                       "40")], FROM_STATE, id="added-before-the-kept-date"),
    pytest.param({"A1": {"segment": "Enterprise", "lifecycle_stage": "renewal", "csm": "bob",
                         "name": "Acme Corp", "contract_type": "One year"},
                  "A2": {"segment": "SMB", "contract_type": "Month-to-month",
                         "monthly_charges": "5"},
                  "A3": {"lifecycle_stage": "", "licensed_seats": "1"}}, [], FROM_STATE,
                 id="segment-stage-owner-attributes"),  # scorecard, percentile, ratio, history
])
def test_the_next_day_after_an_edit_of_the_accounts_equals_a_cold_run(
        kept: Path, tmp_path: Path, changes: dict[str, dict[str, str] | None],
        added: list[Row], note: str) -> None:
    assert _next_day_against_cold(kept, tmp_path, _edited(changes, added)) == note


# start and churn dates around the kept date and the new one (the simplest example: every
# account starting on the new date)
DAYS = [str(DAY), "2025-01-20", str(KEPT - timedelta(days=1)), str(KEPT), "2025-03-15"]


@st.composite
def _accounts(draw: st.DrawFn) -> list[Row]:
    changes: dict[str, dict[str, str] | None] = {}
    for row in ACCOUNTS:
        if draw(st.integers(0, 9)) == 0:
            changes[row[0]] = None
            continue
        change = {"start_date": draw(st.sampled_from([*DAYS, row[3]])),
                  "churn_date": draw(st.sampled_from([row[4], "", *DAYS])),
                  "segment": draw(st.sampled_from([row[2], "SMB", "Enterprise"])),
                  "contract_type": draw(st.sampled_from([row[8], "Month-to-month", "Two year"])),
                  "monthly_charges": draw(st.sampled_from([row[9], "15", "60"]))}
        changes[row[0]] = {k: v for k, v in change.items()
                           if k != "churn_date" or not v or v > change["start_date"]}
    added = [("A7", "Wayne", draw(st.sampled_from(["SMB", "Enterprise"])),
              draw(st.sampled_from(DAYS)), "", "adoption", "ada", "1", "One year", "40")]
    return _edited(changes, added if draw(st.booleans()) else [])


@settings(max_examples=6, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(accounts=_accounts())
def test_any_edit_of_the_accounts_gives_the_next_day_of_a_cold_run(
        kept: Path, tmp_path_factory: pytest.TempPathFactory, accounts: list[Row]) -> None:
    _next_day_against_cold(kept, tmp_path_factory.mktemp("edit"), accounts)


def test_a_later_day_after_an_edit_of_the_accounts_and_the_day_after_it_equal_cold_runs(
        kept: Path, tmp_path: Path) -> None:
    """Three days after the kept date: an account that now starts between them is scored
    from its whole history too (one that starts and is gone between them is not scored, nor
    named); the state that run keeps gives the day after it as a cold run does (the
    account's values and distinct users kept once)."""
    day = KEPT + timedelta(days=3)
    accounts = _edited({"A2": {"start_date": str(KEPT + timedelta(days=2))},
                        "A1": {"start_date": str(KEPT + timedelta(days=1)),
                               "churn_date": str(KEPT + timedelta(days=2))}})
    assert _next_day_against_cold(kept, tmp_path, accounts, day) == (
        f"{day} computed from the state kept as of {KEPT}, and from their whole history for 1 "
        f"account whose start date moved after {KEPT}: A2")
    after = day + timedelta(days=1)
    result = Project.load(tmp_path / "next").run(as_of=after, apply_rules=False)
    assert result.incremental == f"{after} computed from the state kept as of {day}"
    cold = _project(tmp_path / "cold-after", accounts)
    assert Project.load(cold).run(as_of=after, apply_rules=False).incremental == ""
    _same(_scores(tmp_path / "next", after), _scores(cold, after))  # type: ignore[arg-type]
