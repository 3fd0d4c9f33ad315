"""The in-app inbox: what the notifications tell a user (CTAs given to them, escalations,
mentions in comments, CTAs and tasks due), kept in the store with a read flag. Each user
reads and marks only their own; another user's item is as unknown as a missing one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from healthscore.errors import InvalidActionError, NotFoundError
from healthscore.tables import InboxItem
from healthscore.workflow.base import Service, row_dict

MAX_PAGE = 200


class InboxService(Service):
    """Add to a user's inbox, read it (newest first, with the unread count), mark read."""

    def add(self, s: Session, user: str, event: str, text: str, *, account_id: str | None = None,
            cta_id: int | None = None) -> None:
        s.add(InboxItem(user=user, at=self.now(), event=event, text=text, account_id=account_id,
                        cta_id=cta_id, read_at=None))

    def inbox(self, user: str, *, unread_only: bool = False, page: int = 1,
              per_page: int = 50) -> dict[str, Any]:
        """``user``'s inbox, newest first and paged, with how many items are unread."""
        if page < 1 or not 1 <= per_page <= MAX_PAGE:
            raise InvalidActionError(f"page must be 1 or more and per_page between 1 and {MAX_PAGE}.")
        with self.store.session() as s:
            self._user(s, user)
            mine = select(InboxItem).where(InboxItem.user == user)
            if unread_only:
                mine = mine.where(InboxItem.read_at.is_(None))
            total = int(s.scalar(select(func.count()).select_from(mine.subquery())) or 0)
            rows = s.scalars(mine.order_by(InboxItem.id.desc())
                             .offset((page - 1) * per_page).limit(per_page))
            items = [row_dict(i) for i in rows]
            unread = self._unread(s, user)
        return {"user": user, "unread": unread, "total": total, "page": page, "per_page": per_page,
                "pages": max(1, -(-total // per_page)), "unread_only": unread_only, "items": items}

    def unread_count(self, user: str) -> int:
        with self.store.session() as s:
            return self._unread(s, user)

    @staticmethod
    def _unread(s: Session, user: str) -> int:
        q = select(func.count(InboxItem.id)).where(InboxItem.user == user, InboxItem.read_at.is_(None))
        return int(s.scalar(q) or 0)

    def mark_read(self, user: str, item_id: int) -> dict[str, Any]:
        """Mark one of ``user``'s items read (reading it again changes nothing)."""
        with self.store.session() as s:
            item = s.get(InboxItem, item_id)
            if item is None or item.user != user:
                raise NotFoundError(f"inbox item #{item_id}: {user} has no such item.")
            if item.read_at is None:
                item.read_at = self.now()
            s.flush()
            return {**row_dict(item), "unread": self._unread(s, user)}

    def mark_all_read(self, user: str) -> dict[str, Any]:
        """Mark every unread item of ``user`` read; how many that was."""
        with self.store.session() as s:
            self._user(s, user)
            marked = self._unread(s, user)
            s.execute(update(InboxItem).where(InboxItem.user == user, InboxItem.read_at.is_(None))
                      .values(read_at=self.now()))
            return {"user": user, "marked": marked, "unread": 0}
