"""A CSM's morning in a real browser (Debian's chromium driven by Playwright), counted: sign in,
see the red accounts, read why one is red, open its CTA, tick a task, log a call, override the
band and close the CTA - in at most 7 clicks, with no full page load after signing in, without
the page jumping back to the top after an action, and with the focus on what changed.

Then: Account 360's and the Cockpit's forms in error keep what was typed, with the error beside
the field; the top bar finds an account by keyboard alone; the accounts list opens on the CSM's
book, keeps its sort when a filter changes, and saves views.

Uses the served demo site of tests/test_browser.py (its fixtures are imported here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

try:
    from playwright.sync_api import Browser, Locator, Page, expect
except ImportError:  # pragma: no cover - playwright is a dev dependency
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

from healthscore.demo.project import DEMO_PASSWORD

from . import test_browser as served
from .browser_support import Recorder, path_is, screenshot
from .test_browser import ADMIN, TODAY, Site
from .test_browser_pages import axe_violations

site, browser, page, recorder = served.site, served.browser, served.page, served.recorder
LAPTOP = {"width": 1280, "height": 600}  # a laptop's browser window: the CTA page scrolls


@pytest.fixture
def laptop(browser: Browser, site: Site, recorder: Recorder) -> Iterator[Page]:
    with served.watched_tab(browser, site, recorder, viewport=LAPTOP) as tab:
        yield tab
    assert not recorder.problems(), "\n".join(recorder.problems())


@pytest.fixture(scope="module")
def red_csm(browser: Browser, site: Site) -> str:
    """A CSM (not one other tests sign in as) owning red accounts with open CTAs that have open
    tasks: the one with the most such CTAs, asked of the API as the admin."""
    context = browser.new_context(base_url=site.url)
    try:
        context.request.post("/api/login", data={"name": ADMIN, "password": DEMO_PASSWORD})
        queue = context.request.get("/api/cockpit?scope=all&band=red&per_page=500").json()["ctas"]
        users = {u["name"]: u["role"] for u in context.request.get("/api/admin").json()["users"]}
    finally:
        context.close()
    counts: dict[str, int] = {}
    for c in queue:
        owner = c["owner"]
        taken = owner in (site.csm, site.spare_csm)
        if (owner == c["account_csm"] and users.get(owner) == "csm" and not taken
                and any(t["status"] == "open" for t in c["tasks"])):
            counts[owner] = counts.get(owner, 0) + 1
    assert counts, "no CSM owns a red account's CTA with an open task"
    return max(sorted(counts), key=lambda name: counts[name])

MAX_CLICKS = 7  # signing in included
FOCUS_MS = 2_000  # the focus is in the changed block by then, or it was lost to the body
FOCUS_IN_BLOCK = ("sel => { const a = document.activeElement; "
                  "return !!a && a !== document.body && !!a.closest(sel); }")


@dataclass
class Journey:
    """The page, with every click and every typed or chosen field counted, and every full page
    load of the main frame recorded."""

    page: Page
    clicks: int = 0
    fields: int = 0
    loads: list[str] = field(default_factory=list)

    def click(self, target: Locator) -> None:
        self.clicks += 1
        target.click()

    def fill(self, target: Locator, text: str) -> None:
        self.fields += 1
        target.fill(text)

    def choose(self, target: Locator, value: str) -> None:
        self.fields += 1
        target.select_option(value)

    def watch_loads(self) -> None:
        self.page.on("load", lambda p: self.loads.append(p.url))
        self.page.evaluate("window.__sameDocument = true")

    def same_document(self) -> bool:
        return self.page.evaluate("window.__sameDocument === true") is True

    def scrolled(self) -> float:
        return float(self.page.evaluate("window.scrollY"))


def _journey_account(page: Page, csm: str, avoid: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A worst-band account on the CSM's My day with an open CTA they may act on that has an
    open task (not the CTA other tests change)."""
    day = page.request.get("/api/today").json()
    assert day["worst"], f"{csm} has no account in the worst band: {day}"
    for account in day["worst"]:
        why = page.request.get(f"/api/today/why/{account['account_id']}").json()
        for cta in why["ctas"]:
            if cta["id"] != avoid and cta["can_act"] and any(t["status"] == "open" for t in cta["tasks"]):
                return account, cta
    raise AssertionError(f"none of {csm}'s worst-band accounts has an open CTA with an open task")


def test_the_morning_journey_takes_seven_clicks_and_no_page_load(laptop: Page, site: Site,
                                                                 red_csm: str) -> None:
    page = laptop
    journey = Journey(page)
    page.goto("/login")
    journey.fill(page.get_by_label("User name"), red_csm)
    journey.fill(page.get_by_label("Password", exact=True), DEMO_PASSWORD)
    journey.click(page.get_by_role("button", name="Sign in"))
    expect(page).to_have_url(path_is("/today"))
    journey.watch_loads()
    account, cta = _journey_account(page, red_csm, avoid=site.cta)
    name = account["name"] or account["account_id"]

    # my red accounts, and why this one is red: in place, under its row
    worst = page.locator("#worst")
    expect(worst.locator("tbody tr:not(.why)").first).to_be_visible()
    button = worst.get_by_role("button", name=f"Why is {name} red?")
    journey.click(button)
    region = worst.locator("section.why-box")
    expect(region).to_be_visible()
    expect(region).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(region).to_contain_text("Loses the most points on")
    assert axe_violations(page) == []  # My day with a "why" open: no critical or serious violation
    screenshot(page, "30-journey-why")

    # open the CTA (htmx swaps the page in: no load)
    journey.click(region.locator(f'a[href="/ctas/{cta["id"]}"]'))
    expect(page).to_have_url(path_is(f"/ctas/{cta['id']}"))
    expect(page.locator("main h1")).to_contain_text(f"CTA #{cta['id']}")

    # tick a task, scrolled down to it: the page stays where it was
    task = next(t for t in cta["tasks"] if t["status"] == "open")
    done = page.get_by_role("button", name=f"Done: {task['title']} (CTA #{cta['id']})")
    _act_without_jump(journey, done, lambda: expect(page.locator(f"#task-{task['id']}")).to_contain_text("✓"))
    expect(page.locator("#cta-detail .flash.ok")).to_have_text(f"Task #{task['id']} done.")

    # log a call (the form opens on 'call')
    act = page.locator("#cta-account-act")
    expect(act.get_by_label("Kind")).to_have_value("call")
    journey.fill(act.get_by_label("What happened"), "Called the sponsor: budget approved, renewal on track")
    _act_without_jump(journey, act.get_by_role("button", name="Log"),
                      lambda: expect(page.locator("#cta-detail .flash.ok")).to_have_text("Logged."))

    # override the band
    journey.choose(act.get_by_label("Override the band"), "yellow")
    journey.choose(act.get_by_label("Reason"), "renewal_signal")
    journey.fill(act.get_by_label("Note"), "Sponsor committed to renew on the call")
    journey.fill(act.get_by_label("Expires on"), "2026-12-31")
    _act_without_jump(journey, act.get_by_role("button", name="Save override"),
                      lambda: expect(page.locator("#cta-detail .flash.ok")).to_have_text("Override saved."))

    # close the CTA
    outcome = page.locator("#cta-act").get_by_label("Outcome")
    journey.fill(outcome, "Renewal call held; sponsor on board")
    closed = f"CTA #{cta['id']} closed."
    _act_without_jump(journey, page.get_by_role("button", name=f"Close CTA #{cta['id']}"),
                      lambda: expect(page.locator("#cta-detail .flash.ok")).to_have_text(closed))
    screenshot(page, "31-journey-closed")

    assert journey.clicks <= MAX_CLICKS, journey.clicks
    assert journey.loads == [], f"full page loads after signing in: {journey.loads}"
    assert journey.same_document(), "a full page load happened"
    # every step is in the store
    after = page.request.get(f"/api/ctas/{cta['id']}").json()
    assert after["status"] == "closed" and after["outcome"] == "Renewal call held; sponsor on board"
    assert next(t for t in after["tasks"] if t["id"] == task["id"])["status"] == "done"
    seen = page.request.get(f"/api/accounts/{account['account_id']}").json()
    assert seen["final"]["final_band"] == "yellow"
    assert seen["final"]["override"]["note"] == "Sponsor committed to renew on the call"
    assert any(e["text"] == "Called the sponsor: budget approved, renewal on track" for e in seen["timeline"])
    print(f"morning journey: {journey.clicks} clicks, {journey.fields} typed or chosen fields, "
          f"{len(journey.loads)} page loads after signing in (as of {TODAY})")


def _act_without_jump(journey: Journey, button: Locator, changed: Any) -> None:
    """Scroll ``button`` into view, click it, wait for ``changed``; the page must not have
    jumped back to the top, and the focus is in the CTA's block (not lost to the body)."""
    page = journey.page
    button.evaluate("b => b.scrollIntoView({block: 'center'})")
    before = journey.scrolled()
    assert before > 0, "the page is too short to tell a jump to the top"
    journey.click(button)
    changed()
    assert journey.scrolled() > 0, f"the page jumped to the top (scrollY was {before:g})"
    # htmx moves the focus once the swap settled (a moment after the new block shows)
    page.wait_for_function(FOCUS_IN_BLOCK, arg="#cta-detail", timeout=FOCUS_MS)


# ----------------------------------------------------------------------------- forms in error


def _account_form(page: Page, site: Site, summary: str) -> Locator:
    """Account 360 of the CSM's account, signed in as the CSM, with the form under ``summary``
    open; the page is marked to tell a later full page load."""
    served.sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto(f"/accounts/{site.account}")
    details = page.locator("#actions details", has=page.locator("summary", has_text=summary))
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    page.evaluate("window.__sameDocument = true")
    return details.locator("form").first


def _stayed(page: Page, site: Site) -> None:
    assert page.evaluate("window.__sameDocument === true") is True, "a full page load happened"
    expect(page).to_have_url(path_is(f"/accounts/{site.account}"))


def test_an_override_in_error_keeps_the_typed_text_beside_the_field(page: Page, site: Site) -> None:
    form = _account_form(page, site, "Override the band or score")
    form.get_by_label("Band").select_option(site.other_band)
    form.get_by_label("Reason").select_option("renewal_signal")
    form.get_by_label("Note").fill("Sponsor promised to renew at the QBR")
    form.get_by_label("Expires on").fill("2026-10-01")  # before the app's today
    form.get_by_role("button", name="Save override").click()
    error = page.locator("#override-form #error-override-expires_on")
    expect(error).to_have_text("expires_on: 2026-10-01 is not in the future. "
                               "An override needs an expiry after today (2026-11-02).")
    form = page.locator("#override-form")
    expect(form.get_by_label("Expires on")).to_be_focused()
    expect(form.get_by_label("Expires on")).to_have_value("2026-10-01")
    expect(form.get_by_label("Expires on")).to_have_attribute("aria-describedby", "error-override-expires_on")
    expect(form.get_by_label("Note")).to_have_value("Sponsor promised to renew at the QBR")
    expect(form.get_by_label("Band")).to_have_value(site.other_band)
    expect(form.get_by_label("Reason")).to_have_value("renewal_signal")
    _stayed(page, site)
    screenshot(page, "32-account-override-error")


def test_a_touch_in_error_keeps_the_typed_text_beside_the_field(page: Page, site: Site) -> None:
    form = _account_form(page, site, "Log a touch or note")
    text = "Called the sponsor about the renewal. " * 270  # over the 10,000 characters a text may have
    form.get_by_label("Kind").select_option("call")
    form.get_by_label("What happened").fill(text)
    form.get_by_role("button", name="Log").click()
    error = page.locator("#error-timeline-text")
    expect(error).to_have_text("text: String should have at most 10000 characters")
    box = page.locator("#log").get_by_label("What happened")
    expect(box).to_be_focused()
    expect(box).to_have_value(text)
    expect(page.locator("#log").get_by_label("Kind")).to_have_value("call")
    _stayed(page, site)


def test_a_module_mark_in_error_keeps_the_typed_text_beside_the_field(page: Page, site: Site) -> None:
    form = _account_form(page, site, "Mark a module")
    module = form.get_by_label("Module").locator("option").nth(1).get_attribute("value")
    assert module
    form.get_by_label("Module").select_option(module)
    form.get_by_label("Colour").select_option("red")
    form.get_by_label("Reason").select_option("sponsor_left")
    form.get_by_label("Note").fill("The champion left last week")
    form.get_by_label("Expires on").fill("2026-11-02")  # today: not after it
    form.get_by_role("button", name="Save mark").click()
    expect(page.locator("#error-mark-expires_on")).to_have_text(
        "expires_on: 2026-11-02 is not in the future. A mark needs an expiry after today (2026-11-02).")
    form = page.locator("#mark-form")
    expect(form.get_by_label("Expires on")).to_be_focused()
    expect(form.get_by_label("Note")).to_have_value("The champion left last week")
    expect(form.get_by_label("Module")).to_have_value(module)
    expect(form.get_by_label("Colour")).to_have_value("red")
    expect(form.get_by_label("Reason")).to_have_value("sponsor_left")
    _stayed(page, site)


def test_a_cockpit_form_in_error_keeps_the_typed_text_beside_the_field(page: Page, site: Site) -> None:
    served.sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto(f"/cockpit?q={site.account}&sort=due_on")
    row = page.locator(f"#cta-{site.cta}")
    row.locator("summary.expand").click()
    page.evaluate("window.__sameDocument = true")
    row.get_by_label("Until").fill("2026-10-01")  # before the app's today
    row.get_by_label("Why").fill("Customer on holiday until the 20th")
    row.get_by_role("button", name=f"Snooze CTA #{site.cta}").click()
    error = page.locator(f"#error-snooze-{site.cta}-until")
    expect(error).to_have_text("until: 2026-10-01 is not in the future. Snooze to a later date.")
    row = page.locator(f"#cta-{site.cta}")
    expect(row.get_by_label("Until")).to_be_focused()
    expect(row.get_by_label("Until")).to_have_value("2026-10-01")
    expect(row.get_by_label("Why")).to_have_value("Customer on holiday until the 20th")
    assert page.evaluate("window.__sameDocument === true") is True, "a full page load happened"
    expect(page).to_have_url(re.compile(rf"/cockpit\?q={site.account}&sort=due_on$"))
    expect(page.locator("#queue th[aria-sort]")).to_contain_text("Due")  # the queue kept its order


# ----------------------------------------------------------------------------- search


def test_the_top_bar_finds_an_account_by_keyboard_from_any_page(page: Page, site: Site) -> None:
    served.sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto("/portfolio")
    page.evaluate("window.__sameDocument = true")
    for _ in range(40):  # Tab from the top of the page to the search box
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "global-search":
            break
    box = page.locator("#global-search")
    expect(box).to_be_focused()
    words = site.account_name.split()[0]
    page.keyboard.type(words.lower(), delay=20)
    first = page.locator("#search-suggestions a").first
    expect(first).to_be_visible()
    found = page.request.get(f"/api/search?q={words.lower()}").json()["accounts"]
    expect(page.locator("#search-suggestions li a[href^='/accounts/A']")).to_have_count(len(found))
    expect(first).to_have_attribute("href", f"/accounts/{found[0]['account_id']}")
    screenshot(page, "33-search-suggestions")
    page.keyboard.press("Tab")  # the first suggestion
    expect(first).to_be_focused()
    box.focus()
    box.fill(site.account)
    page.keyboard.press("Enter")  # the best match: the account whose id it is
    expect(page).to_have_url(path_is(f"/accounts/{site.account}"))
    expect(page.locator("main h1")).to_have_text(site.account_name)
    assert page.evaluate("window.__sameDocument === true") is True, "a full page load happened"


# ----------------------------------------------------------------------------- the accounts list


def test_the_accounts_list_opens_on_my_book_and_a_filter_keeps_the_sort(page: Page, site: Site) -> None:
    served.sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    served.nav(page, "Accounts")
    expect(page.locator("main nav.scope a[aria-current=page]")).to_contain_text("Mine")
    book = page.request.get("/api/accounts?per_page=1000").json()
    assert book["scope"] == "mine" and {a["csm"] for a in book["accounts"]} == {site.csm}
    expect(page.locator("#account-table tbody tr")).to_have_count(book["total"])
    page.locator("#account-table th a", has_text="ARR").click()
    expect(page).to_have_url(re.compile(r"/accounts\?.*sort=arr"))
    page.evaluate("window.__sameDocument = true")
    page.locator("#filters select[name=band]").select_option(site.band)
    expect(page).to_have_url(re.compile(rf"/accounts\?.*sort=arr.*band={site.band}|/accounts\?.*band={site.band}.*sort=arr"))
    wanted = page.request.get(f"/api/accounts?band={site.band}&sort=arr").json()["accounts"]
    names = page.locator("#account-table tbody tr td:first-child a")
    expect(names).to_have_count(len(wanted))
    expect(names.first).to_have_text(wanted[0]["name"] or wanted[0]["account_id"])
    assert page.evaluate("window.__sameDocument === true") is True, "a full page load happened"
    page.locator("main nav.scope").get_by_role("link", name=re.compile(r"^All")).click()
    expect(page).to_have_url(re.compile(r"scope=all"))
    expect(page).to_have_url(re.compile(r"sort=arr"))
    every = page.request.get(f"/api/accounts?band={site.band}&sort=arr&scope=all&per_page=1").json()["total"]
    expect(page.locator("#account-table > p.muted")).to_contain_text(f"{every} accounts")


def test_a_saved_view_of_the_accounts_list_opens_and_is_deleted(page: Page, site: Site) -> None:
    served.sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto("/accounts?sort=arr&desc=true")
    page.locator("#filters select[name=band]").select_option(site.band)  # in place: the URL follows
    expect(page).to_have_url(re.compile(rf"band={site.band}"))
    views = page.locator("#saved-views")
    if views.get_attribute("open") is None:
        views.locator("summary").click()
    views.get_by_label("Name of this view").fill("My band by ARR")
    views.get_by_role("button", name="Save this view").click()
    expect(page.locator(".flash.ok")).to_have_text("View “My band by ARR” saved.")
    saved = page.request.get("/api/views/accounts").json()
    assert [(v["name"], dict(p.split("=") for p in v["query"].split("&"))) for v in saved] == [
        ("My band by ARR", {"sort": "arr", "desc": "true", "band": site.band, "scope": "mine"})]
    page.goto("/accounts")
    page.locator("#saved-views").get_by_role("link", name="My band by ARR").click()
    expect(page).to_have_url(re.compile(rf"/accounts\?.*band={site.band}"))
    expect(page.locator("#filters select[name=band]")).to_have_value(site.band)
    expect(page.locator("#account-table th a", has_text="ARR")).to_contain_text("▼")
    page.locator("#saved-views").get_by_role("button", name="Delete the view My band by ARR").click()
    expect(page.locator(".flash.ok")).to_have_text("View “My band by ARR” deleted.")
    assert page.request.get("/api/views/accounts").json() == []
