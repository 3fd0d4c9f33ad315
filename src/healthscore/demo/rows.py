"""Row builders: turn a simulated chunk into the event entities (one dict of columns each)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from healthscore.demo.behaviour import MILESTONE_NAMES, NO_DAY, Simulation
from healthscore.demo.calendar import DAY_US, HOUR_US, Calendar
from healthscore.demo.columns import (
    NULL_TS,
    SECOND_US,
    Columns,
    Ids,
    cells,
    choice,
    expand,
    float_array,
    random_times,
    sort_rows,
    take,
    ts_array,
)
from healthscore.demo.people import Directory
from healthscore.demo.population import Population

EVENTS = (
    "login", "dashboard_view", "report_export", "integration_sync", "automation_run",
    "search", "share_report", "alert_configured",
)
EVENT_SHARE = (0.28, 0.27, 0.12, 0.10, 0.08, 0.08, 0.05, 0.02)
NO_MODULE_EVENTS = (0, 5)  # login, search
MODULES = tuple(f"module_{i}" for i in range(1, 7))
CS_TYPES, CS_SHARE = ("email", "call", "meeting", "chat"), (0.5, 0.25, 0.15, 0.1)
CUSTOMER_SHARE = (0.4, 0.15, 0.1, 0.35)
ACTIVITY_TYPES = (*CS_TYPES, "qbr", "ebr")
ADVOCACY = ("referral", "review", "case_study", "reference")
ADVOCACY_SHARE = (0.35, 0.35, 0.1, 0.2)
PRIORITIES = ("P1", "P2", "P3", "P4")
TICKET_TYPES = ("question", "incident", "bug", "product_request")
SLA_HOURS = np.array([4, 24, 72, 120])
RESOLVE_HOURS = np.array([5.0, 20.0, 48.0, 96.0])  # median time to close, by priority
RESOLVE_FACTOR = np.array([1.0, 1.0, 3.0, 15.0])  # bugs and product requests stay open longer
NPS_COMMENTS = (
    "Too expensive for what we use", "Reports are slow", "Missing integrations we need",
    "Works fine", "Good product, support could be faster", "Does the job",
    "Great product, the team loves it", "Saves us hours every week",
    "Best tool we have bought this year",
)


@dataclass
class Chunk:
    """A simulated chunk and what the row builders share."""

    pop: Population
    cal: Calendar
    sim: Simulation
    rng: np.random.Generator
    ids: Ids
    people: Directory

    @property
    def limit_us(self) -> np.ndarray:
        """Per account: nothing is known from this instant on (churn, or after the end)."""
        limit = np.minimum(self.sim.churn_day, self.cal.end_day + 1)
        return limit * DAY_US

    def times(self, acct: np.ndarray, month: np.ndarray, business: bool = False) -> np.ndarray:
        hist = self.sim.hist
        return random_times(self.rng, hist.lo[acct, month], hist.hi[acct, month], business)

    def account_ids(self, acct: np.ndarray) -> pa.Array:
        return self.pop.account_id.take(pa.array(acct, pa.int64()))

    def contacts(self, positions: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
        return take(self.people.contact_id, positions, valid)

    def random_user(self, acct: np.ndarray, month: np.ndarray, at_us: np.ndarray) -> np.ndarray:
        """A user who holds a seat that month (slot 0, the champion, most often)."""
        seats = np.maximum(self.sim.hist.seats[acct, month], 1)
        slot = np.floor(seats * self.rng.random(len(acct)) ** 1.6).astype(np.int64)
        return self.people.user(acct, slot, at_us)


def usage_events(c: Chunk) -> Columns:
    hist, rng = c.sim.hist, c.rng
    acct, month = expand(hist.usage, c.cal.burn_in)
    n = len(acct)
    rows = sort_rows({"acct": acct, "month": month, "ts": c.times(acct, month)}, "acct", "ts")
    acct, month, ts = rows["acct"], rows["month"], rows["ts"]
    slot = np.floor(hist.users[acct, month] * rng.random(n) ** 1.3).astype(np.int64)
    event = choice(rng, n, EVENT_SHARE)
    bought = np.floor(rng.random(n) * c.pop.modules[acct]).astype(np.int64)
    module = np.where(rng.random(n) < 0.04, rng.integers(0, len(MODULES), n), bought)
    has_module = ~np.isin(event, NO_MODULE_EVENTS)
    minutes = np.round(np.exp(rng.normal(2.0, 0.8, n)), 1)
    value = np.where(event <= 1, minutes, np.nan)
    value = np.where(event == 3, np.round(np.exp(rng.normal(5.0, 1.2, n))), value)
    return {
        "account_id": c.account_ids(acct),
        "user_id": c.contacts(c.people.user(acct, slot, ts)),
        "event": take(EVENTS, event), "module": take(MODULES, module, has_module),
        "timestamp": ts_array(ts), "value": float_array(value),
    }


def activities(c: Chunk) -> Columns:
    hist, rng = c.sim.hist, c.rng
    parts = [expand(hist.cs_touch, c.cal.burn_in), expand(hist.cu_touch, c.cal.burn_in),
             cells(hist.review > 0, c.cal.burn_in)]
    acct = np.concatenate([p[0] for p in parts])
    month = np.concatenate([p[1] for p in parts])
    origin = np.repeat([0, 1, 2], [len(p[0]) for p in parts])
    n = len(acct)
    kind = np.where(origin == 0, choice(rng, n, CS_SHARE), choice(rng, n, CUSTOMER_SHARE))
    kind = np.where(origin == 2, hist.review[acct, month] + 3, kind)
    rows = sort_rows({"acct": acct, "month": month, "kind": kind, "origin": origin,
                      "ts": c.times(acct, month, business=True)}, "acct", "ts")
    return _activity_columns(c, rows)


def _activity_columns(c: Chunk, rows: dict[str, np.ndarray]) -> Columns:
    hist, rng = c.sim.hist, c.rng
    acct, month, ts = rows["acct"], rows["month"], rows["ts"]
    n = len(acct)
    p_sponsor = np.array([0.2, 0.1, 0.85])[rows["origin"]]
    with_sponsor = hist.sponsor_ok[acct, month] & (rng.random(n) < p_sponsor)
    user = c.random_user(acct, month, ts)
    contact = np.where(with_sponsor, c.people.sponsor(acct, hist.sponsor_gen[acct, month]), user)
    champion = (user == c.people.user_base[acct]) & hist.champion_ok[acct, month]
    return {
        "activity_id": c.ids.new("ACT-", n), "account_id": c.account_ids(acct),
        "contact_id": c.contacts(contact), "type": take(ACTIVITY_TYPES, rows["kind"]),
        "initiated_by": take(("cs", "customer"), (rows["origin"] == 1).astype(np.int64)),
        "timestamp": ts_array(ts), "with_key_stakeholder": pa.array(with_sponsor | champion),
    }


def _ticket_rows(c: Chunk) -> dict[str, np.ndarray]:
    hist, rng = c.sim.hist, c.rng
    a1, m1 = expand(hist.p1, c.cal.burn_in)
    a2, m2 = expand(hist.tickets, c.cal.burn_in)
    acct, month = np.concatenate([a1, a2]), np.concatenate([m1, m2])
    n = len(acct)
    priority = np.concatenate([np.zeros(len(a1), np.int64), 1 + choice(rng, len(a2), (2, 5, 3))])
    kind = np.where(priority == 0, choice(rng, n, (0, 8, 2, 0)), choice(rng, n, (45, 15, 20, 20)))
    opened = c.times(acct, month)
    return sort_rows({"acct": acct, "month": month, "priority": priority, "kind": kind,
                      "opened": opened}, "acct", "opened")


def _ticket_closing(c: Chunk, rows: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(closed_at, status code 0 open / 1 closed / 2 cancelled at churn)."""
    acct, prio, opened = rows["acct"], rows["priority"], rows["opened"]
    median = RESOLVE_HOURS[prio] * RESOLVE_FACTOR[rows["kind"]]
    hours = median * np.exp(c.rng.normal(0.0, 0.9, len(acct)))
    closed = opened + (hours * HOUR_US).astype(np.int64) // SECOND_US * SECOND_US
    limit = c.limit_us[acct]
    churned = c.sim.churn_day[acct] <= c.cal.end_day
    status = np.where(closed < limit, 1, np.where(churned, 2, 0))
    closed = np.where(status == 1, closed, np.where(status == 2, limit, NULL_TS))
    return closed, status


def tickets(c: Chunk) -> tuple[Columns, Columns]:
    """Tickets, and the CSAT responses that follow some of them."""
    rows = _ticket_rows(c)
    acct, prio, opened = rows["acct"], rows["priority"], rows["opened"]
    closed, status = _ticket_closing(c, rows)
    sla = opened + SLA_HOURS[prio] * HOUR_US
    cols = {
        "ticket_id": c.ids.new("TCK-", len(acct)), "account_id": c.account_ids(acct),
        "priority": take(PRIORITIES, prio), "type": take(TICKET_TYPES, rows["kind"]),
        "status": take(("open", "closed", "cancelled"), status), "opened_at": ts_array(opened),
        "closed_at": ts_array(closed), "sla_due_at": ts_array(sla),
    }
    return cols, _csat(c, rows, closed, status == 1, closed > sla)


def _csat(c: Chunk, rows: dict[str, np.ndarray], closed: np.ndarray, done: np.ndarray,
          breached: np.ndarray) -> dict[str, np.ndarray]:
    rng = c.rng
    n = len(closed)
    at = closed + (rng.uniform(1.0, 48.0, n) * HOUR_US).astype(np.int64) // SECOND_US * SECOND_US
    keep = done & (rng.random(n) < 0.3) & (at < c.limit_us[rows["acct"]])
    acct, month, at = rows["acct"][keep], rows["month"][keep], at[keep]
    health = c.sim.hist.h[acct, month]
    noise = rng.normal(0.0, 0.7, len(acct))
    score = np.clip(np.round(3.8 + 0.6 * health - 0.6 * breached[keep] + noise), 1, 5)
    contact = c.random_user(acct, month, at)
    return {"acct": acct, "contact": contact, "kind": np.ones(len(acct), np.int64),
            "score": score, "comment": np.full(len(acct), -1), "ts": at}


def _nps(c: Chunk) -> dict[str, np.ndarray]:
    hist, rng = c.sim.hist, c.rng
    acct, month = cells(~np.isnan(hist.nps), c.cal.burn_in)
    n = len(acct)
    ts = c.times(acct, month)
    score = hist.nps[acct, month]
    by_sponsor = hist.sponsor_ok[acct, month] & (rng.random(n) < 0.25)
    sponsor = c.people.sponsor(acct, hist.sponsor_gen[acct, month])
    contact = np.where(by_sponsor, sponsor, c.random_user(acct, month, ts))
    band = np.where(score <= 6, 0, np.where(score <= 8, 3, 6)) + rng.integers(0, 3, n)
    comment = np.where(rng.random(n) < 0.3, band, -1)
    return {"acct": acct, "contact": contact, "kind": np.zeros(n, np.int64), "score": score,
            "comment": comment, "ts": ts}


def surveys(c: Chunk, csat: dict[str, np.ndarray]) -> Columns:
    nps = _nps(c)
    rows = sort_rows({k: np.concatenate([nps[k], csat[k]]) for k in nps}, "acct", "ts")
    return {
        "response_id": c.ids.new("SRV-", len(rows["acct"])),
        "account_id": c.account_ids(rows["acct"]), "contact_id": c.contacts(rows["contact"]),
        "kind": take(("nps", "csat"), rows["kind"]),
        "score": pa.array(rows["score"], pa.float64()),
        "comment": take(NPS_COMMENTS, np.maximum(rows["comment"], 0), rows["comment"] >= 0),
        "responded_at": ts_array(rows["ts"]),
    }


def invoices(c: Chunk) -> Columns:
    hist, rng = c.sim.hist, c.rng
    acct, month = cells(hist.inv_day >= 0, c.cal.burn_in)
    n = len(acct)
    issued = hist.inv_day[acct, month] * DAY_US
    after = hist.inv_paid_after[acct, month]
    hour = (rng.uniform(9, 17, n) * HOUR_US).astype(np.int64) // SECOND_US * SECOND_US
    paid = issued + after * DAY_US + hour
    limit = c.limit_us[acct]
    paid = np.where((after >= 0) & (paid < limit), paid, NULL_TS)
    due = issued + 30 * DAY_US
    churned = c.sim.churn_day[acct] <= c.cal.end_day
    end_us = (c.cal.end_day + 1) * DAY_US
    unpaid = np.where(churned, 3, np.where(due >= end_us, 1, 2))
    status = np.where(paid != NULL_TS, 0, unpaid)
    return {
        "invoice_id": c.ids.new("INV-", n), "account_id": c.account_ids(acct),
        "issued_at": ts_array(issued), "due_at": ts_array(due), "paid_at": ts_array(paid),
        "amount": pa.array(hist.inv_amount[acct, month], pa.float64()),
        "status": take(("paid", "open", "overdue", "written_off"), status),
    }


def advocacy(c: Chunk) -> Columns:
    acct, month = expand(c.sim.hist.advocacy, c.cal.burn_in)
    rows = sort_rows({"acct": acct, "ts": c.times(acct, month, business=True)}, "acct", "ts")
    n = len(acct)
    return {
        "advocacy_id": c.ids.new("ADV-", n), "account_id": c.account_ids(rows["acct"]),
        "kind": take(ADVOCACY, choice(c.rng, n, ADVOCACY_SHARE)),
        "occurred_at": ts_array(rows["ts"]),
    }


def business_outcomes(c: Chunk) -> Columns:
    hist = c.sim.hist
    acct, month = cells(~np.isnan(hist.gmv), c.cal.burn_in)
    ts = (hist.hi[acct, month] - 1) * DAY_US + 23 * HOUR_US
    return {
        "account_id": c.account_ids(acct), "metric": take(("gmv",), np.zeros(len(acct))),
        "timestamp": ts_array(ts), "value": pa.array(hist.gmv[acct, month], pa.float64()),
    }


def milestones(c: Chunk) -> Columns:
    ms = c.sim.milestones
    acct, k = cells(np.arange(ms.due.shape[1])[None, :] < ms.count[:, None], 0)
    due = ms.due[acct, k] * DAY_US + 17 * HOUR_US
    done = np.where(ms.done[acct, k] == NO_DAY, NULL_TS, ms.done[acct, k] * DAY_US + 15 * HOUR_US)
    limit = c.limit_us[acct]
    keep = due < limit
    done = np.where(done < limit, done, NULL_TS)[keep]
    acct, k, due = acct[keep], k[keep], due[keep]
    return {
        "milestone_id": c.ids.new("MS-", len(acct)), "account_id": c.account_ids(acct),
        "name": take(MILESTONE_NAMES, k), "due_at": ts_array(due), "completed_at": ts_array(done),
    }


def outcomes(c: Chunk) -> Columns:
    hist, sim, first = c.sim.hist, c.sim, c.cal.burn_in
    parts = []
    for kind, mask, day, change in (
        (1, hist.renewal_day >= 0, hist.renewal_day, np.zeros_like(hist.contraction)),
        (3, hist.contraction < 0, hist.renewal_day, hist.contraction),
        (2, hist.exp_day >= 0, hist.exp_day, hist.exp_arr),
    ):
        acct, month = cells(mask, first)
        parts.append((np.full(len(acct), kind), acct, day[acct, month], change[acct, month]))
    churned = np.flatnonzero(sim.churn_day <= c.cal.end_day)
    parts.append((np.zeros(len(churned), np.int64), churned, sim.churn_day[churned],
                  -sim.arr[churned]))
    rows = sort_rows({name: np.concatenate([p[i] for p in parts]) for i, name in
                      enumerate(("kind", "acct", "day", "change"))}, "acct", "day", "kind")
    return {
        "account_id": c.account_ids(rows["acct"]),
        "kind": take(("churn", "renewal", "expansion", "contraction"), rows["kind"]),
        "occurred_at": ts_array(rows["day"] * DAY_US),
        "arr_change": pa.array(np.round(rows["change"], 2), pa.float64()),
    }
