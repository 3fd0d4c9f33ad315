"""Assemble every measure for every (account, as-of date) in one set-based pass."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.expressions import compile_filter
from healthscore.config.model import (
    Aggregate,
    Change,
    Count,
    CountDistinct,
    EntityMeasure,
    Manual,
    Measure,
    ProjectConfig,
)
from healthscore.entities import ENTITIES
from healthscore.measures import asof, history
from healthscore.measures.carry import KEPT, Carry, running_on_two_dates
from healthscore.measures.modules import is_module_column, module_parts
from healthscore.measures.parts import (
    LATEST,
    MAX,
    SUM,
    Part,
    distinct_direct,
    distinct_part,
    event_parts,
    latest_of,
    latest_part,
    minmax_part,
    open_part,
    time_column,
)

ACCOUNT_KEYS = ("account_id", "k", "as_of")


def _inline(t: ir.Table, _: str) -> ir.Table:
    """A table left as its expression (not materialised)."""
    return t


def left_join(left: ir.Table, right: ir.Table, keys: list[str]) -> ir.Table:
    """A left join on same-named keys that keeps one copy of each key."""
    joined = left.left_join(right, keys)
    extra = [f"{k}_right" for k in keys if f"{k}_right" in joined.columns]
    return joined.drop(*extra) if extra else joined


def active_spine(accounts: ir.Table, outcomes: ir.Table | None, grid: ir.Table) -> ir.Table:
    """Every account on every as-of date on which it was a customer (started, not yet gone)."""
    spine = known_accounts(accounts, outcomes).cross_join(grid)
    return spine.filter(
        (spine.start_date <= spine.as_of)
        & (spine.churn_date.isnull() | (spine.churn_date > spine.as_of))
    )


def known_accounts(accounts: ir.Table, outcomes: ir.Table | None) -> ir.Table:
    """The accounts, their churn date being the accounts file's or else the first churn
    outcome's."""
    churn = accounts.churn_date
    if outcomes is not None:
        left = outcomes.filter(outcomes.kind == "churn").group_by("account_id").aggregate(
            __churn=outcomes.occurred_at.min().date()
        )
        accounts = left_join(accounts, left, ["account_id"])
        churn = ibis.coalesce(accounts.churn_date, accounts["__churn"])
    accounts = accounts.mutate(churn_date=churn)
    if "__churn" in accounts.columns:
        accounts = accounts.drop("__churn")
    return accounts


class MeasureBuilder:
    """Collects parts per measure, then resolves them against the spine."""

    def __init__(self, config: ProjectConfig, tables: dict[str, ir.Table], grid: ir.Table):
        self.config = config
        self.tables = tables
        self.grid = grid
        self.parts: list[Part] = []
        self.side: list[tuple[str, ir.Table]] = []  # (measure, account_id/k/value) to left-join
        self.measures = {n: config.measures[n] for n in config.used_measures()}
        self.stale_flags: dict[str, list[Any]] = {}
        self.materialize: Callable[[ir.Table, str], ir.Table] = lambda t, _: t
        self.span: asof.Span | None = None  # when set, rows no as-of date can see are skipped
        self.n_dates = 0
        self.days = 0  # from the first to the last as-of date of this pass (span: of the run)
        self.history: list[str] = []  # account columns an account_history source gives
        self.carry: Carry | None = None  # running values kept for (or taken from) another run
        # the spine's accounts (known_accounts): when set, the running windows see only the
        # (account, date) keys and the measures' columns; the accounts' own columns join after
        self.accounts: ir.Table | None = None
        # event measures by (entity, time column): one pass over each entity's rows for them all
        self.events: dict[tuple[str, str], list[EntityMeasure]] = {}
        # a run of few account-dates (SMALL_RUN): its stacked contributions are stored before
        # they merge (see merged_contributions)
        self.small = False

    # ------------------------------------------------------------------ collection

    def collect(self) -> None:
        measures = dict(self.measures)
        for m in list(measures.values()):
            if isinstance(m, Change):
                prev = dataclasses.replace(measures[m.of], name=f"{m.of}__prev")
                measures[prev.name] = prev
        self.events = {}
        for m in measures.values():
            self._collect_one(m)
        for (entity, _), group in self.events.items():
            self.parts.extend(event_parts(self.tables[entity], group, self.grid, self.materialize,
                                          self.span, grouped=self._far_apart()))
        if self.history:
            self.parts.extend(history.history_parts(self.tables[history.HISTORY], self.history,
                                                    self.grid))
        self._collect_modules()
        self._internal = measures

    def _collect_modules(self) -> None:
        """The CTAs and marks that colour the scorecards' modules (groups)."""
        groups = [g for sc in self.config.all_scorecards for g in sc.all_groups()]
        by_ctas = sorted({g.path for g in groups if g.colour != "score"})
        self.parts.extend(module_parts(self.tables.get("ctas"), self.tables.get("module_marks"),
                                       by_ctas, self.config.group_paths(), self.grid))

    def _collect_one(self, m: Measure) -> None:
        collect = COMPILERS[m.type].collect
        if collect is not None:  # derived measures (ratio, change, expression...) collect nothing
            collect(self, m, self.tables.get(m.entity or ""))

    def _event(self, m: Count | Aggregate, t: Any) -> None:
        """An event measure waits for the others over the same rows; one over open rows
        (mode: open) is collected now."""
        if m.mode == "events":
            self._batch(m, t)
        else:
            self.parts.append(open_part(t, m, self.grid))

    def _batch(self, m: Count | Aggregate, t: Any) -> None:
        """(An average over open rows is not defined: it collects nothing.)"""
        if m.mode == "events":
            self.events.setdefault((m.entity, time_column(m)), []).append(m)

    def _distinct(self, m: CountDistinct, t: Any) -> None:
        direct = self.span is not None and self._sparse_grid(m)
        if self.carry is not None:  # counted from the values kept, or keeping them
            t = self.carry.rows_of(m, t)
            # the values seen are stored when the count from the rows (islands) reads them
            # too, or when they are one date's window; the direct count over many dates does
            # not read them, and the last days kept need only the last date's window of them
            once = _inline if direct and self.n_dates > 1 else self.materialize
            counted = self.carry.distinct(m, t, self.grid, self.span, once)
            if counted is not None:
                self.side.append((m.name, counted))
                return
        if self.span is not None and direct:
            self.side.append((m.name, distinct_direct(t, m, self.grid, self.span)))
        else:
            self.parts.append(distinct_part(t, m, self.grid, self.span, self.materialize))

    def _sparse_grid(self, m: CountDistinct) -> bool:
        """Whether a window holds so few as-of dates that joining days to dates is cheaper."""
        if self.span is None or m.window.unbounded:
            return False
        if self.n_dates < 2:
            return True
        gap = max((self.span.last - self.span.first).days / (self.n_dates - 1), 1)
        return (m.window.days + 30 * m.window.months) / gap <= 3

    def _far_apart(self) -> bool:
        """Whether this pass's as-of dates are a week or more apart (or one date), so that
        many days of rows start and stop counting on the same dates."""
        if self.span is None:
            return False
        return self.n_dates < 2 or self.days / (self.n_dates - 1) >= 7

    def _manual_part(self, m: Manual) -> Part:
        t = self.tables["manual_values"]
        t = t.filter(t.account_id.notnull() & (t.measure == m.stored_as))
        return latest_of(t, m.name, str(ENTITIES["manual_values"].time), self.grid, "value")

    # ------------------------------------------------------------------ resolution

    def build(self, spine: ir.Table) -> ir.Table:
        self.collect()
        wide = self._cumulate(spine)
        for name, table in self.side:
            wide = left_join(wide, table, ["account_id", "k"])
            if self._internal[name].type == "count_distinct":  # none seen: 0, as a running sum
                kept = self._kept_on_last(wide, [name])
                wide = wide.mutate(**{name: wide[name].fill_null(0)}, **kept)
        if self.history:  # attributes as they were on each date, before any measure reads them
            wide = wide.mutate(**history.as_of(wide, self.history))
        wide = self._finish(wide)
        return wide

    def _columns(self) -> dict[str, tuple[str, str]]:
        cols: dict[str, tuple[str, str]] = {}
        for p in self.parts:
            cols.update(p.columns)
        return cols

    def _cumulate(self, spine: ir.Table) -> ir.Table:
        cols = self._columns()
        if self.carry is not None:
            self.carry.spine = spine
        if not cols:
            return spine
        bounds = spine.group_by("account_id").aggregate(k_first=spine.k.min(), k_last=spine.k.max())
        # kept inline, not materialised: a materialised copy at 50,000 accounts x 24 dates ran
        # out of the default 1500MB pool
        parts = self.parts if self.carry is None else self.carry.new_parts(self.parts)
        sparse = merged_contributions(parts, bounds, self.materialize if self.small else None)
        if self.carry is not None:
            sparse = self.carry.apply(sparse, cols, spine, self.side)
        keys = spine if self.accounts is None else spine.select("account_id", "k", "as_of")
        if self.carry is not None and self.carry.last == 1:  # two dates: no window needed
            done = running_on_two_dates(left_join(keys, sparse, ["account_id", "k"]), cols)
        elif self._fills_by_asof():
            done = running_on_dates(keys, sparse, cols)
        else:
            joined = left_join(keys, sparse, ["account_id", "k"])
            done = joined.mutate(**running(joined, cols))
        # (a step of its own: the kept copy and the sums read the same window, computed once)
        sums = {c: done[c].fill_null(0) for c, (how, _) in cols.items() if how == SUM}
        done = done.mutate(**sums, **self._kept_on_last(done, list(cols)))
        if self.accounts is None:
            return done
        values = [c for c in done.columns if c not in keys.columns]
        wide = done.inner_join(self.accounts, "account_id")
        return wide.select(*spine.columns, *values)

    def _fills_by_asof(self) -> bool:
        """Whether the running windows see only the rows that carry a contribution, and the
        other dates take theirs by an as-of join (:func:`running_on_dates`): when the engine
        has one (Spark SQL has none) and the dates are close. Dates a week or more apart
        leave hardly an account-date without a contribution (12 month ends at 100,000
        accounts: 946,558 of 946,925), so the join would save no window rows there."""
        return ibis.get_backend(self.grid).name in ASOF_BACKENDS and not self._far_apart()

    def _kept_on_last(self, t: ir.Table, names: list[str]) -> dict[str, Any]:
        """The running values ``names`` of the grid's last date as ``KEPT`` columns (null on
        the other dates), when the carry keeps them from the measures
        (:meth:`Carry.from_measures`); none otherwise."""
        if self.carry is None or not self.carry.from_measures():
            return {}
        last = t.k == self.carry.last
        return {KEPT + c: ibis.ifelse(last, t[c], ibis.null(t[c].type())) for c in names}

    def _finish(self, wide: ir.Table) -> ir.Table:
        values: dict[str, Any] = {}
        for name in self.measures:
            values[name] = self._final(self.measures[name], wide, values)
        keep = [c for c in wide.columns if (c not in self._columns() or is_module_column(c))
                and c not in self.measures]
        stale = self._stale(wide)
        return wide.select(*keep, **{n: stale(n, v) for n, v in values.items()})

    def _final(self, m: Measure, w: ir.Table, done: dict[str, Any]) -> Any:
        return COMPILERS[m.type].finish(m, w, done)

    def _stale(self, wide: ir.Table) -> Any:
        flags = self.stale_flags

        def apply(name: str, value: Any) -> Any:
            entity = self.measures[name].entity
            if entity in flags:
                return ibis.ifelse(wide.as_of.isin(flags[entity]), ibis.null(), value)
            return value

        return apply


# ----------------------------------------------------------------------------- compilers
# A measure type's compiler (how it collects parts; how its value is finished on the wide
# table), its Spec class in config/specs.py, its resolved class in config/model.py and its line
# in docs/configuration.md are all a new type needs.


@dataclass(frozen=True)
class Compiler:
    """How a measure type compiles. ``collect(builder, measure, its entity's table)`` adds
    its parts (None: it is made of other measures); ``finish(measure, wide, done)`` gives its
    value from the running columns and the measures finished before it."""

    finish: Callable[[Any, ir.Table, dict[str, Any]], Any]
    collect: Callable[[MeasureBuilder, Any, Any], None] | None = None


def _avg(m: Aggregate, w: ir.Table, done: dict[str, Any]) -> Any:
    n = w[f"{m.name}__n"]
    return ibis.ifelse(n > 0, w[f"{m.name}__sum"] / n, ibis.null())


def _days_since(m: EntityMeasure, w: ir.Table, done: dict[str, Any]) -> Any:
    days = w.as_of.delta(w[m.name], unit="day").cast("float64")
    return _within(w, m, days, w[m.name])  # the latest day is the time of its row


def _tenure(m: Any, w: ir.Table, done: dict[str, Any]) -> Any:
    days = w.as_of.delta(w.start_date, unit="day").cast("float64")
    return days / {"days": 1, "months": 30.4375, "years": 365.25}[m.unit]


def _as_is(m: Measure, w: ir.Table, done: dict[str, Any]) -> Any:
    return w[m.name]


def _latest(m: EntityMeasure, w: ir.Table, done: dict[str, Any]) -> Any:
    return _within(w, m, w[m.name])


def _manual(m: Manual, w: ir.Table, done: dict[str, Any]) -> Any:
    """The latest value entered, until it is older than the measure's max_age."""
    limit = w.as_of - ibis.interval(days=m.max_age_days)
    return ibis.ifelse(w[f"{m.name}__ts"].date() > limit, w[m.name], ibis.null())


def _minmax(b: MeasureBuilder, m: Aggregate, t: Any) -> None:
    b.side.append((m.name, minmax_part(t, m, b.grid)))


def _latest_value(b: MeasureBuilder, m: Any, t: Any) -> None:
    b.parts.append(latest_part(t, m, b.grid))


COMPILERS: dict[str, Compiler] = {
    "count": Compiler(_as_is, MeasureBuilder._event),
    "sum": Compiler(_as_is, MeasureBuilder._event),
    "avg": Compiler(_avg, MeasureBuilder._batch),  # over events only
    "min": Compiler(_as_is, _minmax),
    "max": Compiler(_as_is, _minmax),
    "count_distinct": Compiler(lambda m, w, done: w[m.name].fill_null(0), MeasureBuilder._distinct),
    "latest": Compiler(_latest, _latest_value),
    "days_since": Compiler(_days_since, _latest_value),
    "manual": Compiler(_manual, lambda b, m, t: b.parts.append(b._manual_part(m))),
    "tenure": Compiler(_tenure),
    "attribute": Compiler(lambda m, w, done: w[m.column]),
    "ratio": Compiler(lambda m, w, done: _ratio(_operand(m.numerator, w, done),
                                                _operand(m.denominator, w, done))),
    "change": Compiler(lambda m, w, done: _change(w[m.of], w[f"{m.of}__prev"], m.to)),
    "expression": Compiler(lambda m, w, done: compile_filter(m.expr, done).cast("float64")),
}


ASOF_BACKENDS = frozenset({"duckdb"})  # engines whose SQL has an as-of join


def running(t: ir.Table, cols: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Each contribution column of ``t`` (account_id, k, ``cols``) as its running value over
    the account's as-of indexes: summed, the largest, or the latest by its time column."""
    w = ibis.window(group_by="account_id", order_by="k", rows=(None, 0))
    values: dict[str, Any] = {}
    for c, (how, _) in cols.items():
        if how == SUM:
            values[c] = t[c].sum().over(w)
        elif how == MAX:
            values[c] = t[c].max().over(w)
        else:
            values[c] = t[c].argmax(t[f"{c}__ts"]).over(w)
    return values


def running_on_dates(keys: ir.Table, sparse: ir.Table,
                     cols: dict[str, tuple[str, str]]) -> ir.Table:
    """The dates ``keys`` (account_id, k, ...) with the running value of each column of the
    merged contributions ``sparse`` (one row per account and as-of index that has any): the
    window runs over those rows only, and each date takes the values of the latest of its
    account's rows at or before it (null before the first), by an as-of join. A running
    value changes only where a contribution lands, so this gives what a window over every
    date gives; at 20,000 accounts a daily pass has a contribution on 1.45M of its 2.42M
    account-dates, and its window cost most of the measures query."""
    done = sparse.mutate(**running(sparse, cols))
    done = done.select(__account=done.account_id, __k=done.k, **{c: done[c] for c in cols})
    joined = keys.asof_join(done, on=keys.k >= done["__k"],
                            predicates=[keys.account_id == done["__account"]])
    return joined.select(*keys.columns, *cols)


def _clamped(part: ir.Table, bounds: ir.Table) -> ir.Table:
    """Contributions before an account's first as-of date land on that date; later ones
    than its last date are dropped."""
    t = part.inner_join(bounds, "account_id")
    t = t.filter(t.k <= t.k_last).mutate(k=ibis.greatest(t.k, t.k_first))
    return t.drop("k_first", "k_last")


def merged_contributions(parts: list[Part], bounds: ir.Table,
                         store: Callable[[ir.Table, str], ir.Table] | None = None) -> ir.Table:
    """One row per (account, as-of index) with every part's columns. Each part collapses to
    one row per (account, index), then all stack in one narrow union (:class:`Stack`), are
    placed on the accounts' own dates (``bounds``: account_id, k_first, k_last) and merge.

    ``store``, when given (a small run), stores the union first: DuckDB merging the dozens of
    filtered aggregates straight from a union of dozens of parts pays a fixed cost per part
    (about 0.2 CPU s for the demo's 40 parts, against 0.02 from a stored copy), and the
    queries that read the contributions then compile without the union. A bigger run gives
    each column a slot of its own, so that no aggregate is filtered by part: at 20,000
    accounts, 365 daily dates, the passes' measures queries cost 8% less (docs/benchmark.md)."""
    cols: dict[str, tuple[str, str]] = {}
    for p in parts:
        cols.update(p.columns)
    stack = Stack.of([Part(_sparse(p.table, p.columns), p.columns) for p in parts],
                     shared=store is not None)
    rows = stack.table if store is None else store(stack.table, "stack")
    return stack.merged(_clamped(rows, bounds), cols)


@dataclass(frozen=True)
class Stack:
    """Every part's rows in one union: the part's number (``__part``) and its columns in
    typed slots (null where a part has none), each slot shared by the parts when ``shared``
    (few columns: a part's column in the first free slot of its type), else one a column.
    ``where``: column -> (part number, slot)."""

    table: ir.Table
    where: dict[str, tuple[int, str]]

    @classmethod
    def of(cls, parts: list[Part], shared: bool = True) -> Stack:
        types: dict[str, str] = {}  # slot -> type, in order
        where: dict[str, tuple[int, str]] = {}
        for i, part in enumerate(parts):
            taken: set[str] = set()
            for c, (_, type_) in part.columns.items():
                free = (s for s, t in types.items() if shared and t == type_ and s not in taken)
                slot = next(free, f"__slot{len(types)}")
                types.setdefault(slot, type_)
                taken.add(slot)
                where[c] = (i, slot)
        tables = [_in_slots(p.table, i, {s: c for c, (j, s) in where.items() if j == i}, types)
                  for i, p in enumerate(parts)]
        return cls(ibis.union(*tables), where)

    def merged(self, t: ir.Table, cols: dict[str, tuple[str, str]]) -> ir.Table:
        """One row per (account, as-of index) of the stacked rows ``t``: each column sums,
        takes the largest or the latest (by its time column) of its own part's rows (the
        rows its slots hold, when no other part's column shares them)."""
        parts: dict[str, set[int]] = {}  # slot -> the parts whose columns it holds
        for part, slot in self.where.values():
            parts.setdefault(slot, set()).add(part)
        aggs: dict[str, Any] = {}
        for c, (how, _) in cols.items():
            part, slot = self.where[c]
            read = [slot] if how != LATEST else [slot, self.where[f"{c}__ts"][1]]
            shared = any(len(parts[s]) > 1 for s in read)
            mine = t["__part"] == part if shared else None
            if how == SUM:
                aggs[c] = t[slot].sum(where=mine)
            elif how == MAX:
                aggs[c] = t[slot].max(where=mine)
            else:
                aggs[c] = t[slot].argmax(t[self.where[f"{c}__ts"][1]], where=mine)
        return t.group_by(["account_id", "k"]).aggregate(**aggs)


def _in_slots(t: ir.Table, part: int, columns: dict[str, str], types: dict[str, str]) -> ir.Table:
    """``t`` (account_id, k and the part's columns) with its columns in the slots
    ``columns`` (slot -> column) and nulls in the others."""
    values: dict[str, Any] = {}
    for slot, type_ in types.items():
        value = t[columns[slot]] if slot in columns else ibis.null()
        values[slot] = value if value.type() == ibis.dtype(type_) else value.cast(type_)
    return t.select("account_id", "k", __part=ibis.literal(part, "int32"), **values)


def _sparse(t: ir.Table, cols: dict[str, tuple[str, str]]) -> ir.Table:
    """One row per (account, as-of index): sums add up, maxima and latest values combine."""
    aggs: dict[str, Any] = {}
    for c, (how, _) in cols.items():
        if how == SUM:
            aggs[c] = t[c].sum()
        elif how == MAX:
            aggs[c] = t[c].max()
        else:
            aggs[c] = t[c].argmax(t[f"{c}__ts"])
    return t.group_by(["account_id", "k"]).aggregate(**aggs)


def _within(w: ir.Table, m: EntityMeasure, value: Any, day: Any = None) -> Any:
    """``value`` while the row it came from (dated ``day``; by default the day of its
    running time column) is inside the measure's window, else null."""
    if m.window.unbounded:
        return value
    day = w[f"{m.name}__ts"].date() if day is None else day
    return ibis.ifelse(asof.shift(day, m.window) > w.as_of, value, ibis.null())


def _operand(name: str, w: ir.Table, done: dict[str, Any]) -> Any:
    if name.startswith("accounts."):
        return w[name.split(".", 1)[1]]
    return done[name]


def _ratio(num: Any, den: Any) -> Any:
    return ibis.ifelse(den == 0, ibis.null(), num.cast("float64") / den)


def _change(cur: Any, prev: Any, to: str) -> Any:
    if to == "absolute":
        return cur - prev
    return ibis.ifelse(prev == 0, ibis.null(), (cur - prev) / prev * 100)
