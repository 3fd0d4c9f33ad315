"""The SQL of each distinct query, compiled once per process.

Ibis compiling an expression to SQL is about half the CPU of scoring a small project, and the
same work (the same project, dates and tables) builds the same expressions again: a second
run, the web app's pages, a preview before the run. The SQL text depends on the expression
only (table names, schemas, literals, the options that shape it), not on which connection's
tables it reads, so it is kept per process under the expression with its tables unbound from
their connection. Each engine names its tables alike for the same sequence of work (see
``Engine.temp_name``), so a run repeated on a new engine finds its queries here; and a query
that differs from one compiled before only in the numbers of the engine's tables it reads (the
next pass of a run reads ``hs_grid_1`` where the first read ``hs_grid_0``) takes that SQL with
the names swapped.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import sqlglot as sg
from ibis.common.graph import Graph, Node

SIZE = 512  # queries kept: a long run compiles a few hundred distinct ones
# the names ``Engine.temp_name`` gives: the prefix, then how many tables of it came before
NUMBERED = re.compile(r"hs_(.+)_\d+")


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0


class CompiledQueries:
    """The SQL of the last ``size`` distinct queries compiled (least recently used out)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self.stats = Stats()
        # the SQL under the query's shape, with the names of the engine's tables it was
        # compiled with
        self._sql: OrderedDict[Hashable, tuple[str, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()  # the web app compiles from several threads

    def sql(self, con: Any, expr: ir.Table) -> str:
        """``expr`` compiled by the backend ``con``, or the SQL it compiled to before (with
        the engine's tables it reads named as ``expr`` names them)."""
        *shape, names = query_key(con, expr)
        key = tuple(shape)
        with self._lock:
            kept = self._sql.get(key)
            if kept is not None:
                self._sql.move_to_end(key)
        sql = None if kept is None else renamed(con, *kept, names)
        if sql is not None:
            with self._lock:
                self.stats.hits += 1
            return sql
        sql = str(con.compile(expr))
        with self._lock:
            self.stats.misses += 1
            self._sql[key] = (sql, names)
            if len(self._sql) > self.size:
                self._sql.popitem(last=False)
        return sql

    def clear(self) -> None:
        with self._lock:
            self._sql.clear()
            self.stats = Stats()
            SHAPES.clear()


def query_key(con: Any, expr: ir.Table) -> tuple[Any, ...]:
    """What the SQL of ``expr`` depends on: the dialect, whether Ibis merges nested selects,
    and the expression with each table unbound from its connection (its name, schema and
    namespace kept: two tables of one name in two schemas are two tables). Literals are part
    of the expression: two dates, two thresholds, two queries. The expression's shape leaves
    out the numbers of the engine's tables (see ``Shapes.of``); the last item names them."""
    return type(con.compiler), ibis.options.sql.fuse_selects, *SHAPES.of(expr.op())


def renamed(con: Any, sql: str, before: tuple[str, ...], after: tuple[str, ...]) -> str | None:
    """``sql``, compiled for tables named ``before``, for the same tables named ``after``
    (the same prefixes, other numbers): each quoted name swapped for its counterpart at once.
    None when a name is not in ``sql`` as the backend quotes it."""
    if before == after:
        return sql
    dialect = con.compiler.dialect
    swap = {sg.to_identifier(a, quoted=True).sql(dialect): sg.to_identifier(b, quoted=True).sql(dialect)
            for a, b in zip(before, after, strict=True) if a != b}
    if not all(name in sql for name in swap):
        return None
    return re.sub("|".join(map(re.escape, swap)), lambda m: swap[m[0]], sql)


class Shapes:
    """A number for each distinct node shape: a node's type and arguments, each argument
    node by its own number and every table (bound to a connection or not) by its name,
    schema and namespace, where a name the engine numbered (``hs_grid_3``) counts as its
    prefix and the order the query first reads it in. Found without creating a node
    (unbinding recreated and checked every node of every query: 12-15% of a small run's CPU),
    and a key is one number, not a tree."""

    def __init__(self, size: int = 1_000_000) -> None:
        self.size = size
        self._ids: dict[Hashable, int] = {}
        self._next = itertools.count()

    def of(self, root: Node) -> tuple[int, tuple[str, ...]]:
        """The number of ``root``'s shape and the numbered names of the tables it reads, in
        the order the shape counts them: two queries get the same number and names exactly
        when Ibis's ``unbind`` makes them equal."""
        if len(self._ids) > self.size:  # numbers given before are kept in the SQL's keys
            COMPILED.clear()
        done: dict[Node, int] = {}
        numbered: dict[str, int] = {}
        graph, _ = Graph.from_bfs(root).toposort()
        for node in graph:
            if isinstance(node, (ops.DatabaseTable, ops.UnboundTable)):
                shape: Hashable = (ops.UnboundTable, _table_name(node.name, numbered),
                                   node.schema, node.namespace)
            else:
                shape = (type(node), *(_shaped(v, done) for v in node.__args__))
            done[node] = self._ids.setdefault(shape, next(self._next))
        return done[root], tuple(numbered)

    def clear(self) -> None:
        self._ids.clear()


def _table_name(name: str, numbered: dict[str, int]) -> Hashable:
    """A name the engine numbered as its prefix and the order it is first read in (noted in
    ``numbered``); any other name as it is."""
    match = NUMBERED.fullmatch(name)
    if match is None:
        return name
    return NUMBERED, match[1], numbered.setdefault(name, len(numbered))


def _shaped(value: Any, done: dict[Node, int]) -> Hashable:
    if isinstance(value, Node):
        return ("node", done[value])
    if isinstance(value, (tuple, list)):
        return (type(value), *(_shaped(v, done) for v in value))
    if isinstance(value, frozenset):
        return frozenset(_shaped(v, done) for v in value)
    if isinstance(value, dict):
        return (dict, *((_shaped(k, done), _shaped(v, done)) for k, v in value.items()))
    return value


SHAPES = Shapes()


COMPILED = CompiledQueries()


def compiled_sql(con: Any, expr: ir.Table) -> str:
    """``expr``'s SQL on the backend ``con``, compiled once per process."""
    return COMPILED.sql(con, expr)
