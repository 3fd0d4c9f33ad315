"""Month grid and day arithmetic for the demo generator.

Dates are whole days since 1970-01-01 (int64) and timestamps microseconds since then, so
everything stays vectorised in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
EPOCH = date(1970, 1, 1)


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def month_of(days: np.ndarray) -> np.ndarray:
    """Absolute month (months since 1970-01) of each day number."""
    return np.asarray(days).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_start(months: np.ndarray) -> np.ndarray:
    """Day number of the first day of each absolute month."""
    as_month = np.asarray(months, dtype=np.int64).astype("datetime64[M]")
    return as_month.astype("datetime64[D]").astype(np.int64)


def days_in_month(months: np.ndarray) -> np.ndarray:
    months = np.asarray(months, dtype=np.int64)
    return month_start(months + 1) - month_start(months)


def same_day_in_month(months: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Day number of day-of-month ``dom`` in ``months``, clipped to the month's length."""
    return month_start(months) + np.minimum(dom, days_in_month(months)) - 1


def next_anniversary(
    start_month: np.ndarray, dom: np.ndarray, after_day: np.ndarray | int
) -> np.ndarray:
    """First yearly anniversary of a start date that falls strictly after ``after_day``."""
    after_month = month_of(np.asarray(after_day))
    years = np.maximum((after_month - start_month) // 12, 1)
    day = same_day_in_month(start_month + 12 * years, dom)
    late = day <= after_day
    return np.where(late, same_day_in_month(start_month + 12 * (years + 1), dom), day)


@dataclass(frozen=True)
class Calendar:
    """The simulated months: ``burn_in`` months before the data window, then the window."""

    end_day: int  # last day of the data window (inclusive)
    window_start: int  # first day of the data window
    burn_in: int  # simulated months before the window; nothing from them is written
    month: np.ndarray  # absolute month of each simulated month
    lo: np.ndarray  # first day of each simulated month (clipped to the window)
    hi: np.ndarray  # first day after each simulated month (clipped to the window)

    @property
    def n_months(self) -> int:
        return len(self.month)

    @property
    def full_days(self) -> np.ndarray:
        """Calendar length of each simulated month (unclipped)."""
        return days_in_month(self.month)

    def in_window(self, j: int) -> bool:
        return j >= self.burn_in


def build_calendar(end: date, months: int, burn_in: int = 6) -> Calendar:
    """The ``months`` months ending at ``end`` (inclusive), preceded by ``burn_in`` months."""
    if months < 1:
        raise ValueError("months must be at least 1")
    end_day = day_number(end)
    end_month = int(month_of(np.array([end_day]))[0])
    window_start = int(same_day_in_month(np.array([end_month - months]), np.array([end.day]))[0])
    window_start += 1
    first = int(month_of(np.array([window_start]))[0])
    grid = np.arange(first - burn_in, end_month + 1, dtype=np.int64)
    lo = month_start(grid)
    hi = month_start(grid + 1)
    windowed = grid >= first
    lo = np.where(windowed, np.maximum(lo, window_start), lo)
    hi = np.where(windowed, np.minimum(hi, end_day + 1), hi)
    return Calendar(end_day, window_start, burn_in, grid, lo, hi)
