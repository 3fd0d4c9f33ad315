"""A pass of many dates is written as one file in as-of date order without sorting its scored
rows: each scorecard's rows are sorted on their few measure columns, before the scores, groups
and colours are computed from them (pipeline/score.py ``score_in_passes``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore import Project, pipeline
from healthscore.engine.adapter import DuckDBEngine

from .conftest import DEMO_END
from .test_incremental import _same
from .test_passes import _risk_too_project

DATES = [DEMO_END - timedelta(days=i) for i in range(11, -1, -1)]
KEYS = ["as_of", "scorecard", "account_id"]


@pytest.fixture(scope="module")
def written(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path]:
    """The demo's 150 accounts, 12 daily dates in one pass: three primary scorecards and the
    nine-module one beside them (its percentile measure among them)."""
    project = Project.load(_risk_too_project(tmp_path_factory.mktemp("write"), demo_data))
    project.run(dates=DATES, apply_rules=False)
    files = list(project.store.passes.glob("pass-*.parquet"))
    assert len(files) == 1
    return project, files[0]


def test_each_scorecards_rows_come_in_date_order_and_together(
        written: tuple[Project, Path]) -> None:
    """A reader of one date finds its rows in one run of row groups per scorecard."""
    rows = pq.read_table(written[1], columns=["as_of", "scorecard"]).to_pandas()
    assert rows.as_of.nunique() == len(DATES) and rows.scorecard.nunique() >= 3
    runs = (rows.scorecard != rows.scorecard.shift()).cumsum()
    assert runs.nunique() == rows.scorecard.nunique()  # each scorecard's rows together
    for _, part in rows.groupby(runs):
        assert part.as_of.is_monotonic_increasing, part.scorecard.iloc[0]


def test_the_rows_in_date_order_hold_the_values_scored_without_ordering(
        written: tuple[Project, Path]) -> None:
    """Every column of every row as the scores read into memory give them (not ordered)."""
    project, path = written
    stored = _by_keys(pq.read_table(path).to_pandas())
    engine = pipeline.open_engine(project.config)
    try:
        loaded = pipeline.load_sources(project.config, engine, lambda _: None)
        frame = pipeline.score_frame(project.config, loaded, DATES, lambda _: None)
    finally:
        engine.close()
    frame = _by_keys(frame)
    assert list(stored.columns) == list(frame.columns)
    assert len(stored) == len(frame) > 12 * 100
    stored["as_of"] = pd.to_datetime(stored["as_of"]).dt.date
    _same(stored, frame)


def _by_keys(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEYS).reset_index(drop=True)


def test_rows_the_query_orders_are_written_in_that_order(tmp_path: Path) -> None:
    """600,000 rows in two parts (scorecards), each ordered by the query itself under steps
    after its sort, two threads: the file holds each part together, in that order (DuckDB
    reorders only the rows of queries without an ORDER BY)."""
    engine = DuckDBEngine(threads=2)
    try:
        n = 600_000
        days = [date(2025, 1, 1) + timedelta(days=(i * 7919) % 60) for i in range(n)]
        t = engine.register_arrow(pa.table({"as_of": days, "k": range(n)}), "rows")
        parts = []
        for part in range(2):
            rows = t.filter(t.k % 2 == part).order_by("as_of")
            rows = rows.mutate(k2=rows.k * 2, part=ibis.literal(part))
            parts.append(rows.mutate(k3=ibis._.k2 + 1))
        engine.write_sorted(ibis.union(*parts), tmp_path / "pass.parquet", in_order=True)
    finally:
        engine.close()
    written = pq.read_table(tmp_path / "pass.parquet").to_pandas()
    assert written.part.tolist() == [0] * (n // 2) + [1] * (n // 2)
    for part, rows in written.groupby("part"):
        assert rows.as_of.tolist() == sorted(d for i, d in enumerate(days) if i % 2 == part)
    assert sorted(written.k3) == [2 * k + 1 for k in range(n)]
