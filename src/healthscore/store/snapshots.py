"""Score history: one folder per as-of date under the project's state folder.

A date's folder holds its rows (Parquet files, as older versions wrote them), or names the
file of ``passes/`` that holds them: a run scoring many dates writes each set-based pass as
one file in date order (each scorecard's rows together, by date), which costs a fraction of
writing a file per date, and a reader of one date skips the other dates' row groups by their
statistics. A file no date names any
more is removed.

Writes are staged in a scratch folder and swapped in per date with renames, so re-running a
date replaces it whole and a failed run leaves the stored snapshots untouched. The swap is
journaled: a run killed in the middle of it is finished by the next run, and no stored date
is ever lost.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from healthscore.errors import NotFoundError

PREFIX = "as_of="
OWNER = ".owner"  # the pid of the run that writes a staging folder
PASSES = "passes"  # under snapshots/: files holding the rows of many dates, in date order
POINTER = "rows.json"  # in a date's folder: the file of passes/ that holds its rows
PASS_FILE = "pass-*.parquet"


def _checkpoint(step: str) -> None:
    """A point in the swap (tests stop a process here to prove the swap survives it)."""
    return None


def _alive(folder: Path) -> bool:
    """Whether the run that made a staging (or its trash) folder is still running."""
    owner = folder / OWNER
    if folder.name.startswith(".trash-"):
        owner = folder.with_name(".staging-" + folder.name[len(".trash-"):]) / OWNER
    try:
        pid = int(owner.read_text())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def add_pass(stage: Path, write: Callable[[Path], None]) -> None:
    """Stage the rows of many dates as one file (``write`` makes it, in as_of order within
    each scorecard's rows) and, for each of its dates, a folder naming that file."""
    stage.mkdir(parents=True, exist_ok=True)
    path = stage / PASS_FILE.replace("*", uuid.uuid4().hex[:12])
    write(path)
    days = pq.ParquetFile(path).read(columns=["as_of"])["as_of"]  # (read_table: pandas too)
    for day in pc.unique(days).to_pylist():
        folder = stage / f"{PREFIX}{day.isoformat()}"
        folder.mkdir()
        (folder / POINTER).write_text(json.dumps({"file": path.name}))


def _json(path: Path) -> dict[str, Any]:
    """A small JSON file of the store ({} when another run removed it meanwhile)."""
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}


class SnapshotStore:
    """``cache`` keeps the last tables read in memory (a long-lived server sets it); a table is
    read again when its date's folder was replaced by a later run."""

    def __init__(self, state_dir: Path, cache: int = 0) -> None:
        self.root = Path(state_dir)
        self.snapshots = self.root / "snapshots"
        self.scorecards = self.root / "scorecards"
        self.passes = self.snapshots / PASSES
        self.cache = cache
        self._tables: OrderedDict[tuple[Any, ...], pa.Table] = OrderedDict()
        self._definitions: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ writing

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A scratch folder; on success its as_of=... partitions replace the stored ones.

        A swap is journaled first, so a run killed halfway through is finished by the next one
        (every date stays, old or new); folders left by killed runs are removed then too."""
        self.recover()
        stage = self.root / f".staging-{uuid.uuid4().hex[:8]}"
        stage.mkdir(parents=True)
        (stage / OWNER).write_text(str(os.getpid()))
        try:
            yield stage
            self._swap_in(stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _swap_in(self, stage: Path) -> None:
        _checkpoint("staged")
        self.snapshots.mkdir(parents=True, exist_ok=True)
        trash = self.root / f".trash-{stage.name[len('.staging-'):]}"
        trash.mkdir()
        parts = sorted(p.name for p in stage.glob(f"{PREFIX}*"))
        files = sorted(p.name for p in stage.glob(PASS_FILE))
        journal = self.root / f".swap-{stage.name[len('.staging-'):]}.json"
        tmp = journal.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stage": stage.name, "trash": trash.name, "parts": parts,
                                   "files": files}))
        tmp.replace(journal)  # from here on the swap is finished even if the process dies
        _checkpoint("journaled")
        self._move_files(stage, files)
        for name in parts:
            self._swap_one(stage / name, trash / name)
        journal.unlink()
        _checkpoint("done")
        shutil.rmtree(trash, ignore_errors=True)
        self._drop_unused_files()

    def _move_files(self, stage: Path, files: list[str]) -> None:
        """Move a swap's pass files in, before the folders that name them."""
        self.passes.mkdir(exist_ok=True)
        for name in files:
            if (stage / name).exists():
                (stage / name).rename(self.passes / name)
                _checkpoint("moved file")

    def _swap_one(self, new: Path, old: Path) -> None:
        target = self.snapshots / new.name
        if target.exists() and not old.exists():
            target.rename(old)
            _checkpoint("moved old")
        if new.exists():
            new.rename(target)
            _checkpoint("moved new")

    def recover(self) -> None:
        """Finish swaps that a killed run left half done; remove what killed runs left."""
        if not self.root.is_dir():
            return
        for journal in sorted(self.root.glob(".swap-*.json")):
            plan = json.loads(journal.read_text())
            stage, trash = self.root / plan["stage"], self.root / plan["trash"]
            if _alive(stage):
                continue  # another run is swapping right now
            self.snapshots.mkdir(parents=True, exist_ok=True)
            self._move_files(stage, plan.get("files", []))
            for name in plan["parts"]:
                if (stage / name).exists():
                    self._swap_one(stage / name, trash / name)
                elif not (self.snapshots / name).exists() and (trash / name).exists():
                    (trash / name).rename(self.snapshots / name)  # never lose a stored date
            journal.unlink()
            shutil.rmtree(trash, ignore_errors=True)
            shutil.rmtree(stage, ignore_errors=True)
        for folder in [*self.root.glob(".staging-*"), *self.root.glob(".trash-*")]:
            if folder.is_dir() and not _alive(folder):
                shutil.rmtree(folder, ignore_errors=True)
        self._drop_unused_files()

    def _drop_unused_files(self) -> None:
        """Remove the pass files that no date names any more and no swap under way moves in."""
        if not self.passes.is_dir():
            return
        unused = {p.name for p in self.passes.glob(PASS_FILE)}
        for journal in self.root.glob(".swap-*.json"):
            unused -= set(_json(journal).get("files", []))
        for pointer in self.snapshots.glob(f"{PREFIX}*/{POINTER}"):
            unused.discard(_json(pointer).get("file"))
        for name in unused:
            (self.passes / name).unlink(missing_ok=True)

    def prune(self, before: date) -> list[date]:
        """Remove the snapshots of as-of dates before ``before`` (never the newest one);
        each goes whole: renamed out of the way first, then deleted."""
        dates = self.dates()
        gone = [d for d in dates[:-1] if d < before]
        for d in gone:
            trash = self.root / f".trash-prune-{uuid.uuid4().hex[:8]}"
            self.path(d).rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        self._drop_unused_files()
        return gone

    def save_definition(self, version: str, definition: dict[str, Any]) -> None:
        self.scorecards.mkdir(parents=True, exist_ok=True)
        path = self.scorecards / f"{version}.json"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(definition, indent=1, sort_keys=True, default=str))
            tmp.replace(path)

    # ------------------------------------------------------------------ reading

    def dates(self) -> list[date]:
        if not self.snapshots.is_dir():
            return []
        out = [date.fromisoformat(p.name[len(PREFIX):]) for p in self.snapshots.glob(f"{PREFIX}*")]
        return sorted(out)

    def latest(self) -> date:
        dates = self.dates()
        if not dates:
            raise NotFoundError(
                "no snapshots yet: run 'healthscore run' first to compute scores."
            )
        return dates[-1]

    def on_or_before(self, day: date) -> date | None:
        earlier = [d for d in self.dates() if d <= day]
        return earlier[-1] if earlier else None

    def path(self, day: date) -> Path:
        return self.snapshots / f"{PREFIX}{day.isoformat()}"

    def read(self, day: date, columns: list[str] | None = None,
             primary_only: bool = False) -> pa.Table:
        if not self.cache:
            return self._read(day, columns, primary_only)
        try:
            stamp = self.path(day).stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        key = (day, stamp, primary_only, tuple(columns or ()))
        table = self._tables.get(key)
        if table is None:
            table = self._read(day, columns, primary_only)
            self._tables[key] = table
            self._evict()
        else:
            self._tables.move_to_end(key)
        return table

    def _evict(self) -> None:
        """Keep at most ``cache`` whole tables and ``8 * cache`` narrow ones (a few columns of
        every date, e.g. the score history)."""
        for narrow, limit in ((False, self.cache), (True, 8 * self.cache)):
            keys = [k for k in self._tables if bool(k[3]) == narrow]
            for k in keys[: max(0, len(keys) - limit)]:
                del self._tables[k]

    def account_rows(self, day: date, account_id: str, primary_only: bool = False) -> pa.Table:
        """One account's rows of a snapshot (one per scorecard it is scored by)."""
        table = self.read(day, primary_only=primary_only)
        return table.filter(pc.equal(table["account_id"], account_id))

    def _read(self, day: date, columns: list[str] | None, primary_only: bool) -> pa.Table:
        folder = self.path(day)
        if not folder.is_dir():
            have = ", ".join(d.isoformat() for d in self.dates()[-5:]) or "none"
            raise NotFoundError(
                f"no snapshot for {day.isoformat()}. Run 'healthscore run --as-of "
                f"{day.isoformat()}' first. Latest snapshots: {have}."
            )
        filters = [("is_primary", "=", True)] if primary_only else []
        if (folder / POINTER).exists():
            return self._read_pass(day, columns, filters)
        files = sorted(folder.glob("*.parquet"))
        tables = [pq.read_table(f, filters=filters or None) for f in files]
        table = pa.concat_tables(tables, promote_options="default")
        if columns:
            table = table.select([c for c in columns if c in table.column_names])
        return table

    def _read_pass(self, day: date, columns: list[str] | None, filters: list[Any]) -> pa.Table:
        """A date's rows from the pass file its folder names (only its row groups are read)."""
        path = self.passes / _json(self.path(day) / POINTER)["file"]
        if columns:
            names = pq.read_schema(path).names
            columns = [c for c in columns if c in names]
        return pq.read_table(path, columns=columns, filters=[("as_of", "=", day), *filters])

    def definition(self, version: str) -> dict[str, Any]:
        """A stored scorecard version (versions never change, so they are kept once read)."""
        if version in self._definitions:
            return self._definitions[version]
        path = self.scorecards / f"{version}.json"
        if not path.exists():
            raise NotFoundError(f"scorecard version {version} is not stored in {self.scorecards}.")
        self._definitions[version] = json.loads(path.read_text())
        return self._definitions[version]
