"""A single scorecard's rows are stored in as-of date order, their percentiles with them,
before they are scored: the pass file comes out in date order without a sort of the scores,
holding the same rows as the scores sorted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore import Project
from healthscore.pipeline import score
from healthscore.scoring.scorecard import score_scorecard
from healthscore.templates import write_template

from .conftest import DEMO_END

DATES = [DEMO_END - timedelta(days=7 * i) for i in reversed(range(6))]
KEYS = [("as_of", "ascending"), ("account_id", "ascending"), ("scorecard", "ascending")]


def _pass_file(demo_data: Path, root: Path) -> pa.Table:
    """The pass file of a run of the health-index template (one scorecard, two percentile
    measures) over ``DATES``."""
    write_template(root, "health-index", demo_data)
    Project.load(root).run(dates=DATES, apply_rules=False)
    (path,) = (root / ".healthscore/snapshots/passes").glob("*.parquet")
    return pq.read_table(path)


def test_rows_stored_by_date_are_written_in_date_order_and_score_the_same(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_date = _pass_file(demo_data, tmp_path / "by-date")
    days = by_date["as_of"].to_pylist()
    assert days == sorted(days)
    assert sorted(set(days)) == DATES
    monkeypatch.setattr(score, "in_date_order", lambda config, engine: False)
    sorted_after = _pass_file(demo_data, tmp_path / "sorted")
    # the same columns and types; whether Parquet marks a column as never null follows the
    # engine's statistics of what it read (as for the measure values before)
    assert [(f.name, f.type) for f in by_date.schema] == \
        [(f.name, f.type) for f in sorted_after.schema]
    # the same rows and values (floats to 1e-9: the engine's threads add doubles in any order)
    a, b = by_date.sort_by(KEYS).to_pandas(), sorted_after.sort_by(KEYS).to_pandas()
    for col in a.columns:
        same = (a[col] == b[col]) | (a[col].isna() & b[col].isna())
        if a[col].dtype.kind == "f":
            same |= (a[col] - b[col]).abs() < 1e-9
        assert same.all(), f"{col}: {a[~same][col].head()} vs {b[~same][col].head()}"


def test_each_percentile_is_joined_once(demo_data: Path, tmp_path: Path) -> None:
    """The second percentile measure counts the scorecard's rows, not the rows the first
    one's join made (which joined that one a second time)."""
    write_template(tmp_path, "health-index", demo_data)
    (sc,) = Project.load(tmp_path).config.scorecards
    columns = {"account_id": "string", "as_of": "date", "segment": "string"}
    columns.update({m: "float64" for m in sc.measures})
    sql = ibis.to_sql(score_scorecard(sc, ibis.table(columns, name="measures"), "v1", True),
                      dialect="duckdb")
    percentiles = [e for e in sc.all_entries() if e.scheme.type == "percentile"]
    assert len(percentiles) == 2
    assert sql.count(" JOIN ") == len(percentiles)
