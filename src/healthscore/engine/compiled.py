"""The SQL of each distinct query, compiled once per process.

Ibis compiling an expression to SQL is about half the CPU of scoring a small project, and the
same work (the same project, dates and tables) builds the same expressions again: a second
run, the web app's pages, a preview before the run. The SQL text depends on the expression
only (table names, schemas, literals, the options that shape it), not on which connection's
tables it reads, so it is kept per process under the expression with its tables unbound from
their connection. Each engine names its tables alike for the same sequence of work (see
``Engine.temp_name``), so a run repeated on a new engine finds its queries here.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
from ibis.common.graph import Graph, Node

SIZE = 512  # queries kept: a long run compiles a few hundred distinct ones


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0


class CompiledQueries:
    """The SQL of the last ``size`` distinct queries compiled (least recently used out)."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self.stats = Stats()
        self._sql: OrderedDict[Hashable, str] = OrderedDict()
        self._lock = threading.Lock()  # the web app compiles from several threads

    def sql(self, con: Any, expr: ir.Table) -> str:
        """``expr`` compiled by the backend ``con``, or the SQL it compiled to before."""
        key = query_key(con, expr)
        with self._lock:
            sql = self._sql.get(key)
            if sql is not None:
                self._sql.move_to_end(key)
                self.stats.hits += 1
                return sql
        sql = str(con.compile(expr))
        with self._lock:
            self.stats.misses += 1
            self._sql[key] = sql
            if len(self._sql) > self.size:
                self._sql.popitem(last=False)
        return sql

    def clear(self) -> None:
        with self._lock:
            self._sql.clear()
            self.stats = Stats()
            SHAPES.clear()


def query_key(con: Any, expr: ir.Table) -> Hashable:
    """What the SQL of ``expr`` depends on: the dialect, whether Ibis merges nested selects,
    and the expression with each table unbound from its connection (its name, schema and
    namespace kept: two tables of one name in two schemas are two tables). Literals are part
    of the expression: two dates, two thresholds, two queries."""
    return type(con.compiler), ibis.options.sql.fuse_selects, SHAPES.of(expr.op())


class Shapes:
    """A number for each distinct node shape: a node's type and arguments, each argument
    node by its own number and every table (bound to a connection or not) by its name,
    schema and namespace. Two queries get one number exactly when Ibis's ``unbind`` makes
    them equal, found without creating a node (unbinding recreated and checked every node
    of every query: 12-15% of a small run's CPU), and a key is one number, not a tree."""

    def __init__(self, size: int = 1_000_000) -> None:
        self.size = size
        self._ids: dict[Hashable, int] = {}
        self._next = itertools.count()

    def of(self, root: Node) -> int:
        if len(self._ids) > self.size:  # numbers given before are kept in the SQL's keys
            COMPILED.clear()
        done: dict[Node, int] = {}
        graph, _ = Graph.from_bfs(root).toposort()
        for node in graph:
            if isinstance(node, (ops.DatabaseTable, ops.UnboundTable)):
                shape: Hashable = (ops.UnboundTable, node.name, node.schema, node.namespace)
            else:
                shape = (type(node), *(_shaped(v, done) for v in node.__args__))
            done[node] = self._ids.setdefault(shape, next(self._next))
        return done[root]

    def clear(self) -> None:
        self._ids.clear()


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
