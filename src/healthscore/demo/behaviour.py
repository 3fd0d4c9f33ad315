"""The hidden behaviour model: latent health drifts month by month and drives what is seen.

One ``_Sim`` runs a chunk of accounts through the simulated months, vectorised across the
accounts of the chunk (the only Python loop is over months). Every visible behaviour of a
month (usage, NPS, payments, departures...) is drawn from the latent state, and the churn
hazard of a month is computed from what was visible *before* that month, so the signals
precede the churn they predict.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from healthscore.demo.calendar import Calendar, same_day_in_month
from healthscore.demo.population import Population

NO_DAY = np.int64(1 << 40)  # "never"
SPONSOR_GENERATIONS = 3  # the first sponsor and at most two replacements
USER_EVENTS = np.array([1.0, 0.8, 0.65])  # usage events per active user-month, by segment
TICKETS_PER_USER = 0.06  # ordinary (non-P1) tickets per active user-month
P1_RATE = np.array([0.015, 0.03, 0.05])  # P1 incidents per account-month
CS_TOUCHES = np.array([0.35, 0.7, 1.4])  # CS-initiated contacts per month, before risk
CUSTOMER_TOUCHES = np.array([0.3, 0.6, 1.3])  # customer-initiated contacts per month
REVIEW_CADENCE = np.array([0, 6, 3])  # QBR every n months (0: none)
SEGMENT_RISK = np.array([0.3, 0.0, -0.4])
RENEWAL_BASE = -3.1  # logit of churning at a renewal with no risk signal
MIDTERM_BASE = -7.4  # logit of churning in any other month with no risk signal
# weight of each visible signal in the churn hazard (see docs/demo-data.md)
W_USAGE_DROP, W_DETRACTOR, W_PROMOTER, W_PAYMENT, W_SPONSOR, W_STALLED = (
    1.2, 0.9, -0.4, 0.7, 0.9, 1.0,
)
W_LATENT = -0.6
MILESTONE_NAMES = (
    "Kickoff call", "Technical setup", "Data integration", "Admin training",
    "First dashboard live", "Team rollout",
)
MILESTONE_OFFSETS = np.array([7, 21, 35, 50, 65, 80])
STALL_GRACE_DAYS = 14


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Milestones:
    """Onboarding plan of accounts that start inside the window (count 0 for the others)."""

    count: np.ndarray
    due: np.ndarray  # (n, 6) day numbers
    done: np.ndarray  # (n, 6) day numbers, NO_DAY when never completed

    def stalled(self, day: int) -> np.ndarray:
        """Accounts with a milestone overdue by more than the grace period on ``day``."""
        valid = np.arange(self.due.shape[1])[None, :] < self.count[:, None]
        late = valid & (self.due + STALL_GRACE_DAYS < day) & (self.done >= day)
        return np.asarray(late.any(axis=1))


def plan_milestones(pop: Population, cal: Calendar, rng: np.random.Generator) -> Milestones:
    n, k = pop.n, len(MILESTONE_OFFSETS)
    count = np.where(pop.start_day >= cal.window_start, rng.integers(4, k + 1, n), 0)
    due = pop.start_day[:, None] + MILESTONE_OFFSETS[None, :] + rng.integers(-2, 3, (n, k))
    slip = np.exp(rng.normal(-0.8 * pop.h0, 0.6))
    delay = np.round(8 * (slip[:, None] - 1) + rng.normal(0.0, 4.0, (n, k))).astype(np.int64)
    done = np.maximum.accumulate(np.maximum(due + delay, pop.start_day[:, None] + 1), axis=1)
    stall = rng.random(n) < sigmoid(-2.4 - 1.6 * pop.h0)
    stall_at = rng.integers(1, np.maximum(count, 2))
    never = stall[:, None] & (np.arange(k)[None, :] >= stall_at[:, None])
    return Milestones(count, due, np.where(never, NO_DAY, done))


@dataclass
class History:
    """Per account-month record of the simulation, (n, months) arrays."""

    lo: np.ndarray  # active interval [lo, hi) in days; empty when inactive
    hi: np.ndarray
    frac: np.ndarray  # share of the calendar month the account was active
    h: np.ndarray  # latent health
    risk: np.ndarray  # risk visible to a CSM at the start of the month
    seats: np.ndarray  # licensed seats available for usage
    users: np.ndarray  # active users
    usage: np.ndarray  # usage events
    tickets: np.ndarray  # ordinary (P2-P4) tickets
    p1: np.ndarray  # P1 incidents
    cs_touch: np.ndarray  # CS-initiated activities
    cu_touch: np.ndarray  # customer-initiated activities
    review: np.ndarray  # 0 none, 1 QBR, 2 EBR
    nps: np.ndarray  # NPS score (nan: no response)
    inv_day: np.ndarray  # invoice issue day (-1: none)
    inv_amount: np.ndarray
    inv_paid_after: np.ndarray  # days from issue to payment (-1: never paid)
    late: np.ndarray  # invoice paid late or never
    renewal_day: np.ndarray  # -1: no renewal this month
    contraction: np.ndarray  # ARR removed at the renewal (<= 0)
    exp_day: np.ndarray  # expansion day (-1: none)
    exp_arr: np.ndarray
    exp_seats: np.ndarray  # seats the expansion added
    exp_old_max: np.ndarray  # user slots that existed before the expansion
    exp_new_max: np.ndarray
    advocacy: np.ndarray
    gmv: np.ndarray  # business outcome (nan: none)
    sponsor_ok: np.ndarray  # sponsor in place all month
    sponsor_gen: np.ndarray  # which sponsor (generation) is in place
    champion_ok: np.ndarray  # original champion in place all month

    @classmethod
    def empty(cls, n: int, months: int) -> History:
        floats = {"frac", "h", "risk", "nps", "inv_amount", "contraction", "exp_arr", "gmv"}
        bools = {"late", "sponsor_ok", "champion_ok"}
        minus = {"inv_day", "inv_paid_after", "renewal_day", "exp_day"}
        out: dict[str, np.ndarray] = {}
        for f in fields(cls):
            dtype = float if f.name in floats else bool if f.name in bools else np.int64
            out[f.name] = np.full((n, months), -1 if f.name in minus else 0, dtype=dtype)
        out["nps"][:] = np.nan
        out["gmv"][:] = np.nan
        return cls(**out)


@dataclass
class Simulation:
    """Everything the row builders need from one simulated chunk."""

    hist: History
    milestones: Milestones
    churn_day: np.ndarray  # NO_DAY when the account did not churn
    arr: np.ndarray  # ARR at the end (or at churn)
    seats: np.ndarray  # licensed seats at the end (or at churn)
    seats_max: np.ndarray  # user slots ever created
    sponsor_created: np.ndarray  # (n, generations) day numbers, -1: no such sponsor
    sponsor_departed: np.ndarray  # (n, generations) day numbers, -1: still there
    champion_departed: np.ndarray  # day number, -1: still there


class _Sim:
    def __init__(self, pop: Population, cal: Calendar, rng: np.random.Generator) -> None:
        n = pop.n
        self.pop, self.cal, self.rng, self.n = pop, cal, rng, n
        self.hist = History.empty(n, cal.n_months)
        self.ms = plan_milestones(pop, cal, rng)
        self.h, self.mu, self.shock = pop.h0.copy(), pop.mu.copy(), np.zeros(n)
        self.seats, self.seats_max = pop.seats.copy(), pop.seats.copy()
        self.arr = (pop.seats * pop.seat_price).astype(float)
        self.churn_day = np.full(n, NO_DAY, dtype=np.int64)
        self.last_nps, self.last_nps_month = np.full(n, np.nan), np.full(n, -99)
        self.sponsor_present, self.champion_present = np.ones(n, bool), np.ones(n, bool)
        self.sponsor_gen, self.sponsor_return = np.zeros(n, np.int64), np.full(n, -1)
        self.sponsor_created = np.full((n, SPONSOR_GENERATIONS), -1, dtype=np.int64)
        self.sponsor_created[:, 0] = pop.start_day
        self.sponsor_departed = np.full((n, SPONSOR_GENERATIONS), -1, dtype=np.int64)
        self.champion_departed = np.full(n, -1, dtype=np.int64)

    def run(self) -> Simulation:
        for j in range(self.cal.n_months):
            self._step(j)
        return Simulation(
            self.hist, self.ms, self.churn_day, np.round(self.arr, 2), self.seats,
            self.seats_max, self.sponsor_created, self.sponsor_departed, self.champion_departed,
        )

    def _step(self, j: int) -> None:
        risk, observed = self._risk(j)
        self.hist.risk[:, j] = observed
        if self.cal.in_window(j):
            self._churn_or_renew(j, risk)
        lo, hi = self._interval(j)
        self._return_sponsors(j, lo, hi)
        self._evolve(j)
        self._behave(j, lo, hi, observed)
        self._people(j, lo, hi)
        self._expand(j, lo, hi)

    # --- what a CSM can see at the start of month j -------------------------------------

    def _usage_drop(self, j: int) -> np.ndarray:
        if j < 6:
            return np.zeros(self.n)
        use, frac = self.hist.usage, self.hist.frac
        f_last, f_prev = frac[:, j - 3:j].sum(1), frac[:, j - 6:j - 3].sum(1)
        last = use[:, j - 3:j].sum(1) / np.maximum(f_last, 1e-9)
        prev = use[:, j - 6:j - 3].sum(1) / np.maximum(f_prev, 1e-9)
        drop = np.clip(np.log((prev + 1.0) / (last + 1.0)), 0.0, 2.5)
        return np.where((f_last > 2.5) & (f_prev > 2.5), drop, 0.0)

    def _risk(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(hazard logit offset, the part of it a CSM can see) at the start of month j."""
        recent = self.last_nps_month >= j - 9
        late = self.hist.late[:, max(j - 8, 0):max(j - 1, 0)].sum(1)
        observed = (
            W_USAGE_DROP * self._usage_drop(j)
            + W_DETRACTOR * (recent & (self.last_nps <= 6))
            + W_PROMOTER * (recent & (self.last_nps >= 9))
            + W_PAYMENT * np.minimum(late, 2)
            + W_SPONSOR * ~self.sponsor_present
            + W_STALLED * self.ms.stalled(int(self.cal.lo[j]))
        )
        hidden = W_LATENT * self.h + self.pop.frailty + SEGMENT_RISK[self.pop.segment]
        return observed + hidden, observed

    # --- contract events ------------------------------------------------------------------

    def _churn_or_renew(self, j: int, risk: np.ndarray) -> None:
        pop, cal, rng = self.pop, self.cal, self.rng
        alive = (self.churn_day == NO_DAY) & (pop.start_day < cal.lo[j] - 45)
        k = cal.month[j] - pop.start_month
        anniv = same_day_in_month(np.full(self.n, cal.month[j]), pop.dom)
        renewal = alive & (k > 0) & (k % 12 == 0) & (anniv >= cal.lo[j]) & (anniv < cal.hi[j])
        base = np.where(renewal, RENEWAL_BASE, MIDTERM_BASE)
        churn = alive & (rng.random(self.n) < sigmoid(base + risk))
        mid = cal.lo[j] + np.floor(rng.random(self.n) * (cal.hi[j] - cal.lo[j])).astype(np.int64)
        self.churn_day = np.where(churn, np.where(renewal, anniv, mid), self.churn_day)
        renewed = renewal & ~churn
        self.hist.renewal_day[:, j] = np.where(renewed, anniv, -1)
        self._contract(j, renewed, risk)

    def _contract(self, j: int, renewed: np.ndarray, risk: np.ndarray) -> None:
        """Some risky accounts renew with fewer seats."""
        shrink = renewed & (self.seats > 1) & (self.rng.random(self.n) < sigmoid(-2.6 + risk))
        cut = np.maximum(1, np.round(self.seats * self.rng.uniform(0.15, 0.4, self.n)))
        cut = np.where(shrink, np.minimum(cut, self.seats - 1), 0).astype(np.int64)
        change = -cut * self.pop.seat_price
        self.seats -= cut
        self.arr += change
        self.hist.contraction[:, j] = change

    def _interval(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        lo = np.maximum(self.cal.lo[j], self.pop.start_day)
        hi = np.minimum(self.cal.hi[j], self.churn_day)
        hi = np.maximum(hi, lo)
        self.hist.lo[:, j], self.hist.hi[:, j] = lo, hi
        self.hist.frac[:, j] = (hi - lo) / self.cal.full_days[j]
        return lo, hi

    def _random_day(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return lo + np.floor(self.rng.random(self.n) * (hi - lo)).astype(np.int64)

    # --- latent state ---------------------------------------------------------------------

    def _evolve(self, j: int) -> None:
        """Latent health drifts towards a long-run level that itself takes hits."""
        rng, n = self.rng, self.n
        hit = rng.random(n) < 0.012
        lift = rng.random(n) < 0.006
        self.mu += 0.04 * (self.pop.mu - self.mu)
        self.mu += lift * rng.uniform(0.3, 0.8, n) - hit * rng.uniform(0.6, 1.4, n)
        self.h += 0.2 * (self.mu - self.h) + rng.normal(0.0, 0.25, n) + self.shock
        self.shock = np.zeros(n)
        self.hist.h[:, j] = self.h

    # --- visible behaviour ----------------------------------------------------------------

    def _behave(self, j: int, lo: np.ndarray, hi: np.ndarray, observed: np.ndarray) -> None:
        active = hi > lo
        frac = self.hist.frac[:, j]
        self._usage(j, active, frac)
        self._support(j, frac)
        self._touches(j, active, frac, observed)
        self._survey(j, active)
        self._billing(j, lo, hi)
        self._advocacy_and_gmv(j, active, hi, frac)

    def _usage(self, j: int, active: np.ndarray, frac: np.ndarray) -> None:
        pop, rng = self.pop, self.rng
        util = sigmoid(1.0 + 1.5 * self.h)
        users = np.where(active, rng.binomial(self.seats, util), 0)
        rate = USER_EVENTS[pop.segment] * np.exp(0.25 * self.h + 0.2 * pop.engage)
        self.hist.seats[:, j], self.hist.users[:, j] = self.seats, users
        self.hist.usage[:, j] = rng.poisson(users * rate * frac)

    def _support(self, j: int, frac: np.ndarray) -> None:
        """Ordinary tickets come from engaged users; P1 incidents hurt health."""
        users = self.hist.users[:, j]
        ordinary = TICKETS_PER_USER * users * np.exp(0.5 * self.pop.engage)
        self.hist.tickets[:, j] = self.rng.poisson(ordinary * frac)
        p1 = self.rng.poisson(P1_RATE[self.pop.segment] * frac)
        self.hist.p1[:, j] = p1
        self.shock -= 0.5 * p1
        self.mu -= 0.1 * p1

    def _touches(self, j: int, active: np.ndarray, frac: np.ndarray, observed: np.ndarray) -> None:
        """CSMs reach out more to accounts that look at risk; outreach helps a little."""
        pop, rng = self.pop, self.rng
        k = self.cal.month[j] - pop.start_month
        renewal_soon = (k > 0) & (k % 12 >= 9)
        cs_rate = CS_TOUCHES[pop.segment] * (1 + 0.9 * np.maximum(observed, 0) + 0.5 * renewal_soon)
        cs = rng.poisson(cs_rate * frac)
        cu_rate = CUSTOMER_TOUCHES[pop.segment] * np.exp(0.4 * self.h + 0.4 * pop.engage)
        self.hist.cs_touch[:, j], self.hist.cu_touch[:, j] = cs, rng.poisson(cu_rate * frac)
        self.shock += 0.02 * np.minimum(cs, 5)
        cadence = REVIEW_CADENCE[pop.segment]
        qbr = (cadence > 0) & (k > 0) & (k % np.maximum(cadence, 1) == 0)
        ebr = (cadence > 0) & (k > 0) & (k % 12 == 10)
        held = active & (rng.random(self.n) < sigmoid(1.5 + self.h))
        self.hist.review[:, j] = np.where(held & ebr, 2, np.where(held & qbr, 1, 0))

    def _survey(self, j: int, active: np.ndarray) -> None:
        """NPS roughly twice a year; the score reflects latent health."""
        due = (self.cal.month[j] - self.pop.survey_phase) % 6 == 0
        answer = active & due & (self.rng.random(self.n) < 0.65)
        score = np.clip(np.round(7.0 + 2.0 * self.h + self.rng.normal(0, 1.4, self.n)), 0, 10)
        self.hist.nps[:, j] = np.where(answer, score, np.nan)
        self.last_nps = np.where(answer, score, self.last_nps)
        self.last_nps_month = np.where(answer, j, self.last_nps_month)

    def _billing(self, j: int, lo: np.ndarray, hi: np.ndarray) -> None:
        pop, rng, n = self.pop, self.rng, self.n
        k = self.cal.month[j] - pop.start_month
        day = same_day_in_month(np.full(n, self.cal.month[j]), pop.dom)
        issue = (k >= 0) & (~pop.annual | (k % 12 == 0)) & (day >= lo) & (day < hi)
        late = issue & (rng.random(n) < sigmoid(-2.4 - 1.4 * self.h))
        never = late & (rng.random(n) < sigmoid(-1.2 - 1.2 * self.h))
        after = np.where(late, 31 + np.round(rng.exponential(20.0, n)), rng.integers(2, 30, n))
        hist = self.hist
        hist.inv_day[:, j] = np.where(issue, day, -1)
        hist.inv_amount[:, j] = np.round(np.where(pop.annual, self.arr, self.arr / 12), 2)
        hist.inv_paid_after[:, j] = np.where(never, -1, after)
        hist.late[:, j] = late

    def _advocacy_and_gmv(
        self, j: int, active: np.ndarray, hi: np.ndarray, frac: np.ndarray
    ) -> None:
        rng, n = self.rng, self.n
        rate = 0.04 * np.exp(1.5 * (self.h - 1.0))
        self.hist.advocacy[:, j] = rng.poisson(rate * frac)
        month_end = active & (hi == self.cal.hi[j]) & (frac > 0.3)
        level = np.exp(0.3 * self.h + 0.005 * j + rng.normal(0.0, 0.08, n)) * np.minimum(frac, 1)
        self.hist.gmv[:, j] = np.where(month_end, np.round(self.pop.gmv_base * level, 2), np.nan)

    # --- people -----------------------------------------------------------------------------

    def _return_sponsors(self, j: int, lo: np.ndarray, hi: np.ndarray) -> None:
        """A replacement sponsor is named some months after a departure."""
        back = (self.sponsor_return == j) & (hi > lo)
        day = self._random_day(lo, hi)
        self.sponsor_gen = np.where(back, self.sponsor_gen + 1, self.sponsor_gen)
        rows = np.flatnonzero(back)
        self.sponsor_created[rows, self.sponsor_gen[rows]] = day[rows]
        self.hist.sponsor_gen[:, j] = self.sponsor_gen
        self.sponsor_present |= back
        self.sponsor_return = np.where(self.sponsor_return == j, -1, self.sponsor_return)
        self.hist.sponsor_ok[:, j] = self.sponsor_present & ~back

    def _people(self, j: int, lo: np.ndarray, hi: np.ndarray) -> None:
        """Sponsors and champions leave (mostly for their own reasons); health takes a hit."""
        rng, n = self.rng, self.n
        active = hi > lo
        gone = active & self.hist.sponsor_ok[:, j] & (rng.random(n) < 0.011 * np.exp(-0.3 * self.h))
        rows = np.flatnonzero(gone)
        self.sponsor_departed[rows, self.sponsor_gen[rows]] = self._random_day(lo, hi)[rows]
        self.sponsor_present &= ~gone
        replace = gone & (rng.random(n) < 0.6) & (self.sponsor_gen < SPONSOR_GENERATIONS - 1)
        self.sponsor_return = np.where(replace, j + rng.integers(1, 5, n), self.sponsor_return)
        left = active & self.champion_present & (rng.random(n) < 0.012)
        self.champion_departed = np.where(left, self._random_day(lo, hi), self.champion_departed)
        self.champion_present &= ~left
        self.shock -= 0.5 * gone + 0.3 * left
        self.hist.sponsor_ok[:, j] &= ~gone
        self.hist.champion_ok[:, j] = self.champion_present

    def _expand(self, j: int, lo: np.ndarray, hi: np.ndarray) -> None:
        """Healthy accounts that use every licensed seat buy more seats."""
        rng, n = self.rng, self.n
        full = (self.hist.frac[:, j] > 0.9) & (self.churn_day == NO_DAY)
        tenure = self.cal.lo[j] - self.pop.start_day >= 90
        ready = full & tenure & (self.hist.users[:, j] >= self.seats) & (self.h > 0.3)
        grow = ready & (rng.random(n) < 0.08)
        added = np.maximum(1, np.round(self.seats * rng.uniform(0.15, 0.5, n))).astype(np.int64)
        added = np.where(grow, added, 0)
        hist = self.hist
        hist.exp_day[:, j] = np.where(grow, self._random_day(lo, hi), -1)
        hist.exp_arr[:, j] = added * self.pop.seat_price
        hist.exp_seats[:, j] = added
        hist.exp_old_max[:, j] = self.seats_max
        self.seats += added
        self.arr += added * self.pop.seat_price
        self.seats_max = np.maximum(self.seats_max, self.seats)
        hist.exp_new_max[:, j] = self.seats_max


def simulate(pop: Population, cal: Calendar, rng: np.random.Generator) -> Simulation:
    """Run the behaviour model for one chunk of accounts."""
    return _Sim(pop, cal, rng).run()
