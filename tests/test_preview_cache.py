"""The dry run of a scorecard change keeps its scores while what they are computed from is the
same: a second visit scores nothing again, and a changed source file, scorecard, value in the
workflow store or snapshot is seen on the next one."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from healthscore.errors import DataError
from healthscore.project import Project
from healthscore.workflow.service import Workflow

from .projects import AS_OF, EVENT_COLUMNS, EVENTS, MEASURES_YML, csv_text, write_project

SENTIMENT = ("csm_sentiment: {type: manual, max_age: 30d, min: 1, max: 5,"
             " scheme: {type: linear, low: 1, high: 5}}\n")
CARD = ("groups: {usage: {weight: 50, measures: {logins_30: 100}},"
        " mood: {weight: 50, measures: {csm_sentiment: 100}}}\n")


def _project(tmp_path: Path) -> Project:
    root = write_project(tmp_path, {"measures/usage.yml": MEASURES_YML + SENTIMENT,
                                    "scorecards/default.yml": CARD})
    project = Project.load(root)
    project.run(as_of=AS_OF, apply_rules=False)
    return project


def _dry_run(project: Project) -> tuple[dict[str, Any], list[str]]:
    """The dry run and what it said it did (reading and scoring, or nothing)."""
    said: list[str] = []
    return project.preview(progress=said.append), said


def _moves(out: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {m["account_id"]: (m["from_score"], m["to_score"]) for m in out["moves"]}


def test_a_second_dry_run_scores_nothing_again(tmp_path: Path) -> None:
    project = _project(tmp_path)
    first, said = _dry_run(project)
    assert any(s.startswith("reading accounts") for s in said)
    assert (first["band_changes"], first["moves"]) == (0, [])
    again, said = _dry_run(project)
    assert said == [] and again == first
    # the same project loaded again (a new process, the CLI) has the same key
    assert _dry_run(Project.load(project.root)) == (first, [])


def test_a_changed_source_file_is_scored_again(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _dry_run(project)
    more = [*EVENTS, ("A3", "u4", "login", "2025-02-27 09:00:00"),
            ("A3", "u4", "login", "2025-02-28 09:00:00")]
    (project.root / "data" / "usage_events.csv").write_text(csv_text(EVENT_COLUMNS, more))
    out, said = _dry_run(project)
    assert said and _moves(out) == {"A3": (0.0, 100.0)}  # two logins in 30 days: the top


def test_a_changed_scorecard_is_seen_on_the_next_load(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _dry_run(project)
    (project.root / "scorecards" / "default.yml").write_text(CARD.replace("50", "25", 1).replace("50", "75"))
    edited = Project.load(project.root)
    out, said = _dry_run(edited)
    assert said and [v["scorecard"] for v in out["versions"]] == ["default"]


def test_a_value_entered_in_the_workflow_store_is_seen(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _dry_run(project)
    wf = Workflow(project.config, project.store, today=date(2025, 3, 2),
                  clock=lambda: datetime(2025, 2, 20, 9))
    try:
        wf.add_user("ada", "admin")
        wf.enter_value("A1", "csm_sentiment", 1, actor="ada")
    finally:
        wf.close()
    out, said = _dry_run(project)
    assert said and _moves(out) == {"A1": (100.0, 50.0)}  # usage 100, mood 0, half each


def test_a_new_snapshot_is_what_the_dry_run_compares_with(tmp_path: Path) -> None:
    project = _project(tmp_path)
    more = [*EVENTS, ("A3", "u4", "login", "2025-02-27 09:00:00")]
    (project.root / "data" / "usage_events.csv").write_text(csv_text(EVENT_COLUMNS, more))
    before, _ = _dry_run(project)
    assert _moves(before) == {"A3": (0.0, 50.0)}
    project.run(as_of=AS_OF, apply_rules=False)  # stores what the dry run showed
    after, said = _dry_run(project)
    assert said == [] and (after["band_changes"], after["moves"]) == (0, [])
    project.run(as_of="2025-03-05", apply_rules=False)  # a newer snapshot: its date is scored
    newer, said = _dry_run(project)
    assert said and newer["as_of"] == "2025-03-05" and newer["moves"] == []


def test_missing_data_files_are_reported_as_scoring_reports_them(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for name in ("accounts.csv", "usage_events.csv"):
        (project.root / "data" / name).unlink()
    with pytest.raises(DataError) as err:
        project.preview()
    assert err.value.message.startswith("healthscore.yml: no data yet: none of the 2 file sources")
