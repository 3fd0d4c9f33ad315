"""Compile entity measures into sparse per-(account, as-of index) contributions.

Each function returns :class:`Part` objects; :mod:`healthscore.measures.build` unions them,
runs the cumulative windows once for all measures, and derives the final values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.expressions import compile_filter
from healthscore.config.model import (
    Aggregate,
    Count,
    CountDistinct,
    DaysSince,
    EntityMeasure,
    Latest,
    Measure,
    Window,
)
from healthscore.entities import ENTITIES
from healthscore.measures import asof

SUM, MAX, LATEST = "sum", "max", "latest"


@dataclass
class Part:
    table: ir.Table  # account_id, k, *columns
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # col -> (how, type)


def _day(t: ir.Table, col: str) -> ir.DateValue:
    return t[col].date() if t[col].type().is_timestamp() else t[col]


def time_column(m: EntityMeasure) -> str:
    """The column that places a row in time for this measure."""
    return str(m.time or ENTITIES[m.entity].time)


def measure_filter(m: Measure, t: ir.Table) -> ir.Value:
    """The measure's row filter; text comparisons ignore case unless it says otherwise."""
    if not isinstance(m, EntityMeasure) or not m.filter:
        raise TypeError(f"measure {m.name!r} has no row filter")
    return compile_filter(m.filter, t, fold_case=not m.case_sensitive)


def _filtered(t: ir.Table, m: EntityMeasure) -> ir.Table:
    t = t.filter(t.account_id.notnull())
    if m.filter:
        t = t.filter(measure_filter(m, t))
    return t


def event_parts(
    t: ir.Table, measures: list[EntityMeasure], grid: ir.Table,
    materialize: Callable[[ir.Table, str], ir.Table], span: asof.Span | None = None,
    grouped: bool = False,
) -> list[Part]:
    """count/sum/avg over event rows: one pass over the rows to (account, day) aggregates,
    then one set of contributions per window (``grouped``: see :func:`asof.deltas`)."""
    daily = _daily(t, measures, time_column(measures[0]))
    if span is not None:
        widest = max(measures, key=lambda m: (m.window.unbounded, _reach_days(m)))
        daily = daily.filter(span.holds(daily.day, widest.window, _shift_of(widest) + 1))
    daily = materialize(daily, "daily")
    out: list[Part] = []
    for key, group in _by_window(measures).items():
        window, times = key
        cols = [c for m in group for c in _event_columns(m, times)]
        start, end = _interval(window, times)
        part = asof.day_deltas(daily.select("account_id", "day", *cols), grid, cols, start, end,
                               grouped=grouped)
        out.append(Part(part, {c: (SUM, "float64") for c in cols}))
    return out


def _interval(window: Window, times: int) -> tuple[asof.DayMap, asof.DayMap]:
    """When an event row of a day starts and stops counting, for a measure over ``window``
    looking back ``times`` windows (1: the previous window a change reads); never stops for
    a window over all time."""
    def start(day: ir.DateValue) -> ir.DateValue:
        return asof.shift(day, window, times) if times else day

    def end(day: ir.DateValue) -> ir.DateValue:
        if window.unbounded:
            return ibis.null().cast("date")
        return asof.shift(day, window, times + 1)

    return start, end


def _reach_days(m: EntityMeasure) -> int:
    return (m.window.days + 31 * m.window.months) * (_shift_of(m) + 1)


def _by_window(measures: list[EntityMeasure]) -> dict[tuple[Window, int], list[EntityMeasure]]:
    groups: dict[tuple[Window, int], list[EntityMeasure]] = {}
    for m in measures:
        groups.setdefault((m.window, _shift_of(m)), []).append(m)
    return groups


def _shift_of(m: Measure) -> int:
    return 1 if m.name.endswith("__prev") else 0


def _event_columns(m: Measure, times: int) -> list[str]:
    if m.type == "avg":
        return [f"{m.name}__sum", f"{m.name}__n"]
    return [m.name]


def _daily(t: ir.Table, measures: list[EntityMeasure], time_col: str) -> ir.Table:
    t = t.filter(t.account_id.notnull() & t[time_col].notnull())
    t = t.mutate(day=_day(t, time_col))
    aggs: dict[str, Any] = {}
    for m in measures:
        cond = measure_filter(m, t) if m.filter else None
        aggs.update(DAILY[m.type](m, t, cond))
    return t.group_by(["account_id", "day"]).aggregate(**aggs)


# an event measure's (account, day) aggregates, by its type
DAILY: dict[str, Callable[[Any, ir.Table, Any], dict[str, Any]]] = {
    "count": lambda m, t, cond: {m.name: t.count(where=cond)},
    "sum": lambda m, t, cond: {m.name: t[m.column].sum(where=cond)},
    "avg": lambda m, t, cond: {f"{m.name}__sum": t[m.column].sum(where=cond),
                               f"{m.name}__n": t[m.column].count(where=cond)},
}


def open_part(t: ir.Table, m: Count | Aggregate, grid: ir.Table) -> Part:
    """count/sum of rows open on the as-of date: from ``open_from`` (+ delay) until ``end``."""
    entity = ENTITIES[m.entity]
    t = _filtered(t, m)
    start_col = m.open_from or entity.time or ""
    start = _day(t, start_col) + ibis.interval(days=m.open_after_days)
    value = t[m.column].cast("float64") if isinstance(m, Aggregate) else ibis.literal(1.0)
    rows = t.filter(t[start_col].notnull()).select(
        "account_id", start=start, end=_day(t, entity.end or ""), **{m.name: value}
    )
    # a row that closed before it started counting never counts
    rows = rows.filter(rows.end.isnull() | (rows.end > rows.start))
    return Part(asof.deltas(rows, grid, [m.name]), {m.name: (SUM, "float64")})


def values_seen(t: ir.Table, m: CountDistinct, span: asof.Span | None) -> ir.Table:
    """(account_id, v, day) for every non-null value of the measure's column."""
    t = _filtered(t, m)
    t = t.filter(t[m.column].notnull())
    seen = t.select("account_id", v=t[m.column], day=_day(t, time_column(m)))
    if span is not None:
        seen = seen.filter(span.holds(seen.day, m.window, _shift_of(m) + 1))
    return seen


def _seen_spans(seen: ir.Table, m: CountDistinct, grid: ir.Table,
                materialize: Callable[[ir.Table, str], ir.Table]) -> ir.Table:
    """Distinct (account, value, day) with the as-of index range each one counts for."""
    n = _shift_of(m)
    seen = materialize(seen.distinct(), "seen")
    seen = seen.mutate(__from=asof.shift(seen.day, m.window, n) if n else seen.day,
                       __to=asof.shift(seen.day, m.window, n + 1))
    return asof.seen(seen, grid, "__from", "__to")


def distinct_part(
    t: ir.Table, m: CountDistinct, grid: ir.Table, span: asof.Span | None = None,
    materialize: Callable[[ir.Table, str], ir.Table] = lambda t, _: t,
) -> Part:
    """count_distinct: a value counts on an as-of date when it was seen within the window."""
    seen = values_seen(t, m, span)
    if m.window.unbounded:
        rows = seen.group_by(["account_id", "v"]).aggregate(start=seen.day.min())
        rows = rows.mutate(end=ibis.null().cast("date"), **{m.name: ibis.literal(1.0)})
        return Part(asof.deltas(rows, grid, [m.name]), {m.name: (SUM, "float64")})
    spans = _seen_spans(seen, m, grid, materialize)
    return Part(_index_islands(spans, m.name), {m.name: (SUM, "float64")})


def distinct_direct(t: ir.Table, m: CountDistinct, grid: ir.Table, span: asof.Span) -> ir.Table:
    """count_distinct per (account, as-of index), each row joined by its day to the few as-of
    dates whose window holds it: cheaper than islands when the dates are far apart."""
    seen = values_seen(t, m, span)
    hit = seen.inner_join(asof.days_counted(grid, span, m.window, _shift_of(m)), "day")
    return hit.group_by(["account_id", "k"]).aggregate(**{m.name: hit.v.nunique()})


NEVER = 1 << 40  # an as-of index past every grid: "still counted at the last date"


def _index_islands(spans: ir.Table, name: str) -> ir.Table:
    """Merge each value's [k_start, k_end) index ranges into islands; +1/-1 at their ends.

    Ranges are grouped by start index first, so a value costs at most one row per as-of
    date, however many days it was seen on."""
    g = spans.group_by(["account_id", "v", "k_start"]).aggregate(
        k_end=spans.k_end.fill_null(NEVER).max()
    )
    before = ibis.window(group_by=["account_id", "v"], order_by="k_start", rows=(None, -1))
    reach = g.k_end.max().over(before)
    g = g.mutate(new=(reach.isnull() | (g.k_start > reach)).cast("int64"))
    upto = ibis.window(group_by=["account_id", "v"], order_by="k_start", rows=(None, 0))
    g = g.mutate(island=g.new.sum().over(upto))
    isl = g.group_by(["account_id", "v", "island"]).aggregate(ks=g.k_start.min(), ke=g.k_end.max())
    opened = isl.select("account_id", k=isl.ks, **{name: ibis.literal(1.0)})
    closed = isl.filter(isl.ke < NEVER).select("account_id", k=isl.ke, **{name: ibis.literal(-1.0)})
    return opened.union(closed)


def latest_part(t: ir.Table, m: Latest | DaysSince, grid: ir.Table) -> Part:
    """latest value of the measure's column (or, with none, latest day) of the rows seen so far."""
    column = m.column if isinstance(m, Latest) else None
    return latest_of(_filtered(t, m), m.name, time_column(m), grid, column)


def latest_of(t: ir.Table, name: str, time_col: str, grid: ir.Table, column: str | None) -> Part:
    """The latest ``column`` (or, with None, the latest day) of the rows ``t`` (their accounts
    known) as ``name``, by ``time_col``."""
    t = t.filter(t[time_col].notnull())
    if column is None:
        # the latest day is the largest one: a running max, cheaper than an arg-max by time;
        # its time is the day itself, so no running time column is needed beside it
        part = asof.latest_day(t.select("account_id", day=_day(t, time_col)), grid, name)
        return Part(part, {name: (MAX, str(part[name].type()))})
    rows = t.select("account_id", **{name: t[column], "__ts": t[time_col]})
    part = asof.latest_at(rows, grid, name, "__ts")
    return Part(part, {name: (LATEST, str(part[name].type())), f"{name}__ts": (MAX, "timestamp")})


def minmax_part(t: ir.Table, m: Aggregate, grid: ir.Table) -> ir.Table:
    """Windowed min/max by a range join (running sums cannot do min/max)."""
    t = _filtered(t, m)
    rows = t.select("account_id", v=t[m.column].cast("float64"),
                    day=_day(t, time_column(m)))
    rows = rows.filter(rows.v.notnull() & rows.day.notnull())
    if m.window.unbounded:
        joined = rows.inner_join(grid, rows.day <= grid.as_of)
    else:
        joined = asof.window_rows(rows, grid, m.window)
    agg = joined.v.min() if m.type == "min" else joined.v.max()
    return joined.group_by(["account_id", "k"]).aggregate(**{m.name: agg})
