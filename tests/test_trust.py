"""One number everywhere: every measure computed for an account is visible to rules, quadrants
and plans (also those of 'also' scorecards), and a category attribute shows its value."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from healthscore.project import Project

from .projects import AS_OF, EVENTS, csv_text, write_project

TODAY = date(2025, 3, 2)
PLAN_ACCOUNTS = [
    ("A1", "Acme", "SMB", "2024-01-01", "pro"),
    ("A2", "Globex", "Enterprise", "2024-06-01", "basic"),
    ("A3", "Initech", "SMB", "2025-01-15", "pro"),
]


def _project(tmp_path: Path) -> Project:
    root = write_project(tmp_path, {
        "healthscore.yml": """\
            name: mini
            sources:
              accounts: {path: data/accounts.csv, columns: {plan: plan}}
              usage_events: {path: data/usage_events.csv}
            scorecards: [default]
            also: [exports]
            workflow: {temperature: exports_30, maturity: [exports_30]}
            """,
        "measures/usage.yml": """\
            logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d,
                        scheme: {type: linear, low: 0, high: 2}}
            exports_30: {type: count, entity: usage_events, filter: "event = 'export'", window: 30d,
                         scheme: {type: linear, low: 0, high: 1}}
            plan_tier: {type: attribute, column: plan,
                        scheme: {type: category, map: {pro: 100, basic: 40}, default: 0}}
            """,
        "scorecards/default.yml": "groups: {usage: {weight: 70, measures: {logins_30: 100}},"
                                  " fit: {weight: 30, measures: {plan_tier: 100}}}\n",
        "scorecards/exports.yml": "groups: {usage: {weight: 100, measures: {exports_30: 100}}}\n",
        "rules/default.yml": """\
            exporter:
              when: "exports_30 >= 1"
              cta: {type: opportunity, reason: Exports data, priority: medium, due_in: 7d}
            """,
        "data/accounts.csv": csv_text(["account_id", "name", "segment", "start_date", "plan"],
                                      PLAN_ACCOUNTS),
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], EVENTS),
    })
    project = Project.load(root)
    project.run(as_of=AS_OF, apply_rules=False)
    return project


def test_rules_quadrants_and_lists_see_measures_of_also_scorecards(tmp_path: Path) -> None:
    project = _project(tmp_path)
    wf = project.workflow(today=TODAY)
    try:
        facts = wf.facts().set_index("account_id")
        assert facts.loc["A1", "exports_30"] == 1 and facts.loc["A3", "exports_30"] == 0
        opened = sorted(o["account_id"] for o in wf.plan().open)
        assert opened == ["A1", "A2"]  # the two accounts that exported in the last 30 days
        temperature = wf.quadrants()["temperature"]
        hot = {a for c in temperature if c["temperature"] == "high" for a in c["accounts"]}
        assert hot == {"A1", "A2"}
    finally:
        wf.close()


def test_a_category_attribute_shows_its_value(tmp_path: Path) -> None:
    project = _project(tmp_path)
    card = project.explain("A2")["scorecards"][0]
    tier = next(m for m in card["measures"] if m["measure"] == "plan_tier")
    assert (tier["value"], tier["has_data"], tier["score"]) == ("basic", True, 40.0)
    facts = project.final_scores().set_index("account_id")
    assert facts.loc["A1", "m__plan_tier"] == "pro"


# ----------------------------------------------------------------------------- values that miss


def test_filters_ignore_case_unless_a_measure_says_otherwise(tmp_path: Path) -> None:
    events = [(a, u, e.capitalize() if a == "A1" else e, ts) for a, u, e, ts in EVENTS]
    write_project(tmp_path, {
        "measures/usage.yml": """\
            logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d,
                        scheme: {type: linear, low: 0, high: 2}}
            exact_30: {type: count, entity: usage_events, filter: "event in ('login')", window: 30d,
                       case_sensitive: true, scheme: {type: linear, low: 0, high: 2}}
            """,
        "scorecards/default.yml": "groups: {usage: {weight: 100, measures: {logins_30: 90, exact_30: 10}}}\n",
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], events),
    })
    frame = Project.load(tmp_path).run(as_of=AS_OF).to_pandas().set_index("account_id")
    assert frame.loc["A1", "m__logins_30"] == 2  # 'Login' counts as login
    assert frame.loc["A1", "m__exact_30"] == 0 and frame.loc["A2", "m__exact_30"] == 1


def test_a_filter_matching_no_row_and_unexpected_values_are_reported(tmp_path: Path) -> None:
    events = [(a, u, "signin" if e == "login" else e, ts) for a, u, e, ts in EVENTS]
    tickets = [("T1", "A1", "Urgent", "2025-02-01 10:00:00"), ("T2", "A1", "p2", "2025-02-02 10:00:00"),
               ("T3", "A2", "Urgent", "2025-02-03 10:00:00"), ("T4", "A2", "High", "2025-02-03 10:00:00")]
    write_project(tmp_path, {
        "healthscore.yml": """\
            name: mini
            sources:
              accounts: {path: data/accounts.csv}
              usage_events: {path: data/usage_events.csv}
              tickets: {path: data/tickets.csv, columns: {opened_at: opened}}
            scorecards: [default]
            """,
        "measures/usage.yml": """\
            logins_30: {type: count, entity: usage_events, filter: "event = 'login'", window: 30d,
                        scheme: {type: linear, low: 0, high: 2}}
            p1_90: {type: count, entity: tickets, filter: "priority = 'P1'", window: 90d,
                    scheme: {type: linear, low: 1, high: 0}}
            """,
        "scorecards/default.yml": "groups: {usage: {weight: 90, measures: {logins_30: 100}},"
                                  " support: {weight: 10, measures: {p1_90: 100}}}\n",
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], events),
        "data/tickets.csv": csv_text(["ticket_id", "account_id", "priority", "opened"], tickets),
    })
    warnings = Project.load(tmp_path).check().warnings
    assert warnings == [
        "usage_events: measures/usage.yml: logins_30: filter \"event = 'login'\" matches none of "
        "the 6 rows of usage_events (text is compared ignoring case), so the measure is 0 or "
        "missing for every account. Values seen: event: 'signin' (4), 'export' (2). Fix the "
        "filter or the data.",
        "tickets: data/tickets.csv: column priority has values none of P1, P2, P3, P4: "
        "'Urgent' (2 rows), 'High' (1 rows). Measures that filter on priority will not count "
        "these rows; rewrite them in the export or in a 'format: query' source.",
        "tickets: measures/usage.yml: p1_90: filter \"priority = 'P1'\" matches none of "
        "the 4 rows of tickets (text is compared ignoring case), so the measure is 0 or "
        "missing for every account. Values seen: priority: 'Urgent' (2), 'High' (1), 'p2' (1). "
        "Fix the filter or the data.",
    ]


# ----------------------------------------------------------------------------- dry run


def test_a_scorecard_change_is_dry_run_then_run_produces_exactly_that(tmp_path: Path) -> None:
    project = _project(tmp_path)
    root = project.root
    (root / "rules" / "default.yml").write_text(
        "healthy:\n  when: \"band = 'green'\"\n"
        "  cta: {type: opportunity, reason: Ask for a referral, priority: low, due_in: 14d}\n")
    snapshots = sorted(p.name for p in (root / ".healthscore" / "snapshots").iterdir())
    (root / "scorecards" / "default.yml").write_text(
        "groups: {usage: {weight: 30, measures: {logins_30: 100}},"
        " fit: {weight: 70, measures: {plan_tier: 100}}}\n")
    edited = Project.load(root)
    assert edited.scorecards_changed() == ["default"]
    dry = edited.preview()
    assert sorted(p.name for p in (root / ".healthscore" / "snapshots").iterdir()) == snapshots
    assert not (root / ".healthscore" / "workflow.db").exists()  # nothing written
    assert [v["scorecard"] for v in dry["versions"]] == ["default"]
    assert dry["matrix"] == {"green": {"green": 1}, "yellow": {"yellow": 1}, "red": {"green": 1}}
    assert dry["band_changes"] == 1
    top = dry["moves"][0]
    assert (top["account_id"], top["from_score"], top["to_score"], top["to_band"]) == (
        "A3", 30.0, 70.0, "green")
    assert top["reasons"] == ["plan_tier: weight 30% -> 70% (+40.0 points)"]
    opened = sorted(o["account_id"] for o in dry["rules"]["open"])
    assert opened == ["A1", "A3"]
    assert [o["account_id"] for o in dry["rules"]["open_because_of_change"]] == ["A3"]
    # run stores exactly what the dry run showed, and the rules then plan the same CTAs
    edited.run(as_of=AS_OF, apply_rules=False)
    after = edited.final_scores().set_index("account_id")
    assert after["band"].to_dict() == {"A1": "green", "A2": "yellow", "A3": "green"}
    wf = edited.workflow(today=TODAY)
    try:
        assert sorted(o["account_id"] for o in wf.plan().open) == opened
    finally:
        wf.close()
    assert edited.scorecards_changed() == []


# ----------------------------------------------------------------------------- down to the row


def test_explain_lists_the_rows_behind_a_measure_and_whether_each_counted(tmp_path: Path) -> None:
    events = [*EVENTS, ("A1", "u9", "Login", "last tuesday"), ("A1", "u1", "login", "2025-03-04 10:00:00")]
    write_project(tmp_path, {
        "healthscore.yml": "name: mini\nsources:\n  accounts: {path: data/accounts.csv}\n"
                           "  usage_events: {path: data/usage_events.csv, max_rejected_share: 0.5}\n"
                           "scorecards: [default]\n",
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp"], events)})
    project = Project.load(tmp_path)
    project.run(as_of=AS_OF)
    data = project.measure_rows("A1", "logins_30")
    assert (data["source"], data["window"], data["filter"], data["value"]) == (
        "data/usage_events.csv", "30d", "event = 'login'", 2.0)
    assert (data["total"], data["counted"], data["columns"]) == (5, 2, ["timestamp", "event"])
    why = {r["row"]: (r["counted"], r["why"]) for r in data["rows"]}
    assert why == {
        1: (True, "counted"), 2: (True, "counted"), 3: (False, "does not match the filter"),
        7: (False, "rejected: unparseable timestamp in timestamp"),
        8: (False, "after the as-of date"),
    }
    old = project.measure_rows("A3", "logins_30")
    assert [r["why"] for r in old["rows"]] == ["before the 30d window"]
    from typer.testing import CliRunner

    from healthscore.cli.main import app

    result = CliRunner().invoke(app, ["explain", "A1", "-p", str(tmp_path), "--measure", "logins_30"])
    assert result.exit_code == 0, result.output
    assert "5 row(s) of this account; 2 counted." in result.output
    assert "rejected: unparseable" in result.output and "after the as-of date" in result.output


MONTH_DAYS = ["2025-01-28", "2025-01-29", "2025-01-30", "2025-01-31", "2025-02-27", "2025-02-28",
              "2025-03-01", "2025-03-29", "2025-03-30", "2025-03-31"]
MONTH_VALUES = [1, 20, 30, 40, 5, 6, 7, 8, 9, 10]
MONTH_ENDS = [date(2025, 2, 27), date(2025, 2, 28), date(2025, 3, 1), date(2025, 3, 28),
              date(2025, 3, 30), date(2025, 3, 31)]
MONTH_MEASURES = """\
logins_month: {type: count, entity: usage_events, window: 1 month}
value_max_month: {type: max, entity: usage_events, column: value, window: 1 month}
value_min_month: {type: min, entity: usage_events, column: value, window: 1 month}
value_last_month: {type: latest, entity: usage_events, column: value, window: 1 month}
"""


def test_every_measure_and_the_rows_explained_count_a_calendar_month_alike(tmp_path: Path) -> None:
    # a month window counts a row from its day until the same day a month on (Jan 29-31 stop
    # on Feb 28, as of which the window holds 1-28 February): counts, min/max and latest values
    # follow the one rule, and the explanation lists the rows it counts
    events = [("A1", "u1", "login", f"{d} 09:00:00", v)
              for d, v in zip(MONTH_DAYS, MONTH_VALUES, strict=True)]
    events.append(("A2", "u2", "login", "2025-01-29 09:00:00", 50))  # A2's only row
    entries = ", ".join(f"{n.split(':')[0]}: 25" for n in MONTH_MEASURES.splitlines())
    write_project(tmp_path, {
        "measures/usage.yml": MONTH_MEASURES.replace(
            "}\n", ", scheme: {type: linear, low: 0, high: 2}}\n"),
        "scorecards/default.yml": f"groups: {{usage: {{weight: 100, measures: {{{entries}}}}}}}\n",
        "data/usage_events.csv": csv_text(["account_id", "user_id", "event", "timestamp", "value"],
                                          events),
    })
    project = Project.load(tmp_path)
    project.run(dates=MONTH_ENDS, apply_rules=False)
    got = {}
    for d in MONTH_ENDS:
        row = project.store.account_rows(d, "A1", primary_only=True).to_pylist()[0]
        explained = project.measure_rows("A1", "logins_month", d)
        got[d.isoformat()] = (explained["counted"], row["m__logins_month"], row["m__value_max_month"],
                              row["m__value_min_month"], row["m__value_last_month"])
    assert got == {
        "2025-02-27": (5, 5.0, 40.0, 1.0, 5.0),
        "2025-02-28": (2, 2.0, 6.0, 5.0, 6.0),
        "2025-03-01": (3, 3.0, 7.0, 5.0, 7.0),
        "2025-03-28": (1, 1.0, 7.0, 7.0, 7.0),
        "2025-03-30": (3, 3.0, 9.0, 7.0, 9.0),
        "2025-03-31": (4, 4.0, 10.0, 7.0, 10.0),
    }
    a2 = project.store.account_rows(date(2025, 2, 28), "A2", primary_only=True).to_pylist()[0]
    assert (a2["m__logins_month"], a2["m__value_max_month"], a2["m__value_last_month"]) == (
        0.0, None, None)
    assert project.measure_rows("A2", "logins_month", date(2025, 2, 28))["counted"] == 0
