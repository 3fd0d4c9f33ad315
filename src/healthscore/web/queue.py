"""The Cockpit's work queue and the review meeting's list: open CTAs with their accounts'
health, ARR and renewal, in a scope (mine, my team, all), filtered, sorted and paged; and per
CTA whether the signed-in user may act on it. Like :mod:`healthscore.web.views`, each page's
dict is what its /api twin returns."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from healthscore.errors import InvalidActionError
from healthscore.web.views import (
    SCOPES,
    Site,
    assignable,
    choices,
    default_scope,
    final_frame,
    json_value,
)
from healthscore.workflow.access import may_act_on
from healthscore.workflow.ctas import RANKS, SQL_GROUPS, SQL_SORTS, QueueWhere

QUEUE_SORTS = ("priority", "due_on", "score", "arr", "renewal_date", "account_name", "owner",
               "opened_at", "id")
STATES = ("active", "snoozed", "escalated", "flagged")
GROUPS = ("account", "type", "due", "owner")
DUE_BUCKETS = ("overdue", "this week", "later", "no due date")
MAX_QUEUE_PAGE = 500
BOARD_COLUMNS = ("open", "snoozed", "escalated", "closed")
RECENT_DAYS = 7  # the board's closed column: CTAs closed in the last week
_RANK = RANKS
_FACTS = ("name", "csm", "score", "band", "arr", "renewal_date")


@dataclass
class CockpitFilter:
    """The work queue's scope, filters, order and page. ``scope=None`` is the role's default:
    a CSM's own CTAs, a lead's team's, everyone's for admins and viewers."""

    scope: str | None = None
    type: str | None = None
    priority: str | None = None
    due: str | None = None  # overdue | week | none
    state: str | None = None  # active (not snoozed) | snoozed | escalated | flagged
    band: str | None = None
    owner: str | None = None
    q: str | None = None  # account id or name, reason, owner
    group: str | None = None  # account | type | due | owner: rows of a group together
    sort: str = "priority"
    desc: bool = False
    page: int = 1
    per_page: int = 50


def cockpit(site: Site, user: dict[str, Any], f: CockpitFilter | None = None) -> dict[str, Any]:
    """The open CTAs as a work queue: each with its account's health, ARR and renewal; in the
    chosen scope, filtered, sorted and paged over all of them; per CTA whether ``user`` may act.

    The database counts, filters, orders and pages the CTAs; only the page's rows (and their
    tasks) are read. Orders by the account's facts (health, ARR, renewal, name), a search or a
    band filter read the CTAs' few key columns and order those here instead (:func:`_keyed`)."""
    f = f or CockpitFilter()
    scope = _check_queue(f, user)
    wf = site.wf
    teams = wf.teams()
    per_owner = wf.queue_owners(f.type or None)
    counts = {s: sum(n for o, n in per_owner.items() if _owner_in_scope(o, user, teams, s))
              for s in SCOPES}
    owners = sorted(o for o in per_owner if o and _owner_in_scope(o, user, teams, scope))
    where = _where(f, user, teams, scope)
    offset = (f.page - 1) * f.per_page
    if _in_sql(f):
        total, shown = wf.queue_page(where, sort=f.sort, desc=f.desc, group=f.group, offset=offset,
                                     limit=f.per_page)
        shown = with_accounts(site, shown)
    else:
        items = _keyed(site, [where], f)
        total = len(items)
        shown = with_accounts(site, wf.ctas_by_id([c["id"] for c in items[offset: offset + f.per_page]]))
    tasks = wf.tasks_of([c["id"] for c in shown])  # only the shown rows' tasks are read
    for c in shown:
        if f.group is not None:
            c["group"] = _group_of(c, f.group, wf.today)
        c["can_act"] = may_act_on_cta(user, c, teams)
        c["tasks"] = tasks[c["id"]]
    return {"user": user["name"], "role": user["role"], "scope": scope, "scopes": counts,
            "everyone": scope == "all", "total": total, "page": f.page, "per_page": f.per_page,
            "pages": max(1, -(-total // f.per_page)), "sort": f.sort, "desc": f.desc,
            "group": f.group,
            "filters": {k: getattr(f, k) for k in ("type", "priority", "due", "state", "band", "owner", "q")},
            "ctas": shown, "owners": owners, "assignable": assignable(site),
            "bands": choices(site).get("band", []),
            "escalate_to": [*wf.spec.escalation[1:], *wf.spec.departments]}


def board(site: Site, user: dict[str, Any], f: CockpitFilter | None = None) -> dict[str, Any]:
    """The queue as a board: its CTAs in one column per status — open, snoozed, escalated (an
    escalated CTA is in that column even when snoozed) and closed in the last RECENT_DAYS days —
    in the same scope and filters (but ``state``: the columns are the states), each column
    sorted like the queue, its count and first ``per_page`` CTAs."""
    f = f or CockpitFilter()
    scope = _check_queue(f, user)
    wf = site.wf
    teams = wf.teams()
    since = wf.today - timedelta(days=RECENT_DAYS)
    everything = replace(f, state=None, group=None)
    where = _where(everything, user, teams, scope)
    closed = replace(where, status="closed", closed_since=since)
    owners = sorted(o for o in {*wf.queue_owners(f.type or None), *wf.queue_owners(
        f.type or None, status="closed", closed_since=since)} if o and _owner_in_scope(o, user, teams, scope))
    columns: dict[str, tuple[int, list[dict[str, Any]]]] = {}
    if _in_sql(everything):
        counts = wf.queue_columns(where)
        for k in BOARD_COLUMNS:
            if k == "closed":
                columns[k] = wf.queue_page(closed, sort=f.sort, desc=f.desc, limit=f.per_page)
            else:
                columns[k] = counts.get(k, 0), wf.queue_rows(replace(where, column=k), sort=f.sort,
                                                             desc=f.desc, limit=f.per_page)
    else:
        split: dict[str, list[dict[str, Any]]] = {k: [] for k in BOARD_COLUMNS}
        for c in _keyed(site, [where, closed], everything):
            split[_column(c)].append(c)
        for k, v in split.items():
            columns[k] = len(v), wf.ctas_by_id([c["id"] for c in v[:f.per_page]])
    for c in with_accounts(site, [c for _, shown in columns.values() for c in shown]):
        c["can_act"] = c["status"] == "open" and may_act_on_cta(user, c, teams)
    return {"user": user["name"], "role": user["role"], "scope": scope,
            "total": sum(n for n, _ in columns.values()),
            "recent_days": RECENT_DAYS, "per_page": f.per_page, "sort": f.sort, "desc": f.desc,
            "filters": {k: getattr(f, k) for k in ("type", "priority", "due", "band", "owner", "q")},
            "columns": [{"status": k, "total": n, "ctas": v} for k, (n, v) in columns.items()],
            "owners": owners, "bands": choices(site).get("band", [])}


def _in_sql(f: CockpitFilter) -> bool:
    """Whether the database alone can filter, order and group the queue as ``f`` asks: not
    by the accounts' facts (kept in the snapshots) nor by text (Python's case folding)."""
    return not f.band and not f.q and f.sort in SQL_SORTS and f.group in SQL_GROUPS


def scope_owners(user: dict[str, Any], teams: dict[str, str | None], scope: str) -> frozenset[str] | None:
    """The owners whose CTAs and tasks are in ``scope`` of ``user`` (None: everyone's), as
    :func:`_in_scope` decides for one owner."""
    if scope == "all":
        return None
    owners = frozenset([user["name"]])
    if scope == "team" and user.get("team") is not None:
        owners |= {name for name, team in teams.items() if team == user["team"]}
    return owners


def _where(f: CockpitFilter, user: dict[str, Any], teams: dict[str, str | None], scope: str) -> QueueWhere:
    """The filters of ``f`` the database applies (the scope as a list of owners)."""
    owners = scope_owners(user, teams, scope)
    return QueueWhere(type=f.type or None, owners=owners, priority=f.priority or None,
                      owner=f.owner or None, due=f.due or None, state=f.state or None)


def _keyed(site: Site, wheres: list[QueueWhere], f: CockpitFilter) -> list[dict[str, Any]]:
    """The key columns of the CTAs ``wheres`` pick, with their accounts' facts, filtered,
    sorted and grouped as ``f`` asks."""
    today = site.wf.today
    items = with_accounts(site, [c for w in wheres for c in site.wf.queue_keys(w)])
    items = _sorted([c for c in items if _queue_matches(c, f, today)], f.sort, f.desc)
    return _grouped(items, f.group, today)


def _owner_in_scope(owner: str | None, user: dict[str, Any], teams: dict[str, str | None],
                    scope: str) -> bool:
    return _in_scope({"owner": owner}, user, teams, scope)


def _column(c: dict[str, Any]) -> str:
    if c["status"] != "open":
        return "closed"
    return "escalated" if c["escalated"] else "snoozed" if c["snoozed"] else "open"


def _check_queue(f: CockpitFilter, user: dict[str, Any]) -> str:
    scope = f.scope or default_scope(user)
    for name, value, allowed in (("scope", scope, SCOPES), ("sort", f.sort, QUEUE_SORTS),
                                 ("state", f.state, STATES), ("group", f.group, GROUPS)):
        if value is not None and value not in allowed:
            raise InvalidActionError(f"{name}: must be one of {', '.join(allowed)}. Got {value!r}.")
    if f.due not in (None, "overdue", "week", "none"):
        raise InvalidActionError(f"due: must be overdue, week or none. Got {f.due!r}.")
    if f.page < 1 or not 1 <= f.per_page <= MAX_QUEUE_PAGE:
        raise InvalidActionError(f"page must be 1 or more and per_page between 1 and {MAX_QUEUE_PAGE}.")
    return scope


def _in_scope(cta: dict[str, Any], user: dict[str, Any], teams: dict[str, str | None], scope: str) -> bool:
    """mine: CTAs I own; team: those owned by anyone in my team (mine if I have none); all."""
    owner = cta.get("owner")
    if scope == "all" or owner == user["name"]:
        return True
    return scope == "team" and user.get("team") is not None and teams.get(owner or "") == user["team"]


_facts: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}


def account_facts(site: Site) -> dict[str, dict[str, Any]]:
    """Each account's name, CSM, final score and band, ARR and renewal date (JSON-ready), by
    account id: from :func:`scores_frame`, kept while it is the same."""
    frame, key = final_frame(site)
    if key not in _facts:
        frame = frame.drop_duplicates("account_id")
        cols = [c for c in _FACTS if c in frame]
        values = zip(*(frame[c].tolist() for c in cols), strict=True)
        _facts.clear()
        _facts[key] = {a: dict(zip(cols, map(json_value, v), strict=True))
                       for a, v in zip(frame["account_id"].tolist(), values, strict=True)}
    return _facts[key]


def with_accounts(site: Site, ctas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each CTA with its account's name, CSM, final score and band, ARR and renewal date, and
    whether it is snoozed and escalated."""
    by_id = account_facts(site)
    today = site.wf.today.isoformat()
    for c in ctas:
        acc = by_id.get(c["account_id"], {})
        c.update({"account_name": acc.get("name"), "account_csm": acc.get("csm"),
                  "score": acc.get("score"), "band": acc.get("band"), "arr": acc.get("arr"),
                  "renewal_date": acc.get("renewal_date"),
                  "snoozed": bool(c.get("snoozed_until") and c["snoozed_until"] > today),
                  "escalated": (c.get("escalation_level") or 0) > 0})
    return ctas


def _queue_matches(c: dict[str, Any], f: CockpitFilter, today: date) -> bool:
    if f.priority and c["priority"] != f.priority:
        return False
    if f.due and not _due_matches(c, f.due, today):
        return False
    if (f.band and c.get("band") != f.band) or (f.owner and c.get("owner") != f.owner):
        return False
    if f.state and not (not c["snoozed"] if f.state == "active" else c[f.state]):
        return False
    if f.q:
        text = f.q.strip().lower()
        where = (c["account_id"], c.get("account_name"), c.get("reason"), c.get("owner"))
        return any(text in str(w).lower() for w in where if w)
    return True


def _sorted(items: list[dict[str, Any]], sort: str, desc: bool) -> list[dict[str, Any]]:
    """By ``sort`` (missing values last either way), then priority, due date and id."""
    def rest(c: dict[str, Any]) -> tuple[Any, ...]:
        return _RANK.get(c["priority"], 9), c["due_on"] or "9999", c["id"]

    if sort == "priority":
        return sorted(items, key=rest, reverse=desc)
    items = sorted(items, key=rest)
    has = [c for c in items if c.get(sort) is not None]
    text = sort in ("account_name", "owner")
    has.sort(key=lambda c: str(c[sort]).lower() if text else c[sort], reverse=desc)
    return has + [c for c in items if c.get(sort) is None]


def _grouped(items: list[dict[str, Any]], group: str | None, today: date) -> list[dict[str, Any]]:
    """The rows of each group together (groups in order, rows keeping their order within),
    each row labelled with its group."""
    if group is None:
        return items
    for c in items:
        c["group"] = _group_of(c, group, today)
    if group == "due":
        return sorted(items, key=lambda c: DUE_BUCKETS.index(c["group"]))
    return sorted(items, key=lambda c: str(c["group"]).lower())


def _group_of(c: dict[str, Any], group: str, today: date) -> str:
    if group == "account":
        return str(c.get("account_name") or c["account_id"])
    if group == "due":
        return _due_bucket(c.get("due_on"), today)
    return str(c.get(group) or "—")


def _due_bucket(due_on: str | None, today: date) -> str:
    if due_on is None:
        return "no due date"
    on = date.fromisoformat(due_on)
    return "overdue" if on < today else "this week" if on <= today + timedelta(days=7) else "later"


def may_act_on_cta(user: dict[str, Any], cta: dict[str, Any], teams: dict[str, str | None]) -> bool:
    """The library's rule (``Workflow`` checks it again on every change): the owner of a CTA
    may act on it, and so may whoever may act on its account."""
    if user["role"] == "viewer":
        return False
    return cta.get("owner") == user["name"] or may_act_on(user, cta.get("account_csm"), teams)


def _due_matches(cta: dict[str, Any], due: str, today: date) -> bool:
    if due not in ("overdue", "week", "none"):
        raise InvalidActionError(f"due: must be overdue, week or none. Got {due!r}.")
    if due == "none":
        return cta["due_on"] is None
    if cta["due_on"] is None:
        return False
    on = date.fromisoformat(cta["due_on"])
    return on < today if due == "overdue" else on <= today + timedelta(days=7)


def review(site: Site, user: dict[str, Any]) -> dict[str, Any]:
    items = with_accounts(site, site.wf.review_list())
    teams = site.wf.teams()
    for c in items:
        c["escalations"] = site.wf.escalations(c["id"])
        c["can_act"] = may_act_on_cta(user, c, teams)
    marks = with_accounts(site, site.wf.review_marks())
    labels = site.wf.modules(None)
    for m in marks:
        m["label"] = labels.get(m["module"], m["module"])
    return {"ctas": items, "marks": marks, "assignable": assignable(site),
            "escalate_to": [*site.wf.spec.escalation[1:], *site.wf.spec.departments]}
