"""The web app's languages: every text the templates translate has a Polish, Russian and Chinese
translation with the same {placeholders}; the catalogs hold nothing else; numbers, money and
dates follow each locale's CLDR conventions; the user's language wins over the browser's."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import healthscore.templates
from healthscore import tables as models
from healthscore.config.model import DEFAULT_BANDS, INSUFFICIENT
from healthscore.web import queue
from healthscore.web.i18n import LANGUAGES, LOCALES, Formatter, catalog, language_of
from healthscore.workflow import marks, notify, overrides, strategy, success_plans, timeline

ROOT = Path(__file__).resolve().parent.parent
NBSP, NNBSP = "\u00a0", "\u202f"  # CLDR's grouping space (pl, ru) and narrow space (en time, ru "г.")


def _load_strings() -> ModuleType:
    """scripts/ is no package: load the extraction script from its path, whatever the cwd."""
    path = ROOT / "scripts" / "i18n_strings.py"
    spec = importlib.util.spec_from_file_location("healthscore_i18n_strings", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strings = _load_strings()
MSGIDS: list[str] = strings.msgids()
LANGS = [lang for lang in LANGUAGES if lang != "en"]


def _catalog(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


# ----------------------------------------------------------------------------- the extraction


def test_the_script_and_the_app_agree_on_the_languages() -> None:
    assert LANGS == ["pl", "ru", "zh"] and list(strings.LANGS) == LANGS
    assert strings.LOCALES == LOCALES


def test_extraction_finds_literal_loop_and_dynamic_texts() -> None:
    ids = set(MSGIDS)
    assert {"Page {page} of {pages}", "within {n} days", "snoozed until {date}"} <= ids  # placeholders
    assert {"What is it for?", "Why clear it", "Mark done"} <= ids  # _('single quotes')
    assert {"Lifecycle stage", "By segment", "within a week", "Open CTAs"} <= ids  # loops over literals
    assert {"csm", "insufficient data", "data_gap", "criteria_left_out", "Minimal touch or let go."} <= ids
    assert MSGIDS == sorted(ids)


def test_every_quoted_literal_is_extracted() -> None:
    """A plain regex over the templates, as a check on the Jinja-parser walk."""
    literal = re.compile(r"""\b_\(\s*(["'])(.*?)(?<!\\)\1""", re.S)
    for path in strings.template_files():
        found = {m.group(2) for m in literal.finditer(path.read_text(encoding="utf-8"))}
        assert found <= set(MSGIDS), (path.name, found - set(MSGIDS))


def test_every_non_literal_call_is_classified() -> None:
    """A template that starts translating a new variable must say which values it takes."""
    calls = set(strings.dynamic_calls())
    assert calls == set(strings.DYNAMIC_CALLS), (
        f"unclassified: {sorted(calls - set(strings.DYNAMIC_CALLS))}; "
        f"gone: {sorted(set(strings.DYNAMIC_CALLS) - calls)}: "
        "update DYNAMIC_CALLS in scripts/i18n_strings.py")
    for groups in strings.DYNAMIC_CALLS.values():
        assert set(groups) <= set(strings.DYNAMIC)


def _yaml_bands() -> set[str]:
    names = set()
    for path in Path(healthscore.templates.__file__).parent.rglob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            names |= {b["name"] for b in data.get("bands") or []}
    return names


def test_dynamic_values_follow_the_code() -> None:
    d = {k: set(v) for k, v in strings.DYNAMIC.items()}
    assert d["roles"] == set(models.ROLES)
    assert d["cta types"] == set(models.CTA_TYPES)
    assert d["priorities"] == set(models.PRIORITIES)
    assert d["due buckets"] == set(queue.DUE_BUCKETS)
    assert d["notification events"] == set(notify.EVENTS)
    assert d["touches"] == set(timeline.TOUCHES)
    assert d["reason codes"] == set(overrides.REASON_CODES)
    assert d["mark reasons"] == set(marks.MARK_REASONS)
    assert d["motions"] == {*strategy.TEMPERATURE_MOTIONS.values(), *strategy.MATURITY_MOTIONS.values()}
    assert set(success_plans.DETAILS) <= d["plan elements"]
    assert {b.name for b in DEFAULT_BANDS} | {INSUFFICIENT} | _yaml_bands() <= d["bands"]


def _form_messages() -> set[str]:
    """The messages healthscore.web.pages' forms answer with: the first item of each
    (message, call) pair and the third argument of each act() call."""
    import ast

    tree = ast.parse((ROOT / "src" / "healthscore" / "web" / "pages.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for v in node.values:
                if isinstance(v, ast.Tuple) and len(v.elts) == 2 and isinstance(v.elts[1], ast.Lambda) \
                        and isinstance(v.elts[0], ast.Constant) and isinstance(v.elts[0].value, str):
                    found.add(v.elts[0].value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "act" and len(node.args) > 2:
            if isinstance(node.args[2], ast.Constant):
                found.add(node.args[2].value)
            elif isinstance(node.args[2], ast.Name):
                found.add(node.args[2].id)
    return found


def test_every_form_message_is_a_msgid() -> None:
    messages = _form_messages() - {"done"}  # create_token's, a variable: listed below
    assert "Task #{id} {status}." in messages and len(messages) >= 20
    assert messages <= set(strings.DYNAMIC["form messages"]), messages - set(strings.DYNAMIC["form messages"])


# ----------------------------------------------------------------------------- the catalogs


@pytest.mark.parametrize("lang", LANGS)
def test_every_msgid_is_translated(lang: str) -> None:
    texts = _catalog(lang)
    missing = [m for m in MSGIDS if not isinstance(texts.get(m), str) or not texts[m].strip()]
    assert not missing, (f"{lang}.json lacks {len(missing)}: {missing} "
                         f"(python scripts/i18n_strings.py --missing {lang})")


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_the_placeholders(lang: str) -> None:
    for msgid, text in _catalog(lang).items():
        assert strings.placeholders(text) == strings.placeholders(msgid), (lang, msgid, text)
        values = {p: "X" for p in strings.placeholders(msgid)}
        if values:  # gettext formats only when it is given values; it must not trip on braces
            assert "X" in Formatter(lang).gettext(msgid, **values)


@pytest.mark.parametrize("lang", LANGS)
def test_catalogs_hold_no_stale_texts(lang: str) -> None:
    stale = sorted(set(_catalog(lang)) - set(MSGIDS))
    assert not stale, (f"{lang}.json: no template uses {stale} any more "
                       f"(python scripts/i18n_strings.py --stale {lang})")


@pytest.mark.parametrize("lang", LANGS)
def test_catalog_files_are_sorted_utf8_json(lang: str) -> None:
    raw = (LOCALES / f"{lang}.json").read_bytes()
    data = json.loads(raw.decode("utf-8"))
    assert raw.decode("utf-8") == json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    assert catalog(lang) == data


def test_gettext_translates_formats_and_falls_back() -> None:
    assert Formatter("pl").gettext("Page {page} of {pages}", page=2, pages=5) == "Strona 2 z 5"
    assert Formatter("ru").gettext("within {n} days", n=90) == "в течение 90 дн."
    assert Formatter("zh").gettext("Accounts") == "客户"
    assert Formatter("en").gettext("Page {page} of {pages}", page=2, pages=5) == "Page 2 of 5"
    assert Formatter("pl").gettext("not in any catalog") == "not in any catalog"
    assert Formatter("xx").gettext("Accounts") == "Accounts"


# ----------------------------------------------------------------------------- Babel formats

FORMATS: dict[str, dict[str, str]] = {
    "en": {"number": "1,234,567.89", "integer": "1,234,567", "negative": "-1,234.6",
           "money": "$2.5M", "small money": "$1.5K", "date": "Nov 24, 2026",
           "datetime": f"Nov 24, 2026, 2:05:00{NNBSP}PM"},
    "pl": {"number": f"1{NBSP}234{NBSP}567,89", "integer": f"1{NBSP}234{NBSP}567",
           "negative": f"-1{NBSP}234,6",
           "money": f"2,5{NBSP}mln{NBSP}USD", "small money": f"1,5{NBSP}tys.{NBSP}USD", "date": "24 lis 2026",
           "datetime": "24 lis 2026, 14:05:00"},
    "ru": {"number": f"1{NBSP}234{NBSP}567,89", "integer": f"1{NBSP}234{NBSP}567",
           "negative": f"-1{NBSP}234,6",
           "money": f"2,5{NBSP}млн{NBSP}$", "small money": f"1,5{NBSP}тыс.{NBSP}$",
           "date": f"24 нояб. 2026{NNBSP}г.", "datetime": f"24 нояб. 2026{NNBSP}г., 14:05:00"},
    "zh": {"number": "1,234,567.89", "integer": "1,234,567", "negative": "-1,234.6",
           "money": "US$250万", "small money": "US$1500", "date": "2026年11月24日",
           "datetime": "2026年11月24日 14:05:00"},
}


def _formats(f: Formatter) -> dict[str, str]:
    return {"number": f.number(1234567.891, 2), "integer": f.integer(1234567), "negative": f.number(-1234.56),
            "money": f.money(2_500_000), "small money": f.money(1500), "date": f.date("2026-11-24"),
            "datetime": f.date("2026-11-24T14:05:00")}


@pytest.mark.parametrize("lang", list(FORMATS))
def test_numbers_money_and_dates_follow_the_locale(lang: str) -> None:
    assert _formats(Formatter(lang)) == FORMATS[lang]


@pytest.mark.parametrize("lang", list(FORMATS))
def test_missing_values_show_a_dash(lang: str) -> None:
    f = Formatter(lang)
    assert f.number(None) == f.number(float("nan")) == f.integer(None) == "—"
    assert f.money(None) == f.money(float("nan")) == f.date(None) == f.date("") == "—"


def test_an_unknown_language_falls_back_to_english() -> None:
    f = Formatter("xx")
    assert (f.lang, f.locale) == ("en", "en_US") and f.gettext("Portfolio") == "Portfolio"
    assert _formats(f) == FORMATS["en"]


# ----------------------------------------------------------------------------- language_of


@pytest.mark.parametrize(("user", "accept", "lang"), [
    ({"language": "ru"}, "pl-PL,pl;q=0.9,en;q=0.8", "ru"),  # the user's choice first
    ({"language": "en"}, "zh-CN", "en"),
    ({"language": "fr"}, "pl-PL,pl;q=0.9", "pl"),  # not one of ours: the browser's
    ({"language": None}, "zh-Hans-CN,zh;q=0.9", "zh"),
    ({}, "RU-ru", "ru"),
    (None, "de-DE,de;q=0.9,zh-TW;q=0.5,pl;q=0.3", "zh"),  # the first one we have, in order
    (None, "en-GB,en;q=0.9,pl;q=0.8", "en"),
    (None, "de-DE,fr;q=0.9", "en"),  # none of ours
    (None, "*", "en"),
    (None, "", "en"),
])
def test_language_of_prefers_the_user_then_the_browser(user: dict[str, Any] | None, accept: str,
                                                       lang: str) -> None:
    assert language_of(user, accept) == lang


def test_language_of_defaults_to_english_without_a_header() -> None:
    assert language_of(None) == "en"
    assert language_of({"language": "zh"}) == "zh"


def test_english_labels_only_name_identifiers() -> None:
    labels = catalog("en")
    assert labels["cta_opened"] == "CTA opened" and labels["data_gap"] == "Data gap"
    assert set(labels) <= set(strings.msgids()) and all("_" in k for k in labels)
