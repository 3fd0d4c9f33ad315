"""The package as a user installs it: a wheel holding every file the source tree has, which
works from a clean virtualenv (not from this checkout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from .projects import write_project

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a clean copy: an egg-info left by the editable install would fill in what
    # package-data forgets, and hide it
    tree = tmp_path_factory.mktemp("tree")
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                            str(tree)], capture_output=True, text=True, timeout=600)
    if build.returncode != 0 and "Could not find a version" in build.stderr:
        pytest.skip(f"the build backend cannot be downloaded here: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    (made,) = out.glob("healthscore-*.whl")
    return made


def test_the_wheel_holds_every_file_of_the_package(wheel: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "src/healthscore"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [t for t in tracked if t[len("src/"):] not in names]
    assert not missing, missing
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "healthscore = healthscore.cli.main:app" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_from_the_wheel_it_scores_a_project(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    site = Path(subprocess.run([env / "bin" / "python", "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies from this environment, but not its editable healthscore
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    script = env / "bin" / "healthscore"
    script.write_text(f"#!{env / 'bin' / 'python'}\nfrom healthscore.cli.main import app\napp()\n")
    script.chmod(0o755)
    where = subprocess.run([env / "bin" / "python", "-c", "import healthscore; print(healthscore.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(site)), where
    data = write_project(tmp_path / "mini") / "data"
    for args in (["init", str(tmp_path / "p"), "--template", "starter", "--data", str(data)],
                 ["measures"],
                 ["run", "-p", str(tmp_path / "mini"), "--as-of", "2025-03-01"],
                 ["plan", "-p", str(tmp_path / "mini")]):
        done = subprocess.run([script, *args], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    assert (tmp_path / "p" / "healthscore.yml").exists()


def test_the_container_files_run_real_commands() -> None:
    """No container engine runs here: the image's and the compose file's commands are checked
    against the CLI, and the image builds from what the wheel test builds from."""
    import json
    import re

    import yaml
    from typer.testing import CliRunner

    from healthscore.cli.main import app

    docker = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", docker, re.M).group(1))  # type: ignore[union-attr]
    assert re.search(r'^ENTRYPOINT \["healthscore"\]$', docker, re.M)
    assert "COPY pyproject.toml README.md ./" in docker and "COPY src ./src" in docker
    assert re.search(r"^USER healthscore$", docker, re.M)  # not root
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose["services"]["app"]["command"] == cmd
    assert compose["services"]["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    url = compose["services"]["app"]["environment"]["HEALTHSCORE_STORE_URL"]
    assert url.startswith("postgresql+psycopg://") and "${DB_PASSWORD}" in url
    r = CliRunner().invoke(app, [*cmd, "--help"])  # every option exists (Click parses them first)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, [*cmd, "--no-such-option", "--help"])
    assert r.exit_code == 2  # so an unknown one would have been caught
