"""The work queue, the board and My day are counted, filtered, ordered and paged by the
workflow store: the same CTAs in the same order as ordering every open CTA in Python (the
reference below is that former code), and a page asks the database a fixed number of
statements however many CTAs are open."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from healthscore.tables import Cta
from healthscore.web import queue
from healthscore.web.queue import (
    GROUPS,
    QUEUE_SORTS,
    RECENT_DAYS,
    CockpitFilter,
    _column,
    _grouped,
    _in_scope,
    _queue_matches,
    _sorted,
    with_accounts,
)

from .test_web import ADMIN, CSM, LEAD, OTHER_CSM, TODAY, Site, project, site

__all__ = ["project", "site"]  # the shared fixtures of tests/test_web.py


@pytest.fixture
def web(site: Site) -> Site:
    """The eight-categories demo served with an empty workflow store (test_web's site)."""
    return site


PRIORITIES = ["low", "critical", "medium", "high"]


def reference_cockpit(site: Site, user: dict[str, Any], f: CockpitFilter) -> dict[str, Any]:
    """The queue as it was made before: every open CTA read, then scoped, filtered, sorted,
    grouped and paged in Python."""
    s = site.app.state.site
    teams = s.wf.teams()
    scope = f.scope or queue.default_scope(user)
    ctas = s.wf.ctas(status="open", type=f.type or None, with_tasks=False)
    counts = {sc: sum(_in_scope(c, user, teams, sc) for c in ctas) for sc in queue.SCOPES}
    items = with_accounts(s, [c for c in ctas if _in_scope(c, user, teams, scope)])
    owners = sorted({c["owner"] for c in items if c.get("owner")})
    items = _sorted([c for c in items if _queue_matches(c, f, s.wf.today)], f.sort, f.desc)
    items = _grouped(items, f.group, s.wf.today)
    shown = items[(f.page - 1) * f.per_page: f.page * f.per_page]
    return {"total": len(items), "scopes": counts, "owners": owners,
            "ids": [c["id"] for c in shown], "groups": [c.get("group") for c in shown]}


def reference_board(site: Site, user: dict[str, Any], f: CockpitFilter) -> dict[str, Any]:
    s = site.app.state.site
    teams = s.wf.teams()
    scope = f.scope or queue.default_scope(user)
    since = (s.wf.today - timedelta(days=RECENT_DAYS)).isoformat()
    closed = [c for c in s.wf.ctas(status="closed", type=f.type or None, with_tasks=False)
              if (c.get("closed_at") or "") >= since]
    ctas = [*s.wf.ctas(status="open", type=f.type or None, with_tasks=False), *closed]
    items = with_accounts(s, [c for c in ctas if _in_scope(c, user, teams, scope)])
    owners = sorted({c["owner"] for c in items if c.get("owner")})
    items = _sorted([c for c in items if _queue_matches(c, replace(f, state=None), s.wf.today)],
                    f.sort, f.desc)
    columns: dict[str, list[int]] = {k: [] for k in queue.BOARD_COLUMNS}
    for c in items:
        columns[_column(c)].append(c["id"])
    return {"total": len(items), "owners": owners,
            "columns": [(k, len(v), v[:f.per_page]) for k, v in columns.items()]}


def got_cockpit(site: Site, user: dict[str, Any], f: CockpitFilter) -> dict[str, Any]:
    out = queue.cockpit(site.app.state.site, user, f)
    return {"total": out["total"], "scopes": out["scopes"], "owners": out["owners"],
            "ids": [c["id"] for c in out["ctas"]], "groups": [c.get("group") for c in out["ctas"]]}


def got_board(site: Site, user: dict[str, Any], f: CockpitFilter) -> dict[str, Any]:
    out = queue.board(site.app.state.site, user, f)
    return {"total": out["total"], "owners": out["owners"],
            "columns": [(c["status"], c["total"], [x["id"] for x in c["ctas"]]) for c in out["columns"]]}


def varied_queue(site: Site) -> list[int]:
    """CTAs of three owners on both CSMs' accounts, of every priority and two types, due in the
    past, this week, later or never; some snoozed, escalated, flagged, closed."""
    scores = site.wf.scores().drop_duplicates("account_id")
    accounts = {who: [str(a) for a in scores.loc[scores["csm"] == who, "account_id"]][:4]
                for who in (CSM, OTHER_CSM)}
    ids = []
    for i in range(36):
        who = (CSM, OTHER_CSM, LEAD)[i % 3]
        account = accounts[CSM if i % 2 else OTHER_CSM][i % 4]
        ids.append(int(site.wf.open_cta(account, ("risk", "activity")[i % 5 == 0], f"Case {i} call",
                                        actor=ADMIN, owner=who, priority=PRIORITIES[i % 4],
                                        due_on=TODAY + timedelta(days=(i * 7) % 23 - 6))["id"]))
    flagged = site.wf.flag(accounts[CSM][0], "Flagged by hand", actor=ADMIN)
    ids.append(int(flagged["id"]))
    for i in ids[::5]:
        site.wf.snooze(i, TODAY + timedelta(days=9), "away", actor=ADMIN)
    for i in ids[1::6]:
        site.wf.escalate(i, actor=ADMIN, note="no answer")
    for i in ids[2::9]:
        site.wf.close_cta(i, "resolved", actor=ADMIN)
    with site.wf.ctx.store.session() as s:  # no due date: the form always sets one
        s.execute(update(Cta).where(Cta.id.in_(ids[3::7])).values(due_on=None))
    return ids


def _user(site: Site, name: str) -> dict[str, Any]:
    return site.wf.user(name)


def test_queue_pages_in_sql_are_the_python_queue(web: Site) -> None:
    site = web
    varied_queue(site)
    worst = site.wf.band_names()[0]
    filters: list[dict[str, Any]] = [
        {}, {"priority": "high"}, {"due": "overdue"}, {"due": "week"}, {"due": "none"},
        {"state": "active"}, {"state": "snoozed"}, {"state": "escalated"}, {"state": "flagged"},
        {"band": worst}, {"owner": CSM}, {"q": "case 1"}, {"type": "activity"}, {"scope": "all"},
        {"scope": "mine"}, {"due": "week", "sort": "due_on", "per_page": 10},
    ]
    orders = [{"sort": s, "desc": d} for s, d in itertools.product(QUEUE_SORTS, (False, True))]
    groups = [{"group": g, "sort": s} for g, s in itertools.product(GROUPS, ("priority", "arr", "due_on"))]
    checked = 0
    for name in (ADMIN, LEAD, CSM):
        user = _user(site, name)
        for args in [*filters, *orders, *groups]:
            for page in (1, 2):
                f = CockpitFilter(**{"per_page": 7, **args, "page": page})
                assert got_cockpit(site, user, f) == reference_cockpit(site, user, f), (name, f)
                checked += 1
    assert checked == 3 * 2 * (len(filters) + len(orders) + len(groups))
    admin = got_cockpit(site, _user(site, ADMIN), CockpitFilter(per_page=500))
    assert admin["total"] > 25 and len(set(admin["ids"])) == admin["total"]


def test_board_columns_in_sql_are_the_python_board(web: Site) -> None:
    site = web
    varied_queue(site)
    for name in (ADMIN, LEAD, CSM):
        user = _user(site, name)
        for args in ({}, {"sort": "due_on", "desc": True}, {"sort": "arr"}, {"q": "case"},
                     {"priority": "critical"}, {"due": "overdue"}, {"state": "snoozed"}):
            f = CockpitFilter(**{"per_page": 4, **args})
            got, want = got_board(site, user, f), reference_board(site, user, f)
            assert got == want, (name, f)
    columns = got_board(site, _user(site, ADMIN), CockpitFilter(per_page=50))["columns"]
    assert all(n > 0 for _, n, _ in columns)  # the data has a CTA in every column


@contextmanager
def statements(site: Site) -> Iterator[list[str]]:
    """The SQL statements the workflow store runs meanwhile."""
    seen: list[str] = []
    engine = site.wf.ctx.store.engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


PAGES = ["/api/cockpit", "/api/cockpit?sort=arr&desc=true", "/api/cockpit?group=due",
         "/api/cockpit?page=2&per_page=5", "/api/cockpit/board", "/api/cockpit/board?q=case",
         "/api/today", "/api/today?scope=all", "/api/portfolio/trends", "/cockpit", "/today",
         "/cockpit/board"]


def _counts(site: Site, cta: int) -> dict[str, int]:
    out = {}
    for url in [*PAGES, f"/api/ctas/{cta}", f"/ctas/{cta}"]:
        site.client.get(url, headers=site.as_(LEAD))  # the first use of a token records it
        with statements(site) as seen:
            r = site.client.get(url, headers=site.as_(LEAD))
            assert r.status_code == 200, (url, r.text)
        out[url.replace(str(cta), "{id}")] = len(seen)
    return out


@pytest.mark.parametrize("more", [40])
def test_statements_per_page_do_not_grow_with_the_ctas(web: Site, more: int) -> None:
    site = web
    ids = varied_queue(site)
    before = _counts(site, ids[0])
    scores = site.wf.scores().drop_duplicates("account_id")
    team = [str(a) for a in scores.loc[scores["csm"] == CSM, "account_id"]][:10]
    for i in range(more):
        cid = site.wf.open_cta(team[i % len(team)], "risk", f"More {i}", actor=ADMIN, owner=CSM,
                               due_on=TODAY + timedelta(days=i % 9 - 2), playbook="late_payment")["id"]
        if i % 4 == 0:
            site.wf.escalate(cid, actor=ADMIN)
    after = _counts(site, ids[0])
    assert after == before, {k: (before[k], v) for k, v in after.items() if v != before[k]}
    assert max(after.values()) <= 25, after  # sign-in, teams, counts, page, its tasks...


def test_an_override_set_after_a_page_was_read_is_on_the_next_page(web: Site) -> None:
    """The kept frames follow the workflow store: the band of a CTA's account in the queue,
    the accounts list and Account 360 is the override's from the next request on."""
    site = web
    scores = site.wf.scores().drop_duplicates("account_id")
    account = str(scores.loc[(scores["csm"] == CSM) & (scores["band"] != "red"), "account_id"].iloc[0])
    cid = site.cta(account, owner=CSM)
    h = site.as_(CSM)

    def bands() -> tuple[str, str, str]:
        row = next(c for c in site.client.get("/api/cockpit?per_page=500", headers=h).json()["ctas"]
                   if c["id"] == cid)
        listed = next(a for a in site.client.get("/api/accounts?per_page=1000", headers=h).json()["accounts"]
                      if a["account_id"] == account)
        final = site.client.get(f"/api/accounts/{account}", headers=h).json()["final"]["final_band"]
        return row["band"], listed["band"], final

    system = str(scores.set_index("account_id").loc[account, "band"])
    assert bands() == (system, system, system)
    r = site.client.post(f"/api/accounts/{account}/override", headers=h, json={
        "band": "red", "reason_code": "known_issue", "note": "leaving", "expires_on": "2026-12-31"})
    assert r.status_code == 201, r.text
    assert bands() == ("red", "red", "red")


def reference_day_lists(site: Site, user: dict[str, Any], scope: str) -> dict[str, Any]:
    """My day's account lists as they were made before: the user's book of the whole frame,
    filtered and sorted on each request."""
    import pandas as pd

    from healthscore.store import report
    from healthscore.web.today import ACCOUNT_COLUMNS, _previous_bands
    from healthscore.web.views import in_book, records, scores_frame

    s = site.app.state.site
    frame = scores_frame(s)
    book = frame[in_book(frame, user, s.wf.teams(), scope)]
    worst = report.band_order(frame)[0]
    cols = [c for c in ACCOUNT_COLUMNS if c in book]
    was = book["account_id"].map(_previous_bands(s)).astype(object)
    turned = (book["band"] == worst) & (was.fillna(worst) != worst)
    falling = book[turned | (book["change_30d"].fillna(0) < 0)].assign(turned=turned).sort_values(
        ["turned", "change_30d", "account_id"], ascending=[False, True, True])
    red = book[book["band"] == worst].sort_values(["arr", "score", "account_id"],
                                                  ascending=[False, True, True], na_position="last")
    renews = pd.to_datetime(book["renewal_date"], errors="coerce")
    day = pd.Timestamp(s.wf.today)
    soon = book[(renews >= day) & (renews <= day + pd.Timedelta(days=90))].sort_values(
        ["renewal_date", "account_id"])
    return {"accounts": len(book), "worst_band": worst, "worst": records(red[cols].head(10)),
            "falling": records(falling[[*cols, "turned"]].head(10)),
            "renewals": records(soon[cols].head(10))}


def test_my_days_kept_rankings_are_the_per_request_ones(web: Site) -> None:
    from healthscore.web.today import my_day

    site = web
    for name in (ADMIN, LEAD, CSM, OTHER_CSM):
        user = _user(site, name)
        for scope in ("mine", "team", "all"):
            got = my_day(site.app.state.site, user, scope)
            want = reference_day_lists(site, user, scope)
            assert {k: got[k] for k in want} == want, (name, scope)
    everyone = my_day(site.app.state.site, _user(site, ADMIN), "all")
    assert everyone["worst"] and everyone["falling"] and everyone["renewals"]  # compared non-empty
