"""Shared fixtures: the mini project, the demo data, and PostgreSQL tables that are dropped
afterwards; and how 'make test' spreads the tests over its two workers."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.projects import write_project

DEMO_END = date(2026, 10, 31)

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """The working mini project (tests.projects.MINI) written into tmp_path."""
    return write_project(tmp_path)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's data for 150 accounts (seed 11, 24 months to DEMO_END), generated once per
    worker for every module that scores it. Its files are read-only: copy it to change it."""
    from healthscore.demo.generate import generate

    data = tmp_path_factory.mktemp("demo") / "data"
    generate(data, accounts=150, months=24, seed=11, end_date=DEMO_END)
    for path in data.rglob("*"):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return data


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
    once (the demo backtest, the README's demo, the served site); the costliest groups start
    first."""
    groups = _fixture_groups(items)
    for item in items:
        group = "spark" if item.get_closest_marker("spark") else groups.get(item.nodeid)
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
