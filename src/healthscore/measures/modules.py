"""What decides a module's colour besides its score, per account and as-of date (seed 002):
the module's open CTAs, those marked critical, and a CSM's mark of the module.

CTAs and marks come from the workflow store; each is a row that holds from one day until
another (opened until closed; marked critical until closed; marked until cleared or expired),
so they go through the same as-of rule as every measure (:func:`asof.deltas`): a CTA opened
after D never colours D.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from healthscore.measures import asof
from healthscore.measures.parts import SUM, Part

MARK_CODES = {"red": 1, "yellow": 2, "green": 3}  # a mark's colour as the number summed


def open_col(module: str) -> str:
    return f"k__open__{module}"


def critical_col(module: str) -> str:
    return f"k__critical__{module}"


def mark_col(module: str) -> str:
    return f"k__mark__{module}"


def is_module_column(name: str) -> bool:
    return name.startswith("k__")


def module_parts(ctas: ir.Table | None, marks: ir.Table | None, cta_modules: list[str],
                 mark_modules: list[str], grid: ir.Table) -> list[Part]:
    """Contributions of the modules' CTAs and marks; none for a table that is missing."""
    parts: list[Part] = []
    if ctas is not None and cta_modules:
        t = ctas.filter(ctas.account_id.notnull() & ctas.opened_at.notnull()
                        & ctas.module.isin(cta_modules))
        ended = t.closed_at.date()
        parts.append(_part(t, t.opened_at.date(), ended, open_col, cta_modules, t.module, grid))
        crit = t.filter(t.critical_at.notnull())
        parts.append(_part(crit, crit.critical_at.date(), crit.closed_at.date(), critical_col,
                           cta_modules, crit.module, grid))
    if marks is not None and mark_modules:
        t = marks.filter(marks.account_id.notnull() & marks.module.isin(mark_modules))
        # a mark holds from the day it is set until it is cleared or its expiry day
        until = ibis.least(t.expires_on, ibis.coalesce(t.ended_at.date(), t.expires_on))
        code = ibis.cases(*[(t.colour == c, n) for c, n in MARK_CODES.items()], else_=0)
        parts.append(_part(t, t.set_at.date(), until, mark_col, mark_modules, t.module, grid,
                           code))
    return parts


def _part(t: ir.Table, start: ir.DateValue, end: ir.DateValue, col: Callable[[str], str],
          modules: list[str], module: ir.StringValue, grid: ir.Table,
          value: ir.Value | None = None) -> Part:
    one = ibis.literal(1) if value is None else value
    values = {col(m): ibis.ifelse(module == m, one, 0).cast("float64") for m in modules}
    rows = t.select("account_id", start=start, end=end, **values)
    cols = list(values)
    return Part(asof.deltas(rows, grid, cols), {c: (SUM, "float64") for c in cols})
