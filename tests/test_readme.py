"""The README's commands, run as written (after `make demo`) in a fresh folder: the CLI lines
in process, the Python example, and the token + curl lines in bash against a served app."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from healthscore import Project
from healthscore.cli.main import app
from healthscore.demo.project import demo_users
from healthscore.web.app import create_app

from .browser_support import LiveServer
from .conftest import CliRunner, copy_project

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAY_WARN = {"daily"}  # exits 2 when the demo's data is older than today: finished with warnings


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def _commands(block: str) -> list[str]:
    """Lines of a shell block: continuations joined, comments dropped."""
    text = block.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


@pytest.fixture(scope="module")
def folder(scored_demo: Path, demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make demo` leaves (a smaller portfolio), beside a link to the venv: the session's
    scored demo (its template on the demo data, scored on the two month-ends make_demo scores
    with months=2), then make_demo's remaining steps in its order: the demo's users, then the
    rules' plan applied as its run applies it. Its data folder links to the demo data."""
    here = tmp_path_factory.mktemp("readme")
    project = Project.load(copy_project(scored_demo, here / "demo-project"))
    (here / "demo-project" / "data").symlink_to(demo_data, target_is_directory=True)
    demo_users(project)
    wf = project.workflow()
    try:
        wf.plan_and_apply()
    finally:
        wf.close()
    (here / ".venv").symlink_to(ROOT / ".venv")
    return here


def test_the_readme_shell_commands_run_as_written(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)
    lines = [c for b in _blocks("bash")[1:] for c in _commands(b)]  # the first block is make
    cli = [c for c in lines if c.startswith(".venv/bin/healthscore ") and not c.endswith("&")]
    assert len(cli) >= 15, cli
    runner = CliRunner()
    for line in cli:
        args = shlex.split(line)[1:]
        r = runner.invoke(app, args)
        allowed = (0, 2) if args[0] in MAY_WARN else (0,)
        assert r.exit_code in allowed, f"{line}\n{r.output}"
    assert (folder / "scores.csv").exists() and (folder / "suggested.yml").exists()


def test_the_readme_python_example_runs(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)
    (code,) = _blocks("python")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert len(scope["scores"]) > 100


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)")
def test_the_readme_curl_example_against_a_served_app(folder: Path) -> None:
    (web,) = [b for b in _blocks("bash") if "curl " in b]
    serve, token, curl = _commands(web)
    assert serve.startswith(".venv/bin/healthscore serve -p demo-project") and serve.endswith("&")
    server = LiveServer(create_app(Project.load(folder / "demo-project"))).start()
    try:
        script = f"set -euo pipefail\n{token}\n{curl.replace(':8000/', f':{server.port}/')}\n"
        done = subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "COLUMNS": "200"})
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    rows = listing["accounts"]
    assert rows and {r["band"] for r in rows} == {"red"}
    arr = [r["arr"] for r in rows]
    assert arr == sorted(arr, reverse=True)  # the sort survived the shell
