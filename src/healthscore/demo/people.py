"""Accounts and contacts of a chunk, and the directory that maps users to contact ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.demo.behaviour import NO_DAY, Simulation
from healthscore.demo.calendar import DAY_US, HOUR_US, Calendar, next_anniversary
from healthscore.demo.columns import NULL_TS, Columns, choice, date_array, take, ts_array
from healthscore.demo.population import CSMS, INDUSTRIES, PLANS, REGIONS, SEGMENTS, Population

FIRST_NAMES = (
    "Anna", "Ivan", "Li", "Maria", "James", "Fatima", "Lars", "Aiko", "Pierre", "Chiara",
    "Tomasz", "Priya", "Olga", "Chen", "Sofia", "David", "Amara", "Kenji", "Lucia", "Omar",
    "Eva", "Mateo", "Ingrid", "Raj",
)
LAST_NAMES = (
    "Kowalska", "Petrov", "Wei", "Garcia", "Smith", "Khan", "Andersen", "Tanaka", "Dubois",
    "Rossi", "Nowak", "Sharma", "Ivanova", "Zhang", "Muller", "Okafor", "Silva", "Novak",
    "Jensen", "Haddad", "Lopez", "Brown", "Nielsen", "Kim",
)
SPONSOR_ROLES = ("CFO", "COO", "VP Operations", "VP Sales", "Head of E-commerce")
USER_ROLES = ("Analyst", "Sales Rep", "Operations Specialist", "Marketing Manager", "Buyer")
DEPARTED_HOUR = 17 * HOUR_US
ONBOARDING_DAYS = 90
RENEWAL_WINDOW_DAYS = 90


@dataclass
class Directory:
    """Where each account's contacts sit in the chunk's contact table."""

    contact_id: pa.Array
    sponsor_base: np.ndarray  # position of the first sponsor of each account
    user_base: np.ndarray  # position of user slot 0 (the original champion)
    champion_repl: np.ndarray  # position of the champion's replacement, -1 if none
    champion_left_us: np.ndarray  # when the champion left (int64 max if never)

    def user(self, acct: np.ndarray, slot: np.ndarray, at_us: np.ndarray) -> np.ndarray:
        """Contact position of user ``slot`` of ``acct`` at time ``at_us``."""
        replaced = (slot == 0) & (self.champion_repl[acct] >= 0)
        replaced &= at_us >= self.champion_left_us[acct]
        return np.where(replaced, self.champion_repl[acct], self.user_base[acct] + slot)

    def sponsor(self, acct: np.ndarray, generation: np.ndarray) -> np.ndarray:
        return self.sponsor_base[acct] + generation


def _layout(sim: Simulation) -> dict[str, np.ndarray]:
    """Per-account counts and offsets: sponsors, then user slots, then the replacement."""
    sponsors = (sim.sponsor_created >= 0).sum(axis=1)
    repl = (sim.champion_departed >= 0).astype(np.int64)
    total = sponsors + sim.seats_max + repl
    base = np.concatenate([[0], np.cumsum(total)[:-1]]).astype(np.int64)
    return {"sponsors": sponsors, "repl": repl, "total": total, "base": base}


def _user_created(
    sim: Simulation, pop: Population, acct: np.ndarray, slot: np.ndarray
) -> np.ndarray:
    """Day each user slot was created: the start, or the expansion that added it."""
    created = pop.start_day[acct].copy()
    later = slot >= pop.seats[acct]
    grew = np.flatnonzero(later)
    if len(grew):
        hist = sim.hist
        old, new = hist.exp_old_max[acct[grew]], hist.exp_new_max[acct[grew]]
        hit = (old <= slot[grew, None]) & (slot[grew, None] < new) & (hist.exp_day[acct[grew]] >= 0)
        month = hit.argmax(axis=1)
        created[grew] = hist.exp_day[acct[grew], month]
    return created


def _contact_kind(lay: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account, kind, index) of every contact row; kind 0 sponsor, 1 user, 2 replacement."""
    acct = np.repeat(np.arange(len(lay["total"])), lay["total"])
    pos = np.arange(len(acct)) - lay["base"][acct]
    sponsors = lay["sponsors"][acct]
    kind = np.where(pos < sponsors, 0, 1)
    is_repl = (lay["repl"][acct] == 1) & (pos == lay["total"][acct] - 1)
    kind = np.where(is_repl, 2, kind)
    index = np.where(kind == 0, pos, pos - sponsors)
    return acct, kind, index


def _contact_ids(
    pop: Population, acct: np.ndarray, kind: np.ndarray, index: np.ndarray
) -> pa.Array:
    """<account>-S001 (sponsors), <account>-U001 (user seats), <account>-C002 (new admin)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(index + 1), pa.string()), 3, "0")
    label = pc.binary_join_element_wise(take(["-S", "-U", "-C"], kind), digits, "")
    label = pc.if_else(pa.array(kind == 2), pa.scalar("-C002"), label)
    return pc.binary_join_element_wise(pop.account_id.take(pa.array(acct)), label, "")


def _times(
    sim: Simulation, pop: Population, acct: np.ndarray, kind: np.ndarray, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(created_at, departed_at) in microseconds."""
    gen = np.minimum(index, sim.sponsor_created.shape[1] - 1)
    created = np.where(kind == 0, sim.sponsor_created[acct, gen], 0) * DAY_US
    users = kind == 1
    created[users] = _user_created(sim, pop, acct[users], index[users]) * DAY_US
    left_day = np.where(kind == 0, sim.sponsor_departed[acct, gen], -1)
    champion = (kind == 1) & (index == 0)
    left_day = np.where(champion, sim.champion_departed[acct], left_day)
    departed = np.where(left_day >= 0, left_day * DAY_US + DEPARTED_HOUR, NULL_TS)
    repl = kind == 2
    created[repl] = sim.champion_departed[acct[repl]] * DAY_US + DEPARTED_HOUR
    return created, departed


def _names(
    rng: np.random.Generator, pop: Population, acct: np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """Person names and e-mail addresses at the account's domain."""
    first = take(FIRST_NAMES, rng.integers(0, len(FIRST_NAMES), len(acct)))
    last = take(LAST_NAMES, rng.integers(0, len(LAST_NAMES), len(acct)))
    domain = pc.replace_substring_regex(pc.utf8_lower(pop.name), r"[^a-z0-9]+", "")
    local = pc.utf8_lower(pc.binary_join_element_wise(first, last, "."))
    host = pc.binary_join_element_wise(domain.take(pa.array(acct)), "example", ".")
    email = pc.binary_join_element_wise(local, host, "@")
    return pc.binary_join_element_wise(first, last, " "), email


def build_contacts(
    sim: Simulation, pop: Population, rng: np.random.Generator
) -> tuple[Columns, Directory]:
    """Sponsors (and their replacements), user seats and champion replacements."""
    lay = _layout(sim)
    acct, kind, index = _contact_kind(lay)
    ids = _contact_ids(pop, acct, kind, index)
    created, departed = _times(sim, pop, acct, kind, index)
    name, email = _names(rng, pop, acct)
    sponsor, champion = kind == 0, (kind == 1) & (index == 0)
    role = np.where(sponsor, choice(rng, len(acct), [1] * 5), choice(rng, len(acct), [1] * 5) + 5)
    role = np.where(champion | (kind == 2), 10, role)
    manager = (role == 8) | (role == 10)
    seniority = np.where(sponsor, choice(rng, len(acct), [0.4, 0.6]), np.where(manager, 2, 3))
    cols = {
        "contact_id": ids, "account_id": pop.account_id.take(pa.array(acct)), "name": name,
        "email": email, "role": take((*SPONSOR_ROLES, *USER_ROLES, "Admin"), role),
        "seniority": take(("c-level", "vp", "manager", "individual"), seniority),
        "is_key_stakeholder": pa.array(sponsor | champion), "is_sponsor": pa.array(sponsor),
        "is_champion": pa.array(champion), "created_at": ts_array(created),
        "departed_at": ts_array(departed),
    }
    return cols, _directory(ids, lay, sim)


def _directory(ids: pa.Array, lay: dict[str, np.ndarray], sim: Simulation) -> Directory:
    user_base = lay["base"] + lay["sponsors"]
    repl = np.where(lay["repl"] == 1, lay["base"] + lay["total"] - 1, -1)
    left = np.where(sim.champion_departed >= 0, sim.champion_departed * DAY_US + DEPARTED_HOUR,
                    np.iinfo(np.int64).max)
    return Directory(ids, lay["base"], user_base, repl, left)


def plan_done(sim: Simulation) -> np.ndarray:
    """Day the last onboarding milestone is completed (NO_DAY: never; -1: no plan)."""
    ms = sim.milestones
    valid = np.arange(ms.due.shape[1])[None, :] < ms.count[:, None]
    return np.asarray(np.where(valid, ms.done, -1).max(axis=1))


def stage_on(start_day: np.ndarray, done: np.ndarray, day: np.ndarray | int,
             renewal: np.ndarray) -> np.ndarray:
    """0 onboarding, 1 adoption, 2 renewal on ``day`` (churn aside); ``done`` from plan_done.

    Onboarding lasts 90 days, or up to 180 while the onboarding plan is still open; renewal
    is the last 90 days before the next renewal date; adoption is the rest.
    """
    tenure = day - start_day
    onboarding = (tenure < ONBOARDING_DAYS) | ((done > day) & (tenure < 2 * ONBOARDING_DAYS))
    stage = np.where(renewal - day <= RENEWAL_WINDOW_DAYS, 2, 1)
    return np.where(onboarding, 0, stage)


def _stage(sim: Simulation, pop: Population, cal: Calendar, renewal: np.ndarray) -> np.ndarray:
    """0 onboarding, 1 adoption, 2 renewal, 3 churned (as of the end of the data)."""
    churned = sim.churn_day != NO_DAY
    return np.where(churned, 3, stage_on(pop.start_day, plan_done(sim), cal.end_day, renewal))


def build_accounts(sim: Simulation, pop: Population, cal: Calendar) -> Columns:
    churned = sim.churn_day != NO_DAY
    after = np.where(churned, sim.churn_day - 1, cal.end_day)
    renewal = next_anniversary(pop.start_month, pop.dom, after)
    stage = _stage(sim, pop, cal, renewal)
    return {
        "account_id": pop.account_id, "name": pop.name, "segment": take(SEGMENTS, pop.segment),
        "industry": take(INDUSTRIES, pop.industry), "plan": take(PLANS, pop.plan),
        "region": take(REGIONS, pop.region), "arr": pa.array(sim.arr, pa.float64()),
        "mrr": pa.array(np.round(sim.arr / 12, 2), pa.float64()), "csm": take(CSMS, pop.csm),
        "start_date": date_array(pop.start_day), "renewal_date": date_array(renewal),
        "churn_date": date_array(np.where(churned, sim.churn_day, 0), churned),
        "lifecycle_stage": take(("onboarding", "adoption", "renewal", "churned"), stage),
        "licensed_seats": pa.array(sim.seats, pa.int64()),
        "modules_purchased": pa.array(pop.modules, pa.int64()),
    }
