"""Overrides: a CSM sets an account's band or score with a reason code, a note and an expiry.
The system score stays beside it; "final" is the override while it is active. Rules never
change it; it lapses at its expiry with a timeline entry. What the system said when it was
set is stored, so validation can later tell whether the override was right."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from healthscore.errors import InvalidActionError, NotFoundError
from healthscore.store.report import band_for
from healthscore.tables import Override
from healthscore.workflow.base import SYSTEM, Service, row_dict

REASON_CODES = ("relationship", "data_gap", "known_issue", "business_change", "renewal_signal", "other")


class OverrideService(Service):
    """Overrides: set, clear, lapse at expiry; the final score and band beside the system's."""

    def set_override(self, account_id: str, *, actor: str, reason_code: str, note: str,
                     expires_on: date, band: str | None = None, score: float | None = None,
                     version: int | None = None) -> dict[str, Any]:
        account = self.account(account_id)
        bands = self.band_names()
        if (band is None) == (score is None):
            raise InvalidActionError("override: give either a band or a score, not both or neither.")
        if band is not None and band not in bands:
            raise InvalidActionError(f"band: must be one of {', '.join(bands)}. Got {band!r}.")
        if score is not None and not 0 <= score <= 100:
            raise InvalidActionError(f"score: must be between 0 and 100. Got {score:g}.")
        if reason_code not in REASON_CODES:
            raise InvalidActionError(
                f"reason_code: must be one of {', '.join(REASON_CODES)}. Got {reason_code!r}.")
        if not note.strip():
            raise InvalidActionError("note: say why the system score is wrong for this account.")
        if expires_on <= self.today:
            raise InvalidActionError(f"expires_on: {expires_on} is not in the future. "
                                     f"An override needs an expiry after today ({self.today}).")
        with self._commit_guard(f"the override of {account_id}"), self.store.session() as s:
            actor = self._actor(s, actor, account_id=account_id)
            old = self._active(s, account_id)
            if old is not None:
                self._check_version(old, version, f"the override of {account_id}")
                before = row_dict(old)
                self._end(old, actor, "replaced")
                self._audit(s, actor, "override", old.id, "replaced", before, row_dict(old))
            for expired in s.scalars(select(Override.id).where(
                    Override.account_id == account_id, Override.ended_at.is_(None),
                    Override.expires_on <= self.today)).all():
                self.lapse(s, expired, SYSTEM)  # past its expiry, not yet lapsed by an apply
            s.flush()  # the one open override ends before the new one is written
            # the account's override version keeps counting across rows: a replacement made
            # meanwhile is a conflict for whoever saw the override before it
            o = Override(version=old.version if old is not None else 1, account_id=account_id,
                         band=band, score=score, reason_code=reason_code, note=note,
                         expires_on=expires_on, set_by=actor, set_at=self.now(),
                         system_score=_float(account.get("score")), system_band=account.get("band"),
                         as_of=self.snapshots.latest())
            s.add(o)
            s.flush()
            self._audit(s, actor, "override", o.id, "set", None, row_dict(o))
            what = f"band {band}" if band else f"score {score:g}"
            self._timeline(s, account_id, "override_set", actor,
                           f"Override to {what} until {expires_on} ({reason_code}): {note}",
                           override_id=o.id, system_band=o.system_band)
            return row_dict(o)

    def clear_override(self, account_id: str, *, actor: str, note: str = "") -> dict[str, Any]:
        with self._commit_guard(f"the override of {account_id}"), self.store.session() as s:
            actor = self._actor(s, actor, account_id=account_id)
            o = self._active(s, account_id)
            if o is None:
                raise NotFoundError(f"account {account_id!r} has no active override.")
            before = row_dict(o)
            self._end(o, actor, "cleared")
            self._audit(s, actor, "override", o.id, "cleared", before, row_dict(o))
            self._timeline(s, account_id, "override_cleared", actor,
                           "Override cleared" + (f": {note}" if note else ""), override_id=o.id)
            return row_dict(o)

    def overrides(self, active_only: bool = True) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(Override).order_by(Override.id)
            if active_only:
                q = q.where(Override.ended_at.is_(None), Override.expires_on > self.today)
            return [row_dict(o) for o in s.scalars(q)]

    def lapsing_overrides(self) -> list[int]:
        with self.store.session() as s:
            q = select(Override.id).where(Override.ended_at.is_(None), Override.expires_on <= self.today)
            return list(s.scalars(q))

    def lapse(self, s: Session, override_id: int, actor: str) -> None:
        o = s.get(Override, override_id)
        if o is None or o.ended_at is not None:
            return
        before = row_dict(o)
        self._end(o, actor, "lapsed")
        self._audit(s, actor, "override", o.id, "lapsed", before, row_dict(o))
        self._timeline(s, o.account_id, "override_lapsed", actor,
                       f"Override expired on {o.expires_on}; the system score applies again",
                       override_id=o.id)

    def final(self, account_id: str, account: dict[str, Any] | None = None) -> dict[str, Any]:
        """The system score and band beside the override; final = the override while active.
        ``account``: the account's :meth:`account` row, when the caller has it already."""
        account = account if account is not None else self.account(account_id)
        with self.store.session() as s:
            o = self._active(s, account_id)
            view = row_dict(o) if o is not None else None
        score, band = _float(account.get("score")), account.get("band")
        return {
            "account_id": account_id, "system_score": score, "system_band": band, "override": view,
            "final_score": view["score"] if view and view["score"] is not None else score,
            "final_band": (view["band"] if view and view["band"] else
                           band_for(self.config, account.get("scorecard"), float(view["score"])))
            if view else band,
        }

    def _end(self, o: Override, actor: str, reason: str) -> None:
        """End an override; its version moves on (the store checks it: one writer wins)."""
        o.ended_at, o.ended_by, o.end_reason = self.now(), actor, reason
        o.version = o.version + 1

    def _active(self, s: Session, account_id: str) -> Override | None:
        q = select(Override).where(Override.account_id == account_id, Override.ended_at.is_(None),
                                   Override.expires_on > self.today)
        return s.scalar(q.order_by(Override.id.desc()))

    def band_names(self) -> list[str]:
        names = [b.name for sc in self.config.scorecards for b in sc.bands]
        return list(dict.fromkeys(names)) or ["red", "yellow", "green"]

    def band_of(self, score: float | None) -> str | None:
        """The band of ``score`` on the default (last) scorecard."""
        return None if score is None else band_for(self.config, self.config.scorecards[-1].name, score)


def _float(v: Any) -> float | None:
    try:
        return None if v is None or v != v else float(v)
    except (TypeError, ValueError):
        return None
