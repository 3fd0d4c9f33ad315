"""Backup and restore of everything a project has computed and its people have entered.

One ``.tar.gz`` holds the state folder (snapshots, scorecard versions, run and daily logs,
validation reports) and every table of the workflow store as JSON lines, so a backup of a
SQLite store restores into PostgreSQL and back: the way a team moves to a shared server.
A backup is written under a temporary name and renamed when complete; a restore checks the
whole archive before it changes anything, writes the store in one transaction and swaps the
state folder's entries in one by one, each whole.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from healthscore.errors import HealthScoreError
from healthscore.project import Project
from healthscore.tables import Base

FORMAT = 1
SKIP = ("daily.lock", "workflow.db", "workflow.db-journal", "workflow.db-wal", "workflow.db-shm")


def backup(project: Project, target: Path, *, clock: Any = datetime.now) -> dict[str, Any]:
    """Write the project's state and workflow store to ``target`` (a .tar.gz)."""
    target = Path(target)
    if target.exists():
        raise HealthScoreError(f"backup: {target} exists already. Give another file name, or "
                               f"remove it first.")
    if not target.parent.is_dir():
        raise HealthScoreError(f"backup: the folder {target.parent} does not exist.")
    wf = project.workflow()
    try:
        tables = _dump(wf.store.engine)
        revision = _revision(wf.store.engine)
    finally:
        wf.close()
    manifest = {"format": FORMAT, "project": project.config.name, "revision": revision,
                "created": clock().isoformat(timespec="seconds"),
                "tables": {name: len(rows) for name, rows in tables.items()},
                "snapshots": [d.isoformat() for d in project.store.dates()]}
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
            for name, rows in tables.items():
                body = "".join(json.dumps(r, default=_plain, allow_nan=False) + "\n" for r in rows)
                _add(tar, f"tables/{name}.jsonl", body.encode())
            state = project.config.state_dir
            for entry in sorted(state.iterdir()) if state.is_dir() else []:
                if entry.name not in SKIP and not entry.name.startswith("."):
                    tar.add(entry, arcname=f"state/{entry.name}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def restore(project: Project, source: Path, *, force: bool = False) -> dict[str, Any]:
    """Put a backup back: the workflow store's rows and the state folder's entries.

    Refuses a store or state folder that already holds data unless ``force``."""
    source = Path(source)
    with tempfile.TemporaryDirectory(dir=_scratch(project)) as scratch:
        manifest, tables = _unpack(source, Path(scratch))
        wf = project.workflow()
        try:
            here = _revision(wf.store.engine)
            if manifest["revision"] != here:
                raise HealthScoreError(
                    f"restore: {source} was made with workflow store schema {manifest['revision']}, "
                    f"this healthscore has {here}. Restore it with the version that made it, then "
                    f"upgrade.")
            held = sum(_count(wf.store.engine, t) for t in Base.metadata.sorted_tables)
            if not force and (held or project.store.dates()):
                raise HealthScoreError(
                    f"restore: the project already holds data ({held} workflow row(s), "
                    f"{len(project.store.dates())} snapshot(s)). Restore into an empty project, "
                    f"or pass --force to replace it.")
            _load_tables(wf.store.engine, tables)
        finally:
            wf.close()
        _swap_state(project.config.state_dir, Path(scratch) / "state")
    project.store.recover()
    return manifest


# ----------------------------------------------------------------------------- tables


def _dump(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows = conn.execute(sa.select(table).order_by(*order))
            out[table.name] = [_finite(dict(r._mapping)) for r in rows]
    return out


def _finite(value: Any) -> Any:
    """NaN (which older stores kept in JSON columns) as null: PostgreSQL's JSON refuses NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _revision(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar())


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def _load_tables(engine: sa.Engine, tables: dict[str, list[dict[str, Any]]]) -> None:
    with engine.begin() as conn:  # one transaction: the store holds the backup whole, or is unchanged
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        for table in Base.metadata.sorted_tables:
            rows = [_typed(table, r) for r in tables.get(table.name, [])]
            if rows:
                conn.execute(table.insert(), rows)
        if engine.dialect.name == "postgresql":  # ids go on after the restored ones
            for table in Base.metadata.sorted_tables:
                if "id" in table.columns and tables.get(table.name):
                    conn.execute(sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT MAX(id) FROM {table.name}))"))


def _typed(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for col in table.columns:
        value = row.get(col.name)
        if isinstance(value, str) and isinstance(col.type, sa.DateTime):
            value = datetime.fromisoformat(value)
        elif isinstance(value, str) and isinstance(col.type, sa.Date):
            value = date.fromisoformat(value)
        out[col.name] = value
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to a backup")


# ----------------------------------------------------------------------------- the archive


def _add(tar: tarfile.TarFile, name: str, body: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    tar.addfile(info, io.BytesIO(body))


def _scratch(project: Project) -> Path:
    """A folder beside the state folder (same file system, so the swap is a rename)."""
    parent = project.config.state_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _unpack(source: Path, scratch: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    if not source.is_file():
        raise HealthScoreError(f"restore: {source} does not exist.")
    try:
        with tarfile.open(source, "r:gz") as tar:
            names = tar.getnames()
            if "manifest.json" not in names:
                raise HealthScoreError(f"restore: {source} is not a healthscore backup (no "
                                       f"manifest.json). Make one with 'healthscore backup'.")
            if hasattr(tarfile, "data_filter"):  # refuses absolute paths and links out
                tar.extractall(scratch, filter="data")
            else:  # Python before 3.11.4: check the names by hand
                if any(n.startswith(("/", "..")) or "/../" in n for n in names):
                    raise HealthScoreError(f"restore: {source} holds paths outside the backup.")
                tar.extractall(scratch)  # noqa: S202
    except (tarfile.TarError, EOFError, OSError) as err:
        raise HealthScoreError(f"restore: {source} cannot be read as a .tar.gz backup ({err}). "
                               f"It may be cut short: use another copy.") from None
    manifest = json.loads((scratch / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise HealthScoreError(f"restore: {source} has backup format {manifest.get('format')!r}; "
                               f"this healthscore reads format {FORMAT}.")
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, count in manifest["tables"].items():
        path = scratch / "tables" / f"{name}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) != count:
            raise HealthScoreError(f"restore: {source}: table {name} holds {len(lines)} row(s), its "
                                   f"manifest says {count}. The file is damaged: use another copy.")
        tables[name] = [json.loads(line) for line in lines]
    return manifest, tables


def _swap_state(state: Path, new: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    keep = set(SKIP)
    incoming = {p.name for p in new.iterdir()} if new.is_dir() else set()
    for entry in list(state.iterdir()):
        if entry.name not in keep and not entry.name.startswith(".") and entry.name not in incoming:
            _remove(entry)
    for name in sorted(incoming):
        target = state / name
        if target.exists():
            old = state / f".trash-restore-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            (new / name).rename(target)
            _remove(old)
        else:
            (new / name).rename(target)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
