"""`apply` is all or nothing, even when killed: a process applying a rules plan is killed
(os._exit, no cleanup) after the first, a middle and the last CTA it opens, on SQLite and on
PostgreSQL; the store then holds none of the plan, and applying the same plan again does all
of it. The killed processes are forked from a server that has imported the package once."""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from healthscore.project import Project
from healthscore.tables import Audit, Cta
from healthscore.workflow.rules import Plan
from healthscore.workflow.service import Workflow

from .conftest import PG_DSN, PG_URL, copy_project, run_script
from .projects import add_department_people

TODAY = date(2026, 11, 2)

APPLY = textwrap.dedent("""
    import json, os, sys
    from datetime import date
    from healthscore.project import Project
    from healthscore.workflow import ctas
    from healthscore.workflow.rules import Plan
    from healthscore.workflow.service import Workflow

    root, url, plan_file, stop = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    opened = []
    real = ctas.CtaService.open_in

    def open_in(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        opened.append(out["id"])
        if len(opened) == stop:
            os._exit(9)  # a kill inside the transaction: no rollback, no cleanup
        return out

    ctas.CtaService.open_in = open_in
    project = Project.load(root)
    w = Workflow(project.config, project.store, url=url, today=date(2026, 11, 2))
    w.apply(Plan.from_dict(json.load(open(plan_file))))
    print(len(opened))
""")


@pytest.fixture(scope="module")
def project(scored_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The eight-categories demo scored on 2026-09-30 and 2026-10-31 (rules not applied)."""
    return Project.load(copy_project(scored_demo, tmp_path_factory.mktemp("kill-apply") / "p"))


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wf.db'}"
        return
    request.getfixturevalue("pg_url")
    import psycopg

    schema = f"kill_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _counts(w: Workflow) -> tuple[int, int]:
    with w.store.session() as s:
        return (s.scalar(select(func.count()).select_from(Cta)) or 0,
                s.scalar(select(func.count()).select_from(Audit)) or 0)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_killed_apply_leaves_none_of_its_plan(project: Project, url: str, tmp_path: Path,
                                                where: str) -> None:
    w = Workflow(project.config, project.store, url=url, today=TODAY)
    try:
        w.add_user("ada", "admin")
        add_department_people(w, "ada", lead_team="emea")
        plan = w.plan()
        n = len(plan.open)
        assert n >= 10, n
        stop = {"first": 1, "middle": n // 2, "last": n}[where]
        plan_file = tmp_path / "plan.json"
        plan_file.write_text(json.dumps(plan.to_dict(), default=str))
        before = _counts(w)
        killed = run_script(APPLY, str(project.root), url, str(plan_file), str(stop))
        assert killed.returncode == 9, killed.stderr[-2000:]
        assert _counts(w) == before  # nothing of the plan, not even its audit rows
        done = w.apply(Plan.from_dict(json.loads(plan_file.read_text())))
        assert len(done["opened"]) == n
        assert _counts(w)[0] == before[0] + n
    finally:
        w.close()
