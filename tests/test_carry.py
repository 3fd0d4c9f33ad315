"""The running values of a two-date grid (the next day from kept values) without a window."""

from __future__ import annotations

from datetime import datetime

import ibis
import pyarrow as pa

from healthscore.engine.adapter import DuckDBEngine
from healthscore.measures.carry import running_on_two_dates
from healthscore.measures.parts import LATEST, MAX, SUM

COLS = {"n": (SUM, "int64"), "top": (MAX, "float64"), "nps": (LATEST, "float64"),
        "nps__ts": (MAX, "timestamp")}
T1, T2 = datetime(2026, 10, 30, 9), datetime(2026, 10, 31, 8)
ROWS = [  # account, k, n, top, nps, nps__ts
    ("both", 0, 3, 1.5, 7.0, T1), ("both", 1, 2, 4.0, 9.0, T2),
    ("first_only", 0, 5, 2.0, 6.0, T1), ("first_only", 1, None, None, None, None),
    ("second_only", 0, None, None, None, None), ("second_only", 1, 4, 3.0, 8.0, T2),
    ("none", 0, None, None, None, None), ("none", 1, None, None, None, None),
    ("older_second", 0, 1, 9.0, 5.0, T2), ("older_second", 1, 1, 2.0, 4.0, T1),
]


def _window(t: ibis.Table) -> ibis.Table:
    """The builder's running window over the grid (measures.build)."""
    w = ibis.window(group_by="account_id", order_by="k", rows=(None, 0))
    running = {c: (t[c].sum() if how == SUM else t[c].max() if how == MAX
                   else t[c].argmax(t[f"{c}__ts"])).over(w) for c, (how, _) in COLS.items()}
    return t.mutate(**running)


def test_two_dates_give_the_running_window_s_values_nulls_included() -> None:
    engine = DuckDBEngine()
    try:
        names = ["account_id", "k", *COLS]
        table = pa.table({n: [r[i] for r in ROWS] for i, n in enumerate(names)})
        t = engine.register_arrow(table, engine.temp_name("two_dates"))
        got = engine.to_arrow(running_on_two_dates(t, COLS)).to_pylist()
        want = engine.to_arrow(_window(t)).to_pylist()
    finally:
        engine.close()
    key = lambda r: (r["account_id"], r["k"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)
    by = {key(r): r for r in got}
    assert by[("both", 1)] == {"account_id": "both", "k": 1, "n": 5, "top": 4.0, "nps": 9.0,
                               "nps__ts": T2}
    assert by[("older_second", 1)]["nps"] == 5.0  # the first date's value is the later one
    assert by[("none", 1)]["n"] is None


def test_the_first_date_s_rows_of_carried_parts_are_left_out_with_the_same_values() -> None:
    """From kept values, a part whose columns are all carried merges without its rows on
    the grid's first date (the kept values replace them there); a part with a column not
    carried keeps them. The merged contributions with the kept values applied are the
    same either way."""
    from healthscore.measures.build import merged_contributions
    from healthscore.measures.carry import Carry
    from healthscore.measures.parts import Part

    engine = DuckDBEngine()
    try:
        def table(name: str, rows: dict[str, list[object]]) -> ibis.Table:
            return engine.register_arrow(pa.table(rows), engine.temp_name(name))

        carried = Part(table("carried", {"account_id": ["a", "a", "b"], "k": [0, 1, 0],
                                         "n": [5, 2, 7]}), {"n": (SUM, "int64")})
        whole = Part(table("whole", {"account_id": ["a", "b"], "k": [0, 1],
                                     "m": [1.5, 2.5]}), {"m": (SUM, "float64")})
        before = table("before", {"account_id": ["a", "b", "c"], "n": [40, 70, 90],
                                  "m": [0.0, 0.0, 0.0]})
        bounds = table("bounds", {"account_id": ["a", "b", "c"], "k_first": [0, 0, 0],
                                  "k_last": [1, 1, 1]})
        spine = table("spine", {"account_id": ["a", "a", "b", "b"], "k": [0, 1, 0, 1]})
        cols = {**carried.columns, **whole.columns}

        def merged(parts: list[Part]) -> list[dict[str, object]]:
            carry = Carry(before, frozenset({"n"}))
            sparse = carry.apply(merged_contributions(parts, bounds), cols, spine, [])
            rows = engine.to_arrow(sparse).to_pylist()
            return sorted(rows, key=lambda r: (r["account_id"], r["k"]))

        kept = Carry(before, frozenset({"n"})).new_parts([carried, whole])
        assert engine.to_arrow(kept[0].table).to_pylist() == [{"account_id": "a", "k": 1, "n": 2}]
        assert kept[1] is whole
        assert merged(kept) == merged([carried, whole])
        assert Carry().new_parts([carried]) == [carried]  # no kept values: every row
    finally:
        engine.close()
