"""The VP's Monday: the portfolio over the last 12 months from the stored snapshots (band mix,
average score, ARR at risk at each month-end) and the movers since the previous snapshot, in
the user's book (healthscore.workflow.base.book_of: a CSM's own accounts, a lead's team, a VP
or viewer all) and filtered by team, CSM, segment and lifecycle stage; as a page, JSON and CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pandas as pd

from healthscore.errors import InvalidActionError
from healthscore.store import report
from healthscore.web.views import Site
from healthscore.workflow.base import book_of

MONTHS = 12
FILTERS = ("team", "csm", "segment", "lifecycle_stage")


@dataclass
class TrendFilter:
    team: str | None = None
    csm: str | None = None
    segment: str | None = None
    lifecycle_stage: str | None = None
    months: int = MONTHS


def portfolio_trends(site: Site, user: dict[str, Any], f: TrendFilter) -> dict[str, Any]:
    if not 1 <= f.months <= 120:
        raise InvalidActionError(f"months: must be between 1 and 120. Got {f.months}.")
    team_of = site.wf.teams()
    teams = sorted({t for t in team_of.values() if t})
    if f.team and f.team not in teams:
        raise InvalidActionError(f"team: no team {f.team!r}. Teams: {', '.join(teams) or 'none'}.")
    book = book_of(user, team_of)
    members = {c for c, t in team_of.items() if t == f.team} if f.team else None

    def keep(frame: pd.DataFrame) -> pd.Series:
        mask = pd.Series(True, index=frame.index)
        if book is not None:
            mask &= frame["csm"].isin(book)
        if members is not None:
            mask &= frame["csm"].isin(members)
        for col in ("csm", "segment", "lifecycle_stage"):
            value = getattr(f, col)
            if value:
                mask &= frame[col] == value
        return mask

    filtered = book is not None or members is not None or any(getattr(f, c) for c in FILTERS)
    out = report.trends(site.store, site.store.latest(), f.months, keep if filtered else None)
    out["filters"] = {k: getattr(f, k) for k in FILTERS}
    out["scope"] = "all" if book is None else ("team" if user["role"] == "lead" else "mine")
    out["choices"] = {"team": teams, **_choices(site, book)}
    return out


def _choices(site: Site, book: set[str] | None) -> dict[str, list[str]]:
    frame = report.trend_frame(site.store, site.store.latest(), None)
    if book is not None:
        frame = frame[frame["csm"].isin(book)]
    return {c: sorted(str(v) for v in frame[c].dropna().unique())
            for c in ("csm", "segment", "lifecycle_stage")}


def trends_csv(data: dict[str, Any]) -> str:
    """One row per month-end: accounts, accounts per band, average score, ARR and ARR at risk."""
    out = io.StringIO()
    bands = data["band_order"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["as_of", "accounts", *bands, "average_score", "arr", "arr_at_risk"])
    for p in data["points"]:
        writer.writerow([p["as_of"], p["accounts"], *(p["bands"][b] for b in bands),
                         "" if p["average_score"] is None else p["average_score"],
                         round(p["arr"], 2), round(p["arr_at_risk"], 2)])
    return out.getvalue()
