"""Churn without contracts (validation.churn): no activity for N days is a churn. Labels,
observations and metrics on a small project computed by hand, and point-in-time."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from healthscore.errors import ConfigError, DataError
from healthscore.project import Project
from healthscore.validation import observations

from .projects import csv_text, write_project

JAN, FEB, MAR = date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)
UNTIL = date(2025, 5, 31)
CHURN = "  churn: {inactive_for: 30d, entity: usage_events, filter: \"event = 'login'\"}\n"


def _days(first: date, last: date, every: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(0, (last - first).days + 1, every)]


LOGINS = {
    "A1": _days(date(2024, 12, 5), UNTIL, 10),  # always active
    "A2": _days(date(2024, 12, 5), date(2025, 2, 10), 7)[:-1] + [date(2025, 2, 10)],
    # A3: silent from 01-05 (lapses 02-04), back on 03-20
    "A3": [date(2024, 12, 10), date(2025, 1, 5), *_days(date(2025, 3, 20), UNTIL, 5)],
    "A4": [],  # never logs in: lapses 30 days after its start
}
# A2 keeps exporting after its last login: an 'export' is no activity under the filter
EXPORTS = [("A2", date(2025, 3, 1))]


def _project(root: Path, churn: str = CHURN, until: date | None = UNTIL,
             start: str = "2024-12-01") -> Path:
    rows = [(a, "u", "login", f"{d} 09:00:00") for a, ds in LOGINS.items() for d in ds]
    rows += [(a, "u", "export", f"{d} 09:00:00") for a, d in EXPORTS]
    until = f"  observed_until: {until}\n" if until else ""
    return write_project(root, {
        "healthscore.yml": "name: lapses\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.csv}\nscorecards: [default]\n"
                           f"validation:\n{until}{churn}",
        "measures/usage.yml": "logins_30: {type: count, entity: usage_events, filter: \"event = "
                              "'login'\", window: 30d, scheme: {type: linear, low: 0, high: 8}}\n",
        "data/accounts.csv": csv_text(["account_id", "name", "segment", "start_date"],
                                      [(a, a, "SMB", start) for a in LOGINS]),
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], rows),
    })


def _observations(root: Path, dates: list[date], until: date | None = UNTIL) -> dict:
    config = Project.load(root).config
    obs = observations.build(config, dates, "churn", 30, 0, until, lambda _: None)
    return {(r.account_id, r.as_of): (r.label, None if pd.isna(r.event_date) else r.event_date)
            for r in obs.primary().itertuples()}


def test_inactivity_labels_and_customers_by_hand(tmp_path: Path) -> None:
    seen = _observations(_project(tmp_path), [JAN, FEB, MAR])
    assert seen == {
        ("A1", JAN): (0, None), ("A1", FEB): (0, None), ("A1", MAR): (0, None),
        # A2's last login 02-10: a customer on 01-31 and 02-28, lapsed on 03-12 (its export on
        # 03-01 is no login), gone by 03-31
        ("A2", JAN): (0, None), ("A2", FEB): (1, date(2025, 3, 12)),
        # A3 lapses on 02-04 (a customer on 01-31, 26 days after its login), back on 03-20
        ("A3", JAN): (1, date(2025, 2, 4)), ("A3", MAR): (0, None),
        # A4 never logged in: lapsed on 12-31, never a customer on these dates
    }


def test_the_label_reads_later_activity_and_the_observation_never_does(tmp_path: Path) -> None:
    """On FEB the same accounts with the same scores whether the data after FEB exists or not;
    only the labels differ (unknown, so all 0, when nothing after FEB is in the data)."""
    full = _observations(_project(tmp_path / "full"), [FEB])
    cut = {a: [d for d in ds if d <= FEB] for a, ds in LOGINS.items()}
    original = dict(LOGINS)
    LOGINS.clear()
    LOGINS.update(cut)
    try:
        root = _project(tmp_path / "cut", until=UNTIL)
    finally:
        LOGINS.clear()
        LOGINS.update(original)
    config = Project.load(root).config
    both = []
    for r in (tmp_path / "full", root):
        obs = observations.build(Project.load(r).config, [FEB], "churn", 30, 0, UNTIL, lambda _: None)
        both.append(obs.primary().set_index("account_id")[["score", "m__logins_30"]])
    assert both[0].equals(both[1])
    assert set(full) == {(a, FEB) for a in both[1].index}
    assert config.validation.churn is not None


def test_every_metric_is_reported_for_inactivity_churn(tmp_path: Path) -> None:
    """Thirty accounts per kind: the ones that lapse log in less and less first, so lift,
    false greens and lead time all have something to say."""
    logins: dict[str, list[date]] = {}
    for i in range(60):
        if i % 2:  # fading: a login every 4, then 12, then 25 days; lapse after the last
            stop = date(2025, 1, 10) + timedelta(days=3 * i)
            logins[f"C{i:02d}"] = [*_days(date(2024, 12, 1), stop - timedelta(days=40), 4),
                                   *_days(stop - timedelta(days=36), stop, 12)]
        else:
            logins[f"C{i:02d}"] = _days(date(2024, 12, 1) + timedelta(days=i % 5), UNTIL, 3)
    original = dict(LOGINS)
    LOGINS.clear()
    LOGINS.update(logins)
    try:
        root = _project(tmp_path, start="2023-01-01")
    finally:
        LOGINS.clear()
        LOGINS.update(original)
    v = Project.load(root).validate(start=JAN, end=MAR, horizon="30d")
    data = v.to_json()
    overall = data["overall"]
    assert overall["outcomes"] > 0 and overall["auc"] > 0.5
    assert overall["top_decile_lift"] > 1
    assert overall["false_green"]["outcomes"] == overall["outcomes"]
    assert overall["lead_time"]["accounts"] > 0 and overall["lead_time"]["warned"] > 0
    # seed 000's question opens the report: the 30 always active stayed two years, and so did
    # the fading ones whose lapse falls after the last outcome window
    q = data["question"]
    assert (q["years"], q["verdict"]) == (2, "yes") and q["stayed"] >= 30
    html, written = v.write(tmp_path / "report")
    text = html.read_text()
    assert text.index("Do customers who stayed for years score high") < text.index("Churn rate by band")
    assert json.loads(written.read_text())["question"]["answer"] == q["answer"]


def test_no_lapse_is_a_data_error(tmp_path: Path) -> None:
    churn = "  churn: {inactive_for: 300d, entity: usage_events}\n"
    with pytest.raises(DataError) as err:
        _observations(_project(tmp_path, churn, until=None), [JAN])
    assert str(err.value) == (
        "validate: no account went 300d without usage_events rows by 2025-05-31, so there is "
        "no churn (validation.churn) to check the score against. Shorten "
        "validation.churn.inactive_for, or check the entity and filter.")


BAD = [
    ("  churn: {inactive_for: soon}\n",
     "healthscore.yml: validation.churn.inactive_for: "),
    ("  churn: {inactive_for: 30d, entity: tickets}\n",
     "healthscore.yml: validation.churn.entity: 'tickets' is not a source of dated rows in this "
     "project, so it cannot tell when an account was last active. Sources with dated rows: "
     "usage_events."),
    ("  churn: {inactive_for: 30d, filter: \"kind = 'x'\"}\n",
     "healthscore.yml: validation.churn.filter: unknown usage_events column 'kind'"),
]


@pytest.mark.parametrize(("churn", "expected"), BAD, ids=["duration", "entity", "filter"])
def test_bad_churn_settings_are_config_errors(tmp_path: Path, churn: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        Project.load(_project(tmp_path, churn))
    assert str(err.value).startswith(expected)
