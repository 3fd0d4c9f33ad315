"""Signing in: session cookies for the browser, bearer tokens for the API, CSRF on every
change made with a cookie, and a limit on failed logins."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict, deque
from typing import Any

from fastapi import Request, Response

from healthscore.errors import AuthError, ForbiddenError, RateLimitError

COOKIE = "hs_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class LoginLimiter:
    """At most ``attempts`` failed logins per user name and address in ``window`` seconds,
    ``4 * attempts`` per address whatever the name, and ``4 * attempts`` per user name from
    any address (so changing the address, or a forged proxy header, does not buy guesses)."""

    def __init__(self, attempts: int = 5, window: float = 900.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._failures[key]
        while q and q[0] < time.monotonic() - self.window:
            q.popleft()
        return q

    def check(self, address: str, name: str) -> None:
        keys = (((address, name.lower()), self.attempts, "from this address"),
                ((address, ""), 4 * self.attempts, "from this address"),
                (("", name.lower()), 4 * self.attempts, f"for {name}"))
        for key, limit, where in keys:
            q = self._recent(key)
            if len(q) >= limit:
                wait = max(1, int(q[0] + self.window - time.monotonic()) // 60 + 1)
                raise RateLimitError(f"login: too many failed attempts {where}. "
                                     f"Try again in {wait} minute(s).")

    def failed(self, address: str, name: str) -> None:
        now = time.monotonic()
        self._failures[(address, name.lower())].append(now)
        self._failures[(address, "")].append(now)
        self._failures[("", name.lower())].append(now)

    def succeeded(self, address: str, name: str) -> None:
        self._failures.pop((address, name.lower()), None)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate(request: Request) -> dict[str, Any]:
    """The signed-in user (bearer token or session cookie); raises AuthError otherwise.
    Changes made with a cookie must carry the session's CSRF token."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    wf = request.app.state.site.wf
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = wf.token_user(header[7:].strip())
        request.state.csrf = None
    else:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            raise AuthError("sign in first: no session cookie or API token "
                            "(send 'Authorization: Bearer <token>').")
        user, request.state.csrf = wf.session_user(cookie)
    request.state.user = user
    return user  # type: ignore[no-any-return]


async def check_csrf(request: Request) -> None:
    if request.method not in UNSAFE or request.state.csrf is None:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not sent or not secrets.compare_digest(sent, request.state.csrf):
        raise ForbiddenError("csrf: the form is missing its CSRF token or it is out of date. "
                             "Reload the page and try again.")


def require_role(user: dict[str, Any], *roles: str) -> None:
    if user["role"] not in roles:
        raise ForbiddenError(f"{user['name']} is a {user['role']}: this needs "
                             f"{' or '.join(roles)}.")


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    secure = request.app.state.secure_cookies
    if secure is None:
        secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/",
                        max_age=12 * 3600)


def sign_in(request: Request, response: Response, name: str, password: str) -> dict[str, Any]:
    site = request.app.state.site
    limiter: LoginLimiter = request.app.state.limiter
    address = client_address(request)
    limiter.check(address, name)
    try:
        user = site.wf.check_password(name, password)
    except AuthError:
        limiter.failed(address, name)
        raise
    limiter.succeeded(address, name)
    token, csrf = site.wf.start_session(user["name"])
    set_session_cookie(request, response, token)
    return {**user, "csrf_token": csrf}


def sign_out(request: Request, response: Response) -> None:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        request.app.state.site.wf.end_session(cookie)
    response.delete_cookie(COOKIE, path="/")
