"""The expression language means what SQL means: healthscore's compiled result of a random
expression equals DuckDB's own evaluation of the same text, row by row (NULLs included)."""

from __future__ import annotations

import math
from typing import Any

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthscore.config.expressions import compile_filter

ROWS = [
    (1, 3, 7, 2.5, "Login"), (2, -4, 0, -1.25, "login"), (3, None, 5, 0.0, None),
    (4, 0, None, None, "export"), (5, 12, -3, 9.75, "P1"), (6, 7, 7, 7.0, ""),
    (7, -9, 2, -0.5, "api call"), (8, None, None, None, "x"),
]
NUMERIC_COLUMNS = ["a", "b", "x"]
BATCH = 30  # expressions per example: one query each side for the whole batch


@pytest.fixture(scope="module")
def table() -> Any:
    con = ibis.duckdb.connect()
    # the reference: division and remainder by zero are NULL, as in healthscore
    con.raw_sql("SET error_on_division_by_zero = false")
    con.raw_sql("SET ieee_floating_point_ops = false")
    con.raw_sql("CREATE TABLE t (id INTEGER, a INTEGER, b INTEGER, x DOUBLE, s VARCHAR)")
    values = ", ".join("(" + ", ".join(_sql_value(v) for v in r) + ")" for r in ROWS)
    con.raw_sql(f"INSERT INTO t VALUES {values}")
    return con, con.table("t")


def _sql_value(v: Any) -> str:
    if v is None:
        return "NULL"
    return f"'{v}'" if isinstance(v, str) else repr(v)


def _binary(op: str) -> Any:
    return lambda pair: f"{pair[0]} {op} {pair[1]}"


def _paren(text: str) -> str:
    return f"({text})"


literal = st.one_of(st.integers(-20, 20).map(str),
                    st.sampled_from(["0.5", "2.25", "1e1", "100", "365", "NULL"]))
column = st.sampled_from(NUMERIC_COLUMNS)


def numbers(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(literal, column)
    if depth == 0:
        return leaf
    sub = numbers(depth - 1)
    cond = conditions(depth - 1)
    pair = st.tuples(sub, sub)
    return st.one_of(
        leaf,
        *(pair.map(_binary(op)) for op in ("+", "-", "*", "/", "%")),
        sub.map(_paren),
        sub.map(lambda e: f"-({e})"),
        st.sampled_from(["abs", "floor"]).flatmap(lambda f: sub.map(lambda e: f"{f}({e})")),
        st.sampled_from(["coalesce", "greatest", "least", "nullif"]).flatmap(
            lambda f: pair.map(lambda p: f"{f}({p[0]}, {p[1]})")),
        st.tuples(cond, sub, sub).map(lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"),
        st.tuples(cond, sub).map(lambda t: f"case when {t[0]} then {t[1]} end"),
        st.tuples(cond, sub, sub).map(lambda t: f"if({t[0]}, {t[1]}, {t[2]})"),
    )


def conditions(depth: int) -> st.SearchStrategy[str]:
    leaf_num = numbers(0)
    cmp = st.tuples(leaf_num, st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "<>"]), leaf_num)
    text = st.sampled_from(["s = 'login'", "s != 'P1'", "s in ('export', 'x')",
                            "s like 'l%'", "s ilike 'LOG%'", "s is null", "s is not null"])
    leaf = st.one_of(cmp.map(" ".join), text, st.sampled_from(["true", "false"]),
                     column.map(lambda c: f"{c} is null"), column.map(lambda c: f"{c} is not null"))
    if depth == 0:
        return leaf
    sub = conditions(depth - 1)
    num = numbers(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(num, st.sampled_from(["=", "<", ">=", "!="]), num).map(" ".join),
        st.tuples(sub, sub).map(_binary("and")),
        st.tuples(sub, sub).map(_binary("or")),
        sub.map(lambda c: f"not {c}"),
        sub.map(_paren),
        st.tuples(num, num, num).map(lambda t: f"{t[0]} between {t[1]} and {t[2]}"),
        st.tuples(num, st.lists(literal, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]} in ({', '.join(t[1])})"),
    )


expression = st.one_of(numbers(3), conditions(2))


def _duckdb(con: Any, texts: list[str]) -> list[tuple[Any, ...]]:
    cols = ", ".join(f"{t} AS e{i}" for i, t in enumerate(texts))
    return con.con.execute(f"SELECT {cols} FROM t ORDER BY id").fetchall()


def _ours(t: Any, texts: list[str]) -> list[tuple[Any, ...]]:
    exprs = {f"e{i}": compile_filter(text, t) for i, text in enumerate(texts)}
    frame = t.order_by("id").select(**exprs).to_pyarrow()
    return [tuple(r.values()) for r in frame.to_pylist()]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b) and isinstance(a, bool) == isinstance(b, bool)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
@settings(max_examples=6000 // BATCH, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(texts=st.lists(expression, min_size=BATCH, max_size=BATCH, unique=True))
def test_compiled_expressions_equal_duckdb(table: Any, texts: list[str]) -> None:
    con, t = table
    # compile_filter parses each text first (expressions.parse): one outside the language fails
    # here with its ExpressionError, before DuckDB runs it
    got = _ours(t, texts)
    want = _duckdb(con, texts)
    for row, (w, g) in enumerate(zip(want, got, strict=True)):
        for text, a, b in zip(texts, w, g, strict=True):
            assert _same(a, b), f"{text!r} on row {row + 1}: DuckDB {a!r}, healthscore {b!r}"


@pytest.mark.parametrize(("text", "want"), [
    ("365 - t % 365", 107), ("365 - (t % 365)", 107), ("(365 - t) % 365", -258),
    ("2 + t % 10 * 3", 11), ("t % 100 / 2", 11.5), ("-t % 10", -3),
])
def test_remainder_binds_like_multiplication(text: str, want: float) -> None:
    t = ibis.memtable({"t": [623]})
    got = t.select(v=compile_filter(text, t)).to_pyarrow()["v"][0].as_py()
    assert got == pytest.approx(want)
