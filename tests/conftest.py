"""Shared fixtures: the mini project, and PostgreSQL tables that are dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.projects import write_project

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """The working mini project (tests.projects.MINI) written into tmp_path."""
    return write_project(tmp_path)


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Spark tests share one worker (and so one JVM and SparkSession) under 'make test'."""
    for item in items:
        if item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.xdist_group("spark"))
