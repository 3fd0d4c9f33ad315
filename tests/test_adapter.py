"""The DuckDB engine's SQL: float columns come out as DOUBLE, and the scores are compiled with
nested selects (Ibis's option restored after)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore.engine.adapter import DuckDBEngine, Engine, nested_selects
from healthscore.engine.compiled import COMPILED


@pytest.fixture
def engine() -> Iterator[DuckDBEngine]:
    COMPILED.clear()  # the tests that watch the compiles see each one, none kept from before
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
    engine.write_sorted(expr, tmp_path / "out.parquet")
    written = pq.read_table(tmp_path / "out.parquet")
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
    engine.write_sorted(_two_steps(engine), tmp_path / "out.parquet")
    assert [sql.count("SELECT") for sql in compiled] == [2]
    assert pq.read_table(tmp_path / "out.parquet").column("c").to_pylist() == [4]
    assert engine.to_arrow(_two_steps(engine)).column("c").to_pylist() == [4]
    assert [sql.count("SELECT") for sql in compiled] == [2, 1]  # other queries: merged


def _fuse_seen_by_compiles(con: object, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    seen: list[bool] = []
    compiler = type(con.compiler)  # type: ignore[attr-defined]
    to_sqlglot = compiler.to_sqlglot

    def spy(self: object, *args: object, **kwargs: object) -> object:
        seen.append(ibis.options.sql.fuse_selects)
        return to_sqlglot(self, *args, **kwargs)

    monkeypatch.setattr(compiler, "to_sqlglot", spy)
    return seen


def test_to_arrow_compiles_nested_only_when_asked(engine: DuckDBEngine,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """On DuckDB and through Ibis's own execution (the base engine, as Spark runs it)."""
    expr = _two_steps(engine)
    seen = _fuse_seen_by_compiles(engine.con, monkeypatch)
    assert engine.to_arrow(expr, nested=True).column("c").to_pylist() == [4]
    assert engine.to_arrow(expr).column("c").to_pylist() == [4]
    assert Engine.to_arrow(engine, expr, nested=True).column("c").to_pylist() == [4]
    assert Engine.to_arrow(engine, expr).column("c").to_pylist() == [4]
    assert seen == [False, True, False, True]


def test_scores_in_memory_are_read_from_nested_selects(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The backtest and the dry run read the scores as the snapshots write them."""
    from healthscore import Project, pipeline

    from .projects import AS_OF, EXPECTED, write_project

    config = Project.load(write_project(tmp_path)).config
    nested: list[bool] = []
    to_arrow = DuckDBEngine.to_arrow

    def spy(self: DuckDBEngine, expr: ibis.Table, **kwargs: bool) -> pa.Table:
        nested.append(kwargs.get("nested", False))
        return to_arrow(self, expr, **kwargs)

    engine = pipeline.open_engine(config)
    try:
        loaded = pipeline.load_sources(config, engine, lambda _: None)
        monkeypatch.setattr(DuckDBEngine, "to_arrow", spy)
        frame = pipeline.score_frame(config, loaded, [date.fromisoformat(AS_OF)], lambda _: None)
    finally:
        engine.close()
    assert nested == [True]
    scores = dict(zip(frame["account_id"], frame["score"], strict=True))
    assert scores == {a: s for a, (_, s) in EXPECTED.items()}


def test_an_engine_without_partitioned_writes_reads_the_scores_nested(
        engine: DuckDBEngine, tmp_path: Path) -> None:
    """Spark writes the snapshots from the scores' rows: read as the DuckDB engine writes them."""
    from healthscore.pipeline.score import write_snapshots

    asked: list[bool] = []

    class RowsOnly(Engine):  # an engine that can only hand back rows, as Spark
        def to_arrow(self, expr: ibis.Table, nested: bool = False) -> pa.Table:
            asked.append(nested)
            return engine.to_arrow(expr, nested)

    expr = _two_steps(engine).mutate(as_of=ibis.date(2025, 1, 31))
    write_snapshots(None, RowsOnly(), expr, tmp_path)  # type: ignore[arg-type]
    assert asked == [True]
    assert pq.read_table(tmp_path / "as_of=2025-01-31" / "data_0.parquet").column("c").to_pylist() == [4]


@pytest.mark.parametrize(("days", "one_date", "sorts"), [(2, False, True), (1, True, False)],
                         ids=["several dates: sorted", "one date: not sorted"])
def test_a_pass_file_is_sorted_by_date_only_when_it_holds_several(
        engine: DuckDBEngine, tmp_path: Path, days: int, one_date: bool, sorts: bool) -> None:
    import json

    rows = pa.table({"as_of": [date(2025, 1, 31 - i % days) for i in range(6)],
                     "account_id": [f"A{i}" for i in range(6)]})
    scores = engine.register_arrow(rows, "scores")
    profile = tmp_path / "profile.json"
    engine.con.con.execute(f"SET enable_profiling = 'json'; SET profiling_output = '{profile}'")
    engine.write_sorted(scores, tmp_path / "pass.parquet", one_date=one_date)
    engine.con.con.execute("SET enable_profiling = 'no_output'")

    def operators(node: object) -> list[str]:  # every operator's name in DuckDB's profile
        if isinstance(node, list):
            return [o for n in node for o in operators(n)]
        if not isinstance(node, dict):
            return []
        own = [str(node[k]) for k in ("name", "operator_type") if k in node]
        return own + operators(node.get("operator", [])) + operators(node.get("children", []))

    found = operators(json.loads(profile.read_text()))
    assert "BATCH_COPY_TO_FILE" in found or "COPY_TO_FILE" in found, found
    assert ("ORDER_BY" in found) == sorts, found
    written = pq.read_table(tmp_path / "pass.parquet")
    assert sorted(written.to_pylist(), key=lambda r: r["account_id"]) == \
        sorted(rows.to_pylist(), key=lambda r: r["account_id"])
    if sorts:
        assert written["as_of"].to_pylist() == sorted(rows["as_of"].to_pylist())


def test_the_kept_state_is_written_with_snappy(engine: DuckDBEngine, tmp_path: Path) -> None:
    """The files every daily run writes for the next one (:meth:`write_parquet`): snappy,
    quicker to write and to read than zstd, by both engines' writers."""
    t = engine.register_arrow(pa.table({"account_id": ["A1", "A2"], "logins": [3.0, None]}), "t")
    engine.write_parquet(t, tmp_path / "duckdb.parquet")
    Engine.write_parquet(engine, t, tmp_path / "arrow.parquet")
    for name in ("duckdb", "arrow"):
        meta = pq.ParquetFile(tmp_path / f"{name}.parquet").metadata
        assert [meta.row_group(0).column(i).compression for i in range(2)] == ["SNAPPY"] * 2
        assert pq.read_table(tmp_path / f"{name}.parquet").to_pylist() == [
            {"account_id": "A1", "logins": 3.0}, {"account_id": "A2", "logins": None}]


def test_a_created_table_is_typed_as_ibis_reads_it_back(engine: DuckDBEngine) -> None:
    """The next day types each table it fills behind from an empty twin
    (:meth:`DuckDBEngine.created`): the columns Ibis's own ``create_table`` would read back,
    a timestamp's precision as DuckDB stores it included."""
    schema = ibis.schema({"account_id": "string", "at": "timestamp", "at_ms": "timestamp(3)",
                          "day": "date", "n": "int64", "x": "float64", "ok": "boolean",
                          "amount": "decimal(18, 3)", "tags": "array<string>",
                          "pair": "struct<a: int32, b: string>"})
    typed = engine.created("twin", engine.creating("twin", schema))
    assert typed == engine.con.create_table("by_ibis", schema=schema, temp=True).schema()
    assert typed["at_ms"] == ibis.dtype("timestamp(3)") and typed["at"] == ibis.dtype("timestamp(6)")
