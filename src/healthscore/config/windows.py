"""Parse durations such as ``30d``, ``12 weeks``, ``3 months``, ``1 quarter``."""

from __future__ import annotations

import re

from healthscore.config.model import ALL_TIME, Window

_UNITS = {
    "d": ("days", 1), "day": ("days", 1), "days": ("days", 1),
    "w": ("days", 7), "week": ("days", 7), "weeks": ("days", 7),
    "m": ("months", 1), "month": ("months", 1), "months": ("months", 1),
    "q": ("months", 3), "quarter": ("months", 3), "quarters": ("months", 3),
    "y": ("months", 12), "year": ("months", 12), "years": ("months", 12),
}
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")
HINT = "Write a number and a unit, e.g. '30d', '12 weeks', '3 months', '1 quarter', or 'all'."


def parse_window(text: str | None) -> Window:
    if text is None or str(text).strip().lower() == "all":
        return ALL_TIME
    match = _PATTERN.match(str(text).lower())
    if not match or match.group(2) not in _UNITS or int(match.group(1)) == 0:
        raise ValueError(f"is not a duration: {text!r}. {HINT}")
    unit, factor = _UNITS[match.group(2)]
    n = int(match.group(1)) * factor
    label = str(text).strip()
    return Window(days=n, label=label) if unit == "days" else Window(months=n, label=label)


def parse_days(text: str) -> int:
    """A duration that must be a whole number of days (months count as 30 days)."""
    window = parse_window(text)
    if window.unbounded:
        raise ValueError(
            f"must be a finite duration. Got {text!r}. Write a number and a unit, e.g. '1d', "
            f"'30d', '12 weeks', '3 months'."
        )
    return window.days + 30 * window.months


CADENCE_DAYS = {"hourly": 1, "daily": 1, "weekly": 7, "monthly": 31}


def stale_after_days(refresh: str | None, stale_after: str | None) -> int | None:
    """How old a source's newest row may be before its measures count as missing."""
    if stale_after is not None:
        return parse_days(stale_after)
    if refresh is None:
        return None
    if refresh in CADENCE_DAYS:
        return 2 * CADENCE_DAYS[refresh]
    return 2 * parse_days(refresh)
