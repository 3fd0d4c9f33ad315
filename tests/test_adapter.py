"""The DuckDB engine's SQL: float columns come out as DOUBLE, and the scores are compiled with
nested selects (Ibis's option restored after)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore.engine.adapter import DuckDBEngine, nested_selects


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    engine = DuckDBEngine()
    yield engine
    engine.close()


def test_float_literals_come_out_as_double_not_decimal(engine: DuckDBEngine,
                                                       tmp_path: Path) -> None:
    """DuckDB types the literal 0.5 DECIMAL(2,1); Ibis (and every other engine) float64."""
    t = engine.register_arrow(pa.table({"as_of": ["2025-01-31"], "n": [3]}), "t")
    expr = t.mutate(half=ibis.literal(0.5), ratio=t.n / 2, n2=t.n + 1)
    got = engine.to_arrow(expr)
    assert got.schema.field("half").type == pa.float64()
    assert got.schema.field("ratio").type == pa.float64()
    assert got.schema.field("n2").type == pa.int64()
    assert got.to_pylist() == [{"as_of": "2025-01-31", "n": 3, "half": 0.5, "ratio": 1.5, "n2": 4}]
    engine.write_partitioned(expr, tmp_path / "out")
    written = pq.read_table(tmp_path / "out" / "as_of=2025-01-31")
    assert written.schema.field("half").type == pa.float64()
    assert written.column("half").to_pylist() == [0.5]


def _two_steps(engine: DuckDBEngine) -> ibis.Table:
    t = engine.register_arrow(pa.table({"as_of": ["2025-01-31"], "a": [1]}), "steps")
    t = t.mutate(b=t.a + 1)
    return t.mutate(c=t.b * 2)


def test_nested_selects_keep_each_step_and_restore_the_option(engine: DuckDBEngine) -> None:
    expr = _two_steps(engine)
    merged = str(engine.con.compile(expr))
    with nested_selects():
        nested = str(engine.con.compile(expr))
    assert ibis.options.sql.fuse_selects is True
    assert merged.count("SELECT") == 1
    assert nested.count("SELECT") == 2
    with pytest.raises(ZeroDivisionError), nested_selects():
        raise ZeroDivisionError
    assert ibis.options.sql.fuse_selects is True


def test_the_scores_are_written_from_nested_selects(engine: DuckDBEngine, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    compile_ = engine.con.compile
    monkeypatch.setattr(engine.con, "compile", lambda e: compiled.append(compile_(e)) or compiled[-1])
    engine.write_partitioned(_two_steps(engine), tmp_path / "out")
    assert [sql.count("SELECT") for sql in compiled] == [2]
    assert pq.read_table(tmp_path / "out" / "as_of=2025-01-31").column("c").to_pylist() == [4]
    assert engine.to_arrow(_two_steps(engine)).column("c").to_pylist() == [4]
    assert [sql.count("SELECT") for sql in compiled] == [2, 1]  # other queries: merged
