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
