"""What starting a command costs: the CLI and the project load without the backtest's
estimators (scikit-learn), which only the commands that backtest import."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_and_the_project_start_without_scikit_learn():
    code = ("import sys, healthscore.project, healthscore.cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn')[:3])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
