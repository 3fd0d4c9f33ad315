"""Module colours (seed 002): a module is coloured by its score's band, by its CTAs (none:
green, open: yellow, critical: red) or by the worse of the two; a CSM's mark wins until it
expires; the account's band follows from its score or its modules. Point-in-time throughout."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore.errors import ConfigError, InvalidActionError
from healthscore.project import Project
from healthscore.workflow.service import Workflow

from .projects import write_project

D = date(2025, 3, 1)  # the mini project's as-of date: logins score A1 100, A2 50, A3 0
DATES = [date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 5)]

MEASURES = (
    'logins_30: {type: count, entity: usage_events, filter: "event = \'login\'", window: 30d,'
    " scheme: {type: linear, low: 0, high: 2}}\n"
    "tenure_days: {type: tenure, unit: days, scheme: {type: linear, low: 0, high: 30}}\n"
)


def card(overall: str = "weighted", onboarding: str = "ctas", extra: str = "") -> str:
    return (f"overall: {overall}\n"
            "groups:\n"
            "  usage: {weight: 50, measures: {logins_30: 100}}\n"
            f"  onboarding: {{weight: 50, colour: {onboarding}, measures: {{tenure_days: 100}}"
            f"{extra}}}\n")


def make(tmp_path: Path, scorecard: str, measures: str = MEASURES) -> Project:
    root = write_project(tmp_path, {"measures/usage.yml": measures,
                                    "scorecards/default.yml": scorecard})
    project = Project.load(root)
    project.run(as_of=date(2025, 1, 31), apply_rules=False)  # the accounts, known to the workflow
    return project


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2025, 2, 1, 9)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def history(tmp_path: Path) -> Iterator[tuple[Project, Workflow, Clock]]:
    """The workflow as it went: CTAs opened, marked critical and closed, a mark set, each on
    its day."""
    project = make(tmp_path, card())
    clock = Clock()
    w = Workflow(project.config, project.store, today=date(2025, 2, 1), clock=clock)
    w.add_user("ada", "admin")
    clock.at = datetime(2025, 2, 1, 9)
    a3 = w.open_cta("A3", "lifecycle", "Kickoff slipped", actor="ada", module="onboarding")
    clock.at = datetime(2025, 2, 15, 9)
    w.mark_critical(a3["id"], actor="ada")
    clock.at = datetime(2025, 2, 20, 9)
    w.open_cta("A1", "lifecycle", "Data integration stuck", actor="ada", module="onboarding")
    clock.at = datetime(2025, 2, 25, 9)
    w.close_cta(a3["id"], "resolved", actor="ada")
    clock.at = datetime(2025, 3, 2, 9)  # after D: must not colour D
    w.open_cta("A2", "lifecycle", "Admin left", actor="ada", module="onboarding")
    yield project, w, clock
    w.close()


def onboarding_ctas(project: Project, accounts: list[str], at: datetime) -> None:
    """Open a CTA on the onboarding module of each of ``accounts`` (repeats open more)."""
    w = Workflow(project.config, project.store, today=date(2025, 2, 1), clock=lambda: at)
    w.add_user("ada", "admin")
    for i, account in enumerate(accounts):
        w.open_cta(account, "lifecycle", f"Kickoff slipped ({i})", actor="ada",
                   module="onboarding")
    w.close()


def colours(project: Project, day: date, col: str) -> dict[str, str]:
    frame = project.scores(day).to_pandas().set_index("account_id")
    return {str(k): v for k, v in frame[col].items()}


def test_a_module_is_coloured_by_its_ctas_point_in_time(history) -> None:
    project, _, _ = history
    project.run(dates=DATES, apply_rules=False)
    # A1: an open CTA -> yellow; A2: its CTA opened the day after D -> green on D;
    # A3: critical, but closed before D -> green
    assert colours(project, D, "c__onboarding") == {"A1": "yellow", "A2": "green", "A3": "green"}
    assert colours(project, date(2025, 3, 2), "c__onboarding")["A2"] == "yellow"
    # the usage module has colour: score -> its score's band (100 green, 50 yellow, 0 red)
    assert colours(project, D, "c__usage") == {"A1": "green", "A2": "yellow", "A3": "red"}


def test_a_critical_cta_makes_the_module_red_while_it_is_open(history) -> None:
    project, _, _ = history
    project.run(dates=[date(2025, 2, 14), date(2025, 2, 15), date(2025, 2, 25)],
                apply_rules=False)
    a3 = [colours(project, d, "c__onboarding")["A3"]
          for d in (date(2025, 2, 14), date(2025, 2, 15), date(2025, 2, 25))]
    assert a3 == ["yellow", "red", "green"]  # open; marked critical that day; closed that day


def test_a_csm_mark_wins_from_its_day_until_its_expiry_day(history) -> None:
    project, w, clock = history
    clock.at = datetime(2025, 2, 27, 16)
    with pytest.raises(InvalidActionError, match=r"^module: A2's scorecard has no module 'sales'"):
        w.mark_module("A2", "sales", "red", actor="ada", reason_code="renewal_risk",
                      note="x", expires_on=date(2025, 3, 5))
    w.mark_module("A2", "usage", "red", actor="ada", reason_code="renewal_risk",
                  note="Says the tool is too hard", expires_on=date(2025, 3, 5))
    project.run(dates=[date(2025, 2, 26), *DATES], apply_rules=False)
    a2 = [colours(project, d, "c__usage")["A2"]
          for d in (date(2025, 2, 26), date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 5))]
    # not before it was set; red from the day it was set; its expiry day the score rules again
    assert a2[1:] == ["red", "red", "yellow"]
    assert a2[0] != "red"
    timeline = [e["kind"] for e in w.timeline("A2")]
    assert "module_marked" in timeline


def test_colour_worst_takes_the_worse_of_score_and_ctas(tmp_path: Path) -> None:
    project = make(tmp_path, card(onboarding="worst"))
    onboarding_ctas(project, ["A1"], datetime(2025, 2, 1, 9))
    project.run(as_of=D, apply_rules=False)
    scores = project.scores(D).to_pandas().set_index("account_id")
    # every account is 30 days a customer or more: the onboarding score is green; A1's open
    # CTA makes it yellow
    assert scores.loc["A1", "c__onboarding"] == "yellow"
    assert scores.loc["A2", "c__onboarding"] == "green"


@pytest.mark.parametrize(("overall", "expected"), [
    ("weighted", {"A1": "green", "A2": "green", "A3": "yellow"}),
    ("worst_module", {"A1": "yellow", "A2": "yellow", "A3": "red"}),
    ("{policy: count, red: 1, yellow: 2}", {"A1": "green", "A2": "green", "A3": "red"}),
    ("{policy: count, red: 2, yellow: 1}", {"A1": "yellow", "A2": "yellow", "A3": "yellow"}),
])
def test_the_account_band_follows_the_overall_policy(tmp_path: Path, overall: str,
                                                     expected: dict[str, str]) -> None:
    project = make(tmp_path, card(overall=overall))
    onboarding_ctas(project, ["A1"], datetime(2025, 2, 20, 9))
    project.run(as_of=D, apply_rules=False)
    # usage: A1 green (100), A2 yellow (50), A3 red (0); onboarding: A1 yellow (open CTA),
    # A2 and A3 green. Weighted: A1 100, A2 75 (green from 70), A3 50 (yellow)
    assert colours(project, D, "band") == expected


def test_red_at_ctas_makes_a_busy_module_red(tmp_path: Path) -> None:
    project = make(tmp_path, card(extra=", red_at_ctas: 2"))
    onboarding_ctas(project, ["A1", "A1", "A2"], datetime(2025, 2, 20, 9))
    project.run(as_of=D, apply_rules=False)
    assert colours(project, D, "c__onboarding") == {"A1": "red", "A2": "yellow", "A3": "green"}


@pytest.mark.parametrize(("scorecard", "message"), [
    (card(onboarding="score", extra=", red_at_ctas: 2"),
     "scorecards/default.yml: groups.onboarding.red_at_ctas: counts the module's open CTAs, "
     "which only 'colour: ctas' or 'colour: worst' reads. Add one of them, or remove "
     "red_at_ctas."),
    (card(extra=", bands: [{name: bad, min: 0}, {name: good, min: 50}]"),
     "scorecards/default.yml: groups.onboarding.bands: must name the scorecard's bands in the "
     "same order (red, yellow, green); only the mins may differ. Got bad, good."),
])
def test_colour_settings_that_cannot_work_are_refused(tmp_path: Path, scorecard: str,
                                                      message: str) -> None:
    root = write_project(tmp_path, {"measures/usage.yml": MEASURES,
                                    "scorecards/default.yml": scorecard})
    with pytest.raises(ConfigError) as err:
        Project.load(root)
    assert err.value.message == message


def test_a_scorecard_without_colours_keeps_its_version(tmp_path: Path) -> None:
    """Adding module colours changed no existing scorecard's version (history stays one)."""
    mini = Project.load(write_project(tmp_path / "mini", {}))
    assert mini.config.scorecards[0].version(mini.config.measures) == "cb1d61dd3bb8"  # as before
    project = make(tmp_path, "groups: {usage: {weight: 100, measures: {logins_30: 100}}}\n")
    sc = project.config.scorecards[0]
    body = sc.definition(project.config.measures)
    assert "overall" not in body and "colour" not in body["groups"][0]
    coloured = make(tmp_path / "b", card())
    groups = coloured.config.scorecards[0].definition(coloured.config.measures)["groups"]
    assert groups[1]["colour"] == "ctas" and "colour" not in groups[0]


def test_rules_read_module_colours_and_group_scores(tmp_path: Path) -> None:
    rules = ("usage_red:\n  when: \"module.usage = 'red'\"\n"
             "  cta: {type: risk, reason: Usage module red, module: onboarding}\n"
             "usage_low:\n  when: \"group_score.usage < 60\"\n"
             "  cta: {type: risk, reason: Usage score low}\n")
    root = write_project(tmp_path, {"measures/usage.yml": MEASURES,
                                    "scorecards/default.yml": card(),
                                    "rules/modules.yml": rules})
    project = Project.load(root)
    project.run(as_of=D, today=D)  # the rules open their CTAs on D
    w = project.workflow(today=D)
    try:
        opened = {(c["account_id"], c["reason"]) for c in w.ctas(status="open")}
    finally:
        w.close()
    # usage: A1 100 green, A2 50 yellow, A3 0 red
    assert opened == {("A3", "Usage module red"), ("A2", "Usage score low"),
                      ("A3", "Usage score low")}
    # the rule's CTA is on the onboarding module: the next run colours it yellow
    project.run(as_of=D, apply_rules=False)
    assert colours(project, D, "c__onboarding")["A3"] == "yellow"


def test_a_rule_cta_on_a_module_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    rules = ("r:\n  when: \"score < 50\"\n  cta: {type: risk, reason: x, module: onbording}\n")
    root = write_project(tmp_path, {"measures/usage.yml": MEASURES,
                                    "scorecards/default.yml": card(), "rules/r.yml": rules})
    with pytest.raises(ConfigError) as err:
        Project.load(root).run(as_of=D)
    assert err.value.message == (
        "rules/r.yml: r.cta.module: no group 'onbording' in the project's scorecards: the CTA "
        "would colour no module. Groups: onboarding, usage.")


@settings(max_examples=60, deadline=None)
@given(policy=st.sampled_from(["worst_module", "count"]), red=st.integers(1, 3),
       yellow=st.integers(1, 3),
       rows=st.lists(st.lists(st.sampled_from(["red", "yellow", "green", None]), min_size=3,
                              max_size=3), min_size=1, max_size=12))
def test_the_band_from_marks_is_the_band_a_run_would_score(policy: str, red: int, yellow: int,
                                                           rows: list[list[str | None]]) -> None:
    """The account band recomputed when a mark is set (pandas) equals the engine's rule."""
    import pyarrow as pa

    from healthscore.config.model import DEFAULT_BANDS, Group, Scorecard
    from healthscore.engine.adapter import make_engine
    from healthscore.scoring.scorecard import _account_band

    groups = tuple(Group(n, n, 100 / 3, n) for n in ("a", "b", "c"))
    sc = Scorecard("s", "s.yml", "", None, 0, DEFAULT_BANDS, (), groups, overall=policy,
                   count_red=red, count_yellow=yellow)
    table = pa.table({f"c__{g}": pa.array([r[i] for r in rows], pa.string())
                      for i, g in enumerate("abc")} | {"score": [1.0] * len(rows),
                                                       "coverage": [1.0] * len(rows)})
    engine = make_engine("duckdb")
    try:
        t = engine.register_arrow(table, "cols")
        got = engine.to_arrow(t.select(band=_account_band(sc, t)))["band"].to_pylist()
    finally:
        engine.close()
    assert got == [sc.band_from_modules(r) for r in rows]


def test_a_mark_shows_at_once_in_the_list_account_360_export_and_band(tmp_path: Path) -> None:
    """One number everywhere: a mark set after the snapshot was scored is in the list filter,
    the account's module strip and band, the CSV export and the API, before the next run."""
    from fastapi.testclient import TestClient

    from healthscore.web.app import create_app
    from healthscore.workflow.access import hash_password

    project = make(tmp_path, card(overall="worst_module"))
    project.run(as_of=D, apply_rules=False)
    app = create_app(project, url=f"sqlite:///{tmp_path / 'wf.db'}", today=D)
    w = app.state.site.wf
    w.add_user("ada", "admin", password_hash=hash_password("pw-123456789"))
    token = w.create_token("ada", "t", actor="ada")["token"]
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {token}"}
    before = client.get("/api/accounts?red_module=yes", headers=auth).json()
    assert [a["account_id"] for a in before["accounts"]] == ["A3"]  # usage 0: red
    r = client.post("/api/accounts/A1/marks", headers=auth, json={
        "module": "onboarding", "colour": "red", "reason_code": "not_ready",
        "note": "No admin named yet", "expires_on": "2025-03-31"})
    assert r.status_code == 201, r.text
    after = client.get("/api/accounts?red_module=yes", headers=auth).json()
    assert sorted(a["account_id"] for a in after["accounts"]) == ["A1", "A3"]
    row = next(a for a in after["accounts"] if a["account_id"] == "A1")
    assert (row["band"], row["red_modules"]) == ("red", 1)  # worst_module: A1 is red now
    a1 = client.get("/api/accounts/A1", headers=auth).json()
    strip = {m["module"]: (m["colour"], (m["mark"] or {}).get("reason_code"))
             for m in a1["modules"]}
    assert strip == {"usage": ("green", None), "onboarding": ("red", "not_ready")}
    assert a1["final"]["final_band"] == "red"
    csv = client.get("/api/accounts.csv?red_module=yes", headers=auth).text
    assert "A1," in csv and "red_modules" in csv.splitlines()[0]
    page = client.get("/accounts/A1", headers=auth).text
    assert 'data-module="onboarding" data-colour="red"' in page
    listed = client.get("/accounts?red_module=yes", headers=auth)  # no renewal dates: no NaT
    assert listed.status_code == 200 and "A1" in listed.text and "NaT" not in listed.text
    bad = client.post("/api/accounts/A1/marks", headers=auth, json={
        "module": "onboarding", "colour": "purple", "reason_code": "not_ready",
        "note": "x", "expires_on": "2025-03-31"})
    assert bad.status_code == 422 and "colour" in bad.text
    client.close()
    w.close()


# ----------------------------------------------------------------------------- manual inputs

SENTIMENT = ("csm_sentiment: {type: manual, max_age: 30d, min: 1, max: 5,"
             " scheme: {type: linear, low: 1, high: 5}}\n")


def test_values_entered_in_the_app_feed_manual_measures_point_in_time(tmp_path: Path) -> None:
    card_ = "groups: {usage: {weight: 50, measures: {logins_30: 100}},\n" \
            "         sentiment: {weight: 50, measures: {csm_sentiment: 100}}}\n"
    root = write_project(tmp_path, {"measures/usage.yml": MEASURES + SENTIMENT,
                                    "scorecards/default.yml": card_})
    project = Project.load(root)  # no manual_values source: the store's values are read
    project.run(as_of=date(2025, 1, 31), apply_rules=False)
    clock = Clock()
    w = Workflow(project.config, project.store, today=date(2025, 2, 1), clock=clock)
    w.add_user("ada", "admin")
    with pytest.raises(InvalidActionError) as err:
        w.enter_value("A1", "csm_sentiment", 7, actor="ada")
    assert err.value.message == "value: csm_sentiment takes values from 1 to 5. Got 7."
    with pytest.raises(InvalidActionError) as err:
        w.enter_value("A1", "logins_30", 3, actor="ada")
    assert err.value.message == ("measure: 'logins_30' is no manual measure of the project. "
                                 "Manual measures: csm_sentiment.")
    clock.at = datetime(2025, 2, 20, 15)
    w.enter_value("A1", "csm_sentiment", 2, actor="ada", note="Unhappy with support")
    clock.at = datetime(2025, 3, 2, 9)  # the day after D
    w.enter_value("A1", "csm_sentiment", 5, actor="ada", note="All sorted")
    assert [v["value"] for v in w.entered_values("A1")] == [5.0, 2.0]
    assert w.timeline("A1")[0]["text"] == "csm_sentiment = 5: All sorted"
    w.close()
    project.run(dates=[date(2025, 2, 19), D, date(2025, 3, 2), date(2025, 3, 25)],
                apply_rules=False)
    got = [project.scores(d).to_pandas().set_index("account_id").loc["A1", "m__csm_sentiment"]
           for d in (date(2025, 2, 19), D, date(2025, 3, 2), date(2025, 3, 25))]
    # before it was entered: none; on D the first value; then the second; 30 days on: too old
    assert got[1:3] == [2.0, 5.0]
    assert math.isnan(got[0])  # nothing entered yet
    assert got[3] == 5.0  # 23 days old, within max_age 30d


def test_only_who_may_act_on_the_account_enters_values_or_marks(tmp_path: Path) -> None:
    from healthscore.errors import ForbiddenError

    project = make(tmp_path, card(extra=", groups: {mood: {weight: 100, measures: "
                                        "{csm_sentiment: 100}}}").replace(
        "measures: {tenure_days: 100}, ", ""), MEASURES + SENTIMENT)
    w = Workflow(project.config, project.store, today=date(2025, 2, 1))
    w.add_user("ada", "admin")
    w.add_user("cara", "csm", actor="ada")  # the mini accounts have no CSM: not hers
    with pytest.raises(ForbiddenError):
        w.mark_module("A1", "usage", "red", actor="cara", reason_code="other", note="x",
                      expires_on=date(2025, 3, 1))
    with pytest.raises(ForbiddenError):
        w.enter_value("A1", "csm_sentiment", 3, actor="cara")
    assert w.marks() == [] and w.entered_values("A1") == []
    assert not {"module_mark", "manual_value"} & {a["entity"] for a in w.audit()}
    w.close()


def test_entered_values_add_to_a_manual_values_file(tmp_path: Path) -> None:
    from .projects import csv_text

    card_ = "groups: {sentiment: {weight: 100, measures: {csm_sentiment: 100}}}\n"
    root = write_project(tmp_path, {
        "healthscore.yml": "name: mini\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.csv}\n"
                           "  manual_values: {path: data/manual.csv}\nscorecards: [default]\n",
        "data/manual.csv": csv_text(["account_id", "measure", "value", "entered_at"],
                                    [("A2", "csm_sentiment", 4, "2025-02-10 10:00:00")]),
        "measures/usage.yml": MEASURES + SENTIMENT, "scorecards/default.yml": card_})
    project = Project.load(root)
    project.run(as_of=date(2025, 1, 31), apply_rules=False)
    w = Workflow(project.config, project.store, today=date(2025, 2, 1),
                 clock=lambda: datetime(2025, 2, 20, 9))
    w.add_user("ada", "admin")
    w.enter_value("A1", "csm_sentiment", 1, actor="ada")
    w.close()
    project.run(as_of=D, apply_rules=False)
    values = colours(project, D, "m__csm_sentiment")
    assert (values["A1"], values["A2"]) == (1.0, 4.0)


def test_the_health_index_template_raises_the_seeds_ctas(demo_data: Path, tmp_path: Path) -> None:
    """Seed 004 in the template: an NPS below 8 opens a 'find the reason' CTA with its
    playbook, on the nps module; the tenure stage opens the motion's CTA."""
    from healthscore.templates import write_template

    end = date(2026, 10, 31)
    write_template(tmp_path / "p", "health-index", demo_data)
    project = Project.load(tmp_path / "p")
    project.run(as_of=end, today=end)
    scores = project.scores(end).to_pandas().set_index("account_id")
    w = project.workflow(today=end)
    try:
        ctas = w.ctas(status="open")
    finally:
        w.close()
    nps = [c for c in ctas if c["reason"] == "NPS below 8 - find the reason"]
    assert nps and {c["module"] for c in nps} == {"nps"}
    assert all(scores.loc[c["account_id"], "m__nps_investigate"] < 8 for c in nps)
    low = scores[scores["m__nps_investigate"] < 8].index
    assert sorted(c["account_id"] for c in nps) == sorted(low)
    assert all(len(c["tasks"]) == 3 for c in nps)
    early = {c["account_id"] for c in ctas if c["playbook"] == "early_education"}
    assert early and early == set(scores[scores["m__tenure_months"] < 3].index)
