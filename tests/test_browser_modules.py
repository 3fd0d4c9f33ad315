"""Seed 002 in a real browser: a CSM marks the Sentiment module red with a reason on Account
360, and the module strip, the account's band (its scorecard takes the worst module), the
accounts list's "a module red" filter and the timeline all change at once; on its expiry day
the mark no longer colours the module."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

from healthscore.project import Project
from healthscore.web.app import create_app
from healthscore.workflow.access import hash_password

from .browser_support import CHROMIUM, LAUNCH_ARGS, LiveServer, Recorder, screenshot
from .projects import ACCOUNTS, csv_text, write_project

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: the browser tests drive Debian's chromium "
                "(apt-get install chromium)", allow_module_level=True)

D = date(2025, 3, 1)
EXPIRES = date(2025, 3, 10)
PASSWORD = "a-long-password-1"
CSM = "Cara Csm"
MEASURES = (
    'logins_30: {type: count, entity: usage_events, filter: "event = \'login\'", window: 30d,'
    " scheme: {type: linear, low: 0, high: 2}}\n"
    "tenure_days: {type: tenure, unit: days, scheme: {type: linear, low: 0, high: 30}}\n"
)
SCORECARD = ("overall: worst_module\n"
             "groups:\n"
             "  usage: {weight: 50, measures: {logins_30: 100}}\n"
             "  sentiment: {weight: 50, colour: ctas, measures: {tenure_days: 100}}\n")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    accounts = [(a, n, s, start, CSM) for a, n, s, start in ACCOUNTS]
    root = write_project(tmp_path, {
        "measures/usage.yml": MEASURES, "scorecards/default.yml": SCORECARD,
        "data/accounts.csv": csv_text(["account_id", "name", "segment", "start_date", "csm"],
                                      accounts)})
    project = Project.load(root)
    project.run(as_of=D, apply_rules=False)
    return project


@pytest.fixture
def page(project: Project) -> Iterator[Page]:
    app = create_app(project, today=D)
    wf = app.state.site.wf
    wf.add_user("ada", "admin")
    wf.add_user(CSM, "csm", password_hash=hash_password(PASSWORD), actor="ada")
    server = LiveServer(app).start()
    recorder = Recorder()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=LAUNCH_ARGS)
            context = browser.new_context(base_url=server.url, locale="en-US")
            context.set_default_timeout(15_000)
            recorder.watch_context(context)
            tab = context.new_page()
            recorder.watch_page(tab)
            yield tab
            browser.close()
    finally:
        server.stop()
    assert not recorder.problems(), "\n".join(recorder.problems())


def test_a_csm_marks_sentiment_red_and_every_surface_follows(page: Page, project: Project) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(CSM)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/accounts?red_module=yes")
    # A3 (no login in 30 days) has its usage module red; A1 has every module green
    expect(page.locator("#account-table")).to_contain_text("A3")
    expect(page.locator("#account-table")).not_to_contain_text("A1")

    page.goto("/accounts/A1")
    sentiment = page.locator('.module-strip [data-module="sentiment"]')
    expect(sentiment).to_have_attribute("data-colour", "green")
    expect(page.locator("#final-band")).to_contain_text("green")
    page.locator("#mark summary").click()
    form = page.locator("#mark-form")
    form.get_by_label("Module").select_option("sentiment")
    form.get_by_label("Colour").select_option("red")
    form.get_by_label("Reason").select_option("ebr_refused")
    form.get_by_label("Note").fill("Refused the EBR twice")
    form.get_by_label("Expires on").fill(EXPIRES.isoformat())
    form.get_by_role("button", name="Save mark").click()

    expect(sentiment).to_have_attribute("data-colour", "red")
    expect(sentiment).to_contain_text("Marked by")
    expect(page.locator("#final-band")).to_contain_text("red")  # worst module: red
    expect(page.locator("#timeline")).to_contain_text("Refused the EBR twice")
    screenshot(page, "account-module-marked")
    page.goto("/accounts?red_module=yes")
    expect(page.locator("#account-table")).to_contain_text("A1")

    # the next runs score the mark point-in-time: red from the day it was set, not on its
    # expiry day
    project.run(dates=[D, EXPIRES], apply_rules=False)
    colours = {day: project.scores(day).to_pandas().set_index("account_id").loc["A1"]
               for day in (D, EXPIRES)}
    assert (colours[D]["c__sentiment"], colours[D]["band"]) == ("red", "red")
    assert (colours[EXPIRES]["c__sentiment"], colours[EXPIRES]["band"]) == ("green", "green")
