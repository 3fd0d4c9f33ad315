"""Were the overrides (and the module marks) right? An override that moved an account to a
worse band was right when the outcome (churn) followed within the horizon, and one that moved
it to a better band was right when it did not. Only calls whose horizon is over by the
observed date count."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

COLOURS = ["red", "yellow", "green"]  # a module's colours, worst to best


def track_record(overrides: list[dict[str, Any]], events: pd.DataFrame, until: date,
                 horizon_days: int, band_order: list[str], band_of: Any) -> dict[str, Any]:
    """``band_order`` runs worst to best; ``band_of(score)`` names the band of a score."""
    calls = [{"id": o["id"], "account_id": o["account_id"], "set_at": o["set_at"],
              "from": o["system_band"], "to": o["band"] or band_of(o["score"]),
              "reason_code": o["reason_code"], "set_by": o["set_by"]} for o in overrides]
    out = _judge(calls, events, until, horizon_days, band_order)
    out["overrides"] = [{"override_id": r.pop("id"), **r} for r in out.pop("calls")]
    return out


def mark_record(marks: list[dict[str, Any]], events: pd.DataFrame, until: date,
                horizon_days: int) -> dict[str, Any]:
    """Were the CSMs' module marks right (seed 002: the CSM may always mark a module)? A mark
    to a worse colour than the module had was right when the outcome followed within the
    horizon, one to a better colour when it did not."""
    calls = [{"id": m["id"], "account_id": m["account_id"], "set_at": m["set_at"],
              "from": m["system_colour"], "to": m["colour"], "module": m["module"],
              "reason_code": m["reason_code"], "set_by": m["set_by"]} for m in marks]
    out = _judge(calls, events, until, horizon_days, COLOURS)
    out["marks"] = [{"mark_id": r.pop("id"), **r} for r in out.pop("calls")]
    return out


def _judge(calls: list[dict[str, Any]], events: pd.DataFrame, until: date, horizon_days: int,
           order: list[str]) -> dict[str, Any]:
    """Each call moved an account from one rank of ``order`` (worst first) to another."""
    first_event = events.groupby("account_id")["event_date"].min().to_dict() if len(events) else {}
    rank = {b: i for i, b in enumerate(order)}
    rows: list[dict[str, Any]] = []
    by_reason: dict[str, dict[str, int]] = {}
    for c in calls:
        set_on = _day(c["set_at"])
        if set_on + timedelta(days=horizon_days) > until:
            continue  # too recent to judge
        to, was = c["to"], c["from"]
        if to not in rank or was not in rank or to == was:
            continue
        event = first_event.get(c["account_id"])
        happened = event is not None and set_on < event <= set_on + timedelta(days=horizon_days)
        worse = rank[to] < rank[was]
        right = happened if worse else not happened
        rows.append({**{k: v for k, v in c.items() if k != "set_at"}, "outcome": happened,
                     "right": right})
        r = by_reason.setdefault(c["reason_code"], {"judged": 0, "right": 0})
        r["judged"] += 1
        r["right"] += int(right)
    judged = len(rows)
    right = sum(r["right"] for r in rows)
    return {"judged": judged, "right": right, "share_right": right / judged if judged else None,
            "by_reason": by_reason, "calls": rows, "horizon_days": horizon_days}


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()
