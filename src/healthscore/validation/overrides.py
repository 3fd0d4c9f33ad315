"""Were the overrides right? An override that moved an account to a worse band was right when
the outcome (churn) followed within the horizon, and one that moved it to a better band was
right when it did not. Only overrides whose horizon is over by the observed date count."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd


def track_record(overrides: list[dict[str, Any]], events: pd.DataFrame, until: date,
                 horizon_days: int, band_order: list[str], band_of: Any) -> dict[str, Any]:
    """``band_order`` runs worst to best; ``band_of(score)`` names the band of a score."""
    first_event = events.groupby("account_id")["event_date"].min().to_dict() if len(events) else {}
    rank = {b: i for i, b in enumerate(band_order)}
    rows: list[dict[str, Any]] = []
    by_reason: dict[str, dict[str, int]] = {}
    for o in overrides:
        set_on = _day(o["set_at"])
        if set_on + timedelta(days=horizon_days) > until:
            continue  # too recent to judge
        to = o["band"] or band_of(o["score"])
        was = o["system_band"]
        if to not in rank or was not in rank or to == was:
            continue
        event = first_event.get(o["account_id"])
        happened = event is not None and set_on < event <= set_on + timedelta(days=horizon_days)
        worse = rank[to] < rank[was]
        right = happened if worse else not happened
        rows.append({"override_id": o["id"], "account_id": o["account_id"], "from": was, "to": to,
                     "reason_code": o["reason_code"], "set_by": o["set_by"], "outcome": happened,
                     "right": right})
        r = by_reason.setdefault(o["reason_code"], {"judged": 0, "right": 0})
        r["judged"] += 1
        r["right"] += int(right)
    judged = len(rows)
    right = sum(r["right"] for r in rows)
    return {"judged": judged, "right": right, "share_right": right / judged if judged else None,
            "by_reason": by_reason, "overrides": rows, "horizon_days": horizon_days}


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()
