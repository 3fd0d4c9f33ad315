"""Passwords in database URLs: read from the environment (``${DB_PASSWORD}``) so they need not
sit in YAML, and hidden (``user:***@host``) wherever a URL reaches a person: messages, data
health, the run log, pages and the API. ``redact_url`` is the one place that hides them."""

from __future__ import annotations

import os
import re

_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|pwd)=)[^&]*")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def redact_url(url: str) -> str:
    """Hide a password in a database URL before it reaches a message."""
    url = _QUERY_PASSWORD.sub(r"\1***", url)  # ...?user=u&password=secret
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def expand_env(text: str) -> str:
    """``${NAME}`` replaced by the environment variable NAME; KeyError names a missing one."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(name)
        return os.environ[name]

    return _VARIABLE.sub(value, text)
