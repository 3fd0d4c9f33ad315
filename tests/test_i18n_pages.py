"""Every app page, rendered in all four languages, against the catalogs: no English text shows on
a Polish, Russian or Chinese page but the data (account, user and source names, ids, numbers,
dates, and the project's own YAML texts: group labels, CTA reasons, playbook tasks); and counts
take each language's CLDR plural form for 1, 2, 5 and 22.

The pages are rendered on the server, so one in-process app (FastAPI's TestClient) over the
demo project serves them all; the page list is the axe tests' (tests/test_browser_pages.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

import healthscore.workflow
from healthscore.demo.project import DEMO_PASSWORD
from healthscore.project import Project
from healthscore.web.app import create_app
from healthscore.web.i18n import LANGUAGES, PLURAL_SEP, POINTS, Formatter, catalog, plural_tags

from .conftest import copy_project
from .test_i18n import MSGIDS

TODAY = date(2026, 11, 2)
ADMIN, CSM = "admin", "Anna Kowalska"
FLAG = "Sponsor left; renewal at risk"  # typed by a user: data, shown as typed
OTHERS = [lang for lang in LANGUAGES if lang != "en"]
WORD = re.compile(r"(?<![0-9A-Za-z_])[A-Za-z][A-Za-z']+(?![0-9A-Za-z_])")  # not inside ids
# text a browser shows besides text nodes
SHOWN_ATTRIBUTES = ("placeholder", "aria-label", "title", "alt")
# names every language writes in Latin letters: a metric, and the US of CLDR's "US$"
TERMS = ("AUC", "US")
LIBRARY = Path(healthscore.workflow.__file__).parent / "library"


class VisibleText(HTMLParser):
    """The text nodes of a page outside <script> and <style>, and the attributes shown."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        self.texts += [v for k, v in attrs if k in SHOWN_ATTRIBUTES and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.texts.append(re.sub(r"[ \t\r\n]+", " ", data).strip())  # CLDR's own spaces kept


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.texts


@dataclass
class Pages:
    client: TestClient
    csrf: str
    paths: list[str]
    data_words: set[str]


def _strings(value: Any) -> Iterator[str]:
    """Every string in a YAML document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _data_words(project: Project, client: TestClient, rows_pages: list[str]) -> set[str]:
    """The words of the data a page may show as it is: the accounts' names, ids and attributes,
    the users, the sources, the measures and every text of the project's YAML and the built-in
    playbooks and success plans (the project's own words, in the language it wrote them)."""
    texts: list[str] = []
    wf = project.workflow(today=TODAY)
    try:
        scores = wf.scores()
        for col in ("account_id", "name", "csm", "segment", "industry", "scorecard"):
            if col in scores:
                texts += [str(v) for v in scores[col].dropna().unique()]
        texts += [u["name"] for u in wf.users()] + [u["team"] for u in wf.users() if u.get("team")]
        texts += [*wf.spec.escalation, *wf.spec.departments]  # owner names: the project's ids
    finally:
        wf.close()
    for path in [*project.root.rglob("*.yml"), *LIBRARY.rglob("*.yml")]:
        texts += list(_strings(yaml.safe_load(path.read_text(encoding="utf-8"))))
    health = client.get("/api/data-health").json()
    texts += [s["name"] for s in health["sources"]] + [s["location"] for s in health["sources"]]
    texts += [sc.name for sc in project.config.all_scorecards]
    texts += [FLAG, "healthscore", "docs", *TERMS, *LANGUAGES.values()]
    for path in rows_pages:  # the source rows behind a measure: data, column names included
        rows = client.get(f"/api{path}").json()
        texts += [*map(str, rows["columns"]), str(rows.get("source")), str(rows.get("filter"))]
        texts += [str(v) for r in rows["rows"] for v in r["values"].values()]
    return {w for t in texts for w in WORD.findall(t)}


@pytest.fixture(scope="module")
def pages(served_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    """The served demo (conftest.served_demo: the rules opened CTAs, a recorded validation)."""
    project = Project.load(copy_project(served_demo, tmp_path_factory.mktemp("i18n-pages") / "p"))
    wf = project.workflow(today=TODAY)
    try:
        cta = min(wf.ctas(status="open"), key=lambda c: c["id"])
        account = cta["account_id"]
        wf.flag(account, FLAG, actor=ADMIN, priority="critical")
        plan = wf.create_success_plan(account, actor=ADMIN, template="recovery")
        wf.set_override(account, band="red", reason_code="relationship", note=FLAG,
                        expires_on=date(2026, 12, 31), actor=ADMIN)
        measure = next(m for m in wf.scores().columns if m.startswith("m__"))[3:]
    finally:
        wf.close()
    client = TestClient(create_app(project, today=TODAY))
    csrf = client.post("/api/login", json={"name": ADMIN, "password": DEMO_PASSWORD}).json()["csrf_token"]
    paths = ["/today", "/portfolio", "/portfolio/trends", "/accounts", f"/accounts/{account}",
             f"/accounts/{account}/measures/{measure}", "/cockpit", "/cockpit/board",
             f"/ctas/{cta['id']}", "/review", "/success-plans", f"/success-plans/{plan['id']}",
             "/validation", "/data-health", "/me", "/validation/preview", "/admin", "/inbox"]
    try:
        yield Pages(client, csrf, paths, _data_words(project, client, [paths[5]]))
    finally:
        client.close()


def _render(pages: Pages, lang: str, paths: list[str] | None = None) -> dict[str, list[str]]:
    """The visible texts of ``paths`` (every page when None) in ``lang``."""
    r = pages.client.patch("/api/me", json={"language": lang}, headers={"X-CSRF-Token": pages.csrf})
    assert r.status_code == 200, r.text
    out = {}
    for path in pages.paths if paths is None else paths:
        r = pages.client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert f'<html lang="{lang}"' in r.text, path
        out[path] = visible_text(r.text)
    return out


def _english_words() -> set[str]:
    """The English the app speaks: the words of every msgid."""
    return {w.lower() for m in MSGIDS for w in WORD.findall(m)}


def untranslated(texts: dict[str, list[str]], lang: str, data_words: set[str]) -> dict[str, list[str]]:
    """Per page, the texts that show a msgid as it is or an English word that is neither data
    nor used by the language's own translations (Polish shares the Latin letters: there only
    the app's English words count)."""
    translations = catalog(lang)
    own = {w.lower() for t in translations.values() for w in WORD.findall(t)}
    allowed = own | {w.lower() for w in data_words}
    english = _english_words()
    kept = {m for m in MSGIDS if translations.get(m) != m and WORD.search(m)}
    out: dict[str, list[str]] = {}
    for path, lines in texts.items():
        bad = [line for line in lines if line in kept and not set(WORD.findall(line)) <= data_words
               or any(w.lower() not in allowed and (lang != "pl" or w.lower() in english)
                      for w in WORD.findall(line))]
        if bad:
            out[path] = sorted(set(bad))
    return out


@pytest.mark.parametrize("lang", OTHERS)
def test_no_page_shows_an_untranslated_string(pages: Pages, lang: str) -> None:
    bad = untranslated(_render(pages, lang), lang, pages.data_words)
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)


def test_the_check_finds_english_on_a_translated_page(pages: Pages) -> None:
    """The comparison itself: English text on a Russian or Polish page is found, data is not."""
    page = {"/x": ["Клиенты", "Health turned red", "Anna Kowalska", "Accounts", "ACC-000001"]}
    assert untranslated(page, "ru", pages.data_words) == {"/x": ["Accounts"]}
    page = {"/x": ["Konta", "went from 5 to 2", "Anna Kowalska", "CSM"]}
    assert untranslated(page, "pl", pages.data_words) == {"/x": ["went from 5 to 2"]}


def test_english_pages_render_the_same_texts(pages: Pages) -> None:
    texts = _render(pages, "en")
    account = next(p for p in pages.paths if p.count("/") == 2 and p.startswith("/accounts/"))
    assert any(re.fullmatch(r"• \S+ went from .+ which (raised|lowered) the health score by "
                            r"[\d.]+ points?\.", t) for t in texts[account])
    assert any(t.startswith("Override to band red until 2026-12-31 (relationship): ") for t in texts[account])


def test_timeline_and_why_speak_the_readers_language(pages: Pages) -> None:
    account = next(p for p in pages.paths if p.count("/") == 2 and p.startswith("/accounts/"))
    lines = _render(pages, "ru", [account])[account]  # every Russian page: the test above
    assert f"Корректировка на зону красная до 31 дек. 2026\u202fг. (отношения с клиентом): {FLAG}" in lines
    assert any(re.fullmatch(r"• \S+: изменение с .+ (повысило|снизило) балл здоровья на [\d,]+ балл\w*\.", t)
               for t in lines), lines


def test_group_labels_come_from_the_yaml_in_the_readers_language(pages: Pages) -> None:
    """The template's scorecard labels its groups in four languages (label: {en: ..., pl: ...})."""
    account = next(p for p in pages.paths if p.count("/") == 2 and p.startswith("/accounts/"))
    for lang, usage, sentiment in (("pl", "Użycie", "Nastawienie"), ("zh", "使用情况", "满意度"),
                                   ("en", "Usage", "Sentiment")):
        lines = _render(pages, lang, [account])[account]  # the whole site: the tests above
        assert usage in lines and sentiment in lines, (lang, lines)


# ----------------------------------------------------------------------------- plurals

PLURALS: dict[str, dict[int, str]] = {
    "en": {1: "1 account", 2: "2 accounts", 5: "5 accounts", 22: "22 accounts"},
    "pl": {1: "1 konto", 2: "2 konta", 5: "5 kont", 22: "22 konta"},
    "ru": {1: "1 клиент", 2: "2 клиента", 5: "5 клиентов", 22: "22 клиента"},
    "zh": {1: "1 个客户", 2: "2 个客户", 5: "5 个客户", 22: "22 个客户"},
}
DAYS: dict[str, dict[int, str]] = {
    "en": {1: "1 day", 2: "2 days", 5: "5 days", 22: "22 days"},
    "pl": {1: "1 dzień", 2: "2 dni", 5: "5 dni", 22: "22 dni"},
    "ru": {1: "1 день", 2: "2 дня", 5: "5 дней", 22: "22 дня"},
    "zh": {1: "1 天", 2: "2 天", 5: "5 天", 22: "22 天"},
}


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_counts_take_the_cldr_plural_form(lang: str) -> None:
    f = Formatter(lang)
    assert {n: f.ngettext("{n} account", "{n} accounts", n) for n in PLURALS[lang]} == PLURALS[lang]
    assert {n: f.ngettext("{n} day", "{n} days", n) for n in DAYS[lang]} == DAYS[lang]


def test_fractions_take_the_other_form() -> None:
    assert Formatter("pl").ngettext(*POINTS, 1.5) == "1,5 punktu"
    assert Formatter("ru").ngettext(*POINTS, 0.5) == "0,5 балла"
    assert Formatter("en").ngettext(*POINTS, 1.5) == "1.5 points"
    assert Formatter("en").ngettext(*POINTS, 1) == "1 point"


@pytest.mark.parametrize("lang", OTHERS)
def test_plural_translations_have_one_form_per_cldr_category(lang: str) -> None:
    tags = plural_tags(lang)
    for msgid, text in catalog(lang).items():
        if PLURAL_SEP in msgid:
            assert len(text.split(PLURAL_SEP)) == len(tags), (lang, msgid, text, tags)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_the_accounts_page_counts_in_the_language(pages: Pages, lang: str) -> None:
    r = pages.client.patch("/api/me", json={"language": lang}, headers={"X-CSRF-Token": pages.csrf})
    assert r.status_code == 200
    for query in ("", "?band=red", "?segment=SMB"):
        total = pages.client.get(f"/api/accounts{query}").json()["total"]
        texts = visible_text(pages.client.get(f"/accounts{query}").text)
        shown = Formatter(lang).ngettext("{n} account", "{n} accounts", total)
        assert f"{shown} ·" in texts, (query, total, texts[:30])


@pytest.mark.parametrize(("lang", "said"), [("en", "Logged."), ("ru", "Записано."), ("zh", "已记录。")])
def test_a_forms_message_speaks_the_readers_language(pages: Pages, lang: str, said: str) -> None:
    r = pages.client.patch("/api/me", json={"language": lang}, headers={"X-CSRF-Token": pages.csrf})
    assert r.status_code == 200
    account = pages.paths[4]
    r = pages.client.post(f"{account}/timeline", data={"csrf_token": pages.csrf, "kind": "call",
                                                       "text": FLAG})
    assert r.status_code == 200 and r.url.path == account
    assert f'<p class="flash ok" role="status">{said}</p>' in r.text
