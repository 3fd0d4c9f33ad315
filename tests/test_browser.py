"""The web app in a real browser (Debian's chromium driven by Playwright) against the app served
by uvicorn: a CSM's day (sign in, find an account, override its band, close a CTA), wrong
passwords, what a viewer may not do, HTMX filtering, the language switch, charts drawn by the
vendored Chart.js, and no console error or request leaving 127.0.0.1 on any page.

Every page visited is saved as a full-page PNG in $HEALTHSCORE_ARTIFACTS (default:
test-artifacts/screenshots/ in the repository)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

from healthscore.demo.population import CSMS
from healthscore.demo.project import DEMO_PASSWORD
from healthscore.project import Project
from healthscore.web.app import create_app
from healthscore.web.i18n import Formatter

from .browser_support import CHROMIUM, LAUNCH_ARGS, LiveServer, Recorder, path_is, screenshot
from .conftest import DEMO_DATES, copy_project
from .test_pipeline import END

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium "
                "(apt-get install chromium)", allow_module_level=True)

TODAY = date(2026, 11, 2)
DATES = DEMO_DATES  # what conftest.served_demo is scored on
EXPIRES = "2026-12-31"
TIMEOUT_MS = 15_000
EN = Formatter("en")  # labels of identifiers such as band names
CSM, LEAD, OTHER_LEAD, VIEWER, ADMIN = ("Anna Kowalska", "Nora Lindqvist", "Samuel Okafor",
                                        "Victor Viewer", "admin")


@dataclass(frozen=True)
class Site:
    """The served app and the facts about its data the tests need."""

    url: str
    csm: str  # a CSM who owns accounts with open CTAs
    account: str  # one of them, with an open CTA the CSM owns
    account_name: str
    cta: int  # that CTA
    band: str  # the account's band
    other_band: str  # a band it does not have
    flagged_account: str  # another CSM's account, flagged for the review meeting
    filter_band: str  # a band some but not all accounts have
    spare_csm: str  # a CSM no other test signs in as


@pytest.fixture(scope="module")
def site(served_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The demo scored on DATES, its rules applied (they open CTAs owned by each account's CSM),
    the demo's users and a recorded validation (conftest.served_demo), served from a copy."""
    project = Project.load(copy_project(served_demo, tmp_path_factory.mktemp("browser") / "p"))
    facts = _facts(project)
    server = LiveServer(create_app(project, today=TODAY)).start()
    try:
        yield dataclasses.replace(facts, url=server.url)
    finally:
        server.stop()


def _facts(project: Project) -> Site:
    """Pick the accounts and CTA the tests use, and give the review and success-plan pages
    something to show."""
    bands = list(dict.fromkeys(b.name for sc in project.config.scorecards for b in sc.bands))
    wf = project.workflow(today=TODAY)
    try:
        scores = wf.scores()
        if "is_primary" in scores.columns:
            scores = scores[scores["is_primary"].astype(bool)]
        scores = scores.drop_duplicates("account_id").set_index("account_id")
        ctas = [c for c in wf.ctas(status="open")
                if c["owner"] == scores.at[c["account_id"], "csm"]
                and scores.at[c["account_id"], "band"] in bands]
        assert ctas, "the rules opened no CTA owned by an account's CSM"
        owners = sorted({c["owner"] for c in ctas})
        csm = CSM if CSM in owners else owners[0]
        cta = min((c for c in ctas if c["owner"] == csm), key=lambda c: c["id"])
        account = cta["account_id"]
        band = str(scores.at[account, "band"])
        flagged = str(next(a for a in sorted(scores.index) if scores.at[a, "csm"] not in (None, csm)))
        wf.flag(flagged, "Sponsor left; renewal at risk", actor=ADMIN, priority="critical")
        wf.create_success_plan(account, actor=ADMIN, template="recovery")
        wf.create_success_plan(flagged, actor=ADMIN, template="onboarding")
        counts = scores["band"].value_counts()
        partial = [b for b in bands if 0 < counts.get(b, 0) < len(scores)]
        return Site(url="", csm=csm, account=account, account_name=str(scores.at[account, "name"]),
                    cta=int(cta["id"]), band=band, other_band=next(b for b in bands if b != band),
                    flagged_account=flagged, filter_band=min(partial, key=lambda b: counts[b]),
                    spare_csm=next(c for c in reversed(CSMS) if c != csm))
    finally:
        wf.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@contextmanager
def watched_tab(browser: Browser, site: Site, recorder: Recorder, **context_args: Any) -> Iterator[Page]:
    """A tab in a fresh browser context (no cookies) on the app, watched by ``recorder``."""
    context = browser.new_context(base_url=site.url, locale="en-US", **context_args)
    context.set_default_timeout(TIMEOUT_MS)
    recorder.watch_context(context)
    tab = context.new_page()
    recorder.watch_page(tab)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, site: Site, recorder: Recorder, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the app; fails the test if anything the
    recorder watches went wrong (an xfail test checks that itself)."""
    with watched_tab(browser, site, recorder, viewport={"width": 1280, "height": 900}) as tab:
        yield tab
    if request.node.get_closest_marker("xfail") is None:
        assert not recorder.problems(), "\n".join(recorder.problems())


def sign_in(page: Page, name: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def nav(page: Page, label: str) -> None:
    page.locator("header.top").get_by_role("link", name=label, exact=True).click()


def expect_chart(page: Page, canvas_id: str) -> None:
    """The canvas is in a .chart box, has a size, and Chart.js drew a chart on it."""
    canvas = page.locator(f".chart canvas#{canvas_id}")
    expect(canvas).to_be_visible()
    page.wait_for_function("id => !!(window.Chart && window.Chart.getChart(document.getElementById(id)))",
                           arg=canvas_id)
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, box


# ----------------------------------------------------------------------------- the journey


def test_csm_overrides_a_band_and_closes_a_cta(page: Page, site: Site) -> None:
    page.goto("/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    screenshot(page, "01-login")
    sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))  # signing in lands on My day
    expect(page.locator("main h1")).to_have_text("My day")
    expect(page.locator("header.top .who")).to_contain_text(site.csm)
    screenshot(page, "02-my-day")
    nav(page, "Portfolio")
    expect(page.locator("main h1")).to_have_text("Portfolio")
    expect_chart(page, "distribution")
    screenshot(page, "02-portfolio")

    # the accounts list, narrowed to the CSM's accounts, then one of them
    nav(page, "Accounts")
    expect(page).to_have_url(path_is("/accounts"))
    expect(page.locator("main h1")).to_have_text("Accounts")
    screenshot(page, "03-accounts")
    # sort by CSM (not the filter form: see test_accounts_filter_swaps_the_table_with_htmx) and
    # page on until the account shows
    table = page.locator("#account-table")
    table.locator("thead").get_by_role("link", name="CSM", exact=True).click()
    expect(page).to_have_url(re.compile(r"/accounts\?.*sort=csm"))
    expect(table.locator("thead")).to_contain_text("CSM ▲")
    link = table.locator(f'a[href="/accounts/{site.account}"]')
    for number in range(2, 10):
        if link.count():
            break
        table.locator(".pager").get_by_role("link", name=re.compile("Next")).click()
        expect(table.locator(".pager")).to_contain_text(f"Page {number} of")
    link.click()

    # Account 360: override the band
    expect(page).to_have_url(path_is(f"/accounts/{site.account}"))
    expect(page.locator("main h1")).to_have_text(site.account_name)
    final = page.locator("#final-band .band")
    expect(final).to_have_text(EN.gettext(site.band))
    expect_chart(page, "trend")  # drawn after an hx-boost navigation too
    screenshot(page, "04-account-360-before-override")
    form = page.locator("#override-form")
    form.get_by_label("Band").select_option(site.other_band)
    form.get_by_label("Reason").select_option("relationship")
    note = "Sponsor confirmed the renewal in writing"
    form.get_by_label("Note").fill(note)
    form.get_by_label("Expires on").fill(EXPIRES)
    form.get_by_role("button", name="Save override").click()
    expect(page.locator(".flash.ok")).to_have_text("Override saved.")
    expect(page).to_have_url(path_is(f"/accounts/{site.account}"))
    expect(final).to_have_text(EN.gettext(site.other_band))
    expect(final).to_have_class(re.compile(rf"\bband-{re.escape(site.other_band)}\b"))
    expect(page.locator("#health .override")).to_contain_text(note)
    expect(page.locator("#timeline")).to_contain_text(
        f"Override to band {site.other_band} until {EXPIRES} (relationship): {note}")
    screenshot(page, "05-account-360-after-override")

    # the cockpit: close the account's CTA with an outcome
    nav(page, "Cockpit")
    expect(page).to_have_url(path_is("/cockpit"))
    card = page.locator(f"#cta-{site.cta}")
    expect(card).to_be_visible()
    screenshot(page, "06-cockpit")
    card.locator("summary.expand").click()  # a compact row: expand it to act
    card.get_by_label("Outcome").fill("resolved: sponsor re-engaged, renewal call booked")
    card.get_by_role("button", name=f"Close CTA #{site.cta}", exact=True).click()
    expect(page.locator(".flash.ok")).to_have_text(f"CTA #{site.cta} closed.")
    expect(page.locator(f"#cta-{site.cta}")).to_have_count(0)
    expect(page).to_have_url(path_is("/cockpit"))
    screenshot(page, "07-cockpit-after-close")


# ----------------------------------------------------------------------------- focused checks


def _row_ids(page: Page) -> list[int]:
    return [int(i.removeprefix("cta-")) for i in
            page.locator("table.queue tbody.cta").evaluate_all("els => els.map(e => e.id)")]


def test_queue_filters_sorts_pages_and_acts_in_bulk_in_place(page: Page, site: Site) -> None:
    sign_in(page, LEAD)
    expect(page).to_have_url(path_is("/today"))
    page.goto("/cockpit?per_page=10")
    scopes = page.locator("main nav.scope")
    expect(scopes.locator("a[aria-current=page]")).to_contain_text("My team")
    team = page.request.get("/api/cockpit?per_page=1").json()
    assert team["total"] > 0 and team["scope"] == "team"
    expect(page.locator("#queue-summary")).to_contain_text(f"Open CTAs: {team['total']}")
    page.evaluate("window.__sameDocument = true")

    # everyone's CTAs, sorted by ARR, largest first: the rows the API lists, in its order
    scopes.get_by_role("link", name=re.compile(r"^All \(")).click()
    expect(page).to_have_url(re.compile(r"/cockpit\?.*scope=all"))
    header = page.locator("table.queue thead").get_by_role("link", name="ARR", exact=True)
    header.click()
    expect(page).to_have_url(re.compile(r"sort=arr&desc=false"))
    page.locator("table.queue thead").get_by_role("link", name="ARR ▲", exact=True).click()
    expect(page).to_have_url(re.compile(r"sort=arr&desc=true"))
    api = page.request.get("/api/cockpit?scope=all&sort=arr&desc=true&per_page=10").json()
    expect(page.locator("table.queue tbody.cta")).to_have_count(len(api["ctas"]))
    assert _row_ids(page) == [c["id"] for c in api["ctas"]]
    assert api["total"] > team["total"]

    # a filter keeps the sort; the next page holds the next rows
    page.locator("#queue-filters select[name=type]").select_option("risk")
    expect(page).to_have_url(re.compile(r"type=risk"))
    expect(page).to_have_url(re.compile(r"sort=arr"))
    risk = page.request.get("/api/cockpit?scope=all&type=risk&sort=arr&desc=true&per_page=10&page=2").json()
    assert risk["pages"] > 1, risk["total"]
    page.locator(".pager").get_by_role("link", name=re.compile("Next")).click()
    expect(page.locator(".pager")).to_contain_text(f"Page 2 of {risk['pages']}")
    assert _row_ids(page) == [c["id"] for c in risk["ctas"]]

    # tick two rows the lead may act on and lower their priority in one action
    boxes = page.locator(f"table.queue input[name=ids]:not([value='{site.cta}'])")
    chosen = [int(boxes.nth(i).get_attribute("value") or 0) for i in range(2)]
    for i in range(2):
        boxes.nth(i).check()
    bulk = page.locator("#bulk")
    bulk.get_by_label("Action on the selected CTAs").select_option("priority")
    bulk.get_by_label("New priority").select_option("low")
    bulk.get_by_role("button", name="Apply to selected").click()
    expect(page.locator(".flash.ok")).to_have_text("2 CTAs changed (priority).")
    assert {page.request.get(f"/api/ctas/{i}").json()["priority"] for i in chosen} == {"low"}
    expect(page).to_have_url(re.compile(r"sort=arr"))  # back where the lead was
    assert page.evaluate("window.__sameDocument") is True, "a full page load happened"
    screenshot(page, "18-cockpit-queue-bulk")

    # search as you type: the rows narrow, the box keeps the focus
    name = page.request.get(f"/api/ctas/{chosen[0]}").json()["account_id"]
    search = page.locator("#queue-q")
    search.press_sequentially(name, delay=20)
    query = f"scope=all&type=risk&sort=arr&desc=true&per_page=10&q={name}"
    found = page.request.get(f"/api/cockpit?{query}").json()
    expect(page).to_have_url(re.compile(rf"q={re.escape(name)}"))
    expect(page.locator("table.queue tbody.cta")).to_have_count(len(found["ctas"]))
    assert chosen[0] in _row_ids(page)
    expect(search).to_be_focused()
    expect(search).to_have_value(name)


def test_my_day_lists_the_csms_work_and_opens_an_account_in_one_click(page: Page, site: Site) -> None:
    sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    day = page.request.get("/api/today").json()
    assert day["scope"] == "mine" and day["falling"], day
    first = day["falling"][0]
    rows = page.locator("#falling tbody tr")
    expect(rows).to_have_count(len(day["falling"]))
    expect(rows.first).to_contain_text(first["name"])
    page.locator("main nav.scope").get_by_role("link", name="All", exact=True).click()
    expect(page).to_have_url(re.compile(r"/today\?scope=all"))
    expect(page.locator("main nav.scope a[aria-current=page]")).to_have_text("All")
    page.locator("main nav.scope").get_by_role("link", name="Mine", exact=True).click()
    expect(page.locator("main nav.scope a[aria-current=page]")).to_have_text("Mine")
    expect(rows.first).to_contain_text(first["name"])
    rows.first.get_by_role("link").first.click()
    expect(page).to_have_url(path_is(f"/accounts/{first['account_id']}"))
    expect(page.locator("main h1")).to_have_text(first["name"])


def test_wrong_password_shows_an_error_and_stays_on_login(page: Page) -> None:
    sign_in(page, ADMIN, "not the password")
    expect(page.locator(".flash.error")).to_have_text("login: wrong user name or password.")
    expect(page).to_have_url(path_is("/login"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("header.top")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"] == "hs_session"]
    screenshot(page, "15-login-wrong-password")


def test_viewer_sees_no_action_forms(page: Page, site: Site) -> None:
    sign_in(page, VIEWER)
    expect(page).to_have_url(path_is("/today"))
    page.goto(f"/accounts/{site.flagged_account}")
    expect(page.locator("#final-band")).to_be_visible()
    expect(page.locator("#ctas .cta").first).to_be_visible()  # there is something to act on...
    expect(page.locator("main form")).to_have_count(0)  # ...but no form to do it
    expect(page.locator("#actions")).to_have_count(0)
    expect(page.locator("details.cta-actions")).to_have_count(0)
    screenshot(page, "17-account-360-viewer")
    page.goto("/cockpit?everyone=true")
    expect(page.locator("main .cta").first).to_be_visible()
    expect(page.locator("main form[method=post]")).to_have_count(0)


def test_accounts_filter_swaps_the_table_with_htmx(page: Page, site: Site, recorder: Recorder) -> None:
    sign_in(page, LEAD)
    expect(page).to_have_url(path_is("/today"))
    page.goto("/accounts")
    everyone = page.request.get("/api/accounts?per_page=1").json()["total"]
    expected = page.request.get(f"/api/accounts?band={site.filter_band}&per_page=1").json()["total"]
    assert 0 < expected < everyone
    summary = page.locator("#account-table > p.muted")
    expect(summary).to_contain_text(f"{everyone} accounts")
    page.evaluate("window.__sameDocument = true")

    with page.expect_response(lambda r: f"band={site.filter_band}" in r.url) as answer:
        page.locator("#filters select[name=band]").select_option(site.filter_band)
    response = answer.value
    assert response.request.headers.get("hx-request") == "true", response.request.headers
    assert response.status == 200, f"{response.status} from {response.url}"
    expect(page).to_have_url(re.compile(rf"/accounts\?.*band={site.filter_band}\b"))
    expect(summary).to_contain_text(f"{expected} accounts")
    bands = page.locator("#account-table tbody .band")
    expect(bands).to_have_count(expected)
    assert all(f"band-{site.filter_band}" in c.split() for c in bands.evaluate_all(
        "els => els.map(e => e.className)"))
    assert page.evaluate("window.__sameDocument") is True, "the filter reloaded the whole page"
    expect(page.locator("#filters select[name=band]")).to_have_value(site.filter_band)
    screenshot(page, "16-accounts-filtered")
    assert not recorder.problems(), "\n".join(recorder.problems())


def choose_polish(page: Page) -> None:
    page.goto("/me")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    form = page.locator("form[action='/me']")
    form.locator("select[name=language]").select_option(label="Polski")
    form.get_by_role("button").click()
    expect(page.locator(".flash.ok")).to_be_visible()
    expect(form.locator("select[name=language]")).to_have_value("pl")


def test_language_switch_to_polish(page: Page) -> None:
    pl = Formatter("pl")
    sign_in(page, OTHER_LEAD)
    expect(page).to_have_url(path_is("/today"))
    choose_polish(page)
    expect(page.locator("main")).to_contain_text(pl.date("2026-11-24"))  # "24 lis 2026"
    expect(page.locator("header.top .menu")).to_contain_text(pl.gettext("Portfolio"))
    screenshot(page, "14-me-polski")
    # and it sticks: a fresh load of another page is Polish, <html lang> included
    page.goto("/portfolio")
    expect(page.locator("html")).to_have_attribute("lang", "pl")
    expect(page.locator("main hgroup")).to_contain_text(pl.date(END))
    expect(page.locator("header.top .menu")).to_contain_text(pl.gettext("Accounts"))


def test_language_switch_sets_html_lang_at_once(page: Page, site: Site) -> None:
    sign_in(page, site.spare_csm)
    expect(page).to_have_url(path_is("/today"))
    choose_polish(page)
    expect(page.locator("html")).to_have_attribute("lang", "pl", timeout=3_000)


def test_every_page_renders_with_local_assets_only(page: Page, site: Site, recorder: Recorder) -> None:
    sign_in(page, ADMIN)
    expect(page).to_have_url(path_is("/today"))
    page.goto("/portfolio")
    expect_chart(page, "distribution")
    assert page.evaluate("typeof window.Chart") == "function", "the vendored Chart.js did not load"
    assert page.evaluate("typeof window.htmx") == "object", "the vendored htmx did not load"
    pages = [("/today", "My day", "19-my-day"),
             ("/review", "Review meeting", "08-review"),
             ("/success-plans", "Success plans", "09-success-plans"),
             ("/validation", "Validation", "10-validation"),
             ("/data-health", "Data health", "11-data-health"),
             ("/admin", "Admin", "12-admin"),
             ("/me", ADMIN, "13-me")]
    for path, heading, shot in pages:
        page.goto(path)
        expect(page.locator("main h1")).to_have_text(heading)
        if path == "/review":
            expect(page.locator(f'main a[href="/accounts/{site.flagged_account}"]').first).to_be_visible()
        if path == "/success-plans":
            expect(page.locator("main tbody tr")).to_have_count(2)
        if path == "/validation":
            report = page.frame_locator("iframe.report").locator("body")
            expect(report).to_contain_text("AUC")
        screenshot(page, shot)
    # vendored assets were fetched, from us
    assert any(u.endswith("/static/vendor/chart.umd.min.js") for u in recorder.requests), recorder.requests
    assert recorder.foreign_requests == [], recorder.foreign_requests
    assert recorder.console_errors == [] and recorder.page_errors == [], recorder.problems()



def test_csp_blocks_inline_scripts_and_the_recorder_sees_it(page: Page, recorder: Recorder) -> None:
    """The console check above is not vacuous: an inline script is refused by the CSP, and the
    refusal reaches the recorder as a console error."""
    page.goto("/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    with page.expect_console_message(
            lambda m: m.type == "error" and "Content Security Policy" in m.text) as refusal:
        page.evaluate("""() => {
            const s = document.createElement("script");
            s.textContent = "window.__inlineRan = true";
            document.body.appendChild(s);
        }""")
    assert "script" in refusal.value.text
    assert page.evaluate("window.__inlineRan === undefined")
    assert any("Content Security Policy" in e for e in recorder.console_errors), recorder.console_errors
    recorder.console_errors.clear()
