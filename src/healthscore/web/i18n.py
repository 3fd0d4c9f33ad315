"""The web app's languages: English by default, Polish, Russian and Chinese per user; numbers,
money and dates formatted by Babel (CLDR) for the user's locale; counts take the plural form
CLDR's rules give for the number; sentences the workflow stored in English (timeline entries) are
shown in the reader's language."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from babel.core import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_compact_currency, format_decimal

from healthscore.config.labels import Labels, pick_label

LANGUAGES = {"en": "English", "pl": "Polski", "ru": "Русский", "zh": "中文"}
LOCALES = Path(__file__).parent / "locales"
BABEL = {"en": "en_US", "pl": "pl_PL", "ru": "ru_RU", "zh": "zh_Hans_CN"}
# CLDR's plural categories in CLDR's order: a plural msgid's translation lists the forms of the
# categories its language uses, in this order, separated by PLURAL_SEP ("other" always last)
PLURAL_ORDER = ("zero", "one", "two", "few", "many", "other")
PLURAL_SEP = "|"

# The sentences the workflow stores in English on the timeline (healthscore.workflow) and the
# library's other English sentences about data (why a row counts for a measure), as
# patterns: an entry that matches one is shown translated, its values kept; the values named in
# LABELLED are identifiers with a label of their own, those in DATES dates. The first pattern
# that matches the whole text wins, so a longer form comes before its prefix.
STORED = (
    "{type} CTA #{id} opened: {reason}",
    "CTA #{id} closed: {outcome}",
    "CTA #{id} snoozed until {until}: {reason}",
    "CTA #{id} assigned to {owner}",
    "CTA #{id} priority set to {priority}",
    "CTA #{id} marked critical",
    "Review of CTA #{id}: {decision}",
    "CTA #{id} escalated to {whom} automatically (overdue): {note}",
    "CTA #{id} escalated to {whom} automatically (overdue)",
    "CTA #{id} escalated to {whom} by {actor}: {note}",
    "CTA #{id} escalated to {whom} by {actor}",
    "Task '{title}' {status}",
    "{module} marked {colour} until {until} ({reason_code}): {note}",
    "Mark of {module} cleared: {note}",
    "Mark of {module} cleared",
    "Mark of {module} expired on {day}",
    "Override to band {band} until {until} ({reason_code}): {note}",
    "Override to score {score} until {until} ({reason_code}): {note}",
    "Override cleared: {note}",
    "Override cleared",
    "Override expired on {day}; the system score applies again",
    "Band {before} -> {after} (as of {day})",
    "Success plan #{id} created: {title}",
    "Success plan #{id}: {change}",
    # what the inbox says (healthscore.workflow.notify, ctas, rules), after the timeline's
    # sentences: its CTA form is the shortest, so it comes last
    "{actor} mentioned you on CTA #{id} for {account}: {text}",
    "Task '{title}' of CTA #{id} for {account} is due {day}",
    "CTA #{id} for {account} is overdue (due {day}): {reason}",
    "CTA #{id} for {account} escalated to {whom}: {reason}",
    "CTA #{id} for {account}: {reason}",
    "{account}: band {before} -> {after}",
    # why a source row counts for a measure or not (healthscore.rows)
    "counted", "does not match the filter", "after the as-of date", "not open on the date",
    "before the {window} window", "rejected: {problem}",
)
LABELLED = ("type", "status", "priority", "colour", "band", "reason_code", "before", "after", "change")
DATES = ("until", "day")
# what a success plan's timeline entry says changed (healthscore.workflow.success_plans)
PLAN_CHANGES = ("goal added", "initiative added", "milestone added", "milestone done",
                "criterion added")
# the sentences of "What changed and why" (healthscore.report's score changes, one per measure)
WHY = {
    "raised": "{measure} went from {before} to {after} (score {score_before} → {score_after}), "
              "which raised the health score by {points}.",
    "lowered": "{measure} went from {before} to {after} (score {score_before} → {score_after}), "
               "which lowered the health score by {points}.",
}
POINTS = ("{n} point", "{n} points")


# the project's YAML labels by kind ("group" by path, "measure" by name): (text, per language)
LabelBook = dict[str, dict[str, tuple[str | None, Labels]]]


def _pattern(msgid: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", msgid)
    text = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(text, re.S)


PATTERNS = [(_pattern(m), m) for m in STORED]


def plural_tags(lang: str) -> list[str]:
    """The CLDR plural categories of ``lang``, in CLDR's order ("other" is always one)."""
    tags = Locale.parse(BABEL.get(lang, "en_US")).plural_form.tags | {"other"}
    return [t for t in PLURAL_ORDER if t in tags]


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

    def __init__(self, lang: str, labels: LabelBook | None = None) -> None:
        self.lang = lang if lang in LANGUAGES else "en"
        self.locale = BABEL[self.lang]
        self.texts = catalog(self.lang)
        self.labels: LabelBook = labels or {}

    def label(self, key: str, default: str | None = None, kind: str = "group") -> str:
        """A group's (by path) or measure's (``kind="measure"``) name from the project's YAML
        ``label:`` in this language, else English, else its one text, else ``default``, else
        the key itself."""
        text, per_language = self.labels.get(kind, {}).get(key, (None, ()))
        return pick_label(per_language, text or default or key, self.lang)

    def gettext(self, text: str, /, **values: Any) -> str:
        out = self.texts.get(text) or text
        return out.format(**values) if values else out

    def ngettext(self, singular: str, plural: str, n: float, /, **values: Any) -> str:
        """The form of ``singular|plural`` that CLDR's plural rules of the language give for
        ``n``; ``{n}`` is the number, formatted for the locale."""
        msgid = f"{singular}{PLURAL_SEP}{plural}"
        forms = (self.texts.get(msgid) or msgid).split(PLURAL_SEP)
        tag = Locale.parse(self.locale).plural_form(n)
        tags = plural_tags(self.lang) if msgid in self.texts else ["one", "other"]
        form = forms[tags.index(tag)] if tag in tags and len(forms) == len(tags) else forms[-1]
        return form.format(**{"n": self.plain(n), **values})

    def stored(self, text: str) -> str:
        """A sentence the workflow stored in English, in this language (as it is when no
        pattern of STORED matches it)."""
        if self.lang == "en" or not text:
            return text
        for pattern, msgid in PATTERNS:
            m = pattern.fullmatch(text)
            if m:
                return self.gettext(msgid, **{k: self._stored_value(k, v) for k, v in m.groupdict().items()})
        return text

    def _stored_value(self, key: str, value: str) -> str:
        if key in DATES:
            try:
                return self.date(value)
            except ValueError:
                return value
        return self.gettext(value) if key in LABELLED else value

    def why(self, change: dict[str, Any]) -> str:
        """One line of "What changed and why": a measure's move and what it did to the score."""
        points = abs(change["points"])
        return self.gettext(WHY["raised" if change["points"] > 0 else "lowered"],
                            measure=self.label(change["measure"], kind="measure"),
                            before=self._value(change["before"]),
                            after=self._value(change["after"]),
                            score_before=self._value(change["score_before"]),
                            score_after=self._value(change["score_after"]),
                            points=self.ngettext(*POINTS, points))

    def _value(self, value: Any) -> str:
        if value is None:
            return self.gettext("no data")
        return value if isinstance(value, str) else self.plain(value)

    def plain(self, value: Any) -> str:
        """A number as the locale writes it, with up to three decimals."""
        if value is None or value != value:
            return "—"
        return str(format_decimal(value, format="#,##0.###", locale=self.locale))

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
        return _medium(value, self.locale)

    def filters(self) -> dict[str, Callable[..., str]]:
        return {"num": self.number, "int": self.integer, "money": self.money, "date": self.date}


@lru_cache(maxsize=4096)
def _medium(value: date, locale: str) -> str:
    """A date or time as ``locale`` writes it ("medium"): Babel takes about a millisecond, and
    a page of the work queue shows hundreds of the same few dates."""
    if isinstance(value, datetime):
        return str(format_datetime(value, format="medium", locale=locale))
    return str(format_date(value, format="medium", locale=locale))
