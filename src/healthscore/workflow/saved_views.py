"""Saved views: a user names the filters, sort and scope of a list page (its query string) and
opens them again later. Each user sees and deletes only their own views."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select

from healthscore.errors import InvalidActionError, NotFoundError
from healthscore.tables import SavedView
from healthscore.workflow.base import Service, row_dict

VIEW_PAGES = ("accounts",)
MAX_NAME = 100
_NOT_SAVED = {"page", "csrf_token"}  # the page number is where you were, not what you chose


class SavedViewService(Service):
    """Save, list and delete a user's views of a list page."""

    def save_view(self, owner: str, page: str, name: str, query: str) -> dict[str, Any]:
        """Save (or replace, by name) ``owner``'s view of ``page``: the query string without
        the page number."""
        name = name.strip()
        if page not in VIEW_PAGES:
            raise InvalidActionError(f"page: must be one of {', '.join(VIEW_PAGES)}. Got {page!r}.")
        if not name or len(name) > MAX_NAME:
            raise InvalidActionError(f"name: give the view a name of 1 to {MAX_NAME} characters.")
        kept = urlencode([(k, v) for k, v in parse_qsl(query.lstrip("?")) if k not in _NOT_SAVED and v])
        with self.store.session() as s:
            view = s.scalar(select(SavedView).where(SavedView.owner == owner, SavedView.page == page,
                                                    SavedView.name == name))
            if view is None:
                view = SavedView(owner=owner, page=page, name=name, query=kept, created_at=self.now())
                s.add(view)
            else:
                view.query, view.created_at = kept, self.now()
            s.flush()
            return row_dict(view)

    def saved_views(self, owner: str, page: str | None = None) -> list[dict[str, Any]]:
        """``owner``'s views (of ``page``), by name."""
        with self.store.session() as s:
            q = select(SavedView).where(SavedView.owner == owner)
            if page is not None:
                q = q.where(SavedView.page == page)
            return [row_dict(v) for v in s.scalars(q.order_by(SavedView.name, SavedView.id))]

    def delete_view(self, owner: str, view_id: int) -> dict[str, Any]:
        """Delete one of ``owner``'s views; another user's view is as unknown as a missing one."""
        with self.store.session() as s:
            view = s.get(SavedView, view_id)
            if view is None or view.owner != owner:
                raise NotFoundError(f"saved view #{view_id}: {owner} has no such view.")
            out = row_dict(view)
            s.delete(view)
            return out
