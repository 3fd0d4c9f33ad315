"""Point-in-time logic for many as-of dates at once. The one audited place.

The as-of dates form a *grid*: ``k = 0..n-1`` with increasing ``as_of``. Every row of data
carries a day (the day it became known) and, for rows that stay true for a while (a ticket
that is open, a user who counts as active for 30 days), a day it stops counting.

The rule, implemented only by :func:`visible_from`: **a row dated ``day`` is first seen by the
earliest as-of date on or after ``day``**. A row contributes ``+value`` at that grid index and
``-value`` at the index where it stops counting; a running sum over the grid then gives every
measure for every as-of date in one set-based pass, and no as-of date ever sees a row dated
after it. Rows dated after the last as-of date map to no index and are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from healthscore.config.model import Window

DayMap = Callable[[ir.DateValue], ir.DateValue]  # a row's day -> a day of its interval


def grid_arrow(dates: list[date]) -> pa.Table:
    """The grid's rows; the engine registers them as a table. (Made from buffers: ``pa.array``
    imports pandas, 0.3 CPU s of a run that needs none.)"""
    ordered = sorted(set(dates))
    days = np.array([d.toordinal() - _EPOCH for d in ordered], dtype=np.int32)
    return pa.table({"k": _array(pa.int64(), np.arange(len(ordered), dtype=np.int64)),
                     "as_of": _array(pa.date32(), days)})


_EPOCH = date(1970, 1, 1).toordinal()


def _array(kind: pa.DataType, values: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def visible_from(days: ir.Table, grid: ir.Table) -> ir.Table:
    """Map each distinct ``day`` to the first grid index ``k`` whose ``as_of >= day``."""
    distinct = days.select("day").distinct().filter(lambda t: t.day.notnull())
    pairs = distinct.cross_join(grid).filter(lambda t: t.as_of >= t.day)
    return pairs.group_by("day").aggregate(k=pairs.k.min())


@dataclass(frozen=True)
class Span:
    """The first and last as-of date of a run."""

    first: date
    last: date

    def holds(self, day: ir.DateValue, window: Window, reach: int = 1) -> ir.BooleanValue:
        """Whether a row dated ``day`` can count for any as-of date, for a measure looking
        back ``reach`` windows (2 for a change against the previous window)."""
        cond = day <= self.last
        if window.unbounded:
            return cond
        first = ibis.literal(self.first, type="date")
        return cond & (day > shift(first, window, -reach))


def shift(day: ir.DateValue, window: Window, times: int = 1) -> ir.DateValue:
    """``day`` moved forward by ``times`` windows (days or calendar months)."""
    if window.months:
        return day + ibis.interval(months=window.months * times)
    return day + ibis.interval(days=window.days * times)


def deltas(
    rows: ir.Table, grid: ir.Table, values: list[str], start: str = "start", end: str = "end",
    grouped: bool = False,
) -> ir.Table:
    """Turn interval rows ``[start, end)`` into +/- contributions at grid indexes.

    ``rows`` has ``account_id``, ``start`` and ``end`` (dates; ``end`` may be null for
    "never stops") and one column per value. Returns ``account_id, k, *values``. A row whose
    start and end fall between the same two as-of dates counts for none of them and is
    dropped here, so one as-of date costs only the rows inside its window. ``grouped``: the
    rows that start and stop counting at the same indexes are summed first (far-apart dates
    place many days' rows on the same indexes).
    """
    return _signed(seen(rows, grid, start, end), values, grouped)


def day_deltas(
    rows: ir.Table, grid: ir.Table, values: list[str], start_of: DayMap, end_of: DayMap,
    grouped: bool = False,
) -> ir.Table:
    """:func:`deltas` of rows whose interval is a function of their ``day``: ``[start_of(day),
    end_of(day))`` (``end_of`` may give null). Each distinct day is placed on the grid once
    (:func:`day_spans`) and the rows join that map by their day, instead of each row's start
    and end being looked up apart (two scans of the rows for their days, two joins)."""
    return _signed(rows.inner_join(day_spans(rows, grid, start_of, end_of), "day"), values,
                   grouped)


def day_spans(rows: ir.Table, grid: ir.Table, start_of: DayMap, end_of: DayMap) -> ir.Table:
    """(day, k_start, k_end) for each distinct ``day`` of ``rows`` that some as-of date sees:
    ``k_start`` the first grid index on or after ``start_of(day)``, ``k_end`` the first on or
    after ``end_of(day)`` (null if none). Days whose start and end fall between the same two
    as-of dates count for none and are left out."""
    days = rows.select("day").distinct().filter(lambda t: t.day.notnull())
    days = days.mutate(__start=start_of(days.day), __end=end_of(days.day))
    return seen(days, grid, "__start", "__end").select("day", "k_start", "k_end")


def _signed(r: ir.Table, values: list[str], grouped: bool) -> ir.Table:
    """+values at ``k_start``, -values at ``k_end`` (when not null) of the rows ``r``
    (``grouped``: see :func:`deltas`)."""
    if grouped:
        r = r.group_by(["account_id", "k_start", "k_end"]).aggregate(**{v: r[v].sum() for v in values})
    opened = r.select("account_id", k=r.k_start, **{v: r[v].cast("float64") for v in values})
    closed = r.filter(r.k_end.notnull())
    closed = closed.select("account_id", k=closed.k_end,
                           **{v: (-closed[v]).cast("float64") for v in values})
    return opened.union(closed)


def seen(rows: ir.Table, grid: ir.Table, start: str, end: str) -> ir.Table:
    """Keep the rows some as-of date sees, with ``k_start`` (first date that counts them) and
    ``k_end`` (first date that no longer does; null if none)."""
    first = visible_from(rows.select(day=rows[start]), grid).rename(k_start="k", __d1="day")
    last = visible_from(rows.select(day=rows[end]), grid).rename(k_end="k", __d2="day")
    r = rows.inner_join(first, rows[start] == first["__d1"]).drop("__d1")
    r = r.left_join(last, r[end] == last["__d2"]).drop("__d2")
    return r.filter(r.k_end.isnull() | (r.k_end != r.k_start))


def days_counted(grid: ir.Table, span: Span, window: Window, times: int = 0) -> ir.Table:
    """(day, k) for every day a row can be dated within ``span`` and every grid index whose
    date counts a row of that day: ``as_of`` in ``[day, day + window)`` moved forward by
    ``times`` windows (1 for a change against the previous window). A bounded window only;
    a table of days by dates, so that each row finds its few as-of dates by equality."""
    if window.unbounded:
        raise ValueError("days_counted needs a bounded window")
    last = ibis.literal(span.last, type="date")
    first = shift(ibis.literal(span.first, type="date"), window, -(times + 1))  # excluded
    n = last.delta(first, unit="day")
    days = grid.filter(grid.k == 0).select(i=ibis.range(1, n + 1).unnest())
    days = days.select(day=(first + days.i.as_interval("D")).cast("date"))
    pairs = days.cross_join(grid)
    since = shift(pairs.day, window, times) if times else pairs.day
    pairs = pairs.filter((pairs.as_of >= since) & (pairs.as_of < shift(pairs.day, window, times + 1)))
    return pairs.select("day", "k")


def latest_at(rows: ir.Table, grid: ir.Table, value: str, ts: str) -> ir.Table:
    """Per account and grid index, the latest ``value`` by ``ts`` among rows first seen there."""
    keyed = rows.mutate(day=rows[ts].date())
    joined = keyed.inner_join(visible_from(keyed, grid), "day")
    return joined.group_by(["account_id", "k"]).aggregate(
        **{value: joined[value].argmax(joined[ts]), f"{value}__ts": joined[ts].max()}
    )


def latest_day(rows: ir.Table, grid: ir.Table, name: str) -> ir.Table:
    """Per account and grid index, the latest ``day`` of the rows first seen there, as
    ``name``."""
    joined = rows.inner_join(visible_from(rows, grid), "day")
    return joined.group_by(["account_id", "k"]).aggregate(**{name: joined.day.max()})


def window_rows(rows: ir.Table, grid: ir.Table, window: Window) -> ir.Table:
    """Rows joined to every as-of date that counts them: from the row's day until the
    window's length after it (the rule of every windowed measure, see :func:`shift`).

    Used only for windowed min/max, which running sums cannot express; a range join.
    """
    r = rows.mutate(__until=shift(rows.day, window))
    return r.inner_join(grid, [r.day <= grid.as_of, r["__until"] > grid.as_of]).drop("__until")
