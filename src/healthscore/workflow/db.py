"""The workflow store: a SQLite file in the project by default, PostgreSQL (or any SQLAlchemy
URL) for a team. Opening it brings the schema up to date with Alembic."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session, sessionmaker

from healthscore.config.secrets import expand_env, redact_url
from healthscore.errors import HealthScoreError

MIGRATIONS = Path(__file__).parent / "migrations"


def store_url(root: Path, state_dir: Path, url: str | None) -> str:
    """``workflow.url`` (``${NAME}`` from the environment; checked when the config loads), or
    a SQLite file in the state folder."""
    if url:
        return expand_env(url)
    state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(state_dir / 'workflow.db').resolve()}"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _heads() -> frozenset[str]:
    """The newest revisions (the migration files are read once per process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _up_to_date(connection: sa.Connection) -> bool:
    return frozenset(MigrationContext.configure(connection).get_current_heads()) == _heads()


class Store:
    """Engine + sessions over one database; ``open`` migrates it to the newest schema."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = sa.create_engine(url, future=True)
            with self.engine.begin() as conn:
                if not _up_to_date(conn):  # Alembic reads and compiles every migration file
                    command.upgrade(alembic_config(conn), "head")
        except sa.exc.SQLAlchemyError as err:
            first = str(err).strip().splitlines()[0]
            raise HealthScoreError(f"workflow store {redact_url(url)}: cannot open it: {first}") from None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed whole, or rolled back whole on any error."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def ping(self) -> None:
        """Raise :class:`HealthScoreError` when the database cannot be reached now."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as err:
            first = str(err).strip().splitlines()[0]
            raise HealthScoreError(f"workflow store {redact_url(self.url)}: cannot reach it: "
                                   f"{redact_url(first)}") from None

    def close(self) -> None:
        self.engine.dispose()
