"""Backup and restore round trips: SQLite -> SQLite, SQLite -> PostgreSQL -> SQLite."""

from __future__ import annotations

import shutil
import tarfile
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from healthscore import Project
from healthscore.cli.main import app
from healthscore.errors import HealthScoreError
from healthscore.project.backup import backup, restore
from healthscore.project.daily import run_daily
from healthscore.tables import Base

from .conftest import PG_DSN, PG_URL
from .projects import write_project
from .test_daily import DAY, RULES


def _made(root: Path) -> Project:
    """A project with snapshots, users, a rule's CTA, an override and logs."""
    write_project(root, {"rules/default.yml": RULES})
    proj = Project.load(root)
    run_daily(proj, today=DAY)
    wf = proj.workflow(today=DAY)
    try:
        wf.add_user("ada", "admin")
        wf.add_user("cara", "csm", actor="ada")
        wf.set_override("A1", actor="ada", reason_code="relationship", note="sponsor left",
                        band="red", expires_on=date(2025, 6, 30))
        wf.log("A2", "call", "QBR booked", actor="ada")
    finally:
        wf.close()
    return proj


def _rows(proj: Project) -> dict[str, list[dict[str, Any]]]:
    wf = proj.workflow()
    try:
        with wf.store.engine.connect() as conn:
            return {t.name: [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
                    for t in Base.metadata.sorted_tables}
    finally:
        wf.close()


def _empty(root: Path, url: str | None = None) -> Project:
    write_project(root)
    if url:
        yml = root / "healthscore.yml"
        yml.write_text(yml.read_text() + f"workflow:\n  url: \"{url}\"\n")
    return Project.load(root)


def _same_state(a: Project, b: Project) -> None:
    assert a.store.dates() == b.store.dates()
    for d in a.store.dates():
        assert a.store.read(d).equals(b.store.read(d))
    for name in ("runs.jsonl", "daily.jsonl", "daily.json"):
        assert (a.config.state_dir / name).read_text() == (b.config.state_dir / name).read_text()


def test_round_trip_into_an_empty_project(tmp_path: Path) -> None:
    proj = _made(tmp_path / "a")
    made = backup(proj, tmp_path / "b.tar.gz")
    assert made["tables"]["ctas"] == 1 and made["tables"]["users"] == 2
    assert made["snapshots"] == [DAY.isoformat()]
    other = _empty(tmp_path / "b")
    restore(other, tmp_path / "b.tar.gz")
    assert _rows(other) == _rows(proj)
    _same_state(proj, other)
    # the restored store goes on: new rows get new ids, the override still counts
    wf = other.workflow(today=DAY)
    try:
        assert wf.open_cta("A2", "risk", "after restore", actor="ada")["id"] == 2
        assert wf.final("A1")["final_band"] == "red"
    finally:
        wf.close()


def test_sqlite_to_postgresql_and_back(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    proj = _made(tmp_path / "a")
    backup(proj, tmp_path / "one.tar.gz")
    schema = f"bk_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        team = _empty(tmp_path / "team", f"{PG_URL}?options=-csearch_path%3D{schema}")
        restore(team, tmp_path / "one.tar.gz")
        assert _rows(team) == _rows(proj)
        wf = team.workflow(today=DAY)
        try:
            assert wf.open_cta("A2", "risk", "on the server", actor="ada")["id"] == 2  # sequences moved on
        finally:
            wf.close()
        backup(team, tmp_path / "two.tar.gz")
        back = _empty(tmp_path / "back")
        restore(back, tmp_path / "two.tar.gz")
        assert _rows(back) == _rows(team)
        _same_state(proj, back)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_restore_refuses_what_it_would_overwrite_or_cannot_read(tmp_path: Path) -> None:
    proj = _made(tmp_path / "a")
    runner = CliRunner()
    r = runner.invoke(app, ["backup", "-p", str(proj.root), "--to", str(tmp_path / "b.tar.gz")])
    assert r.exit_code == 0, r.output
    assert "Backed up 1 snapshot(s) and" in r.output
    r = runner.invoke(app, ["backup", "-p", str(proj.root), "--to", str(tmp_path / "b.tar.gz")])
    assert r.exit_code == 1
    assert f"error: backup: {tmp_path / 'b.tar.gz'} exists already." in " ".join(r.output.split())
    before = _rows(proj)
    r = runner.invoke(app, ["restore", str(tmp_path / "b.tar.gz"), "-p", str(proj.root)])
    assert r.exit_code == 1
    assert ("error: restore: the project already holds data (" in r.output
            and "pass --force to replace it." in " ".join(r.output.split()))
    assert _rows(proj) == before
    wf = proj.workflow(today=DAY)
    try:
        wf.log("A3", "note", "after the backup", actor="ada")
    finally:
        wf.close()
    r = runner.invoke(app, ["restore", str(tmp_path / "b.tar.gz"), "-p", str(proj.root), "--force"])
    assert r.exit_code == 0, r.output
    assert _rows(proj) == before  # the note written after the backup is gone
    # damaged files change nothing
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes((tmp_path / "b.tar.gz").read_bytes()[:200])
    with pytest.raises(HealthScoreError) as err:
        restore(proj, cut, force=True)
    assert err.value.message.startswith(f"restore: {cut} cannot be read as a .tar.gz backup (")
    plain = tmp_path / "plain.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        tar.add(proj.root / "healthscore.yml", arcname="healthscore.yml")
    with pytest.raises(HealthScoreError) as err:
        restore(proj, plain, force=True)
    assert err.value.message == (f"restore: {plain} is not a healthscore backup (no manifest.json). "
                                 f"Make one with 'healthscore backup'.")
    assert _rows(proj) == before
    shutil.rmtree(proj.config.state_dir / "snapshots")
    assert Project.load(proj.root).store.dates() == []
