"""The account timeline: notes and logged touches (calls, meetings, emails) beside everything
the workflow recorded (CTAs, tasks, overrides, band changes, plan changes), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from healthscore.errors import InvalidActionError
from healthscore.tables import TOUCHES, TimelineEntry
from healthscore.workflow.base import Service, row_dict


class TimelineService(Service):
    def log(self, account_id: str, kind: str, text: str, *, actor: str,
            at: datetime | None = None) -> dict[str, Any]:
        """Log a note or a touch; touches also feed the engagement measures (entity 'touches')."""
        self.account_rows(account_id)  # 404 for an unknown account
        if kind not in TOUCHES:
            raise InvalidActionError(f"kind: must be one of {', '.join(TOUCHES)}. Got {kind!r}.")
        if not text.strip():
            raise InvalidActionError("text: write what happened.")
        with self.store.session() as s:
            actor = self._actor(s, actor, account_id=account_id)
            self._timeline(s, account_id, kind, actor, text, at=at)
            s.flush()
            entry = s.scalar(select(TimelineEntry).order_by(TimelineEntry.id.desc()).limit(1))
            self._audit(s, actor, "timeline", entry.id if entry else "", "log", None,
                        row_dict(entry) if entry else None)
            return row_dict(entry) if entry else {}

    def timeline(self, account_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = (select(TimelineEntry).where(TimelineEntry.account_id == account_id)
                 .order_by(TimelineEntry.at.desc(), TimelineEntry.id.desc()).limit(limit))
            return [row_dict(e) for e in s.scalars(q)]
