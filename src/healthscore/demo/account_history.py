"""``account_history``: the CRM's change log of account attributes, ending at accounts.csv.

Every account gets a first row on its start date holding all its attributes as they were
then; later rows are dated changes that fill only the columns that changed (a blank cell
means unchanged): seats (with ARR and MRR) at the simulation's expansions and contractions,
the lifecycle stage (the same rule ``accounts.csv`` applies on ``end_date``, applied on every
day), the renewal date at each anniversary, some CSM reassignments and plan changes, and the
churn. The latest value of each column equals the account's value in accounts.csv.

The CSM and plan changes draw from their own random stream, so that the other entities do
not depend on whether this one is written.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from healthscore.demo.behaviour import NO_DAY, Simulation
from healthscore.demo.calendar import Calendar, next_anniversary, same_day_in_month
from healthscore.demo.columns import Columns, take
from healthscore.demo.people import ONBOARDING_DAYS, RENEWAL_WINDOW_DAYS, plan_done, stage_on
from healthscore.demo.population import CSMS, INDUSTRIES, PLANS, REGIONS, SEGMENTS, Population

STAGES = ("onboarding", "adoption", "renewal", "churned")
CSM_SWITCH_SHARE = 0.12  # accounts handed over to another CSM once
UPGRADE_SHARE = 0.03  # accounts that moved up one plan (from the plan below today's)
DOWNGRADE_SHARE = 0.015  # accounts that moved down one plan
SETTLE_DAYS = 30  # no CSM or plan change in an account's first month
ANNIVERSARIES = 6  # more than the longest tenure has


class _Log:
    """Dated values per column; on the same account and day the value logged last wins."""

    def __init__(self) -> None:
        self.events: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def add(self, column: str, acct: np.ndarray, day: np.ndarray, value: np.ndarray) -> None:
        n = len(acct)
        self.events.setdefault(column, []).append(
            (np.asarray(acct, np.int64), np.asarray(day, np.int64),
             np.broadcast_to(np.asarray(value), (n,)))
        )

    def rows(self) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """(account, day) of each row, sorted, and per column (row positions, values)."""
        merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for column, parts in self.events.items():
            key = np.concatenate([(a << 32) | d for a, d, _ in parts])
            value = np.concatenate([v for _, _, v in parts])
            order = np.argsort(key, kind="stable")
            key, value = key[order], value[order]
            last = np.append(key[1:] != key[:-1], True)
            merged[column] = (key[last], value[last])
        keys = np.unique(np.concatenate([k for k, _ in merged.values()]))
        cols = {c: (np.searchsorted(keys, k), v) for c, (k, v) in merged.items()}
        return keys >> 32, keys & 0xFFFFFFFF, cols


def _filled(n: int, rows: tuple[np.ndarray, np.ndarray], dtype: type
            ) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid) of a column over all ``n`` rows."""
    pos, value = rows
    out: np.ndarray = np.zeros(n, dtype=dtype)
    valid = np.zeros(n, dtype=bool)
    out[pos], valid[pos] = value, True
    return out, valid


def _seat_changes(sim: Simulation, pop: Population) -> dict[str, np.ndarray]:
    """Seats (and ARR) after each expansion and contraction, in date order."""
    hist = sim.hist
    before = np.concatenate([pop.seats[:, None], (hist.seats + hist.exp_seats)[:, :-1]], axis=1)
    cut_a, cut_m = np.nonzero(hist.contraction < 0)
    exp_a, exp_m = np.nonzero(hist.exp_day >= 0)
    acct = np.concatenate([cut_a, exp_a])
    day = np.concatenate([hist.renewal_day[cut_a, cut_m], hist.exp_day[exp_a, exp_m]])
    delta = np.concatenate([hist.seats[cut_a, cut_m] - before[cut_a, cut_m],
                            hist.exp_seats[exp_a, exp_m]])
    month = np.concatenate([cut_m, exp_m])
    order = np.lexsort((np.repeat([0, 1], [len(cut_a), len(exp_a)]), month, day, acct))
    acct, day, delta = acct[order], day[order], delta[order]
    if not len(acct):
        return {"acct": acct, "day": day, "seats": delta, "arr": delta.astype(np.float64)}
    total = np.cumsum(delta)
    first = np.flatnonzero(np.append(True, acct[1:] != acct[:-1]))
    base = np.repeat(total[first] - delta[first], np.diff(np.append(first, len(acct))))
    seats = pop.seats[acct] + total - base
    arr = np.round(seats * pop.seat_price[acct], 2)
    last = np.append(acct[1:] != acct[:-1], True)
    arr[last] = sim.arr[acct[last]]  # exactly the ARR accounts.csv shows
    return {"acct": acct, "day": day, "seats": seats, "arr": arr}


def _lifecycle(sim: Simulation, pop: Population, limit: np.ndarray
               ) -> dict[str, np.ndarray]:
    """Stage and renewal date on every day either can change, from start to ``limit``."""
    n = pop.n
    done = plan_done(sim)
    start = pop.start_day
    adopted = np.maximum(start + ONBOARDING_DAYS, np.minimum(done, start + 2 * ONBOARDING_DAYS))
    years = np.arange(1, ANNIVERSARIES + 1)
    anniv = same_day_in_month(pop.start_month[:, None] + 12 * years[None, :], pop.dom[:, None])
    days = np.concatenate([start[:, None], adopted[:, None], anniv - RENEWAL_WINDOW_DAYS, anniv],
                          axis=1)
    acct = np.repeat(np.arange(n), days.shape[1])
    day = days.ravel()
    keep = (day >= start[acct]) & (day <= limit[acct])
    acct, day = acct[keep], day[keep]
    order = np.lexsort((day, acct))
    acct, day = acct[order], day[order]
    renewal = next_anniversary(pop.start_month[acct], pop.dom[acct], day)
    stage = stage_on(start[acct], done[acct], day, renewal)
    new = np.append(True, acct[1:] != acct[:-1])
    return {"acct": acct, "day": day, "renewal": renewal, "stage": stage,
            "stage_changed": new | (stage != np.roll(stage, 1)),
            "renewal_changed": new | (renewal != np.roll(renewal, 1))}


def _random_day(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day in [lo, hi] (inclusive)."""
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def build_history(sim: Simulation, pop: Population, cal: Calendar, rng: np.random.Generator
                  ) -> Columns:
    """The account_history rows of a chunk (``rng`` is the history's own stream)."""
    n, every = pop.n, np.arange(pop.n)
    churned = sim.churn_day != NO_DAY
    limit = np.where(churned, sim.churn_day - 1, cal.end_day)  # last day before churn or end
    log = _Log()

    # CSM handovers and plan changes: drawn first, so the initial row can hold the old value
    settle = pop.start_day + SETTLE_DAYS
    room = limit >= settle
    switch = room & (rng.random(n) < CSM_SWITCH_SHARE)
    old_csm = (pop.csm + rng.integers(1, len(CSMS), n)) % len(CSMS)
    csm_day = _random_day(rng, settle, limit)
    u = rng.random(n)
    up = room & (u < UPGRADE_SHARE) & (pop.plan > 0)
    down = room & (u >= UPGRADE_SHARE) & (u < UPGRADE_SHARE + DOWNGRADE_SHARE)
    down &= pop.plan < len(PLANS) - 1
    old_plan = np.where(up, pop.plan - 1, np.where(down, pop.plan + 1, pop.plan))
    plan_day = _random_day(rng, settle, limit)

    # the first row: every attribute as it was on the start date
    start = pop.start_day
    initial_arr = np.round(pop.seats * pop.seat_price, 2)
    for column, value in (
        ("name", every), ("segment", pop.segment), ("industry", pop.industry),
        ("plan", old_plan), ("region", pop.region), ("arr", initial_arr),
        ("mrr", np.round(initial_arr / 12, 2)), ("csm", np.where(switch, old_csm, pop.csm)),
        ("licensed_seats", pop.seats), ("modules_purchased", pop.modules),
    ):
        log.add(column, every, start, value)

    life = _lifecycle(sim, pop, limit)
    sc, rc = life["stage_changed"], life["renewal_changed"]
    log.add("lifecycle_stage", life["acct"][sc], life["day"][sc], life["stage"][sc])
    log.add("renewal_date", life["acct"][rc], life["day"][rc], life["renewal"][rc])

    seats = _seat_changes(sim, pop)
    log.add("licensed_seats", seats["acct"], seats["day"], seats["seats"])
    log.add("arr", seats["acct"], seats["day"], seats["arr"])
    log.add("mrr", seats["acct"], seats["day"], np.round(seats["arr"] / 12, 2))

    moved = np.flatnonzero(switch)
    log.add("csm", moved, csm_day[moved], pop.csm[moved])
    changed = np.flatnonzero(up | down)
    log.add("plan", changed, plan_day[changed], pop.plan[changed])
    gone = np.flatnonzero(churned)
    log.add("lifecycle_stage", gone, sim.churn_day[gone], np.full(len(gone), 3))
    return _columns(log, pop)


def _columns(log: _Log, pop: Population) -> Columns:
    acct, day, cols = log.rows()
    r = len(acct)
    out: Columns = {"account_id": pop.account_id.take(pa.array(acct)),
                    "valid_from": pa.array(day.astype(np.int32), pa.date32())}
    vocab: dict[str, pa.Array | tuple[str, ...]] = {
        "name": pop.name, "segment": SEGMENTS, "industry": INDUSTRIES, "plan": PLANS,
        "region": REGIONS, "csm": CSMS, "lifecycle_stage": STAGES,
    }
    for column, words in vocab.items():
        idx, valid = _filled(r, cols[column], np.int64)
        out[column] = take(words, idx, valid)
    for column in ("arr", "mrr"):
        value, valid = _filled(r, cols[column], np.float64)
        out[column] = pa.array(value, pa.float64(), mask=~valid)
    for column in ("licensed_seats", "modules_purchased"):
        value, valid = _filled(r, cols[column], np.int64)
        out[column] = pa.array(value, pa.int64(), mask=~valid)
    value, valid = _filled(r, cols["renewal_date"], np.int64)
    out["renewal_date"] = pa.array(value.astype(np.int32), pa.date32(), mask=~valid)
    return out
