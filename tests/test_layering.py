"""The layering contract (pyproject.toml [tool.importlinter]) covers every module, holds, and
fails when a stage imports a later one; no module imports itself back through others."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = config["contracts"][0]["layers"]
    return [name.strip() for layer in layers for name in layer.split("|")]


def test_every_module_is_in_a_layer() -> None:
    top = {p.stem if p.is_file() else p.name for p in (ROOT / "src/healthscore").iterdir()
           if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert sorted(f"healthscore.{t}" for t in top) == sorted(_layers())


def test_no_import_cycles_between_modules() -> None:
    graph = grimp.build_graph("healthscore")
    cycles = [(a, b) for a in sorted(graph.modules) for b in graph.find_modules_directly_imported_by(a)
              if a != b and graph.chain_exists(importer=b, imported=a)
              and not b.startswith(a + ".") and not a.startswith(b + ".")]
    assert cycles == []


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), str(tree / "pyproject.toml")], cwd=tree,
                          capture_output=True, text=True, env={"PYTHONPATH": str(tree / "src"),
                                                               "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "src" / "healthscore", tree / "src" / "healthscore",
                    ignore=shutil.ignore_patterns("static", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_contract_holds_and_a_backward_import_breaks_it(copy: Path) -> None:
    kept = _lint(copy)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    target = copy / "src/healthscore/scoring/schemes.py"
    original = target.read_text()
    target.write_text(original + "\nfrom healthscore.validation import metrics  # noqa\n")
    try:
        broken = _lint(copy)
    finally:
        target.write_text(original)
    assert broken.returncode == 1
    assert "Stages import only earlier stages BROKEN" in broken.stdout
    assert "healthscore.scoring.schemes -> healthscore.validation.metrics" in broken.stdout
