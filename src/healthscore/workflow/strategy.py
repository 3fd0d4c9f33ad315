"""Portfolio strategy: health x temperature and health x maturity quadrants with the motion
each calls for, and score ranges with a suggested move per range.

Temperature is the business outcome the customer bought the product for (a measure such as
GMV); maturity is a simple model: the average percentile of a few measures (tenure, module
adoption, features used), because the full maturity model costs too much to collect."""

from __future__ import annotations

from typing import Any

import pandas as pd

from healthscore.errors import InvalidActionError
from healthscore.workflow.base import Service

TEMPERATURE_MOTIONS = {
    (True, True): "Expand and ask for referrals.",
    (True, False): "Fix temperature first (the customer's own results), then look for expansion.",
    (False, True): "Fix health first, then look for expansion.",
    (False, False): "Fix temperature first (the key), then health.",
}
MATURITY_MOTIONS = {
    (True, True): "Expand and ask for referrals.",
    (True, False): "Cash cow: minimal touch; advise on running their business, not on features.",
    (False, True): "Has potential: retain it and raise health.",
    (False, False): "Minimal touch or let go.",
}


class StrategyService(Service):
    def quadrants(self) -> dict[str, Any]:
        frame = self.scores()
        healthy = frame["score"] >= self.spec.healthy_from
        out: dict[str, Any] = {"as_of": self.snapshots.latest().isoformat(),
                               "healthy_from": self.spec.healthy_from}
        temp = self.spec.temperature
        if temp is not None:
            col = f"m__{temp}"
            if col not in frame.columns:
                raise InvalidActionError(
                    f"workflow.temperature: {temp!r} is not a measure of the scorecards. Add it to a "
                    f"scorecard (weight 0 is not allowed, so use an 'also' scorecard) or pick another.")
            hot = _upper_half(frame[col])
            out["temperature"] = _place(frame, healthy, hot, TEMPERATURE_MOTIONS, "temperature")
        cols = [f"m__{m}" for m in self.spec.maturity if f"m__{m}" in frame.columns]
        if cols:
            ranks = frame[cols].apply(lambda c: pd.to_numeric(c, errors="coerce").rank(pct=True))
            maturity = ranks.mean(axis=1)
            out["maturity"] = _place(frame, healthy, maturity >= 0.5, MATURITY_MOTIONS, "maturity")
            out["maturity_measures"] = [c[3:] for c in cols]
        return out

    def score_ranges(self) -> list[dict[str, Any]]:
        frame = self.scores()
        ranges = sorted(self.spec.score_ranges, key=lambda r: r.min)
        out = []
        for i, r in enumerate(ranges):
            top = ranges[i + 1].min if i + 1 < len(ranges) else 100.01
            part = frame[(frame["score"] >= r.min) & (frame["score"] < top)]
            out.append({"name": r.name, "from": r.min, "to": min(top, 100), "move": r.move,
                        "accounts": part["account_id"].tolist(), "count": int(len(part)),
                        "arr": float(pd.to_numeric(part.get("arr"), errors="coerce").sum())
                        if "arr" in part else 0.0})
        return out


def _upper_half(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    return v >= v.median()


def _place(frame: pd.DataFrame, healthy: pd.Series, high: pd.Series, motions: dict,
           axis: str) -> list[dict[str, Any]]:
    cells = []
    for (h, t), motion in motions.items():
        mask = (healthy == h) & (high.fillna(False) == t)
        cells.append({"health": "high" if h else "low", axis: "high" if t else "low",
                      "motion": motion, "count": int(mask.sum()),
                      "accounts": frame.loc[mask, "account_id"].tolist()})
    return cells
