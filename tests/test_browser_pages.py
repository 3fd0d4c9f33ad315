"""Every app page in a real browser (Debian's chromium driven by Playwright): axe-core (vendored
from npm) finds no critical or serious accessibility violation on any page, signed in as a CSM
and as an admin; at a 390 px phone width no page scrolls sideways; and a CTA's own page acts in
place: a task ticked, a comment added, without a page load.

Uses the served demo site of tests/test_browser.py (its fixtures are imported here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - playwright is a dev dependency
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

from . import test_browser as served
from .browser_support import Recorder, path_is, screenshot
from .test_browser import ADMIN, Site, sign_in

# the served demo site and its browser, shared with tests/test_browser.py
site, browser, page, recorder = served.site, served.browser, served.page, served.recorder

PHONE = {"width": 390, "height": 844}
AXE = "/static/vendor/axe.min.js"
# what axe reports as a failure here: the two worst of its four impact levels
BLOCKING = ("critical", "serious")
SLOW_MS = 90_000  # the dry run scores the whole portfolio: slow on a busy test machine


def app_pages(page: Page, site: Site, who: str) -> list[str]:
    """Every page of the app a signed-in ``who`` can open, with real ids in the paths."""
    account = f"/accounts/{site.account}"
    page.goto(account)
    measure = page.locator(f'a[href^="{account}/measures/"]').first.get_attribute("href")
    plan = page.request.get("/api/success-plans").json()["plans"][0]["id"]
    pages = ["/today", "/portfolio", "/portfolio/trends", "/accounts", account, str(measure), "/cockpit",
             "/cockpit/board", f"/ctas/{site.cta}", "/review", "/success-plans", f"/success-plans/{plan}",
             "/validation", "/data-health", "/me", "/inbox"]
    return pages + (["/validation/preview", "/admin"] if who == ADMIN else [])


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's critical and serious violations on the page as it is now (the vendored copy,
    loaded from the app itself, so the Content-Security-Policy allows it)."""
    page.add_script_tag(url=AXE)
    found: list[dict[str, Any]] = page.evaluate("""async () => {
        const r = await window.axe.run(document, {resultTypes: ["violations"]});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
    }""")
    return [v for v in found if v["impact"] in BLOCKING]


def _lines(violations: list[dict[str, Any]]) -> list[str]:
    return [f"{v['impact']} {v['id']}: {v['help']} {v['nodes']}" for v in violations]


@pytest.mark.parametrize("who", ["csm", ADMIN])
def test_axe_finds_no_serious_violation_on_any_page(page: Page, site: Site, who: str) -> None:
    name = site.csm if who == "csm" else ADMIN
    page.goto("/login")
    report: dict[str, list[str]] = {}
    if who == "csm":  # signed out: the sign-in page
        report["/login"] = _lines(axe_violations(page))
    sign_in(page, name)
    expect(page).to_have_url(path_is("/today"))
    for path in app_pages(page, site, name):
        page.goto(path, timeout=SLOW_MS)
        expect(page.locator("main h1").first).to_be_visible()
        report[path] = _lines(axe_violations(page))
    bad = {p: v for p, v in report.items() if v}
    assert not bad, "\n".join(f"{p}: {v}" for p, v in bad.items())
    assert len(report) >= 14


# the elements that reach past the screen's right edge (outermost first), to say what to fix
WIDER = """() => [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
        + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "")
        + " " + Math.round(e.getBoundingClientRect().right))"""


@pytest.fixture
def phone(browser: Browser, site: Site, recorder: Recorder) -> Iterator[Page]:
    with served.watched_tab(browser, site, recorder, viewport=PHONE, is_mobile=True, has_touch=True) as tab:
        yield tab
    assert not recorder.problems(), "\n".join(recorder.problems())


def test_no_page_scrolls_sideways_on_a_phone(phone: Page, site: Site) -> None:
    phone.goto("/login")
    widths = {"/login": phone.evaluate("document.documentElement.scrollWidth")}
    wider: dict[str, list[str]] = {}
    sign_in(phone, ADMIN)
    expect(phone).to_have_url(path_is("/today"))
    for path in app_pages(phone, site, ADMIN):
        phone.goto(path, timeout=SLOW_MS)
        expect(phone.locator("main h1").first).to_be_visible()
        widths[path] = phone.evaluate("document.documentElement.scrollWidth")
        if widths[path] > PHONE["width"]:
            wider[path] = phone.evaluate(WIDER)
        screenshot(phone, "phone-" + (re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"))
    wide = {p: w for p, w in widths.items() if w > PHONE["width"]}
    assert not wide, (wide, wider)


def test_a_cta_page_ticks_a_task_and_takes_a_comment_in_place(page: Page, site: Site) -> None:
    sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto(f"/cockpit?q={site.account}")
    page.locator(f'#cta-{site.cta} a[href="/ctas/{site.cta}"]').click()
    expect(page).to_have_url(path_is(f"/ctas/{site.cta}"))
    expect(page.locator("main h1")).to_contain_text(f"CTA #{site.cta}")
    page.evaluate("window.__sameDocument = true")
    before = page.request.get(f"/api/ctas/{site.cta}").json()
    task = next(t for t in before["tasks"] if t["status"] == "open")
    page.mouse.wheel(0, 600)
    page.get_by_role("button", name=f"Done: {task['title']} (CTA #{site.cta})").click()
    expect(page.locator("#cta-detail .flash.ok")).to_contain_text(f"Task #{task['id']} done.")
    expect(page.locator(f"#task-{task['id']}")).to_contain_text("✓")
    expect(page.locator("#cta-detail .flash.ok")).to_be_focused()
    expect(page.locator("#cta-history")).to_contain_text(f"Task #{task['id']}: Task done")
    box = page.get_by_label("Add a comment")
    box.fill("Sponsor answered: renewal call on Friday")
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator("#cta-comments")).to_contain_text("Sponsor answered: renewal call on Friday")
    expect(page.locator("#cta-detail .flash.ok")).to_have_text("Comment added.")
    expect(page.locator("#cta-detail .flash.ok")).to_be_focused()
    expect(page.get_by_label("Add a comment")).to_have_value("")
    assert page.evaluate("window.__sameDocument") is True, "a full page load happened"
    after = page.request.get(f"/api/ctas/{site.cta}").json()
    assert [c["text"] for c in after["comments"]][-1] == "Sponsor answered: renewal call on Friday"
    screenshot(page, "20-cta-page")


def test_a_cta_form_in_error_keeps_the_typed_text_and_focuses_the_field(page: Page, site: Site) -> None:
    sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto(f"/ctas/{site.cta}")
    page.evaluate("window.__sameDocument = true")
    act = page.locator("#cta-act")
    act.get_by_label("Until").fill("2026-10-01")  # before the app's today
    act.get_by_label("Why").fill("Customer on holiday until the 20th")
    act.get_by_role("button", name=f"Snooze CTA #{site.cta}").click()
    error = page.locator("#error-snooze-until")
    expect(error).to_have_text("until: 2026-10-01 is not in the future. Snooze to a later date.")
    expect(act.get_by_label("Until")).to_be_focused()
    expect(act.get_by_label("Until")).to_have_value("2026-10-01")
    expect(act.get_by_label("Why")).to_have_value("Customer on holiday until the 20th")
    expect(act.get_by_label("Until")).to_have_attribute("aria-describedby", "error-snooze-until")
    assert page.evaluate("window.__sameDocument") is True, "a full page load happened"
    expect(page).to_have_url(path_is(f"/ctas/{site.cta}"))
    screenshot(page, "21-cta-page-error")
    # fixed, it goes through
    act.get_by_label("Until").fill("2026-11-20")
    act.get_by_role("button", name=f"Snooze CTA #{site.cta}").click()
    expect(page.locator("#cta-detail .flash.ok")).to_have_text(f"CTA #{site.cta} snoozed.")
    expect(page.locator("#cta-detail .tag.snoozed")).to_be_visible()
    assert page.request.get(f"/api/ctas/{site.cta}").json()["snooze_reason"] == (
        "Customer on holiday until the 20th")


def test_the_cockpit_switches_to_a_board_that_keeps_the_filters(page: Page, site: Site) -> None:
    sign_in(page, ADMIN)
    expect(page).to_have_url(path_is("/today"))
    page.goto("/cockpit?type=risk&priority=high")
    page.locator("main nav.switch").get_by_role("link", name="Board", exact=True).click()
    expect(page).to_have_url(re.compile(r"/cockpit/board\?.*type=risk.*priority=high"))
    api = page.request.get("/api/cockpit/board?type=risk&priority=high").json()
    for column in api["columns"]:
        cards = page.locator(f"section.column:has(#col-{column['status']}) article.card")
        expect(cards).to_have_count(len(column["ctas"]))
    page.evaluate("window.__sameDocument = true")
    page.locator("#queue-filters select[name=priority]").select_option("")  # the board swaps in place
    expect(page).to_have_url(re.compile(r"/cockpit/board\?.*priority=&"))
    everything = page.request.get("/api/cockpit/board?type=risk").json()
    expect(page.locator("#board > p.muted")).to_have_text(f"CTAs: {everything['total']}")
    assert page.evaluate("window.__sameDocument") is True, "a full page load happened"
    screenshot(page, "22-cockpit-board")
    page.locator("main nav.switch").get_by_role("link", name="List", exact=True).click()
    expect(page).to_have_url(re.compile(r"/cockpit\?.*type=risk"))
    expect(page.locator("#queue-filters select[name=type]")).to_have_value("risk")


def _unread_label(page: Page) -> str:
    return str(page.locator("#nav-inbox").get_attribute("aria-label"))


def test_an_escalation_reaches_the_leads_inbox_and_mark_read_lowers_the_count_in_place(
        browser: Browser, page: Page, site: Site, recorder: Recorder) -> None:
    cta = page.request  # signed out: the API refuses
    assert cta.get("/api/inbox").status == 401
    with served.watched_tab(browser, site, recorder, viewport={"width": 1280, "height": 900}) as csm:
        sign_in(csm, site.csm)
        expect(csm).to_have_url(path_is("/today"))
        csm.goto(f"/ctas/{site.cta}")
        csm.locator("#escalate-note").fill("Customer went silent")
        csm.get_by_role("button", name=f"Escalate CTA #{site.cta}").click()
        expect(csm.locator("#cta-detail .flash.ok")).to_have_text(f"CTA #{site.cta} escalated.")
        holder = csm.request.get(f"/api/ctas/{site.cta}").json()["escalations"][-1]["holder"]
    sign_in(page, holder)
    expect(page).to_have_url(path_is("/today"))
    box = page.request.get("/api/inbox").json()
    assert box["unread"] >= 1 and box["items"][0]["event"] == "cta_escalated"
    expect(page.locator("#nav-inbox")).to_have_attribute("aria-label", f"Inbox: {box['unread']} unread")
    expect(page.locator("#nav-inbox .count")).to_have_text(str(box["unread"]))
    page.locator("#nav-inbox").click()
    expect(page).to_have_url(path_is("/inbox"))
    item = box["items"][0]
    expect(page.locator(f"#inbox-{item['id']}")).to_contain_text(f"CTA #{site.cta}")
    expect(page.locator(f"#inbox-{item['id']} a")).to_have_attribute("href", f"/ctas/{site.cta}")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name=f"Mark read: notification #{item['id']}").click()
    expect(page.locator("#inbox .flash.ok")).to_have_text("Marked as read.")
    expect(page.locator("#nav-inbox")).to_have_attribute("aria-label", f"Inbox: {box['unread'] - 1} unread")
    expect(page.get_by_role("button", name=f"Mark read: notification #{item['id']}")).to_have_count(0)
    if box["unread"] > 1:
        page.get_by_role("button", name="Mark all read").click()
        expect(page.locator("#inbox .flash.ok")).to_have_text("All marked as read.")
    expect(page.locator("#nav-inbox")).to_have_attribute("aria-label", "Inbox: 0 unread")
    expect(page.locator("#nav-inbox .count")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True, "a full page load happened"
    assert page.request.get("/api/inbox").json()["unread"] == 0
    screenshot(page, "21-inbox")


def test_the_notification_settings_keep_what_was_typed_when_refused(page: Page, site: Site) -> None:
    sign_in(page, site.spare_csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto("/me")
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Task due").uncheck()
    page.get_by_label("Chat (webhook)").check()
    page.get_by_label("Chat webhook").fill("ftp://files.example.com/hook")
    page.get_by_label("Email address").fill("someone@example.com")
    page.get_by_label("In a daily digest (email and chat)").check()
    page.get_by_role("button", name="Save notification settings").click()
    error = page.locator("#error-notify-webhook")
    expect(error).to_contain_text("webhook: ftp://files.example.com/hook is not a notification address.")
    expect(page.get_by_label("Chat webhook")).to_have_value("ftp://files.example.com/hook")
    expect(page.get_by_label("Chat webhook")).to_be_focused()
    expect(page.get_by_label("Email address")).to_have_value("someone@example.com")
    expect(page.get_by_label("Task due")).not_to_be_checked()
    expect(page.get_by_label("Chat (webhook)")).to_be_checked()
    expect(page.get_by_label("In a daily digest (email and chat)")).to_be_checked()
    page.get_by_label("Chat webhook").fill("")
    page.get_by_label("Chat (webhook)").uncheck()
    page.get_by_label("Email", exact=True).check()
    page.get_by_role("button", name="Save notification settings").click()
    expect(page.locator("#me .flash.ok")).to_have_text("Notification settings saved.")
    assert page.evaluate("window.__sameDocument") is True, "a full page load happened"
    saved = page.request.get("/api/me/notifications").json()
    assert saved["channels"] == ["inapp", "email"] and saved["digest"] is True
    assert "task_due" not in saved["events"] and saved["email"] == "someone@example.com"


def test_a_link_inside_the_cta_block_loads_its_own_page(page: Page, site: Site) -> None:
    """The CTA's forms swap its block in place; its links must not inherit that target."""
    sign_in(page, site.csm)
    expect(page).to_have_url(path_is("/today"))
    page.goto(f"/ctas/{site.cta}")
    page.locator(f'#cta-detail a[href="/accounts/{site.account}"]').first.click()
    expect(page).to_have_url(path_is(f"/accounts/{site.account}"))
    expect(page.locator("main h1").first).to_contain_text(site.account_name)
    expect(page.locator("#cta-detail")).to_have_count(0)
