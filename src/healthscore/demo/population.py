"""Static account attributes and the hidden (latent) traits the behaviour model runs on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.demo.calendar import Calendar, month_of, month_start

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
SEGMENT_SHARE = (0.55, 0.30, 0.15)
INDUSTRIES = (
    "Retail", "E-commerce", "Manufacturing", "Healthcare",
    "Financial Services", "Logistics", "Software", "Education",
)
REGIONS = ("North America", "EMEA", "APAC", "LATAM")
REGION_SHARE = (0.40, 0.35, 0.15, 0.10)
PLANS = ("Starter", "Growth", "Professional", "Enterprise")
# probability of each plan, per segment
PLAN_SHARE = np.array([[0.6, 0.4, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.0, 0.0, 0.2, 0.8]])
CSMS = (
    "Anna Kowalska", "Ivan Petrov", "Li Wei", "Maria Garcia", "James Smith", "Fatima Khan",
    "Lars Andersen", "Aiko Tanaka", "Pierre Dubois", "Chiara Rossi", "Tomasz Nowak",
    "Priya Sharma",
)
_NAME_A = (
    "Blue", "Northern", "Bright", "Silver", "Rapid", "Green", "Summit", "Atlas", "Nova",
    "Prime", "Urban", "Coastal", "Golden", "Iron", "Crystal", "Vertex",
)
_NAME_B = (
    "Logistics", "Foods", "Systems", "Retail", "Health", "Labs", "Partners", "Traders",
    "Works", "Goods", "Media", "Motors",
)
_NAME_C = ("Ltd", "GmbH", "Inc", "S.A.", "AB", "Sp. z o.o.", "BV", "LLC")

SEAT_BASE = np.array([5.0, 15.0, 45.0])  # typical licensed seats per segment
SEAT_PRICE = np.array([900.0, 1500.0, 2400.0])  # yearly list price per seat
ANNUAL_SHARE = np.array([0.30, 0.55, 0.85])  # share billed yearly (others monthly)
HEALTH_BY_SEGMENT = np.array([-0.10, 0.05, 0.20])
MAX_TENURE_DAYS = 4 * 365 + 1
MIN_TENURE_DAYS = 60


@dataclass
class Population:
    """One chunk of accounts: what the CRM knows plus the hidden traits."""

    gidx: np.ndarray  # global account number (0-based)
    account_id: pa.Array
    name: pa.Array
    segment: np.ndarray
    industry: np.ndarray
    region: np.ndarray
    plan: np.ndarray
    csm: np.ndarray
    seats: np.ndarray  # licensed seats at start
    modules: np.ndarray
    seat_price: np.ndarray
    annual: np.ndarray  # billed yearly
    start_day: np.ndarray
    start_month: np.ndarray
    dom: np.ndarray  # day of month of the start (contract anniversary)
    survey_phase: np.ndarray  # NPS survey months are phase, phase + 6, ...
    mu: np.ndarray  # hidden long-run health
    engage: np.ndarray  # hidden engagement propensity (tickets, customer-initiated contact)
    frailty: np.ndarray  # hidden, unexplained churn propensity
    h0: np.ndarray  # hidden health when the simulation starts
    gmv_base: np.ndarray  # monthly business outcome (GMV) at neutral health

    @property
    def n(self) -> int:
        return len(self.gidx)


def _pick(rng: np.random.Generator, n: int, probs: np.ndarray) -> np.ndarray:
    """One category per row, ``probs`` either shared (k,) or per row (n, k)."""
    cum = np.cumsum(np.atleast_2d(probs), axis=1)
    u = rng.random(n)[:, None]
    return np.minimum((u > cum).sum(axis=1), cum.shape[1] - 1)


def id_strings(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` followed by zero-padded ``numbers`` (vectorised in Arrow)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _company_names(rng: np.random.Generator, n: int) -> pa.Array:
    parts = [pa.array(words).take(pa.array(rng.integers(0, len(words), n)))
             for words in (_NAME_A, _NAME_B, _NAME_C)]
    return pc.binary_join_element_wise(*parts, " ")


def _commercials(rng: np.random.Generator, seg: np.ndarray) -> dict[str, np.ndarray]:
    n = len(seg)
    seats = np.round(np.exp(rng.normal(np.log(SEAT_BASE[seg]), 0.35)))
    low = np.array([1, 2, 3])[seg]
    modules = low + rng.binomial(np.array([2, 3, 3])[seg], np.array([0.4, 0.4, 0.5])[seg])
    price = SEAT_PRICE[seg] * np.exp(rng.normal(0.0, 0.2, n)) * (0.85 + 0.1 * modules)
    return {
        "seats": np.maximum(seats, 2).astype(np.int64),
        "modules": np.minimum(modules, 6).astype(np.int64),
        "seat_price": np.round(price, 2),
        "annual": rng.random(n) < ANNUAL_SHARE[seg],
        "plan": _pick(rng, n, PLAN_SHARE[seg]),
    }


def _latent(rng: np.random.Generator, seg: np.ndarray) -> dict[str, np.ndarray]:
    n = len(seg)
    z = rng.normal(0.0, 1.0, n)
    mu = 0.35 + HEALTH_BY_SEGMENT[seg] + 0.55 * z
    return {
        "mu": mu,
        "engage": 0.6 * z + 0.8 * rng.normal(0.0, 1.0, n),
        "frailty": rng.normal(0.0, 0.5, n),
        "h0": mu + rng.normal(0.0, 0.4, n),
    }


def _start_days(rng: np.random.Generator, n: int, cal: Calendar) -> np.ndarray:
    return cal.end_day - rng.integers(MIN_TENURE_DAYS, MAX_TENURE_DAYS + 1, n)


def build_population(first: int, n: int, cal: Calendar, rng: np.random.Generator) -> Population:
    """Accounts ``first`` .. ``first + n - 1`` of the data set."""
    gidx = np.arange(first, first + n, dtype=np.int64)
    seg = _pick(rng, n, np.array(SEGMENT_SHARE))
    start_day = _start_days(rng, n, cal)
    start_month = month_of(start_day)
    com = _commercials(rng, seg)
    lat = _latent(rng, seg)
    gmv = com["seats"] * com["seat_price"] * np.exp(rng.normal(np.log(2.0), 0.5, n))
    return Population(
        gidx=gidx, account_id=id_strings("ACC-", gidx + 1, 6), name=_company_names(rng, n),
        segment=seg, industry=rng.integers(0, len(INDUSTRIES), n),
        region=_pick(rng, n, np.array(REGION_SHARE)), plan=com["plan"],
        csm=rng.integers(0, len(CSMS), n), seats=com["seats"], modules=com["modules"],
        seat_price=com["seat_price"], annual=com["annual"], start_day=start_day,
        start_month=start_month, dom=start_day - month_start(start_month) + 1,
        survey_phase=rng.integers(0, 6, n), mu=lat["mu"], engage=lat["engage"],
        frailty=lat["frailty"], h0=lat["h0"], gmv_base=np.round(gmv, 2),
    )
