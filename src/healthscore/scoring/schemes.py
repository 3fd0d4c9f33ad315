"""Scoring schemes: a measure's raw value -> a score from 0 to 100 (null stays null)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis

from healthscore.config import specs
from healthscore.config.model import Scheme


def score(scheme: Scheme, value: Any, table: Any = None) -> Any:
    return SCHEMES[scheme.type](scheme, value, table)


def thresholds(scheme: specs.ThresholdsScheme, value: Any, table: Any = None) -> Any:
    """value < cuts[0] -> scores[0]; cuts[i-1] <= value < cuts[i] -> scores[i]; ..."""
    branches = [(value < cut, float(s)) for cut, s in zip(scheme.cuts, scheme.scores, strict=False)]
    out = ibis.cases(*branches, else_=float(scheme.scores[-1]))
    return ibis.ifelse(value.isnull(), ibis.null(), out).cast("float64")


def linear(scheme: specs.LinearScheme, value: Any, table: Any = None) -> Any:
    """low -> 0, high -> 100, straight line between, clamped; low > high reverses it."""
    raw = (value.cast("float64") - scheme.low) / (scheme.high - scheme.low) * 100
    # greatest/least skip nulls on every engine: keep "no data" as null explicitly
    return ibis.ifelse(value.isnull(), ibis.null(), ibis.greatest(ibis.least(raw, 100.0), 0.0))


def boolean(scheme: specs.BooleanScheme, value: Any, table: Any = None) -> Any:
    flag = value.cast("boolean") if not value.type().is_boolean() else value
    return ibis.ifelse(flag, scheme.if_true, scheme.if_false).cast("float64")


def category(scheme: specs.CategoryScheme, value: Any, table: Any = None) -> Any:
    text = value.cast("string")
    if not scheme.case_sensitive:
        text = text.lower()
    branches = [(text == (key if scheme.case_sensitive else key.lower()), float(s))
                for key, s in scheme.map.items()]
    default = ibis.null() if scheme.default is None else float(scheme.default)
    out = ibis.cases(*branches, else_=default) if branches else ibis.literal(default, "float64")
    return ibis.ifelse(value.isnull(), ibis.null(), out).cast("float64")


def percentile(scheme: specs.PercentileScheme, value: Any, t: Any) -> Any:
    """Mid-rank percentile among peers (same as-of date and ``by`` value) that have data.

    (peers strictly below + half the peers equal) / peers with data * 100, so the median
    account scores 50 and a lone account scores 50.
    """
    has = value.isnull()
    peers = [t.as_of, t[scheme.by], has]
    below = ibis.rank().over(group_by=peers, order_by=value)
    equal = value.count().over(group_by=[*peers, value])
    n = value.count().over(group_by=peers)
    pct = (below.cast("float64") + equal * 0.5) / n * 100
    pct = pct if scheme.higher_is_better else 100 - pct
    return ibis.ifelse(has, ibis.null(), pct)


def with_percentile(t: Any, column: str, scheme: specs.PercentileScheme, out: str,
                    peers: Any = None) -> Any:
    """``t`` plus the column ``out``: :func:`percentile` of ``t[column]``, the same numbers.

    Counted once per distinct (as-of date, ``by`` value, value) and joined back, so only that
    small table is sorted, not every scored row (the three windows of :func:`percentile`
    each sorted the whole table, all its columns with it). ``peers``: the same rows as
    ``t`` before other columns were joined to it, counted instead (``t`` itself by default)."""
    rows = t if peers is None else peers
    seen = rows.filter(rows[column].notnull())
    counts = seen.group_by(
        __p_as_of=seen.as_of, __p_by=seen[scheme.by], __p_v=seen[column]
    ).aggregate(__p_eq=seen.count())
    peers = ["__p_as_of", "__p_by"]
    below = counts.__p_eq.sum().over(ibis.window(group_by=peers, order_by="__p_v", rows=(None, -1)))
    n = counts.__p_eq.sum().over(ibis.window(group_by=peers))
    pct = (below.fill_null(0).cast("int64").cast("float64") + counts.__p_eq * 0.5) \
        / n.cast("int64") * 100
    pct = pct if scheme.higher_is_better else 100 - pct
    counts = counts.select("__p_as_of", "__p_by", "__p_v", **{out: pct})
    joined = t.left_join(counts, [t.as_of == counts.__p_as_of,
                                  t[scheme.by].identical_to(counts.__p_by),
                                  t[column] == counts.__p_v])
    return joined.select(*t.columns, out)


# scheme type -> its compiler (raw value -> score 0..100, null stays null)
SCHEMES: dict[str, Callable[..., Any]] = {
    "thresholds": thresholds, "linear": linear, "percentile": percentile, "boolean": boolean,
    "category": category,
}
