"""Each distinct query is compiled once per process: a run repeated on a new engine takes its
SQL from the cache, and two queries that differ in a literal or in a table's schema never
share SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from healthscore.engine.adapter import DuckDBEngine
from healthscore.engine.compiled import COMPILED, CompiledQueries


@pytest.fixture
def engines() -> Iterator[tuple[DuckDBEngine, DuckDBEngine]]:
    COMPILED.clear()
    first, second = DuckDBEngine(), DuckDBEngine()
    yield first, second
    first.close()
    second.close()


def _events(engine: DuckDBEngine) -> ibis.Table:
    rows = pa.table({"account_id": ["A1", "A1", "A2"], "day": [date(2025, 1, 5)] * 3,
                     "n": [1.0, 2.5, 4.0]})
    return engine.register_arrow(rows, "events")


def _busy(t: ibis.Table, since: date, threshold: float) -> ibis.Table:
    t = t.filter(t.day >= since)
    totals = t.group_by("account_id").aggregate(n=t.n.sum())
    return totals.filter(totals.n > threshold)


def _ids(engine: DuckDBEngine, expr: ibis.Table) -> list[str]:
    return sorted(engine.to_arrow(expr).column("account_id").to_pylist())


def test_the_same_query_on_another_engine_is_not_compiled_again(
        engines: tuple[DuckDBEngine, DuckDBEngine]) -> None:
    first, second = engines
    assert _ids(first, _busy(_events(first), date(2025, 1, 1), 3.0)) == ["A1", "A2"]
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (0, 1)
    assert _ids(second, _busy(_events(second), date(2025, 1, 1), 3.0)) == ["A1", "A2"]
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (1, 1)


def test_queries_differing_in_a_literal_do_not_share_sql(
        engines: tuple[DuckDBEngine, DuckDBEngine]) -> None:
    first, second = engines
    assert _ids(first, _busy(_events(first), date(2025, 1, 1), 3.0)) == ["A1", "A2"]
    assert _ids(second, _busy(_events(second), date(2025, 1, 1), 3.6)) == ["A2"]  # threshold
    assert _ids(second, _busy(_events(second), date(2025, 2, 1), 3.0)) == []  # date
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (0, 3)


def test_tables_of_one_name_in_two_schemas_do_not_share_sql(
        engines: tuple[DuckDBEngine, DuckDBEngine]) -> None:
    engine, _ = engines
    raw = engine.con.con
    raw.execute("CREATE SCHEMA other")
    for schema, n in (("main", 1), ("other", 2)):
        raw.execute(f"CREATE TABLE {schema}.counts AS SELECT 'A1' AS account_id, {n} AS n")
    main, other = engine.con.table("counts"), engine.con.table("counts", database="other")
    assert main.schema() == other.schema()
    assert engine.to_arrow(main.filter(main.n > 0)).column("n").to_pylist() == [1]
    assert engine.to_arrow(other.filter(other.n > 0)).column("n").to_pylist() == [2]
    assert COMPILED.stats.hits == 0


def test_the_same_options_compile_alike_and_others_apart(
        engines: tuple[DuckDBEngine, DuckDBEngine]) -> None:
    """Nested selects are another query: the scores (nested) and the rest (merged)."""
    engine, _ = engines
    t = _events(engine).mutate(m=ibis._.n * 2)
    expr = t.mutate(k=t.m + 1)
    merged = engine._sql(expr)
    assert engine._sql(expr, nested=True) != merged
    assert engine._sql(expr) == merged
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (1, 2)


def test_a_query_on_tables_numbered_otherwise_takes_the_sql_with_the_names_swapped(
        engines: tuple[DuckDBEngine, DuckDBEngine]) -> None:
    """The next pass of a run reads the same queries from its own tables (``hs_events_1``
    where the first read ``hs_events_0``): compiled once, each reading its own tables, even
    when two tables trade their names."""
    engine, _ = engines
    tables = [engine.register_arrow(pa.table({"account_id": ids, "n": [1.0] * len(ids)}),
                                    engine.temp_name("events"))
              for ids in (["A1", "A2"], ["A2", "A3"], ["A3", "A4"])]
    assert [t.op().name for t in tables] == ["hs_events_0", "hs_events_1", "hs_events_2"]

    def only_in_first(a: ibis.Table, b: ibis.Table) -> list[str]:
        return _ids(engine, a.filter(~a.account_id.isin(b.account_id)))

    assert only_in_first(tables[0], tables[1]) == ["A1"]
    assert only_in_first(tables[1], tables[0]) == ["A3"]
    assert only_in_first(tables[1], tables[2]) == ["A2"]
    assert only_in_first(tables[2], tables[0]) == ["A3", "A4"]
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (3, 1)
    other = engine.register_arrow(pa.table({"account_id": ["A1"], "n": [1.0]}), "events")
    assert only_in_first(tables[0], other) == ["A2"]  # a name not numbered: another query
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (3, 2)


def test_the_oldest_query_goes_when_the_cache_is_full(
        engines: tuple[DuckDBEngine, DuckDBEngine]) -> None:
    engine, _ = engines
    cache = CompiledQueries(size=2)
    t = _events(engine)
    queries = [t.filter(t.n > v) for v in (1.0, 2.0, 3.0)]
    for q in queries:
        cache.sql(engine.con, q)
    cache.sql(engine.con, queries[2])
    cache.sql(engine.con, queries[0])
    assert (cache.stats.hits, cache.stats.misses) == (1, 4)


def test_a_run_repeated_on_a_new_engine_compiles_nothing(tmp_path: Path) -> None:
    """The same project and dates name their tables alike on every engine: the second run
    takes every query from the cache, and scores the same."""
    from healthscore import Project, pipeline

    from .projects import AS_OF, EXPECTED, write_project

    config = Project.load(write_project(tmp_path)).config
    COMPILED.clear()
    frames = []
    for _ in range(2):
        engine = pipeline.open_engine(config)
        try:
            loaded = pipeline.load_sources(config, engine, lambda _: None, cache=False)
            frames.append(pipeline.score_frame(config, loaded, [date.fromisoformat(AS_OF)],
                                               lambda _: None))
        finally:
            engine.close()
        if len(frames) == 1:
            compiled = COMPILED.stats.misses
    assert compiled > 0
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (compiled, compiled)
    for frame in frames:
        scores = dict(zip(frame["account_id"], frame["score"], strict=True))
        assert scores == {a: s for a, (_, s) in EXPECTED.items()}


def test_tables_of_other_prefixes_made_first_change_no_name_and_no_query(tmp_path: Path) -> None:
    """Names are counted per prefix: a run on an engine that made other tables first (a
    source cut at a date, a preview) names its own tables as a fresh engine would, so its
    queries come from the cache."""
    from healthscore import Project, pipeline

    from .projects import AS_OF, write_project

    config = Project.load(write_project(tmp_path)).config
    COMPILED.clear()
    for before in (0, 3):
        engine = pipeline.open_engine(config)
        try:
            assert [engine.temp_name("other") for _ in range(before)] == \
                [f"hs_other_{i}" for i in range(before)]
            loaded = pipeline.load_sources(config, engine, lambda _: None, cache=False)
            pipeline.score_frame(config, loaded, [date.fromisoformat(AS_OF)], lambda _: None)
        finally:
            engine.close()
        if not before:
            compiled = COMPILED.stats.misses
    assert (COMPILED.stats.hits, COMPILED.stats.misses) == (compiled, compiled)


def test_the_cache_keeps_no_engine_alive() -> None:
    """What is kept is the SQL and the query with its tables unbound: a closed engine's
    connection (and the tables it holds) goes."""
    import gc
    import weakref

    COMPILED.clear()
    engine = DuckDBEngine()
    assert _ids(engine, _busy(_events(engine), date(2025, 1, 1), 3.0)) == ["A1", "A2"]
    con = weakref.ref(engine.con)
    engine.close()
    del engine
    gc.collect()
    assert con() is None


def test_checking_the_same_sources_again_compiles_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source's checks (its health counts, the values outside a closed set) take their SQL
    from the cache too: the same sources checked again on a new engine compile none of them."""
    import traceback

    from healthscore import Project, pipeline

    from .projects import write_project

    config = Project.load(write_project(tmp_path)).config
    COMPILED.clear()
    compiles: list[int] = []
    for _ in range(2):
        engine = pipeline.open_engine(config)
        backend, calls = type(engine.con), [0]
        original = backend.compile

        def counted(self: Any, *args: Any, _calls: list[int] = calls,
                    _original: Any = original, **kwargs: Any) -> Any:
            stack = traceback.extract_stack()
            _calls[0] += any(f.filename.endswith("sources/clean.py") for f in stack)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(backend, "compile", counted)
        try:
            pipeline.load_sources(config, engine, lambda _: None, cache=False)
        finally:
            monkeypatch.undo()
            engine.close()
        compiles.append(calls[0])
    assert compiles[0] > 0 and compiles[1] == 0


def test_two_queries_share_a_key_exactly_when_ibis_unbinds_them_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is a number for the query's shape, found without unbinding it; over the
    queries of the same run on two engines, two keys are equal exactly when Ibis's own
    ``unbind`` gives equal expressions."""
    from healthscore import Project, pipeline
    from healthscore.engine import compiled

    from .projects import AS_OF, write_project

    config = Project.load(write_project(tmp_path)).config
    COMPILED.clear()
    seen: list[tuple[Any, Any]] = []
    real = compiled.query_key

    def recorded(con: Any, expr: Any) -> Any:
        key = real(con, expr)
        seen.append((key, expr.unbind().op()))
        return key

    monkeypatch.setattr(compiled, "query_key", recorded)
    for _ in range(2):
        engine = pipeline.open_engine(config)
        try:
            loaded = pipeline.load_sources(config, engine, lambda _: None, cache=False)
            pipeline.score_frame(config, loaded, [date.fromisoformat(AS_OF)], lambda _: None)
        finally:
            engine.close()
    assert len(seen) >= 16 and len({k for k, _ in seen}) < len(seen)
    for key, op in seen:
        for other_key, other_op in seen:
            assert (key == other_key) == (op == other_op)
