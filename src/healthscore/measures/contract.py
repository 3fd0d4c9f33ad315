"""Filters that silently miss: a measure whose filter matches no row of its whole source
(``event = 'login'`` over an export that says 'signin') is reported with the values seen."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config import expressions
from healthscore.config.model import EntityMeasure, ProjectConfig
from healthscore.engine.adapter import arrow_rows
from healthscore.measures.parts import measure_filter

SHOWN = 5


def unmatched_filters(config: ProjectConfig, tables: dict[str, ir.Table]) -> dict[str, list[str]]:
    """entity -> a note for every used measure whose filter matches none of its rows."""
    by_entity: dict[str, list[EntityMeasure]] = {}
    for m in (config.measures[n] for n in config.used_measures()):
        if isinstance(m, EntityMeasure) and m.entity in tables and m.filter:
            by_entity.setdefault(m.entity, []).append(m)
    out: dict[str, list[str]] = {}
    for entity, measures in sorted(by_entity.items()):
        t = tables[entity]
        aggs: dict[str, Any] = {"n": t.count()}
        aggs.update({f"m{i}": measure_filter(m, t).fill_null(False).cast("int64").sum()
                     for i, m in enumerate(measures)})
        row = arrow_rows(t.aggregate(**aggs)).to_pylist()[0]
        if not row["n"]:
            continue
        for i, m in enumerate(measures):
            if not row[f"m{i}"]:
                out.setdefault(entity, []).append(_note(m, t, entity, int(row["n"])))
    return out


def _note(m: EntityMeasure, t: ir.Table, entity: str, rows: int) -> str:
    text = str(m.filter)
    cols = [c for c in expressions.columns(expressions.parse(text))
            if c in t.columns and t[c].type().is_string()]
    seen = "; ".join(f"{c}: {_values(t, c)}" for c in cols)
    how = "" if m.case_sensitive else " (text is compared ignoring case)"
    return (f"{m.file}: {m.name}: filter {text!r} matches none of the {rows} rows of {entity}"
            f"{how}, so the measure is 0 or missing for every account."
            + (f" Values seen: {seen}." if seen else "")
            + " Fix the filter or the data.")


def _values(t: ir.Table, col: str) -> str:
    counts = t.group_by(col).aggregate(n=t.count()).order_by(ibis.desc("n"), col)
    rows = arrow_rows(counts.limit(SHOWN + 1)).to_pylist()
    shown = ", ".join(f"{r[col]!r} ({r['n']})" for r in rows[:SHOWN])
    return shown + (", ..." if len(rows) > SHOWN else "")
