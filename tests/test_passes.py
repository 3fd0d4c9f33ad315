"""A run of many close dates cut into set-based passes (``max_rows_per_pass``,
pipeline/score.py ``pass_exprs``): every column of every date, and of the next day scored
from the running values the run kept, as one pass over all the dates."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.csv as pcsv

from healthscore import Project

from .test_incremental import _same
from .test_pipeline import _project, _risk_too

KEYS = ["as_of", "account_id", "scorecard"]


def _scored(root: Path, dates: list[date], passes: int | None) -> tuple[pd.DataFrame, Project]:
    """``dates`` scored in one run; with ``passes``, at most that many account-dates a pass."""
    if passes is not None:
        text = (root / "healthscore.yml").read_text()
        (root / "healthscore.yml").write_text(
            text.replace("settings:\n", f"settings:\n  max_rows_per_pass: {passes}\n"))
    project = Project.load(root)
    return _sorted(project.run(dates=dates, apply_rules=False).to_pandas()), project


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEYS).reset_index(drop=True)


def test_a_run_in_passes_gives_one_pass_values_on_every_column_and_the_next_day(
        demo_data: Path, tmp_path: Path) -> None:
    """Eight-categories + the nine-module scorecard on the demo data (150 accounts), 19 daily
    dates: passes of 6 dates (1,000 account-dates) against one pass. Every window holds dates
    of several passes, an account starts on the 15th date (in the third pass), and the last
    pass holds one date (its distinct counts joined to it directly, not counted as islands)."""
    starts = pd.to_datetime(pcsv.read_csv(demo_data / "accounts.csv").to_pandas()["start_date"])
    first = max(d for d in starts.dt.date if d <= date(2026, 9, 30))
    dates = [first + timedelta(days=i) for i in range(-14, 5)]
    one, project_one = _scored(_risk_too_project(tmp_path / "one", demo_data), dates, None)
    many, project = _scored(_risk_too_project(tmp_path / "many", demo_data), dates, 1000)
    assert project.config.settings.max_rows_per_pass == 1000
    assert (starts.dt.date == first).sum() >= 1
    assert one.as_of.nunique() == 19 and len(one) > 19 * 100
    assert len([c for c in one.columns if c.startswith(("m__", "s__"))]) > 40
    _same_rows(many, one)
    after = dates[-1] + timedelta(days=1)  # the next day, from the state each run kept
    next_one = project_one.run(as_of=after, apply_rules=False)
    next_many = project.run(as_of=after, apply_rules=False)
    assert next_many.incremental == f"{after} computed from the state kept as of {dates[-1]}"
    assert next_one.incremental == next_many.incremental
    _same_rows(_sorted(next_many.to_pandas()), _sorted(next_one.to_pandas()))


def _risk_too_project(root: Path, data: Path) -> Path:
    _project(root, data)
    _risk_too(root)
    return root


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(zip(a.as_of, a.account_id, a.scorecard, strict=True)) == \
        list(zip(b.as_of, b.account_id, b.scorecard, strict=True))
    for day in sorted(set(a.as_of)):
        _same(a[a.as_of == day].reset_index(drop=True), b[b.as_of == day].reset_index(drop=True))
