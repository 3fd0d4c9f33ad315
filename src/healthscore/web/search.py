"""Finding an account by name or id from every page: the accounts whose id or name contains
the text, in the user's scope (mine / my team / all, by default a CSM's book, a lead's team's,
everyone's for admins and viewers - as the accounts list and My day have it), best matches first:
the id itself, then ids and names that start with the text, then the rest by name."""

from __future__ import annotations

from typing import Any

from healthscore.errors import InvalidActionError
from healthscore.web.views import SCOPES, Site, default_scope, in_book, records, scores_frame

SUGGESTIONS = 8
MAX_RESULTS = 50
COLUMNS = ["account_id", "name", "csm", "score", "band", "arr"]


def search(site: Site, user: dict[str, Any], q: str | None, scope: str | None = None,
           limit: int = SUGGESTIONS) -> dict[str, Any]:
    scope = scope or default_scope(user)
    if scope not in SCOPES:
        raise InvalidActionError(f"scope: must be one of {', '.join(SCOPES)}. Got {scope!r}.")
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidActionError(f"limit: must be between 1 and {MAX_RESULTS}. Got {limit}.")
    text = (q or "").strip().lower()
    out: dict[str, Any] = {"q": q or "", "scope": scope, "total": 0, "accounts": []}
    if not text:
        return out
    frame = scores_frame(site)
    frame = frame[in_book(frame, user, site.wf.teams(), scope)]
    ids = frame["account_id"].str.lower()
    names = frame["name"].fillna("").str.lower()
    hits = frame[ids.str.contains(text, regex=False) | names.str.contains(text, regex=False)]
    rank = (ids[hits.index] != text).astype(int) + (~ids[hits.index].str.startswith(text)
                                                     & ~names[hits.index].str.startswith(text)).astype(int)
    hits = hits.assign(_rank=rank, _name=names[hits.index]).sort_values(["_rank", "_name", "account_id"])
    out["total"] = len(hits)
    out["accounts"] = records(hits[[c for c in COLUMNS if c in hits]].head(limit))
    return out
