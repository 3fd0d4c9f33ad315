"""Small vectorised helpers shared by the row builders: Arrow arrays, ids, random times."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.demo.calendar import DAY_US, HOUR_US

Columns = dict[str, pa.Array]
SECOND_US = 1_000_000
NULL_TS = np.iinfo(np.int64).min


def ts_array(us: np.ndarray) -> pa.Array:
    """Microsecond timestamps; ``NULL_TS`` becomes null."""
    us = np.asarray(us, dtype=np.int64)
    return pa.array(us, type=pa.timestamp("us"), mask=us == NULL_TS)


def date_array(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~np.asarray(valid)
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32(), mask=mask)


def float_array(values: np.ndarray) -> pa.Array:
    """Floats; NaN becomes null."""
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def take(
    vocab: Sequence[str] | pa.Array, idx: np.ndarray, valid: np.ndarray | None = None
) -> pa.Array:
    """Strings looked up by index; rows where ``valid`` is False are null."""
    table = vocab if isinstance(vocab, pa.Array) else pa.array(list(vocab), pa.string())
    mask = None if valid is None else ~np.asarray(valid)
    return table.take(pa.array(np.asarray(idx, dtype=np.int64), mask=mask))


def choice(rng: np.random.Generator, n: int, probs: Sequence[float]) -> np.ndarray:
    """``n`` draws of a category index with the given probabilities (vectorised)."""
    cum = np.cumsum(probs) / np.sum(probs)
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(probs) - 1)


def expand(counts: np.ndarray, first_month: int) -> tuple[np.ndarray, np.ndarray]:
    """(account, month) of each row, for ``counts[account, month]`` rows per cell.

    Months before ``first_month`` (the burn-in) are skipped.
    """
    counts = np.asarray(counts, dtype=np.int64).copy()
    counts[:, :first_month] = 0
    months = counts.shape[1]
    cell = np.repeat(np.arange(counts.size, dtype=np.int64), counts.ravel())
    return cell // months, cell % months


def cells(mask: np.ndarray, first_month: int) -> tuple[np.ndarray, np.ndarray]:
    """(account, month) of each True cell of ``mask`` from ``first_month`` on."""
    return expand(mask.astype(np.int64), first_month)


def random_times(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, business_hours: bool = False
) -> np.ndarray:
    """Whole-second timestamps uniformly in the days [lo, hi) (optionally 08:00-18:00)."""
    n = len(lo)
    if not business_hours:
        span = (hi - lo) * DAY_US
        return lo * DAY_US + (rng.random(n) * span).astype(np.int64) // SECOND_US * SECOND_US
    day = lo + np.floor(rng.random(n) * (hi - lo)).astype(np.int64)
    offset = 8 * HOUR_US + (rng.random(n) * 10 * HOUR_US).astype(np.int64)
    return day * DAY_US + offset // SECOND_US * SECOND_US


def sort_rows(cols: dict[str, np.ndarray], *keys: str) -> dict[str, np.ndarray]:
    """Rows of equal-length numpy columns, sorted by ``keys`` (first key most significant)."""
    order = np.lexsort(tuple(cols[k] for k in reversed(keys)))
    return {name: values[order] for name, values in cols.items()}


@dataclass
class Ids:
    """Running row numbers per id prefix, so ids stay unique across chunks."""

    width: int = 9
    next_number: dict[str, int] = field(default_factory=dict)

    def new(self, prefix: str, n: int) -> pa.Array:
        start = self.next_number.get(prefix, 1)
        self.next_number[prefix] = start + n
        numbers = pa.array(np.arange(start, start + n, dtype=np.int64))
        digits = pc.utf8_lpad(pc.cast(numbers, pa.string()), self.width, "0")
        return pc.binary_join_element_wise(prefix, digits, "")
