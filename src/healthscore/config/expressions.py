"""Parse the small expression language used by filters, `when:` conditions and expressions.

It is SQL's expression syntax (``priority = 'P1' and type != 'bug'``, ``a / b * 100``),
parsed with sqlglot and checked against a whitelist of node types, so a filter can never be
a query of its own. Compilation to an engine expression happens in the measures stage.
"""

from __future__ import annotations

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
    return sorted({c.name for c in tree.find_all(exp.Column)})


def check_columns(text: str, tree: exp.Expression, valid: list[str], what: str) -> None:
    for name in columns(tree):
        if name not in valid:
            raise ExpressionError(
                f"unknown {what} {name!r} in {text!r}. Valid: {', '.join(sorted(valid))}."
            )
