"""The web app's languages: English by default, Polish, Russian and Chinese per user; numbers,
money and dates formatted by Babel (CLDR) for the user's locale."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_compact_currency, format_decimal

LANGUAGES = {"en": "English", "pl": "Polski", "ru": "Русский", "zh": "中文"}
LOCALES = Path(__file__).parent / "locales"
BABEL = {"en": "en_US", "pl": "pl_PL", "ru": "ru_RU", "zh": "zh_Hans_CN"}


@cache
def catalog(lang: str) -> dict[str, str]:
    """English text -> translation; missing entries fall back to English (en.json only turns
    identifiers such as 'cta_opened' into labels)."""
    path = LOCALES / f"{lang}.json"
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def language_of(user: dict[str, Any] | None, accept: str = "") -> str:
    if user and user.get("language") in LANGUAGES:
        return str(user["language"])
    for part in accept.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


class Formatter:
    """The ``_`` and number/date filters the templates use, bound to one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else "en"
        self.locale = BABEL[self.lang]
        self.texts = catalog(self.lang)

    def gettext(self, text: str, **values: Any) -> str:
        out = self.texts.get(text) or text
        return out.format(**values) if values else out

    def number(self, value: Any, digits: int = 1) -> str:
        if value is None or value != value:
            return "—"
        fmt = "#,##0" if digits == 0 else "#,##0." + "0" * digits
        return str(format_decimal(value, format=fmt, locale=self.locale))

    def integer(self, value: Any) -> str:
        return self.number(value, 0)

    def money(self, value: Any) -> str:
        if value is None or value != value:
            return "—"
        return str(format_compact_currency(value, "USD", locale=self.locale, fraction_digits=1))

    def date(self, value: Any) -> str:
        if not value:
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        if isinstance(value, datetime):
            return str(format_datetime(value, format="medium", locale=self.locale))
        return str(format_date(value, format="medium", locale=self.locale))

    def filters(self) -> dict[str, Callable[..., str]]:
        return {"num": self.number, "int": self.integer, "money": self.money, "date": self.date}
