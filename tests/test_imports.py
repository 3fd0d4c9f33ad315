"""What starting a command costs: the CLI and the project load without the backtest's
estimators (scikit-learn), which only the commands that backtest import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_cli_and_the_project_start_without_scikit_learn():
    code = ("import sys, healthscore.project, healthscore.cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn')[:3])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_run_without_rules_does_not_import_the_workflow_store(tmp_path):
    """Scoring a project without rules (a daily run) leaves the workflow store's libraries
    (SQLAlchemy, Alembic, argon2: about 0.7 CPU s to import) alone."""
    code = ("import sys; from pathlib import Path; from tests.projects import write_project; "
            "from healthscore.project import Project; "
            f"root = write_project(Path({str(tmp_path)!r}) / 'p'); "
            "Project.load(root).run(as_of='2025-03-10'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic', 'argon2'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_next_day_from_the_kept_state_does_not_import_pandas(tmp_path):
    """The daily run from the kept state reads and writes through Arrow and the engine alone:
    pandas (about 0.3 CPU s to import) stays out of it."""
    first = ("import sys; from pathlib import Path; from tests.projects import write_project; "
             "from healthscore.project import Project; "
             f"root = write_project(Path({str(tmp_path)!r}) / 'p'); "
             "Project.load(root).run(as_of='2025-03-09')")
    then = ("import sys; from pathlib import Path; from healthscore.project import Project; "
            f"done = Project.load(Path({str(tmp_path)!r}) / 'p').run(as_of='2025-03-10'); "
            "print(done.incremental.split(' computed')[0], 'pandas' in sys.modules)")
    for step in (first, then):
        done = subprocess.run([sys.executable, "-c", step], capture_output=True, text=True,
                              check=False, cwd=Path(__file__).parent.parent)
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "2025-03-10 False"
