"""The command line's own behaviour: start-up cost, progress, tables at 80 columns, messages."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console

from healthscore.cli.progress import ProgressSteps, progress_bar

HEAVY = ("ibis", "pandas", "sklearn", "fastapi", "duckdb", "numpy", "pyarrow", "sqlalchemy", "scipy")

_HELP = """
import json, sys
from healthscore.cli.main import app
try:
    app(sys.argv[1:], prog_name="healthscore")
except SystemExit:
    pass
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["cta", "list", "--help"],
                                  ["validate", "--help"]])
def test_help_imports_no_engine_web_or_model_library(args: list[str]) -> None:
    """`--help` stays cheap: the engine, pandas, sklearn and the web app load only when a
    command runs (each costs seconds of CPU at start-up)."""
    done = subprocess.run([sys.executable, "-c", _HELP, *args], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "Usage: healthscore" in done.stdout
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert "healthscore" in loaded
    assert sorted(loaded & set(HEAVY)) == []


# ----------------------------------------------------------------------------- progress


def _bar_text(bar: Any) -> str:
    shown = Console(width=120, record=True, color_system=None, file=io.StringIO())
    shown.print(bar.make_tasks_table(bar.tasks))
    return shown.export_text().strip()


def test_progress_shows_done_of_total_elapsed_and_time_left() -> None:
    now = [100.0]
    bar = progress_bar(Console(force_terminal=True, file=io.StringIO()), lambda: now[0])
    step = ProgressSteps(bar)
    step("reading accounts|0|4")
    now[0] = 102.0
    step("reading tickets|2|4")  # 2 of 4 in 2 s: 2 s left
    assert "reading tickets" in _bar_text(bar)
    assert _bar_text(bar).endswith("2/4 0:00:02 elapsed 0:00:02 left")
    now[0] = 105.0
    step("scoring 12 as-of date(s), pass 1 of 4|0|12")  # a new stage: its own count and clock
    assert _bar_text(bar).endswith(" 0/12 0:00:00 elapsed -:--:-- left")
    now[0] = 125.0
    step("scoring 12 as-of date(s), pass 2 of 4|3|12")  # 3 in 20 s: 9 more take 60 s
    text = _bar_text(bar)
    assert "scoring 12 as-of date(s), pass 2 of 4" in text
    assert text.endswith(" 3/12 0:00:20 elapsed 0:01:00 left")
    now[0] = 3725.0
    step("scoring 12 as-of date(s), pass 3 of 4|6|12")
    assert _bar_text(bar).endswith(" 6/12 1:00:20 elapsed 1:00:20 left")
    step("applying rules")  # no count: no numbers, and the clock starts again
    text = _bar_text(bar)
    assert "applying rules" in text and text.endswith(" 0:00:00 elapsed")
    assert "/12" not in text and "left" not in text
