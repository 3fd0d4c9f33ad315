"""Shared fixtures: the mini project, the demo data and the demo projects scored on it (built
once for both workers of 'make test'), the DuckDB scores the Spark tests compare with, and
PostgreSQL tables that are dropped afterwards; scripts run in processes forked from a server
with the package imported (the tests that kill a process); passwords hashed at argon2's lowest
cost; and how 'make test' spreads the tests over its two workers."""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import typer
import typer.testing
from filelock import FileLock
from typer.testing import Result

from tests.projects import SPARK_TEST_JVM, write_project

# every Spark driver the tests start through spark-submit (a local session's JVM, whichever
# test starts it first, and the cluster's Spark Connect server) runs with the tests' Java options
os.environ.setdefault("SPARK_SUBMIT_OPTS", SPARK_TEST_JVM)

DEMO_END = date(2026, 10, 31)

# the two as-of dates the demo projects of the web, workflow and browser tests are scored on
DEMO_DATES = [date(2026, 9, 30), date(2026, 10, 31)]

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _cheap_passwords() -> Any:
    """The tests' passwords hashed (and so checked: a hash carries its parameters) by argon2id
    at its lowest cost instead of the product's (64 MiB, 3 passes, 4 lanes: 0.1-0.2 CPU s a
    hash or sign-in, 13 CPU s of the web and workflow tests); the same code signs in, rehashes
    and fails alike. The product's own hasher is returned for the test of its parameters."""
    from argon2 import PasswordHasher

    from healthscore.workflow import access

    product = access._hasher
    access._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    access._DUMMY = access._hasher.hash("not-a-password")
    return product


_PRODUCT_PASSWORDS = _cheap_passwords()


@pytest.fixture
def product_passwords() -> Any:
    """The argon2 hasher the product signs in with (the tests' is a cheap one)."""
    return _PRODUCT_PASSWORDS


class CliRunner(typer.testing.CliRunner):
    """Typer's test runner with each app's click command built once: Typer builds it again
    at every invoke (15-20 ms of CPU, as much as a short command takes)."""

    def invoke(self, app: typer.Typer, *args: Any, **kwargs: Any) -> Result:
        with patch.object(typer.testing, "_get_command", _click_command):
            return super().invoke(app, *args, **kwargs)


_click_command = functools.cache(typer.main.get_command)


@pytest.fixture
def filled_tables(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the tables the DuckDB engine fills (``make_table``) while the test runs,
    in the order filled."""
    from healthscore.engine.adapter import DuckDBEngine

    filled: list[str] = []
    make = DuckDBEngine.make_table

    def noted(self: DuckDBEngine, name: str, *a: Any) -> None:
        filled.append(name)
        make(self, name, *a)

    monkeypatch.setattr(DuckDBEngine, "make_table", noted)
    return filled


@pytest.fixture
def filtered(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The sources scanned for filters that match none of their rows, run by run."""
    from healthscore.pipeline import load

    seen: list[list[str]] = []
    real = load.unmatched_filters

    def scanning(config: Any, tables: dict[str, Any]) -> Any:
        seen.append(sorted(tables))
        return real(config, tables)

    monkeypatch.setattr(load, "unmatched_filters", scanning)
    return seen


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """The working mini project (tests.projects.MINI) written into tmp_path."""
    return write_project(tmp_path)


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` run once for the whole test run: under xdist the workers share the
    run's temporary folder, the first to ask builds while the other waits on a file lock, then
    both read the same folder. A build that fails leaves nothing marked built."""
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / f"built-{name}"
    with FileLock(str(folder) + ".lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            (folder / ".built").touch()
    return folder


def copy_project(source: Path, target: Path) -> Path:
    """A writable copy of the project folder ``source`` (its history, source cache and
    workflow store with it) at ``target``; recorded validation reports point into the copy."""
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    record = target / ".healthscore" / "validations.jsonl"
    if record.exists():
        rows = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line]
        for row in rows:
            if row.get("report"):
                row["report"] = str(target / Path(row["report"]).relative_to(source))
        record.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return target


# what the processes the tests kill import before they start: the modules their scripts patch
FORKSERVER_PRELOAD = ["healthscore.project", "healthscore.project.daily",
                      "healthscore.sources.cache", "healthscore.store.snapshots",
                      "healthscore.workflow.ctas", "healthscore.workflow.rules",
                      "healthscore.workflow.service"]

# run first in the forked process (one line: a traceback's line numbers are off by one only):
# the script's arguments and where its output goes
_STREAMS = "import sys; sys.argv = ARGV; sys.stdout = open(OUT, 'w'); sys.stderr = open(ERR, 'w')\n"


@dataclass
class Finished:
    returncode: int | None  # 9 after os._exit(9), 1 after an uncaught exception
    stdout: str
    stderr: str  # a traceback, if any


def run_script(script: str, *args: str, timeout: float = 600) -> Finished:
    """``python -c script *args`` in a fresh process forked from a server that imported
    FORKSERVER_PRELOAD once, instead of a new interpreter importing the package each time
    (seconds of CPU per process); no connection, thread or file of the test's is in it."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)  # read when the server starts
    with tempfile.TemporaryDirectory(prefix="healthscore-script-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        child = ctx.Process(target=exec, args=(_STREAMS + script, {
            "ARGV": ["-c", *args], "OUT": str(out), "ERR": str(err)}))
        child.start()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
            raise TimeoutError(f"the script did not end within {timeout} s")
        read = [p.read_text(encoding="utf-8") if p.exists() else "" for p in (out, err)]
        return Finished(child.exitcode, *read)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The server ``run_script`` forks from (if it started) stops with the session."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # Python's own way to stop it
    if stop is not None:
        stop()


@functools.cache
def _migrated_store_bytes() -> bytes:
    from healthscore.workflow.db import Store

    with tempfile.TemporaryDirectory(prefix="healthscore-store-") as folder:
        db = Path(folder) / "workflow.db"
        Store(f"sqlite:///{db}").close()
        return db.read_bytes()


def migrated_store(db: Path) -> Path:
    """An empty SQLite workflow store at ``db``, every migration already applied: a copy of one
    migrated once per worker (opening it then finds it up to date)."""
    db.write_bytes(_migrated_store_bytes())
    return db


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data for 150 accounts (seed 11, 24 months to DEMO_END), generated once for
    every module that scores it. Its files are read-only: copy it to change it."""
    from healthscore.demo.generate import generate

    def build(folder: Path) -> None:
        generate(folder / "data", accounts=150, months=24, seed=11, end_date=DEMO_END)
        for path in (folder / "data").rglob("*"):
            if path.is_file():
                path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)

    return built_once(tmp_path_factory, "demo-data", build) / "data"


@pytest.fixture(scope="session")
def scored_demo(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The eight-categories template on the demo data, scored on DEMO_DATES without applying
    its rules: a project folder built once. Do not change it: ``copy_project`` it."""
    from healthscore.project import Project
    from healthscore.templates import write_template

    def build(folder: Path) -> None:
        write_template(folder / "p", "eight-categories", demo_data)
        Project.load(folder / "p").run(dates=DEMO_DATES, apply_rules=False)

    return built_once(tmp_path_factory, "scored-demo", build) / "p"


@pytest.fixture(scope="session")
def served_demo(scored_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``scored_demo`` as the served demo has it: the template's rules applied (they open CTAs
    owned by each account's CSM, as a run does), the demo's users, and a validation of
    2026-03-31..2026-07-31 written and recorded. Built once; ``copy_project`` it."""
    from healthscore.demo.project import demo_users
    from healthscore.project import Project

    def build(folder: Path) -> None:
        project = Project.load(copy_project(scored_demo, folder / "p"))
        wf = project.workflow()  # what Project.run does after scoring when there are rules
        try:
            wf.plan_and_apply()
        finally:
            wf.close()
        demo_users(project)
        check = project.validate(start="2026-03-31", end="2026-07-31", every="month", horizon="90d")
        report, _ = check.write(project.config.state_dir / "validation")
        check.record(report)

    return built_once(tmp_path_factory, "served-demo", build) / "p"


@pytest.fixture(scope="session")
def small_duckdb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[date, Any]]:
    """What the Spark tests compare with: the hand-computed project (tests.test_measures) on
    DuckDB, scored on DATES_SMALL in one pass, and each of those dates scored alone on the
    data as it stood that day. Computed once; do not change the frames."""
    from tests.test_pipeline import small_duckdb_scores

    return small_duckdb_scores(tmp_path_factory.mktemp("small-duckdb"))


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The SQLAlchemy URL of the test server; skips when it cannot be reached."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        pytest.skip(f"PostgreSQL server at 127.0.0.1:5432 cannot be reached: {first}")
    return PG_URL


@pytest.fixture
def pg_table(pg_url: str) -> Iterator[Callable[[str, str, list[tuple[Any, ...]]], str]]:
    """``pg_table(prefix, "col type, ...", rows)`` creates a uniquely named table."""
    import psycopg

    made: list[str] = []
    conn = psycopg.connect(PG_DSN, autocommit=True)

    def create(prefix: str, columns: str, rows: list[tuple[Any, ...]]) -> str:
        name = f"hs_{prefix}_{uuid.uuid4().hex[:12]}"
        conn.execute(f"CREATE TABLE {name} ({columns})")
        made.append(name)
        if rows:
            marks = ", ".join(["%s"] * len(rows[0]))
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        return name

    try:
        yield create
    finally:
        for name in made:
            conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.close()


# Groups that cost the most, costliest first: they start first, so that the two workers of
# 'make test' finish together (the rest follow in file order).
FIRST = (
    "spark",
    "tests/test_web.py::project",
    "tests/test_validation.py::demo_validation",
    "tests/test_browser.py::browser",
    "tests/test_readme.py::folder",
    "tests/test_workflow.py::project",
    "tests/test_validation.py::small_validation",
    "tests/test_validation.py::churnsim",
)


def pytest_configure(config: pytest.Config) -> None:
    # xdist would otherwise start the groups with the most tests first, not the longest ones
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its hook runs first otherwise)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under 'make test' (xdist, --dist loadgroup) the Spark tests share one worker (and so one
    JVM and SparkSession), and so do the tests of a module-scoped fixture, which is then built
    once (the demo backtest, the README's demo, the served site; on the Spark worker when a
    Spark test uses it too); the costliest groups start first."""
    groups = _fixture_groups(items)
    with_spark = {groups.get(i.nodeid) for i in items if i.get_closest_marker("spark")}
    for item in items:
        group = groups.get(item.nodeid)
        if item.get_closest_marker("spark") or (group and group in with_spark):
            group = "spark"  # a fixture a Spark test shares is built on the Spark worker only
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
            if config.getoption("loadgroup", False):
                _tell_xdist(item, group)
    items.sort(key=_rank)


def _tell_xdist(item: pytest.Item, group: str) -> None:
    """xdist groups by an '@group' suffix it writes into ``item._nodeid``, which pytest >= 9.2
    no longer reads (the id lives in ``item._id``): without this, every group is ignored and
    each worker builds every module fixture again. The suffix is written where pytest reads it."""
    if hasattr(item, "_id") and "@" not in item.nodeid:
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(f"{item.nodeid}@{group}")


def _fixture_groups(items: list[pytest.Item]) -> dict[str, str]:
    """Test id -> 'module::fixture' for the tests using module-scoped fixtures: tests that share
    one (directly or through another test's) get the same group, named by its first fixture."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    used: dict[str, list[str]] = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        module = item.nodeid.split("::")[0]
        names = sorted(f"{module}::{name}" for name, defs in (info.name2fixturedefs if info else {}).items()
                       if defs and defs[-1].scope == "module")
        if names:
            used[item.nodeid] = names
            for name in names[1:]:
                a, b = sorted((root(names[0]), root(name)))
                parent[b] = a
    return {nodeid: root(names[0]) for nodeid, names in used.items()}


def _rank(item: pytest.Item) -> int:
    marker = item.get_closest_marker("xdist_group")
    group = marker.args[0] if marker else None
    return FIRST.index(group) if group in FIRST else len(FIRST)
