"""The running values on every as-of date from the rows that carry a contribution
(measures/build.py ``running_on_dates``): a window over those rows, then each date takes its
account's latest row at or before it, as a window over every date gives them."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import ibis
import pandas as pd
import pytest

from healthscore import Project
from healthscore.measures import build
from healthscore.measures.build import MeasureBuilder, running_on_dates
from healthscore.measures.parts import LATEST, MAX, SUM

from .test_passes import _risk_too_project, _same_rows, _sorted


def test_each_date_takes_the_running_values_of_its_latest_contribution() -> None:
    """Account a: contributions on dates 1 and 3 of 0..4; b: on date 0 only; c: none."""
    con = ibis.duckdb.connect()
    keys = con.create_table("keys", pd.DataFrame({
        "account_id": ["a"] * 5 + ["b"] * 3 + ["c"] * 2,
        "k": [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]}))
    at = pd.Timestamp
    sparse = con.create_table("sparse", pd.DataFrame({
        "account_id": ["a", "a", "b"], "k": [1, 3, 0],
        "n": [2.0, -0.5, 7.0],  # summed
        "day": [date(2026, 1, 5), date(2026, 1, 3), date(2026, 1, 1)],  # the largest
        "nps": [9.0, 4.0, None],  # the latest by its time
        "nps__ts": [at("2026-01-05 10:00"), at("2026-01-04 09:00"), None]}))
    cols = {"n": (SUM, "float64"), "day": (MAX, "date"), "nps": (LATEST, "float64"),
            "nps__ts": (MAX, "timestamp")}
    out = running_on_dates(keys, sparse, cols).to_pandas()
    out = out.sort_values(["account_id", "k"]).reset_index(drop=True)
    assert list(out.columns) == ["account_id", "k", "n", "day", "nps", "nps__ts"]
    assert out.n.fillna(-1).tolist() == [-1, 2.0, 2.0, 1.5, 1.5, 7.0, 7.0, 7.0, -1, -1]
    days = [d if pd.notna(d) else None for d in out.day]
    assert days == [None, *[pd.Timestamp(2026, 1, 5)] * 4, *[pd.Timestamp(2026, 1, 1)] * 3,
                    None, None]
    assert out.nps.fillna(-1).tolist() == [-1, 9.0, 9.0, 9.0, 9.0, -1, -1, -1, -1, -1]


@pytest.mark.parametrize("step", [1, 3])
def test_as_of_join_gives_the_window_over_every_date(
        demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Eight-categories + the nine-module scorecard on the demo data, 24 dates a day (or three
    days) apart, some before an account starts: every column as the window over every date
    gives it (the engine without an as-of join)."""
    end = date(2026, 9, 30)
    dates = [end - timedelta(days=step * i) for i in range(23, -1, -1)]
    calls: list[int] = []

    def spied(keys: ibis.Table, *args: object) -> ibis.Table:
        calls.append(1)
        return running_on_dates(keys, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "running_on_dates", spied)
    by_asof = _run(_risk_too_project(tmp_path / "asof", demo_data), dates)
    assert calls  # (the engine, DuckDB, has an as-of join)
    monkeypatch.setattr(MeasureBuilder, "_fills_by_asof", lambda self: False)
    by_window = _run(_risk_too_project(tmp_path / "window", demo_data), dates)
    assert by_asof.as_of.nunique() == 24 and len(by_asof) > 24 * 100
    _same_rows(by_asof, by_window)


def _run(root: Path, dates: list[date]) -> pd.DataFrame:
    return _sorted(Project.load(root).run(dates=dates, apply_rules=False).to_pandas())
