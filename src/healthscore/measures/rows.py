"""Explanation down to the row: the source rows behind one account's measure as of a date,
each with whether it counted (dated by then, inside the window or open on the date, matched
the filter, not rejected), so a CSM can answer "why 0 logins?" without an engineer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.model import Measure, ProjectConfig, columns_read, measure_entity
from healthscore.entities import ENTITIES
from healthscore.errors import NotFoundError
from healthscore.measures import asof
from healthscore.measures.parts import measure_filter
from healthscore.sources.clean import ROW, map_columns, reasons, typed, where, with_first_of_duplicates

LIMIT = 200


def measure_rows(config: ProjectConfig, raw: dict[str, ir.Table], name: str, account_id: str,
                 day: date, limit: int = LIMIT) -> dict[str, Any]:
    """``raw``: entity -> the source as read (before cleaning, so rejected rows show too)."""
    m = config.measures.get(name)
    if m is None:
        raise NotFoundError(f"measure: the project has no measure {name!r}.")
    out: dict[str, Any] = {"account_id": account_id, "measure": name, "type": m.type,
                           "as_of": day.isoformat(), "derived_from": list(m.depends_on)}
    entity_name = measure_entity(m)
    if entity_name is None:
        out.update(entity=None, rows=[], total=0, counted=0)
        return out
    source = config.sources[entity_name]
    entity = source.definition  # with the project's own account attributes
    t = with_first_of_duplicates(typed(map_columns(raw[entity_name], source, entity), entity), entity)
    checks = reasons(t, entity, None)
    rejected = ibis.cases(*((cond.fill_null(False), why) for why, cond in checks),
                          else_=ibis.null().cast("string")) if checks else ibis.null().cast("string")
    t = t.mutate(__rejected=rejected)
    t = t.filter(t.account_id == account_id)
    used = columns_read(m)
    when, inside, after, outside = _inside(m, t, day, entity_name)
    matched = measure_filter(m, t).fill_null(False) if getattr(m, "filter", None) else ibis.literal(True)
    t = t.mutate(__in=inside, __match=matched, __after=after)
    t = t.mutate(__counted=t["__in"] & t["__match"] & t["__rejected"].isnull())
    order = [ibis.desc(when)] if when else [ROW]
    keep = [c for c in dict.fromkeys([*([entity.key] if entity.key else []), *used]) if c in t.columns]
    total = t.aggregate(n=t.count(), k=t["__counted"].cast("int64").sum()).to_pyarrow().to_pylist()[0]
    rows = t.order_by(order).limit(limit).select(ROW, *keep, "__in", "__match", "__after",
                                                 "__rejected", "__counted")
    out.update(
        entity=entity_name, source=where(source), columns=keep,
        window=m.window.label if not m.window.unbounded else "all time",
        filter=getattr(m, "filter", None), total=int(total["n"]), counted=int(total["k"] or 0),
        rows=[_row(r, keep, outside) for r in rows.to_pyarrow().to_pylist()], shown=limit)
    return out


def _inside(m: Measure, t: ir.Table, day: date, entity: str
            ) -> tuple[str | None, ir.Value, ir.Value, str]:
    """(the time column, whether the row is seen on ``day`` -- dated by then and inside the
    window, or, for ``mode: open``, open on that day --, whether it is dated after ``day``, and
    what "not seen" means for this measure)."""
    if entity == "accounts":
        return None, ibis.literal(True), ibis.literal(False), ""
    e = ENTITIES[entity]
    time_col = str(getattr(m, "open_from", None) or getattr(m, "time", None) or e.time)
    value = t[time_col]
    seen = value.date() if value.type().is_timestamp() else value
    d = ibis.literal(day)
    if getattr(m, "mode", "events") == "open" and e.end:
        end = t[e.end].date() if t[e.end].type().is_timestamp() else t[e.end]
        start = seen + ibis.interval(days=getattr(m, "open_after_days", 0))
        return time_col, (start <= d) & (end.isnull() | (end > d)), seen > d, "not open on the date"
    inside = seen <= d
    if not m.window.unbounded:
        inside &= asof.shift(seen, m.window) > d  # counted until the window's length after it
    return time_col, inside.fill_null(False), (seen > d).fill_null(False), \
        f"before the {m.window.label} window"


def _row(r: dict[str, Any], keep: list[str], outside: str) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat(sep=" ")
        return v.isoformat() if isinstance(v, date) else v

    return {"row": r[ROW], "values": {c: clean(r[c]) for c in keep}, "in_window": bool(r["__in"]),
            "matches_filter": bool(r["__match"]), "rejected": r["__rejected"],
            "counted": bool(r["__counted"]), "why": _why(r, outside)}


def _why(r: dict[str, Any], outside: str) -> str:
    if r["__rejected"]:
        return f"rejected: {r['__rejected']}"
    if r["__after"]:
        return "after the as-of date"
    if not r["__in"]:
        return outside
    return "counted" if r["__match"] else "does not match the filter"
