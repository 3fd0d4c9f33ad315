"""One exception hierarchy for every user-facing error.

Each message says what is wrong, where (file and key, or source, row and column) and how to
fix it. Surfaces translate these in one place: the CLI prints the message and exits 1; the
API answers with ``http_status`` and ``{"error": kind, "message": ...}``.
"""

from __future__ import annotations


class HealthScoreError(Exception):
    """Base class: a problem the user can fix."""

    http_status = 400
    kind = "error"

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return "\n".join([self.message, *(f"  - {d}" for d in self.details)])


class ConfigError(HealthScoreError):
    """The project's YAML is invalid."""

    http_status = 422
    kind = "config_error"


class DataError(HealthScoreError):
    """A source's data is missing, unreadable or of the wrong shape."""

    http_status = 422
    kind = "data_error"


class NotFoundError(HealthScoreError):
    """An account, snapshot or file that was asked for does not exist."""

    http_status = 404
    kind = "not_found"


class EngineError(HealthScoreError):
    """The compute engine is missing or failed."""

    http_status = 500
    kind = "engine_error"


class InvalidActionError(HealthScoreError):
    """A change that is not allowed in the current state (closing a closed CTA, an override
    without a reason, an expiry in the past)."""

    http_status = 422
    kind = "invalid_action"


class ConflictError(HealthScoreError):
    """Someone else changed the same record first; reload and try again."""

    http_status = 409
    kind = "conflict"


class AuthError(HealthScoreError):
    """Not signed in, or the password, session or API token is wrong."""

    http_status = 401
    kind = "unauthorized"


class RateLimitError(HealthScoreError):
    """Too many attempts (e.g. failed logins); try again later."""

    http_status = 429
    kind = "rate_limited"


class ForbiddenError(HealthScoreError):
    """The user's role does not allow this."""

    http_status = 403
    kind = "forbidden"
