"""Running values carried from one run's last as-of date into the next run.

Every measure that sums, maxes or takes the latest of +/- contributions on the date grid
(see :mod:`healthscore.measures.asof`) has, as of a date P, a running value that is the sum
(max, latest by time) of every contribution at or before P, whatever the grid. So a run
over the grid ``[P, D]`` may replace everything at P (index 0) by the values kept as of P
and needs only the contributions that land after P: the rows dated after P, and those
whose window closes after P. Which tables may be cut down that way, and so which columns
are carried, is decided by :mod:`healthscore.pipeline.incremental`; here are the two
operations on the builder's sparse contributions: start from kept values (:meth:`Carry.apply`)
and keep the values as of the last date (:meth:`Carry.kept`).

A distinct count over a window is no running sum; what is kept for it instead is, per account
and value, the last day the value was seen (while that day still counts): the count as of D
is the values whose last day up to D is inside the window of D (:meth:`Carry.distinct`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.model import CountDistinct
from healthscore.measures import asof
from healthscore.measures.parts import MAX, SUM, Part, values_seen

KEPT = "__kept__"  # the measures' column holding a running value as of the grid's last date


@dataclass
class Carry:
    """``before``: one row per account, its running values as of the grid's first date; the
    ``carried`` columns are taken from it (the others are computed from whole tables). The
    builder records what it summed, for :meth:`kept`."""

    before: ir.Table | None = None
    carried: frozenset[str] = frozenset()
    keep_only: ir.Table | None = None  # the accounts whose values :meth:`kept` keeps (all)
    last: int = 0  # the grid's last index (set by the builder's caller)
    sparse: ir.Table | None = None
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)
    spine: ir.Table | None = None
    side: list[tuple[str, ir.Table]] = field(default_factory=list)
    # when set, the contributions (and the distinct counts beside them) are computed once and
    # kept in the engine: the measures and :meth:`kept` read that copy instead of computing
    # them twice (for a run over few accounts or few rows: the incremental day)
    materialize: Callable[[ir.Table, str], ir.Table] | None = None
    # otherwise, when set, the contributions are named once (a view: computed where they are
    # read, by the measures and by :meth:`kept`, but compiled to SQL once)
    view: Callable[[ir.Table, str], ir.Table] | None = None
    # entity -> the rows its distinct counts read, when its table holds only the rows that
    # move the running values (the distinct counts read a whole window)
    distinct_rows: dict[str, ir.Table] = field(default_factory=dict)
    # distinct count -> (account_id, v, day): each value's last day seen as of the grid's first
    # date (kept by the last run); those counted from it read only the rows after that date
    seen_before: dict[str, ir.Table] = field(default_factory=dict)
    # distinct count -> (account_id, v, day) of the values the grid's last date counts
    seen: dict[str, ir.Table] = field(default_factory=dict)
    # the materialised measures, holding the running values of the grid's last date (each
    # running column ``c`` as ``KEPT + c``; see :meth:`from_measures`): when set (by the
    # scoring), :meth:`kept` reads them; else it merges the contributions again
    measures: ir.Table | None = None
    # accounts with no kept values whose every row the tables hold (the day's new accounts):
    # their contributions on or before the grid's first date are their own, not replaced by
    # kept values (a running value on a date depends only on the contributions up to it)
    whole: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """Carried columns the kept values do not hold (kept by another configuration)."""
        have = set(self.before.columns) if self.before is not None else set()
        return sorted(c for c in self.columns if c in self.carried and c not in have)

    def apply(self, sparse: ir.Table, cols: dict[str, tuple[str, str]], spine: ir.Table,
              side: list[tuple[str, ir.Table]]) -> ir.Table:
        """``sparse`` with index 0 holding the kept values of the carried columns."""
        self.columns, self.spine, self.side = dict(cols), spine, list(side)
        if self.before is not None and self.carried:
            sparse = _start_from(sparse, self.before, cols, self.carried, self.whole)
        if self.materialize is not None:
            sparse = self.materialize(sparse, "carry_sparse")
            for i, (name, table) in enumerate(side):  # the builder joins these copies too
                side[i] = (name, self.materialize(table, f"carry_{name}"))
            self.side = list(side)
        elif self.view is not None:
            sparse = self.view(sparse, "carry_sparse")
        self.sparse = sparse
        return sparse

    def new_parts(self, parts: list[Part]) -> list[Part]:
        """``parts`` without the contributions the kept values replace: those on the grid's
        first date of a part whose columns are all carried (:meth:`apply` takes each such
        column's value there from the kept values), but those of the ``whole`` accounts. At
        100,000 accounts, the day after: the plus of every event whose window closes that day
        lands on the first date, so about a third of the rows merged."""
        if self.before is None or not self.carried:
            return parts
        return [Part(p.table.filter(self._not_first(p.table)), p.columns)
                if p.columns and all(c in self.carried for c in p.columns) else p
                for p in parts]

    def _not_first(self, t: ir.Table) -> Any:
        """Whether a contribution is not replaced by a kept value (see :meth:`new_parts`)."""
        if not self.whole:
            return t.k > 0
        return (t.k > 0) | t.account_id.isin(self.whole)

    def rows_of(self, m: CountDistinct, t: ir.Table) -> ir.Table:
        """The rows the distinct count ``m`` reads: with no last days kept for it, the whole
        window's rows when ``t`` holds only those that move the running values."""
        if m.name in self.seen_before:
            return t
        return self.distinct_rows.get(m.entity, t)

    def distinct(self, m: CountDistinct, t: ir.Table, grid: ir.Table, span: asof.Span | None,
                 once: Callable[[ir.Table, str], ir.Table] = lambda t, _: t) -> ir.Table | None:
        """The distinct count ``m`` as of the grid's last date (account_id, k, value) from
        the last days kept and the rows ``t`` (those dated after the grid's first date will
        do), when the kept values hold it; else None. Either way, notes the last day of
        each value counted then, for :meth:`kept_seen`. (Not kept: a count over all time,
        the previous window a change reads.) ``once`` materialises the values seen as the
        builder does for the count from the rows (its copy, computed once, serves both)."""
        if m.name.endswith("__prev") or m.window.unbounded:
            return None
        rows = values_seen(t, m, span)
        before = self.seen_before.get(m.name)
        if before is None:
            rows = once(rows.distinct(), "seen")
            rows = _counted_on(rows, m, grid.as_of.max())
            self.seen[m.name] = rows.group_by(["account_id", "v"]).aggregate(day=rows.day.max())
            return None
        last = _last_seen(before, rows, m, grid, span, self.whole)
        if self.materialize is not None:  # read twice: counted, and kept
            last = self.materialize(last, f"seen_{m.name}")
        self.seen[m.name] = last
        counts = last.group_by("account_id").aggregate(**{m.name: last.count()})
        return counts.select("account_id", k=ibis.literal(self.last, "int64"),
                             **{m.name: counts[m.name]})

    def kept_seen(self, accounts: ir.Table) -> dict[str, ir.Table]:
        """Per distinct count, each value's last day seen as of the grid's last date while
        that date counts it (account_id, v, day), for ``accounts``: those :meth:`kept` kept."""
        if self.spine is None:
            raise RuntimeError("the builder has not run")
        if self.keep_only is not None:
            accounts = accounts.semi_join(self.keep_only, "account_id")
        return {name: last.semi_join(accounts, "account_id") for name, last in self.seen.items()}

    def from_measures(self) -> bool:
        """Whether the measures hold the running values of the grid's last date for
        :meth:`kept` (``KEPT`` columns): so when the contributions are not materialised, as
        computing them a second time for the kept values would cost as much as the measures'
        own pass over them, and when they start from kept values (the next day: merging its
        stored contributions again cost 0.3-0.4 CPU s at 100,000 accounts, an ordered
        aggregate for each latest value)."""
        return self.materialize is None or self.before is not None

    def kept(self, distinct: list[str]) -> ir.Table:
        """Every running value as of the grid's last date, one row per account active then:
        what the next run starts from. ``distinct`` are the measures counted by a direct
        join (beside the running sums): their value on that date is kept too."""
        if self.spine is None:
            raise RuntimeError("the builder has not run")
        if self.measures is not None:
            return self._kept_from_measures(self.measures, distinct)
        last = self.spine.filter(self.spine.k == self.last).select("account_id")
        if self.keep_only is not None:
            last = last.semi_join(self.keep_only, "account_id")
        out = last
        if self.sparse is not None and self.columns:  # (none without running columns)
            s = self.sparse
            aggs: dict[str, Any] = {}
            for c, (how, _) in self.columns.items():
                if how == SUM:
                    aggs[c] = s[c].sum()
                elif how == MAX:
                    aggs[c] = s[c].max()
                else:
                    aggs[c] = s[c].argmax(s[f"{c}__ts"])
            out = last.left_join(s.group_by("account_id").aggregate(**aggs), "account_id")
            out = out.drop("account_id_right") if "account_id_right" in out.columns else out
        for name, table in self.side:
            if name not in distinct or name in out.columns:
                continue
            at = table.filter(table.k == self.last).select("account_id", name)
            out = out.left_join(at, "account_id")
            out = out.drop("account_id_right") if "account_id_right" in out.columns else out
        return out

    def _kept_from_measures(self, measures: ir.Table, distinct: list[str]) -> ir.Table:
        """:meth:`kept` read from the measures of the grid's last date, where the running
        window left each value (the same sums, maxima and latest values over the same
        contributions), instead of merging the contributions a second time."""
        t = measures.filter(measures.k == self.last)
        if self.keep_only is not None:
            t = t.semi_join(self.keep_only, "account_id")
        names = list(self.columns)
        for name, _ in self.side:
            if name in distinct and name not in names:
                names.append(name)
        return t.select("account_id", **{n: t[KEPT + n] for n in names})


def _start_from(sparse: ir.Table, before: ir.Table, cols: dict[str, tuple[str, str]],
                carried: frozenset[str], whole: tuple[str, ...] = ()) -> ir.Table:
    """``sparse`` with the carried columns on the first date (k = 0) taken from the kept
    values ``before``, but for the ``whole`` accounts (none kept: their own contributions)."""
    order = ["account_id", "k", *cols]
    kept = before.select("account_id", **{f"__kept_{c}": before[c] for c in cols if c in carried})
    zero = sparse.filter(sparse.k == 0)
    joined = zero.outer_join(kept, zero.account_id == kept.account_id)
    types = sparse.schema()
    own = joined.account_id.isin(whole) if whole else None

    def value(c: str) -> Any:
        if c not in carried:
            return joined[c]
        return joined[f"__kept_{c}"] if own is None else ibis.ifelse(own, joined[c],
                                                                     joined[f"__kept_{c}"])

    values = {c: value(c).cast(types[c]) for c in cols}
    first = joined.select(account_id=ibis.coalesce(joined.account_id, joined.account_id_right),
                          k=ibis.literal(0).cast(types["k"]), **values)
    later = sparse.filter(sparse.k > 0)
    return later.select(*order).union(first.select(*order))


def running_on_two_dates(t: ir.Table, cols: dict[str, tuple[str, str]]) -> ir.Table:
    """``t`` (account_id, k, the contributions ``cols``) over a grid of two dates with each
    column's running value: on the first date its own, on the second combined with the
    first's (summed, the larger, the later by its time column), as the running window
    gives them. The next day from kept values runs on two dates: a window of two rows for
    each of 82,000 accounts cost more than this join of the first date's rows."""
    first = t.filter(t.k == 0)
    first = first.select(__account=first.account_id, **{f"__first_{c}": first[c] for c in cols})
    j = t.left_join(first, t.account_id == first.__account)
    second = j.k == 1
    values: dict[str, Any] = {}
    for c, (how, _) in cols.items():
        now, before = j[c], j[f"__first_{c}"]
        if how == SUM:
            both = ibis.coalesce(now + before, now, before)
        elif how == MAX:
            both = ibis.coalesce(ibis.greatest(now, before), now, before)
        else:  # the latest: the value with the later time (the first date's when none)
            ts, ts_before = j[f"{c}__ts"], j[f"__first_{c}__ts"]
            both = ibis.ifelse(ts.notnull() & (ts_before.isnull() | (ts >= ts_before)), now, before)
        values[c] = ibis.ifelse(second, both, now)
    return j.select(*[c for c in t.columns if c not in values], **values).select(*t.columns)


def _last_seen(before: ir.Table, rows: ir.Table, m: CountDistinct, grid: ir.Table,
               span: asof.Span | None, whole: tuple[str, ...] = ()) -> ir.Table:
    """Each value's last day seen as of the grid's last date, while that date counts it
    (account_id, v, day), from the last days kept as of the grid's first date (``before``:
    one row per account and value, each day on or before that date) and the values seen
    in ``rows`` (``span``, when given, holds the grid's first and last dates). Only the rows
    dated after the first date can move a value's last day, and they are later than any
    kept day: the kept rows of the values seen again give way to the new rows' latest, the
    others stay as they are (no grouping of the kept rows: at 100,000 accounts 580,000 of
    them, against some 60,000 new rows). Every row of the ``whole`` accounts counts: they
    have no kept days, or (a start date moved after the first date) kept days that their
    rows up to the first date, the same rows, give again."""
    first = grid.as_of.min() if span is None else ibis.literal(span.first, "date")
    last = grid.as_of.max() if span is None else ibis.literal(span.last, "date")
    after = rows.day > first
    new = rows.filter((after | rows.account_id.isin(whole)) if whole else after)
    new = _counted_on(new.select("account_id", v=new.v.cast(before.v.type()), day="day"), m, last)
    new = new.group_by(["account_id", "v"]).aggregate(day=new.day.max())
    kept = _counted_on(before, m, last).anti_join(new, ["account_id", "v"])
    return kept.union(new.select(*kept.columns))


def _counted_on(rows: ir.Table, m: CountDistinct, day: Any) -> ir.Table:
    """The rows (account_id, v, day) inside the window of ``m`` as of ``day``."""
    return rows.filter((rows.day <= day) & (asof.shift(rows.day, m.window) > day))
