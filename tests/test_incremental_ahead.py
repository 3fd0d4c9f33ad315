"""The rows a run keeps ahead for the next days' cuts (pipeline/incremental.py ``Ahead``):
daily runs cut the usage events from them, with the rows of the files added since, instead
of scanning the source; the first day they do not cover is scanned and keeps the rows of the
days after it, and so is a day whose source changed otherwise. Every day equals a run from
the sources on every column."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from healthscore import Project
from healthscore.pipeline import incremental

from .projects import (
    ACCOUNT_COLUMNS,
    EVENT_COLUMNS,
    MEASURES_YML,
    csv_text,
    parquet_file,
    project_yml,
    write_project,
)
from .test_incremental import _same

START = date(2025, 1, 1)
DAYS = [date(2025, 3, 1) + timedelta(days=i) for i in range(incremental.AHEAD_DAYS + 3)]
ACCOUNTS = [("A1", "Acme", "SMB", "2024-01-01"), ("A2", "Globex", "SMB", "2024-06-01"),
            ("A3", "Initech", "SMB", "2024-09-01")]
KEYS = ["account_id", "scorecard"]


def _events(day: date) -> list[tuple[Any, ...]]:
    """The usage events of ``day``: A3 every day, A1 every second, A2 every third, by users
    that change from day to day (windows of 7 and 30 days lose rows every day)."""
    i = (day - START).days
    at = datetime.combine(day, time(9))
    rows = [("A3", f"u{i % 5}", "login", at)]
    rows += [("A1", f"v{i % 3}", "login", at)] if i % 2 == 0 else []
    rows += [("A2", "w1", "export" if i % 6 else "login", at)] if i % 3 == 0 else []
    return rows


def _project(root: Path, until: date) -> Path:
    """A folder of Parquet usage events: one file up to ``until``, one file a day after."""
    days = [START + timedelta(days=i) for i in range((DAYS[-1] - START).days + 1)]
    files: dict[str, Any] = {
        f"data/usage_events/part-{d}.parquet": parquet_file(EVENT_COLUMNS, _events(d))
        for d in days if d > until}
    files["data/usage_events/part-0.parquet"] = parquet_file(
        EVENT_COLUMNS, [r for d in days if d <= until for r in _events(d)])
    return write_project(root, {
        "healthscore.yml": project_yml("accounts: {path: data/accounts.csv}\n"
                                       "usage_events: {path: data/usage_events/}\n"),
        "measures/usage.yml": MEASURES_YML + """\
users_7d: {type: count_distinct, entity: usage_events, column: user_id, window: 7d, scheme: {type: linear, low: 0, high: 3}}
events_90: {type: count, entity: usage_events, window: 90d, scheme: {type: linear, low: 0, high: 60}}
last_seen: {type: days_since, entity: usage_events, scheme: {type: linear, low: 10, high: 0}}
""",  # noqa: E501
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {logins_30: 30, "
                                  "users_7d: 30, events_90: 30, last_seen: 10}}}\n",
        "data/accounts.csv": csv_text(ACCOUNT_COLUMNS, ACCOUNTS),
        "data/usage_events.csv": None,
        **files,
    })


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Every day of DAYS scored from the sources in one run (each date sees no later row)."""
    root = _project(tmp_path_factory.mktemp("cold") / "p", DAYS[-1])
    return Project.load(root).run(dates=DAYS, apply_rules=False).to_pandas()


def _on(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    rows = frame[pd.to_datetime(frame.as_of).dt.date == day]
    return rows.sort_values(KEYS).reset_index(drop=True)


def _kept(root: Path) -> dict[str, Any]:
    """The usage events' rows kept ahead, as the state's manifest records them."""
    manifest = json.loads((root / ".healthscore" / incremental.FOLDER / incremental.MANIFEST)
                          .read_text())
    return manifest["ahead"]["usage_events"]


@pytest.mark.parametrize("arriving", [False, True], ids=["all-rows-there", "a-file-a-day"])
def test_daily_runs_scan_the_usage_events_once_a_week_and_equal_a_cold_run(
        tmp_path: Path, cold: pd.DataFrame, arriving: bool) -> None:
    """From a cold run of the first day, the next AHEAD_DAYS days are cut from the rows it
    kept (the bands kept stay those of the first day; with a file a day, that day's rows join
    them), the day after is scanned and keeps the next week's, and every day equals the run
    from the sources on every column."""
    root = _project(tmp_path / "p", DAYS[0] if arriving else DAYS[-1])
    if arriving:
        later = sorted((root / "data" / "usage_events").glob("part-2*.parquet"))
        aside = tmp_path / "later"
        aside.mkdir()
        for f in later:
            f.rename(aside / f.name)
    project = Project.load(root)
    project.run(as_of=DAYS[0], apply_rules=False)
    first, bands = _kept(root)["bands"], []
    for n, day in enumerate(DAYS[1:], start=1):
        if arriving:
            (aside / f"part-{day}.parquet").rename(root / "data" / "usage_events" / f"part-{day}.parquet")
        result = project.run(as_of=day, apply_rules=False)
        assert result.incremental == f"{day} computed from the state kept as of {DAYS[n - 1]}"
        _same(_on(result.to_pandas(), day), _on(cold, day))
        kept = _kept(root)
        assert kept["key"] == json.loads(
            (root / ".healthscore" / incremental.FOLDER / incremental.MANIFEST).read_text()
        )["keys"]["usage_events"]
        bands.append(kept["bands"])
    week = incremental.AHEAD_DAYS
    assert bands[:week] == [first] * week  # cut from the rows the first day kept
    scanned = DAYS[week + 1]  # the first day they do not cover: the week after it kept
    assert max(u for _, _, u in bands[week]) == str(scanned + timedelta(days=week))
    assert bands[week + 1:] == [bands[week]]


def test_a_source_changed_otherwise_is_scanned(tmp_path: Path) -> None:
    """A file rewritten (not added to: a login added to the next day's file) is not the
    rows kept ahead: the next day is scanned, and sees the login as a run from the sources
    does."""
    root = _project(tmp_path / "p", DAYS[0])  # a file a day after the first
    project = Project.load(root)
    project.run(as_of=DAYS[0], apply_rules=False)
    first = _kept(root)
    more = ("A2", "w9", "login", datetime.combine(DAYS[1], time(10)))
    parquet_file(EVENT_COLUMNS, [*_events(DAYS[1]), more])(
        root / "data" / "usage_events" / f"part-{DAYS[1]}.parquet")
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh)
    shutil.rmtree(fresh / ".healthscore")
    result = project.run(as_of=DAYS[1], apply_rules=False)
    assert result.incremental == f"{DAYS[1]} computed from the state kept as of {DAYS[0]}"
    assert _kept(root)["bands"] != first["bands"]  # scanned
    cold = Project.load(fresh).run(as_of=DAYS[1], apply_rules=False).to_pandas()
    _same(_on(result.to_pandas(), DAYS[1]), _on(cold, DAYS[1]))


@pytest.mark.parametrize("known", [False, True], ids=["added-that-day", "known-before"])
def test_a_new_account_is_cut_from_the_rows_kept_ahead_unless_they_may_hold_its_rows(
        tmp_path: Path, known: bool) -> None:
    """An account new on the day (not active on the kept date), added to the accounts file
    that day with its rows in the day's new file: the rows kept ahead hold none of its rows
    (a source's rows of an account it does not know are rejected), so the day is cut from
    them and the new file. An account in the file before, starting that day, may have rows
    among them: the day is scanned. Both equal a run from the sources."""
    root = _project(tmp_path / "p", DAYS[0])
    aside = tmp_path / "later"
    aside.mkdir()
    for f in sorted((root / "data" / "usage_events").glob("part-2*.parquet")):
        f.rename(aside / f.name)
    new = ("A4", "Umbrella", "SMB", str(DAYS[1]))
    accounts = root / "data" / "accounts.csv"
    if known:  # (its rows since a month before in the first file)
        accounts.write_text(csv_text(ACCOUNT_COLUMNS, [*ACCOUNTS, new]))
        first_file = root / "data" / "usage_events" / "part-0.parquet"
        earlier = [("A4", "x1", "login", datetime.combine(DAYS[0] - timedelta(days=d), time(8)))
                   for d in (3, 20, 40)]
        old = [r for d in range((DAYS[0] - START).days + 1) for r in _events(START + timedelta(days=d))]
        parquet_file(EVENT_COLUMNS, [*old, *earlier])(first_file)
    project = Project.load(root)
    project.run(as_of=DAYS[0], apply_rules=False)
    first = _kept(root)["bands"]
    accounts.write_text(csv_text(ACCOUNT_COLUMNS, [*ACCOUNTS, new]))
    rows = [*_events(DAYS[1]), ("A4", "x1", "login", datetime.combine(DAYS[1], time(11)))]
    parquet_file(EVENT_COLUMNS, rows)(root / "data" / "usage_events" / f"part-{DAYS[1]}.parquet")
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh)
    shutil.rmtree(fresh / ".healthscore")
    result = project.run(as_of=DAYS[1], apply_rules=False)
    assert result.incremental == f"{DAYS[1]} computed from the state kept as of {DAYS[0]}"
    assert (_kept(root)["bands"] != first) is known  # scanned only when it may have rows
    got = _on(result.to_pandas(), DAYS[1])
    assert "A4" in set(got.account_id)
    _same(got, _on(Project.load(fresh).run(as_of=DAYS[1], apply_rules=False).to_pandas(), DAYS[1]))


def test_the_bands_kept_ahead_hold_every_cut_of_the_days_ahead(tmp_path: Path) -> None:
    """The rows kept as of a day hold those of every run over [prev, day] between it and
    AHEAD_DAYS days later, and not those of a day after that."""
    config = Project.load(_project(tmp_path / "p", DAYS[-1])).config
    uses = incremental._uses(config, "usage_events")
    seen = set(incremental.distinct_measures(config))
    kept = incremental._ahead_bands("usage_events", uses, DAYS[0], seen)
    assert kept is not None
    last = DAYS[0] + timedelta(days=incremental.AHEAD_DAYS)
    for prev in DAYS[:incremental.AHEAD_DAYS]:
        for day in (d for d in DAYS if prev < d <= last):
            need = incremental._bands("usage_events", uses, prev, day, seen)
            assert need is not None and incremental._covers(kept, need), (prev, day)
    beyond = incremental._bands("usage_events", uses, last, last + timedelta(days=1), seen)
    assert beyond is not None and not incremental._covers(kept, beyond)
