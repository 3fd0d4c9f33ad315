"""Module marks (seed 002): a CSM may always mark one module of an account red, yellow or
green by judgement, with a reason, a note and an expiry, even without a CTA. The mark decides
the module's colour from the day it is set until it is cleared or its expiry day, in every
snapshot scored from then on (and never in one before: the history stays as it was). What the
module's colour was when it was marked is kept, so validation can tell who was right."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from healthscore.errors import InvalidActionError, NotFoundError
from healthscore.tables import MARK_COLOURS, ModuleMark
from healthscore.workflow.base import SYSTEM, Service, row_dict

MARK_REASONS = ("renewal_risk", "financial_trouble", "reorganisation", "sponsor_left",
                "ebr_refused", "not_ready", "known_issue", "relationship", "other")


class MarkService(Service):
    """Mark a module, clear a mark, lapse marks past their expiry; list them."""

    def mark_module(self, account_id: str, module: str, colour: str, *, actor: str,
                    reason_code: str, note: str, expires_on: date,
                    version: int | None = None) -> dict[str, Any]:
        account = self.account(account_id)
        modules = self.modules(account.get("scorecard"))
        if module not in modules:
            raise InvalidActionError(
                f"module: {account_id}'s scorecard has no module {module!r}. "
                f"Modules: {', '.join(modules)}.")
        if colour not in MARK_COLOURS:
            raise InvalidActionError(
                f"colour: must be one of {', '.join(MARK_COLOURS)}. Got {colour!r}.")
        if reason_code not in MARK_REASONS:
            raise InvalidActionError(
                f"reason_code: must be one of {', '.join(MARK_REASONS)}. Got {reason_code!r}.")
        if not note.strip():
            raise InvalidActionError("note: say why the module is this colour.")
        if expires_on <= self.today:
            raise InvalidActionError(f"expires_on: {expires_on} is not in the future. "
                                     f"A mark needs an expiry after today ({self.today}).")
        what = f"the mark of {account_id}'s {module}"
        with self._commit_guard(what), self.store.session() as s:
            actor = self._actor(s, actor, account_id=account_id)
            old = self._active(s, account_id, module)
            if old is not None:
                self._check_version(old, version, what)
                before = row_dict(old)
                self._end(old, actor, "replaced")
                self._audit(s, actor, "module_mark", old.id, "replaced", before, row_dict(old))
            for expired in self._expired(s, account_id, module):
                self.lapse(s, expired.id, SYSTEM)
            s.flush()  # the one open mark ends before the new one is written
            # a replacement made meanwhile is a conflict for whoever saw the mark before it
            m = ModuleMark(version=old.version if old is not None else 1,
                           account_id=account_id, module=module, colour=colour,
                           reason_code=reason_code, note=note, expires_on=expires_on,
                           set_by=actor, set_at=self.now(),
                           system_colour=_text(account.get(f"c__{module}")),
                           as_of=self.snapshots.latest())
            s.add(m)
            s.flush()
            self._audit(s, actor, "module_mark", m.id, "set", None, row_dict(m))
            self._timeline(s, account_id, "module_marked", actor,
                           f"{modules[module]} marked {colour} until {expires_on} "
                           f"({reason_code}): {note}", mark_id=m.id, module=module,
                           system_colour=m.system_colour)
            return row_dict(m)

    def clear_mark(self, account_id: str, module: str, *, actor: str,
                   note: str = "") -> dict[str, Any]:
        with self._commit_guard(f"the mark of {account_id}'s {module}"), \
                self.store.session() as s:
            actor = self._actor(s, actor, account_id=account_id)
            m = self._active(s, account_id, module)
            if m is None:
                raise NotFoundError(f"account {account_id!r} has no active mark on {module!r}.")
            before = row_dict(m)
            self._end(m, actor, "cleared")
            self._audit(s, actor, "module_mark", m.id, "cleared", before, row_dict(m))
            self._timeline(s, account_id, "module_mark_cleared", actor,
                           f"Mark of {module} cleared" + (f": {note}" if note else ""),
                           mark_id=m.id, module=module)
            return row_dict(m)

    def marks(self, account_id: str | None = None,
              active_only: bool = True) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(ModuleMark).order_by(ModuleMark.id)
            if account_id is not None:
                q = q.where(ModuleMark.account_id == account_id)
            if active_only:
                q = q.where(ModuleMark.ended_at.is_(None), ModuleMark.expires_on > self.today)
            return [row_dict(m) for m in s.scalars(q)]

    def review_marks(self) -> list[dict[str, Any]]:
        """Open marks that make a module red or yellow, red first, then oldest first: what the
        review meeting looks at beside flagged and escalated CTAs (seed 002: the CSM may always
        flag a module, with or without a CTA)."""
        order = {"red": 0, "yellow": 1}
        marks = [m for m in self.marks() if m["colour"] in order]
        return sorted(marks, key=lambda m: (order[m["colour"]], m["set_at"], m["id"]))

    def lapsing_marks(self) -> list[int]:
        with self.store.session() as s:
            q = select(ModuleMark.id).where(ModuleMark.ended_at.is_(None),
                                            ModuleMark.expires_on <= self.today)
            return list(s.scalars(q))

    def lapse(self, s: Session, mark_id: int, actor: str) -> None:
        m = s.get(ModuleMark, mark_id)
        if m is None or m.ended_at is not None:
            return
        before = row_dict(m)
        self._end(m, actor, "lapsed")
        self._audit(s, actor, "module_mark", m.id, "lapsed", before, row_dict(m))
        self._timeline(s, m.account_id, "module_mark_lapsed", actor,
                       f"Mark of {m.module} expired on {m.expires_on}", mark_id=m.id,
                       module=m.module)

    def modules(self, scorecard: str | None) -> dict[str, str]:
        """The modules (every group, by path) of ``scorecard`` with their labels."""
        cards = [sc for sc in self.config.all_scorecards if sc.name == scorecard]
        card = cards[0] if cards else self.config.scorecards[-1]
        return {g.path: g.label for g in card.all_groups()}

    def _end(self, m: ModuleMark, actor: str, reason: str) -> None:
        """End a mark; its version moves on (the store checks it: one writer wins)."""
        m.ended_at, m.ended_by, m.end_reason = self.now(), actor, reason
        m.version = m.version + 1

    def _active(self, s: Session, account_id: str, module: str) -> ModuleMark | None:
        q = select(ModuleMark).where(ModuleMark.account_id == account_id,
                                     ModuleMark.module == module, ModuleMark.ended_at.is_(None),
                                     ModuleMark.expires_on > self.today)
        return s.scalar(q.order_by(ModuleMark.id.desc()))

    def _expired(self, s: Session, account_id: str, module: str) -> list[ModuleMark]:
        """Open marks past their expiry, not yet lapsed by an apply."""
        q = select(ModuleMark).where(ModuleMark.account_id == account_id,
                                     ModuleMark.module == module, ModuleMark.ended_at.is_(None),
                                     ModuleMark.expires_on <= self.today)
        return list(s.scalars(q))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
