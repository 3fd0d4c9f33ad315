"""`healthscore demo`: generate the demo data, write a project on it and score a year."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from healthscore.dates import minus_months
from healthscore.demo.generate import generate
from healthscore.project import Project, RunResult
from healthscore.templates import write_template
from healthscore.validation.session import Validation

DEMO_END = date(2026, 10, 31)


def make_demo(
    path: Path, accounts: int, months: int, template: str, progress: Callable[[str], None]
) -> tuple[Project, RunResult]:
    path = Path(path)
    if not (path / "healthscore.yml").exists():
        write_template(path, template)
    data = path / "data"
    if not (data / "accounts.csv").exists():
        progress("generating demo data")
        generate(data, accounts=accounts, months=24, end_date=DEMO_END,
                 progress=lambda done, total: progress(f"generating demo data|{done}|{total}"))
    project = Project.load(path)
    demo_users(project)  # before the rules run, so their tasks go to real people
    start = minus_months(DEMO_END, months - 1, month_end=True)
    result = project.run(start=start, end=DEMO_END, every="month", progress=progress)
    return project, result


DEMO_PASSWORD = "healthscore-demo"


def demo_users(project: Project) -> dict[str, str]:
    """Sign-ins for the demo: an admin (who holds vp_cs and ceo by default), a lead per team,
    every CSM of the data, a person in each department that playbooks and escalation reach
    (finance, sales, support, product) and a viewer."""
    from healthscore.demo.population import CSMS
    from healthscore.workflow.access import hash_password

    half = len(CSMS) // 2
    people = [("admin", "admin", None), ("Nora Lindqvist", "lead", "North"),
              ("Samuel Okafor", "lead", "South"), ("Victor Viewer", "viewer", None),
              ("Helga Jensen", "csm", "finance"), ("Rafael Silva", "csm", "sales"),
              ("Mei Zhang", "csm", "support"), ("Kofi Mensah", "csm", "product")]
    people += [(name, "csm", "North" if i < half else "South") for i, name in enumerate(CSMS)]
    digest = hash_password(DEMO_PASSWORD)
    wf = project.workflow()
    try:
        known = {u["name"] for u in wf.users()}
        for name, role, team in people:
            if name not in known:
                wf.add_user(name, role, team=team, password_hash=digest,
                            actor="healthscore" if name == "admin" else "admin")
    finally:
        wf.close()
    return {"admin": "admin", "lead": "Nora Lindqvist", "csm": CSMS[0], "viewer": "Victor Viewer"}


# the backtest of the demo: monthly as-of dates whose 90-day churn window is over by DEMO_END
DEMO_VALIDATION = {"start": "2025-01-31", "end": "2026-07-31", "every": "month", "horizon": "90d"}


def validate_demo(project: Project, progress: Callable[[str], None]) -> Validation:
    v = DEMO_VALIDATION
    return project.validate(start=v["start"], end=v["end"], every=v["every"], horizon=v["horizon"],
                            progress=progress)
