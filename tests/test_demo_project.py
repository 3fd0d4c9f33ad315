"""``healthscore demo``'s project (``make_demo``): the template, generated data, the demo's
sign-ins made before the rules run, and the last months scored with the rules applied."""

from __future__ import annotations

from pathlib import Path

from healthscore.demo.population import CSMS
from healthscore.demo.project import DEMO_END, make_demo


def test_make_demo_writes_scores_and_gives_the_rules_tasks_to_real_people(tmp_path: Path) -> None:
    steps: list[str] = []
    project, result = make_demo(tmp_path / "demo", 60, 1, "eight-categories", steps.append)
    assert (tmp_path / "demo" / "healthscore.yml").exists()
    assert (tmp_path / "demo" / "data" / "accounts.csv").exists()
    assert "generating demo data" in steps
    assert result.dates == [DEMO_END] and result.rows > 0
    assert result.workflow is not None  # the rules ran
    wf = project.workflow()
    users = {u["name"]: u["role"] for u in wf.users()}
    assert users["admin"] == "admin" and users["Nora Lindqvist"] == "lead"
    assert {users[name] for name in CSMS} == {"csm"}
    opened = wf.ctas(status=None)
    assert opened, "the demo's rules open CTAs on the scored month"
    assert {c["owner"] for c in opened} <= set(users)  # every CTA went to a sign-in of the demo
    tasks = [t for ts in wf.tasks_of([c["id"] for c in opened]).values() for t in ts]
    assert tasks and {t["owner"] for t in tasks} <= set(users)  # so did every playbook task
