"""Who may sign in and act: passwords (argon2), browser sessions, API tokens and the rule for
which accounts a user may act on (csm: own accounts, lead: the team's, admin: all)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from healthscore.errors import AuthError, InvalidActionError, NotFoundError
from healthscore.tables import ROLES, ApiToken, User, WebSession
from healthscore.workflow.base import SYSTEM, Service, _public, may_act_on, row_dict

LANGUAGES = ("en", "pl", "ru", "zh")
MIN_PASSWORD = 8
SESSION_HOURS = 12
_hasher = PasswordHasher()
# verifying against this keeps an unknown user's login as slow as a known one's
_DUMMY = _hasher.hash("not-a-password")


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidActionError(f"password: must be at least {MIN_PASSWORD} characters. "
                                 f"Got {len(password)}.")
    return _hasher.hash(password)


class AccessService(Service):
    # ------------------------------------------------------------------ people

    def add_user(self, name: str, role: str, *, team: str | None = None, email: str | None = None,
                 actor: str = SYSTEM, password_hash: str | None = None) -> dict[str, Any]:
        if role not in ROLES:
            raise InvalidActionError(f"role: must be one of {', '.join(ROLES)}. Got {role!r}.")
        if not name.strip():
            raise InvalidActionError("name: must not be empty.")
        with self.store.session() as s:
            same = s.scalar(select(User).where(func.lower(User.name) == name.lower()))
            if same is not None:
                raise InvalidActionError(f"user {name!r} already exists"
                                         + (f" (as {same.name!r})." if same.name != name else "."))
            if any(ord(c) < 32 for c in name):
                raise InvalidActionError("name: must not contain control characters (such as NUL).")
            if s.scalar(select(User.id).limit(1)) is None and role != "admin":
                raise InvalidActionError(f"the first user must be an admin (who can add the others). "
                                         f"Got role {role!r} for {name!r}.")
            if actor != SYSTEM:
                self._actor(s, actor, admin=True)
            user = User(name=name, role=role, team=team, email=email, created_at=self.now(),
                        created_by=actor, password_hash=password_hash, notify_events=[])
            s.add(user)
            s.flush()
            self._audit(s, actor, "user", name, "create", None, row_dict(user))
            return _public(row_dict(user))

    def users(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            return [_public(row_dict(u)) for u in s.scalars(select(User).order_by(User.name))]

    def user(self, name: str) -> dict[str, Any]:
        with self.store.session() as s:
            return _public(row_dict(self._user(s, name)))

    # ------------------------------------------------------------------ passwords

    def set_password(self, name: str, password: str, *, actor: str) -> None:
        """Users set their own; admins set anyone's."""
        digest = hash_password(password)
        with self.store.session() as s:
            if actor not in (SYSTEM, name):
                self._actor(s, actor, admin=True)
            user = self._user(s, name)
            user.password_hash = digest
            s.execute(delete(WebSession).where(WebSession.user == name))  # sign out everywhere
            self._audit(s, actor, "user", name, "password", None, None)

    def check_password(self, name: str, password: str) -> dict[str, Any]:
        """The user, if the password is right; the same error whatever was wrong."""
        with self.store.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            digest = user.password_hash if user is not None and user.password_hash else _DUMMY
            try:
                ok = _hasher.verify(digest, password) and user is not None and bool(user.password_hash)
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or user is None:
                raise AuthError("login: wrong user name or password.")
            if _hasher.check_needs_rehash(digest):
                user.password_hash = _hasher.hash(password)
            return _public(row_dict(user))

    def update_user(self, name: str, *, actor: str, role: str | None = None, team: str | None = None,
                    email: str | None = None, language: str | None = None) -> dict[str, Any]:
        """Admins change roles and teams; everyone may change their own language and email."""
        if role is not None and role not in ROLES:
            raise InvalidActionError(f"role: must be one of {', '.join(ROLES)}. Got {role!r}.")
        if language is not None and language not in LANGUAGES:
            raise InvalidActionError(f"language: must be one of {', '.join(LANGUAGES)}. Got {language!r}.")
        with self.store.session() as s:
            if role is not None or team is not None or actor != name:
                self._actor(s, actor, admin=True)
            user = self._user(s, name)
            before = _public(row_dict(user))
            for key, value in (("role", role), ("team", team), ("email", email), ("language", language)):
                if value is not None:
                    setattr(user, key, value or None if key in ("team", "email") else value)
            if role is not None and before["role"] == "admin" and role != "admin":
                self._keep_an_admin(s, name)
            s.flush()
            self._audit(s, actor, "user", name, "update", before, _public(row_dict(user)))
            return _public(row_dict(user))

    def _keep_an_admin(self, s: Any, name: str) -> None:
        others = s.scalar(select(User.id).where(User.role == "admin", User.name != name).limit(1))
        if others is None:
            raise InvalidActionError(f"{name} is the last admin: make someone else an admin first.")

    def teams(self) -> dict[str, str | None]:
        """Each user's team, by name (a lead acts on the accounts of their team's CSMs)."""
        with self.store.session() as s:
            return {u.name: u.team for u in s.scalars(select(User))}

    # ------------------------------------------------------------------ browser sessions

    def start_session(self, name: str, hours: int = SESSION_HOURS) -> tuple[str, str]:
        """A new session for a signed-in user: (cookie value, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.store.session() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at < self.now()))
            s.add(WebSession(id=_sha(token), user=name, csrf=csrf, created_at=self.now(),
                             expires_at=self.now() + timedelta(hours=hours)))
        return token, csrf

    def session_user(self, token: str) -> tuple[dict[str, Any], str]:
        """The user behind a session cookie and the session's CSRF token."""
        with self.store.session() as s:
            row = s.get(WebSession, _sha(token))
            if row is None or row.expires_at < self.now():
                raise AuthError("session: signed out or expired. Sign in again.")
            return _public(row_dict(self._user(s, row.user))), row.csrf

    def end_session(self, token: str) -> None:
        with self.store.session() as s:
            s.execute(delete(WebSession).where(WebSession.id == _sha(token)))

    # ------------------------------------------------------------------ API tokens

    def create_token(self, user: str, label: str, *, actor: str) -> dict[str, Any]:
        """A new API token for ``user`` (themselves, or anyone by an admin); shown only here."""
        if not label.strip():
            raise InvalidActionError("label: name the token (e.g. 'crm sync') so it can be revoked later.")
        token = "hs_" + secrets.token_urlsafe(32)
        with self.store.session() as s:
            if actor != user:
                self._actor(s, actor, admin=True)
            self._user(s, user)
            row = ApiToken(user=user, label=label, token_hash=_sha(token), created_at=self.now(),
                           created_by=actor)
            s.add(row)
            s.flush()
            self._audit(s, actor, "api_token", row.id, "create", None, _token_view(row))
            return {**_token_view(row), "token": token}

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(ApiToken).order_by(ApiToken.id)
            if user is not None:
                q = q.where(ApiToken.user == user)
            return [_token_view(t) for t in s.scalars(q)]

    def revoke_token(self, token_id: int, *, actor: str) -> dict[str, Any]:
        with self.store.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                raise NotFoundError(f"no API token #{token_id}.")
            if row.user != actor:
                self._actor(s, actor, admin=True)
            if row.revoked_at is None:
                row.revoked_at = self.now()
                self._audit(s, actor, "api_token", row.id, "revoke", None, _token_view(row))
            return _token_view(row)

    def token_user(self, token: str) -> dict[str, Any]:
        with self.store.session() as s:
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _sha(token)))
            if row is None or row.revoked_at is not None:
                raise AuthError("token: unknown or revoked API token. Create one on the Admin page.")
            if row.last_used_at is None or self.now() - row.last_used_at > timedelta(minutes=1):
                row.last_used_at = self.now()
            return _public(row_dict(self._user(s, row.user)))

    # ------------------------------------------------------------------ acting on accounts

    def require_act(self, user: dict[str, Any], account_id: str) -> None:
        """Refuse unless ``user`` may act on the account (ForbiddenError): the same check every
        mutating call makes."""
        with self.store.session() as s:
            self._check_scope(s, user, account_id)


def _token_view(t: ApiToken) -> dict[str, Any]:
    out = row_dict(t)
    out.pop("token_hash", None)
    out["active"] = t.revoked_at is None
    return out


__all__ = ["AccessService", "LANGUAGES", "hash_password", "may_act_on"]
