"""The scores' steps pass on only the columns later steps and the rows read."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from healthscore import Project
from healthscore.engine.adapter import DuckDBEngine, nested_selects
from healthscore.scoring.scorecard import score_scorecard

from .projects import write_project


def test_the_steps_leave_out_the_columns_no_score_reads(tmp_path: Path) -> None:
    sc = Project.load(write_project(tmp_path)).config.scorecards[0]
    engine = DuckDBEngine()
    try:
        t = engine.register_arrow(pa.table({
            "account_id": ["A1", "A2"], "as_of": ["2025-03-01"] * 2, "name": ["Acme", "Globex"],
            "logins_30": [2, 1], "carried": [7.0, None], "unused_column": [1, 2],
        }), "wide")
        expr = score_scorecard(sc, t, "v1", True, carry=("carried",))
        with nested_selects():
            sql = str(engine.con.compile(expr))
        rows = engine.to_arrow(expr, nested=True).to_pylist()
    finally:
        engine.close()
    assert "unused_column" not in sql
    assert [(r["account_id"], r["name"], r["score"], r["m__carried"]) for r in rows] == [
        ("A1", "Acme", 100.0, 7.0), ("A2", "Globex", 50.0, None)]
