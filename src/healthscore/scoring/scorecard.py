"""Score every (account, as-of date) row against its scorecards, set-based.

Weights are percent of the parent group. A measure without data under ``missing: skip``
drops out and its weight is re-spread over its siblings that have data; a group with no data
drops out of its parent the same way. ``coverage`` is the share of the scorecard's nominal
weight that real data stood behind.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.expressions import compile_filter
from healthscore.config.model import INSUFFICIENT, Band, Group, ProjectConfig, Scorecard
from healthscore.config.specs import PercentileScheme
from healthscore.measures.modules import MARK_CODES, critical_col, mark_col, open_col
from healthscore.scoring.schemes import score as scheme_score
from healthscore.scoring.schemes import with_percentile

KEYS = ["account_id", "as_of"]
ATTRIBUTES = ["name", "segment", "industry", "csm", "lifecycle_stage", "arr", "renewal_date"]


def value_col(measure: str) -> str:
    return f"m__{measure}"


def score_col(measure: str) -> str:
    return f"s__{measure}"


def group_col(path: str) -> str:
    return f"g__{path}"


def colour_col(path: str) -> str:
    return f"c__{path}"


def primary_of(config: ProjectConfig, t: ir.Table) -> Any:
    """The name of each row's primary scorecard: the first whose `when` holds."""
    branches = [
        (compile_filter(sc.when, t).fill_null(False), sc.name)
        for sc in config.scorecards if sc.when is not None
    ]
    default = config.scorecards[-1].name
    return ibis.cases(*branches, else_=default) if branches else ibis.literal(default)


def score_scorecard(sc: Scorecard, t: ir.Table, version: str, primary: bool,
                    carry: tuple[str, ...] = (), attributes: tuple[str, ...] = (),
                    by_date: bool = False) -> ir.Table:
    """One row per input row: scores for ``sc``; ``t`` holds measure values by name.

    ``carry`` names more measures whose values the rows keep (a primary row carries every
    measure computed for the account, so rules, quadrants and plans see them all);
    ``attributes``, the project's own account columns the rows keep beside the usual ones.
    ``by_date``: the rows come out in as-of date order (see :func:`_ranked_rows`).

    Built in steps (measure scores, then groups from the deepest up, then the total and the
    colours), each step reading the columns of the one before, so the expression stays
    linear in size. The first step keeps only the columns the later ones and the rows read:
    every step lists the columns it passes on, and compiling them to SQL costs as much as
    compiling the scores.
    """
    entries = sc.all_entries()
    attrs = [c for c in (*ATTRIBUTES, *attributes) if c in t.columns]
    values = list(dict.fromkeys((*sc.measures, *carry, *(e.measure for e in entries))))
    kept = _passed_on(sc, t, [*KEYS, *attrs, *values])
    t, ranked = _ranked_rows(sc, t, kept, by_date)
    t = t.select(*kept,
                 **{score_col(e.measure): _measure_score(e, t, ranked.get(e.measure))
                    for e in entries})
    for level in reversed(_levels(sc)):
        t = t.mutate(**{group_col(g.path): _group_score(g, t) for g in level})
    overall = _combine([(g.weight, t[group_col(g.path)]) for g in sc.groups])
    coverage = sum(
        (_coverage(g, {e.measure: t[e.measure].notnull() for e in entries}, 1.0)
         for g in sc.groups),
        ibis.literal(0.0),
    )
    t = t.mutate(score=overall.cast("float64"), coverage=coverage.cast("float64"),
                 **{colour_col(g.path): _colour(sc, g, t) for g in sc.all_groups()})
    out: dict[str, Any] = {
        "scorecard": ibis.literal(sc.name),
        "version": ibis.literal(version),
        "is_primary": ibis.literal(primary),
        "score": t.score,
        "coverage": t.coverage,
        "band": _account_band(sc, t),
        "grade": grade_of(sc, t.score),
    }
    out.update({group_col(g.path): t[group_col(g.path)] for g in sc.all_groups()})
    out.update({colour_col(g.path): t[colour_col(g.path)] for g in sc.all_groups()})
    out.update({value_col(m): _value(t[m]) for m in dict.fromkeys((*sc.measures, *carry))})
    out.update({score_col(e.measure): t[score_col(e.measure)] for e in entries})
    return t.select(*KEYS, *attrs, **out)


def _ranked_rows(sc: Scorecard, t: ir.Table, kept: list[str],
                 by_date: bool) -> tuple[ir.Table, dict[str, str]]:
    """The columns ``kept`` of ``t`` (and the peer columns the percentile schemes read), each
    percentile measure's score joined in (measure -> its column); ``by_date``: ordered by
    as-of date, these few columns sorted rather than every scored column after."""
    percentiles = [(i, e.measure, e.scheme) for i, e in enumerate(sc.all_entries())
                   if isinstance(e.scheme, PercentileScheme)]
    t = peers = t.select(*dict.fromkeys((*kept, *(scheme.by for _, _, scheme in percentiles))))
    ranked: dict[str, str] = {}
    for i, measure, scheme in percentiles:
        ranked[measure] = f"__pct_{i}"
        t = with_percentile(t, measure, scheme, ranked[measure], peers)
    return (t.order_by("as_of") if by_date else t), ranked


def _passed_on(sc: Scorecard, t: ir.Table, columns: list[str]) -> list[str]:
    """``columns`` and the modules' CTA and mark columns of ``sc`` that ``t`` holds (the
    colours read them), once each, in that order."""
    modules = [c for g in sc.all_groups() for c in (open_col(g.path), critical_col(g.path),
                                                    mark_col(g.path))]
    return [c for c in dict.fromkeys((*columns, *modules)) if c in t.columns]


def _measure_score(entry: Any, t: ir.Table, ranked: str | None = None) -> Any:
    raw = t[ranked] if ranked else scheme_score(entry.scheme, t[entry.measure], t)
    if entry.missing != "skip":
        raw = ibis.coalesce(raw, float(entry.missing))
    return raw.cast("float64")


def _value(value: Any) -> Any:
    """Numbers (and booleans) as float64, text (a category) as it is."""
    if value.type().is_numeric() or value.type().is_boolean():
        return value.cast("float64")
    if value.type().is_string():
        return value
    return ibis.null().cast("float64")


def _levels(sc: Scorecard) -> list[list[Group]]:
    """Groups by depth: the scorecard's top groups first."""
    levels: list[list[Group]] = []
    current = list(sc.groups)
    while current:
        levels.append(current)
        current = [sub for g in current for sub in g.groups]
    return levels


def _group_score(g: Group, t: ir.Table) -> Any:
    parts = [(e.weight, t[score_col(e.measure)]) for e in g.entries]
    parts += [(sub.weight, t[group_col(sub.path)]) for sub in g.groups]
    return _combine(parts).cast("float64")


def _combine(parts: list[tuple[float, Any]]) -> Any:
    num = sum((ibis.ifelse(s.isnull(), 0.0, s * w) for w, s in parts), ibis.literal(0.0))
    den = sum((ibis.ifelse(s.isnull(), 0.0, w) for w, s in parts), ibis.literal(0.0))
    return ibis.ifelse(den > 0, num / den, ibis.null().cast("float64"))


def _coverage(g: Group, has_data: dict[str, Any], share: float) -> Any:
    mine = share * g.weight / 100
    total = sum(
        (ibis.ifelse(has_data[e.measure], mine * e.weight, 0.0) for e in g.entries),
        ibis.literal(0.0),
    )
    for sub in g.groups:
        total = total + _coverage(sub, has_data, mine)
    return total


# ----------------------------------------------------------------------------- colours
# A module's colour is one of the scorecard's bands: the lowest stands for red, the one below
# the top for yellow, the top for green (seed 002's three colours on any band names).

def _colour(sc: Scorecard, g: Group, t: ir.Table) -> Any:
    red, yellow, green = sc.colour_names()
    by_score = _band_or_null(sc.group_bands(g), t[group_col(g.path)])
    if g.colour == "score":
        base = by_score
    else:
        opened, critical = _state(t, open_col(g.path)), _state(t, critical_col(g.path))
        too_many = (opened >= g.red_at_ctas) if g.red_at_ctas else ibis.literal(False)
        by_ctas = ibis.cases(((critical > 0) | too_many, red), (opened > 0, yellow), else_=green)
        base = by_ctas if g.colour == "ctas" else _worst(sc, [by_score, by_ctas])
    mark = _state(t, mark_col(g.path))
    names = {"red": red, "yellow": yellow, "green": green}
    marked = [(mark == code, ibis.literal(names[c])) for c, code in MARK_CODES.items()]
    return ibis.cases(*marked, else_=base).cast("string")  # a CSM's mark wins


def _state(t: ir.Table, col: str) -> Any:
    return t[col] if col in t.columns else ibis.literal(0.0)


def _band_or_null(bands: tuple[Band, ...], value: Any) -> Any:
    branches = [(value >= b.min, b.name) for b in reversed(bands)]
    return ibis.ifelse(value.isnull(), ibis.null().cast("string"),
                       ibis.cases(*branches, else_=bands[0].name))


def _worst(sc: Scorecard, colours: list[Any]) -> Any:
    """The worst of ``colours`` (by band order, lowest first); null ones are left out."""
    branches = [(_any(c == b.name for c in colours), b.name) for b in sc.bands]
    return ibis.cases(*branches, else_=ibis.null().cast("string"))


def _any(conditions: Any) -> Any:
    out = ibis.literal(False)
    for c in conditions:
        out = out | c.fill_null(False)
    return out


def _account_band(sc: Scorecard, t: ir.Table) -> Any:
    """The account's band: from its score (weighted), its worst module, or how many of its
    modules are red or not green (count). Without any coloured module: insufficient data."""
    if sc.overall == "weighted":
        return band_of(sc, t.score, t.coverage)
    colours = [t[colour_col(g.path)] for g in sc.modules]
    none = ~_any(c.notnull() for c in colours)
    if sc.overall == "worst_module":
        return ibis.ifelse(none, INSUFFICIENT, _worst(sc, colours))
    red, yellow, green = sc.colour_names()
    reds = _count(c == red for c in colours)
    not_green = _count(c.notnull() & (c != green) for c in colours)
    return ibis.cases((none, INSUFFICIENT), (reds >= sc.count_red, red),
                      (not_green >= sc.count_yellow, yellow), else_=green)


def _count(conditions: Any) -> Any:
    return sum((ibis.ifelse(c.fill_null(False), 1, 0) for c in conditions), ibis.literal(0))


def band_of(sc: Scorecard, overall: Any, coverage: Any) -> Any:
    branches = [(overall >= b.min, b.name) for b in reversed(sc.bands)]
    band = ibis.cases(*branches, else_=sc.bands[0].name)
    insufficient = overall.isnull() | (coverage < sc.min_coverage - 1e-9)
    return ibis.ifelse(insufficient, INSUFFICIENT, band)


def grade_of(sc: Scorecard, overall: Any) -> Any:
    if not sc.grades:
        return ibis.null().cast("string")
    branches = [(overall >= g.min, g.grade) for g in reversed(sc.grades)]
    return ibis.ifelse(overall.isnull(), ibis.null(), ibis.cases(*branches, else_=sc.grades[0].grade))
