"""My day: what a CSM works on this morning, in one ranked list per kind: their accounts that
turned to the worst band since the last snapshot or dropped most in 30 days, CTAs overdue or
due within a week, tasks due within a week, and renewals in the next 90 days. A lead sees the
team's, an admin or viewer everyone's, each with the mine / my team / all switch.

The accounts in the worst band (most ARR first) each open their "why" in place (:func:`why`):
the score's weakest measures, what moved it, and the account's open CTAs with their tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd

from healthscore.errors import InvalidActionError
from healthscore.store import report
from healthscore.web.queue import (
    SCOPES,
    CockpitFilter,
    cockpit,
    default_scope,
    may_act_on_cta,
    scope_owners,
    with_accounts,
)
from healthscore.web.views import Site, final_frame, in_book, records

RENEWAL_DAYS = 90
DUE_DAYS = 7
LIST_LENGTH = 10
WEAKEST = 3  # measures the "why" names: those that lose the most points
ACCOUNT_COLUMNS = ["account_id", "name", "csm", "score", "band", "arr", "renewal_date", "change_30d"]


def my_day(site: Site, user: dict[str, Any], scope: str | None = None) -> dict[str, Any]:
    scope = scope or default_scope(user)
    if scope not in SCOPES:
        raise InvalidActionError(f"scope: must be one of {', '.join(SCOPES)}. Got {scope!r}.")
    wf = site.wf
    teams = wf.teams()
    ranked = _accounts(site)

    def first(frame: pd.DataFrame, extra: list[str] | None = None) -> list[dict[str, Any]]:
        """The first LIST_LENGTH of a ranked frame's accounts in the user's book."""
        rows = frame[in_book(frame, user, teams, scope)].head(LIST_LENGTH)
        return records(rows[[*[c for c in ACCOUNT_COLUMNS if c in rows], *(extra or [])]])

    day = pd.Timestamp(wf.today)
    renewing = ranked.renewing
    if renewing is not None:
        renewing = renewing[(renewing["renews"] >= day)
                            & (renewing["renews"] <= day + pd.Timedelta(days=RENEWAL_DAYS))]
    queue = cockpit(site, user, CockpitFilter(scope=scope, due="week", sort="due_on", per_page=LIST_LENGTH))
    return {"user": user["name"], "role": user["role"], "scope": scope, "scopes": queue["scopes"],
            "as_of": site.store.latest().isoformat(), "today": wf.today.isoformat(),
            "accounts": int(in_book(ranked.frame, user, teams, scope).sum()),
            "worst_band": ranked.worst, "worst": first(ranked.worst_rows),
            "falling": first(ranked.falling, ["turned"]),
            "ctas": queue["ctas"], "ctas_total": queue["total"],
            "tasks": _tasks(site, user, teams, scope),
            "renewals": [] if renewing is None else first(renewing)}


Teams = dict[str, str | None]


@dataclass
class _Ranked:
    """The accounts' columns My day shows, ``turned`` (in the worst band now, not in the
    previous snapshot) and ``renews`` (the renewal date as a timestamp); and its lists of every
    account in their order, which a user's book then filters: ``falling`` (turned first, then
    the biggest 30-day drops), ``worst_rows`` (the worst band, most ARR first, then the lowest
    score) and ``renewing`` (by renewal date; None without renewal dates)."""

    frame: pd.DataFrame
    worst: str | None
    falling: pd.DataFrame
    worst_rows: pd.DataFrame
    renewing: pd.DataFrame | None


_days: dict[tuple[Any, ...], _Ranked] = {}


def _accounts(site: Site) -> _Ranked:
    """My day's ranked accounts, from :func:`scores_frame` and kept with it."""
    full, key = final_frame(site)
    if key not in _days:
        worst = report.band_order(full)[0] if len(full) else None
        frame = full[[c for c in ACCOUNT_COLUMNS if c in full]].copy()
        was = frame["account_id"].map(_previous_bands(site)).astype(object)  # none earlier: missing
        frame["turned"] = (frame["band"] == worst) & (was.fillna(worst) != worst)
        falling = frame[frame["turned"] | (frame["change_30d"].fillna(0) < 0)].sort_values(
            ["turned", "change_30d", "account_id"], ascending=[False, True, True])
        keys = [c for c in ("arr", "score", "account_id") if c in frame]
        worst_rows = frame[frame["band"] == worst].sort_values(
            keys, ascending=[c != "arr" for c in keys], na_position="last")
        renewing = None
        if "renewal_date" in frame:
            frame["renews"] = pd.to_datetime(frame["renewal_date"], errors="coerce")
            renewing = frame[frame["renews"].notna()].sort_values(["renewal_date", "account_id"])
        _days.clear()
        _days[key] = _Ranked(frame, worst, falling, worst_rows, renewing)
    return _days[key]


def why(site: Site, user: dict[str, Any], account_id: str) -> dict[str, Any]:
    """Why the account has its band, in a few lines: its primary score and band, the measures
    that lose the most points against a perfect score (value, score, points lost), what moved
    the score since the previous snapshot, and its open CTAs (with their tasks) each with
    whether ``user`` may act on it."""
    wf = site.wf
    explained = report.explain(site.store, site.project.config, account_id, site.store.latest())
    card = explained["scorecards"][0]
    teams = wf.teams()
    ctas = with_accounts(site, wf.ctas(status="open", account_id=account_id))
    for c in ctas:
        c["can_act"] = may_act_on_cta(user, c, teams)
    final = wf.final(account_id)
    return {"account_id": account_id, "name": explained.get("name"), "csm": explained.get("csm"),
            "score": final.get("final_score"), "band": final.get("final_band"),
            "weakest": weakest(card), "changes": card.get("why", []), "ctas": ctas}


def weakest(card: dict[str, Any], n: int = WEAKEST) -> list[dict[str, Any]]:
    """The scorecard's measures with data, by points lost against a perfect score (a measure's
    effective weight times what its score misses of 100), the most first."""
    out = [{"measure": m["measure"], "group": m["group"], "value": m["value"], "score": m["score"],
            "points_lost": round(m["effective_weight"] * (100 - m["score"]) / 100, 2)}
           for m in card["measures"] if m["has_data"] and m["score"] is not None]
    out = [m for m in out if m["points_lost"] > 0]
    return sorted(out, key=lambda m: (-m["points_lost"], m["measure"]))[:n]


def _previous_bands(site: Site) -> pd.Series:
    store = site.store
    earlier = [d for d in store.dates() if d < store.latest()]
    if not earlier:
        return pd.Series(dtype="object")
    t = store.read(earlier[-1], columns=["account_id", "band", "is_primary"], primary_only=True)
    return t.to_pandas().drop_duplicates("account_id").set_index("account_id")["band"]


def _tasks(site: Site, user: dict[str, Any], teams: Teams, scope: str) -> list[dict[str, Any]]:
    """Open tasks due within a week (overdue first) whose owner is in scope, with their account
    (that of their CTA while it is open); the store picks and orders them."""
    today = site.wf.today.isoformat()
    due = site.wf.tasks_due(site.wf.today + timedelta(days=DUE_DAYS), scope_owners(user, teams, scope),
                            LIST_LENGTH)
    return [{**t, "overdue": t["due_on"] < today} for t in due]
