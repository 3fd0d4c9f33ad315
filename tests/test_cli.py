"""The command line's own behaviour: start-up cost, progress, tables at 80 columns, messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
