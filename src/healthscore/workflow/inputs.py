"""Manual inputs: the values CSMs enter for the project's manual measures (seed 001's CSM and
sales input, seed 002's "EBR refused", "financial trouble"...), per account, with who, when and
a note. Kept as entered, never changed; the measure reads the latest one at each as-of date
until it is older than the measure's max_age, through the same as-of rule as every measure."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select

from healthscore.errors import InvalidActionError
from healthscore.tables import ManualValue
from healthscore.workflow.base import Service, row_dict


class InputService(Service):
    """Enter a value for a manual measure; list what was entered."""

    def manual_measures(self) -> dict[str, dict[str, Any]]:
        """The manual measures a CSM may enter, by the name their values are stored under."""
        out: dict[str, dict[str, Any]] = {}
        for m in self.config.measures.values():
            if m.type == "manual":
                out[m.spec.name or m.name] = {"measure": m.name, "description": m.description,
                                              "min": m.spec.min, "max": m.spec.max,
                                              "max_age": m.spec.max_age}
        return out

    def enter_value(self, account_id: str, measure: str, value: float, *, actor: str,
                    note: str = "") -> dict[str, Any]:
        self.account_rows(account_id)  # 404 for an unknown account
        known = self.manual_measures()
        by_measure = {v["measure"]: k for k, v in known.items()}
        name = measure if measure in known else by_measure.get(measure)
        if name is None:
            raise InvalidActionError(
                f"measure: {measure!r} is no manual measure of the project. Manual measures: "
                f"{', '.join(sorted(known)) or 'none (add one: type: manual)'}.")
        spec = known[name]
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidActionError(f"value: must be a number. Got {value!r}.")
        low, high = spec["min"], spec["max"]
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidActionError(
                f"value: {name} takes {_range(low, high)}. Got {value:g}.")
        with self._commit_guard(f"a value for {account_id}"), self.store.session() as s:
            actor = self._actor(s, actor, account_id=account_id)
            row = ManualValue(account_id=account_id, measure=name, value=float(value),
                              note=note, entered_by=actor, entered_at=self.now())
            s.add(row)
            s.flush()
            self._audit(s, actor, "manual_value", row.id, "entered", None, row_dict(row))
            self._timeline(s, account_id, "manual_value", actor,
                           f"{name} = {value:g}" + (f": {note}" if note else ""),
                           measure=name, value=float(value))
            return row_dict(row)

    def entered_values(self, account_id: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = (select(ManualValue).where(ManualValue.account_id == account_id)
                 .order_by(ManualValue.id.desc()).limit(limit))
            return [row_dict(v) for v in s.scalars(q)]


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"values from {low:g} to {high:g}"
    return f"values of at least {low:g}" if low is not None else f"values up to {high:g}"
