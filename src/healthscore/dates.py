"""As-of date grids: one date, or every day / week / month between two dates."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from healthscore.errors import HealthScoreError

EVERY = ("day", "week", "month")


def parse(text: date | str, option: str) -> date:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise HealthScoreError(
            f"{option}: {text!r} is not a date. Write it as YYYY-MM-DD, e.g. 2026-10-31."
        ) from None


def minus_months(day: date, months: int, month_end: bool) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, last if month_end else min(day.day, last))


def date_grid(
    as_of: date | str | None, start: date | str | None, end: date | str | None, every: str
) -> list[date]:
    """The as-of dates of a run, oldest first. Steps are taken back from the end date."""
    if as_of is not None and (start is not None or end is not None):
        raise HealthScoreError("give either --as-of, or --from and --to, not both.")
    if start is None and end is None:
        return [parse(as_of, "--as-of") if as_of is not None else date.today()]
    if start is None:
        raise HealthScoreError("--to needs --from: the first as-of date of the range.")
    first = parse(start, "--from")
    last = parse(end, "--to") if end is not None else date.today()
    if first > last:
        raise HealthScoreError(
            f"--from {first} is after --to {last}. Swap them: --from is the earliest date."
        )
    if every not in EVERY:
        raise HealthScoreError(f"--every: must be one of {', '.join(EVERY)}. Got {every!r}.")
    return _steps(first, last, every)


def _steps(first: date, last: date, every: str) -> list[date]:
    out: list[date] = []
    month_end = last.day == calendar.monthrange(last.year, last.month)[1]
    i, day = 0, last
    while day >= first:
        out.append(day)
        i += 1
        if every == "month":
            day = minus_months(last, i, month_end)
        else:
            day = last - timedelta(days=i * (1 if every == "day" else 7))
    return sorted(out)
