"""The small expression language of filters, `when:` conditions, rules and expressions, in
one module: parse, check, compile.

It is SQL's expression syntax (``priority = 'P1' and type != 'bug'``, ``a / b * 100``),
parsed with sqlglot and checked against a whitelist of node types, so a filter can never be
a query of its own; ``compile_filter`` translates a checked tree into an Ibis expression for
any engine (measures, scorecard selection and rules all use it).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import ibis
import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.tokens import TokenType

ALLOWED = (
    exp.And, exp.Or, exp.Not, exp.Paren,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.In, exp.Is, exp.Between, exp.Like, exp.ILike,
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Tuple,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg, exp.Coalesce, exp.Greatest, exp.Least,
    exp.Abs, exp.Nullif, exp.If, exp.Case, exp.Mod, exp.Floor,
)

FUNCTIONS = "coalesce, greatest, least, abs, nullif, floor (and % for the remainder)"


class ExprDialect(DuckDB):
    """DuckDB's syntax with SQL's precedence for ``%``: it binds like ``*`` and ``/``, so
    ``365 - t % 365`` is ``365 - (t % 365)`` (sqlglot puts ``%`` beside ``+`` and ``-``)."""

    class Parser(DuckDB.Parser):
        TERM = {k: v for k, v in DuckDB.Parser.TERM.items() if k != TokenType.MOD}
        FACTOR = {**DuckDB.Parser.FACTOR, TokenType.MOD: exp.Mod}


_DIALECT = ExprDialect()


class ExpressionError(ValueError):
    """Raised with a message ready to follow 'file: key: '."""


def parse(text: str) -> exp.Expression:
    try:
        tree = sqlglot.parse_one(text, read=_DIALECT)
    except sqlglot.errors.ParseError as err:
        first = str(err).splitlines()[0]
        raise ExpressionError(f"cannot parse {text!r}: {first}") from None
    for node in tree.walk():
        if not isinstance(node, ALLOWED):
            what = node.key.upper() if not isinstance(node, exp.Func) else node.sql()
            raise ExpressionError(
                f"{what} is not allowed in {text!r}. Use comparisons (=, !=, <, >, in, "
                f"is null, like), and/or/not, arithmetic and {FUNCTIONS}."
            )
    return tree


def columns(tree: exp.Expression) -> list[str]:
    return sorted({column_name(c) for c in tree.find_all(exp.Column)})


def column_name(node: exp.Column) -> str:
    """A name as written: ``score``, or qualified like ``module.usage`` in rules."""
    return f"{node.table}.{node.name}" if node.table else str(node.name)


def check_columns(text: str, tree: exp.Expression, valid: list[str], what: str) -> None:
    for name in columns(tree):
        if name not in valid:
            raise ExpressionError(
                f"unknown {what} {name!r} in {text!r}. Valid: {', '.join(sorted(valid))}."
            )


# ----------------------------------------------------------------------------- compile

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    exp.EQ: operator.eq, exp.NEQ: operator.ne, exp.GT: operator.gt, exp.GTE: operator.ge,
    exp.LT: operator.lt, exp.LTE: operator.le, exp.Add: operator.add, exp.Sub: operator.sub,
    exp.Mul: operator.mul, exp.Div: operator.truediv, exp.And: operator.and_,
    exp.Or: operator.or_, exp.Mod: operator.mod,
}


def compile_filter(text: str, columns: Any, fold_case: bool = False) -> Any:
    """``columns`` is anything indexable by column name (an Ibis table, or a dict).

    With ``fold_case``, text compared with ``=``, ``!=``, ``in`` and ``between`` ignores case
    (a measure's filter ``event = 'login'`` counts 'Login' too)."""
    return _compile(parse(text), _Folding(columns) if fold_case else columns)


class _Folding:
    """Columns whose text values read in lower case (string literals are folded alike)."""

    def __init__(self, columns: Any) -> None:
        self.columns = columns

    def __getitem__(self, name: str) -> Any:
        value = self.columns[name]
        return value.lower() if value.type().is_string() else value


def _compile(node: exp.Expression, cols: Any) -> Any:
    kind = type(node)
    if kind in _BINARY:
        left, right = _typed(_compile(node.this, cols), _compile(node.expression, cols),
                             "boolean" if kind in (exp.And, exp.Or) else "float64")
        if kind is exp.Div:
            return left.cast("float64") / _nonzero(right)
        if kind is exp.Mod:
            return left % _nonzero(right)
        return _BINARY[kind](left, right)
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise ValueError(f"unsupported expression {node.sql()!r}")
    return handler(node, cols)


def _typed(left: Any, right: Any, default: str) -> tuple[Any, Any]:
    """A bare NULL takes the other side's type, so ``a = NULL`` is unknown (as in SQL) and
    ``a + NULL`` is NULL, instead of Ibis' ``a IS NULL`` and a type error."""
    lnull, rnull = left.type().is_null(), right.type().is_null()
    if lnull and rnull:
        return left.cast(default), right.cast(default)
    if lnull:
        return left.cast(right.type()), right
    if rnull:
        return left, right.cast(left.type())
    return left, right


def _number(value: Any) -> Any:
    return value.cast("float64") if value.type().is_null() else value


def _nonzero(value: Any) -> Any:
    """Division and remainder by zero give NULL (a missing value), never an error or inf."""
    return ibis.ifelse(value == 0, ibis.null(), value)


def _case(node: exp.Case, cols: Any) -> Any:
    branches = [(_compile(i.this, cols), _compile(i.args["true"], cols)) for i in node.args["ifs"]]
    default = node.args.get("default")
    return ibis.cases(*branches, else_=_compile(default, cols) if default is not None else None)


def _if(node: exp.If, cols: Any) -> Any:
    other = node.args.get("false")
    return ibis.ifelse(_compile(node.this, cols), _compile(node.args["true"], cols),
                       _compile(other, cols) if other is not None else ibis.null())


def _literal(node: exp.Literal, cols: Any) -> Any:
    if node.is_string:
        return ibis.literal(node.this.lower() if isinstance(cols, _Folding) else node.this)
    text = node.this
    return ibis.literal(float(text) if any(c in text for c in ".eE") else int(text))


def _in(node: exp.In, cols: Any) -> Any:
    values = [_compile(v, cols) for v in node.expressions]
    return _compile(node.this, cols).isin(values)


def _is(node: exp.Is, cols: Any) -> Any:
    target = _compile(node.this, cols)
    if isinstance(node.expression, exp.Null):
        return target.isnull()
    return target == _compile(node.expression, cols)


def _not(node: exp.Not, cols: Any) -> Any:
    inner = node.this
    if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null):
        return _compile(inner.this, cols).notnull()
    value = _compile(inner, cols)
    return ~(value.cast("boolean") if value.type().is_null() else value)


def _between(node: exp.Between, cols: Any) -> Any:
    value = _compile(node.this, cols)
    return value.between(_compile(node.args["low"], cols), _compile(node.args["high"], cols))


def _like(node: Any, cols: Any) -> Any:
    if isinstance(cols, _Folding):  # LIKE keeps its own case rule (ILIKE ignores case)
        cols = cols.columns
    value = _compile(node.this, cols)
    pattern = node.expression.this
    if isinstance(node, exp.ILike):
        return value.lower().like(pattern.lower())
    return value.like(pattern)


def _func(fn: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    def handler(node: Any, cols: Any) -> Any:
        args = [_compile(a, cols) for a in [node.this, *node.expressions] if a is not None]
        return fn(*args)

    return handler


def _nullif(node: exp.Nullif, cols: Any) -> Any:
    value, other = _compile(node.this, cols), _compile(node.expression, cols)
    return ibis.ifelse(value == other, ibis.null(), value)


_HANDLERS: dict[type, Callable[[Any, Any], Any]] = {
    exp.Column: lambda n, c: c[column_name(n)],
    exp.Literal: _literal,
    exp.Boolean: lambda n, c: ibis.literal(bool(n.this)),
    exp.Null: lambda n, c: ibis.null(),
    exp.Paren: lambda n, c: _compile(n.this, c),
    exp.Neg: lambda n, c: -_number(_compile(n.this, c)),
    exp.Not: _not,
    exp.In: _in,
    exp.Is: _is,
    exp.Between: _between,
    exp.Like: _like,
    exp.ILike: _like,
    exp.Abs: lambda n, c: _number(_compile(n.this, c)).abs(),
    exp.Floor: lambda n, c: _number(_compile(n.this, c)).floor(),
    exp.Coalesce: _func(ibis.coalesce),
    exp.Greatest: _func(ibis.greatest),
    exp.Least: _func(ibis.least),
    exp.Nullif: _nullif,
    exp.Case: _case,
    exp.If: _if,
}
