"""The measures' contributions merged from one narrow union of typed slots, and compiled once
when the kept values read them too."""

from __future__ import annotations

from datetime import datetime

import ibis
import pyarrow as pa
import pytest

from healthscore.engine.adapter import DuckDBEngine
from healthscore.measures.build import Stack, merged_contributions
from healthscore.measures.carry import Carry
from healthscore.measures.parts import LATEST, MAX, SUM, Part


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture()
def engine():  # type: ignore[no-untyped-def]
    e = DuckDBEngine()
    yield e
    e.close()


def _parts(engine: DuckDBEngine) -> list[Part]:
    """Three parts: two sums, a float pair and a latest text with its time."""
    sums = engine.register_arrow(pa.table({
        "account_id": ["a", "a", "a", "b", "b"], "k": [0, 1, 1, 2, 3],
        "x": [1.0, 2.0, 3.0, 5.0, 7.0]}), "sums")
    pair = engine.register_arrow(pa.table({
        "account_id": ["a", "b"], "k": [1, 2], "y": [10.0, 20.0], "z": [-1.0, -2.0]}), "pair")
    latest = engine.register_arrow(pa.table({
        "account_id": ["a", "a", "b"], "k": [0, 1, 1],
        "v": ["old", "new", "first"],
        "v__ts": pa.array([_t("2026-01-01 08:00"), _t("2026-01-02 08:00"),
                           _t("2026-01-03 08:00")], pa.timestamp("us"))}), "latest")
    return [
        Part(sums, {"x": (SUM, "float64")}),
        Part(pair, {"y": (SUM, "float64"), "z": (SUM, "float64")}),
        Part(latest, {"v": (LATEST, "string"), "v__ts": (MAX, "timestamp")}),
    ]


def test_parts_share_typed_slots(engine: DuckDBEngine) -> None:
    stack = Stack.of(_parts(engine))
    # x and y share the first float slot, z takes a second one; v and v__ts one each
    assert stack.where == {"x": (0, "__slot0"), "y": (1, "__slot0"), "z": (1, "__slot1"),
                           "v": (2, "__slot2"), "v__ts": (2, "__slot3")}
    assert stack.table.columns == ("account_id", "k", "__part", "__slot0", "__slot1", "__slot2",
                                   "__slot3")


def test_a_bigger_run_gives_each_column_its_own_slot_and_filters_no_aggregate(
        engine: DuckDBEngine) -> None:
    stack = Stack.of(_parts(engine), shared=False)
    assert stack.where == {"x": (0, "__slot0"), "y": (1, "__slot1"), "z": (1, "__slot2"),
                           "v": (2, "__slot3"), "v__ts": (2, "__slot4")}
    cols = {c: how for p in _parts(engine) for c, how in p.columns.items()}
    sql = str(engine.con.compile(stack.merged(stack.table, cols)))
    assert "FILTER" not in sql.upper()
    shared = Stack.of(_parts(engine))
    assert "FILTER" in str(engine.con.compile(shared.merged(shared.table, cols))).upper()


@pytest.mark.parametrize("stored", [False, True])
def test_each_column_merges_its_own_parts_rows(engine: DuckDBEngine, stored: bool) -> None:
    """a's dates are indexes 1..2 (its rows at 0 land on 1), b's 2 only (its rows at 1 land
    on 2, at 3 are dropped). A small run (its stack stored) shares slots between parts."""
    bounds = engine.register_arrow(pa.table({"account_id": ["a", "b"], "k_first": [1, 2],
                                             "k_last": [2, 2]}), "bounds")
    merged = merged_contributions(_parts(engine), bounds, engine.materialize if stored else None)
    rows = engine.to_arrow(merged.order_by(["account_id", "k"])).to_pylist()
    assert rows == [
        {"account_id": "a", "k": 1, "x": 6.0, "y": 10.0, "z": -1.0, "v": "new",
         "v__ts": _t("2026-01-02 08:00")},
        {"account_id": "b", "k": 2, "x": 5.0, "y": 20.0, "z": -2.0, "v": "first",
         "v__ts": _t("2026-01-03 08:00")},
    ]


def test_a_view_is_the_same_rows_under_a_name(engine: DuckDBEngine) -> None:
    t = engine.register_arrow(pa.table({"n": [1, 2, 3]}), "numbers")
    expr = t.filter(t.n > 1).mutate(m=t.n * 10)
    view = engine.view(expr, "numbers_view")
    assert engine.to_arrow(view.order_by("n")).to_pylist() == [{"n": 2, "m": 20},
                                                              {"n": 3, "m": 30}]
    sql = str(engine.con.compile(view.filter(view.m > 0)))
    assert "hs_numbers_view_" in sql and "numbers" not in sql.replace("hs_numbers_view_", "")


def test_kept_values_read_the_contributions_by_name(engine: DuckDBEngine) -> None:
    """The measures and the kept values both read the merged contributions: compiled once,
    into a view the kept values' query names."""
    sparse = engine.register_arrow(pa.table({"account_id": ["a", "a"], "k": [0, 1],
                                             "x": [1.0, 2.0]}), "contributions")
    spine = engine.register_arrow(pa.table({"account_id": ["a", "a"], "k": [0, 1]}), "spine")
    carry = Carry(view=engine.view, last=1)
    carry.spine = spine
    read = carry.apply(sparse.filter(sparse.x > 0), {"x": (SUM, "float64")}, spine, [])
    assert read.op().name.startswith("hs_carry_sparse_")
    kept = carry.kept([])
    assert "hs_carry_sparse_" in str(engine.con.compile(kept))
    assert engine.to_arrow(kept).to_pylist() == [{"account_id": "a", "x": 3.0}]


def test_other_engines_read_the_expression_itself() -> None:
    from healthscore.engine.adapter import Engine

    t = ibis.table({"n": "int64"}, name="t")
    assert Engine().view(t, "v") is t


def test_a_latest_value_reads_only_its_own_parts_times_when_its_time_slot_is_shared(
        engine: DuckDBEngine) -> None:
    """v has a text slot of its own, but its time shares a slot with another part's time
    (later than v's, on the same account and index): v stays its own part's latest."""
    other = engine.register_arrow(pa.table({
        "account_id": ["a"], "k": [0],
        "t": pa.array([_t("2026-02-01 08:00")], pa.timestamp("us"))}), "other")
    latest = _parts(engine)[2]
    parts = [Part(other, {"t": (MAX, "timestamp")}), latest]
    stack = Stack.of(parts)
    assert stack.where["v__ts"][1] == stack.where["t"][1] != stack.where["v"][1]
    cols = {c: how for p in parts for c, how in p.columns.items()}
    merged = stack.merged(stack.table, cols).filter(lambda t: t.account_id == "a")
    rows = engine.to_arrow(merged.order_by("k")).to_pylist()
    assert [(r["k"], r["v"], r["t"]) for r in rows] == [
        (0, "old", _t("2026-02-01 08:00")), (1, "new", None)]
