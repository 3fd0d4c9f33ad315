"""Account attributes as they were on each as-of date, from an ``account_history`` source.

Each history row holds values from its ``valid_from`` day until the account's next row; a
blank cell means unchanged. As of D an attribute is the latest non-blank value of the rows
dated on or before D, through the same as-of rule as every other entity (a running arg-max
over the date grid). Where no row by D gives the attribute (no history for the account yet,
or the column never recorded), the accounts file's value is used, as without history; so a
history should start with each account's values on its start date."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.measures import asof
from healthscore.measures.parts import LATEST, MAX, Part

HISTORY = "account_history"


def column(name: str) -> str:
    return f"__h_{name}"


def history_parts(t: ir.Table, columns: list[str], grid: ir.Table) -> list[Part]:
    """One latest-value part per attribute column."""
    t = t.filter(t.account_id.notnull() & t.valid_from.notnull())
    ts = t.valid_from.cast("timestamp")
    parts = []
    for name in columns:
        rows = t.filter(t[name].notnull()).select("account_id", **{column(name): t[name], "__ts": ts})
        part = asof.latest_at(rows, grid, column(name), "__ts")
        parts.append(Part(part, {column(name): (LATEST, str(part[column(name)].type())),
                                 f"{column(name)}__ts": (MAX, "timestamp")}))
    return parts


def as_of(wide: ir.Table, columns: list[str]) -> dict[str, Any]:
    """The attribute columns of ``wide`` replaced by their values on each as-of date."""
    return {name: ibis.coalesce(wide[column(name)].cast(wide[name].type()), wide[name])
            for name in columns}
