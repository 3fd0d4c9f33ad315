"""A folder of Parquet files given a new file (a day's new part): only the new file is read,
checked and fingerprinted, and the run is a fresh one's (scores, data health, notes, the kept
state's fingerprints, late rows); a changed or removed file, or a new file with a rejected
row, reads and checks the whole source again."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from healthscore import Project
from healthscore.pipeline import incremental
from healthscore.sources import cache
from tests.projects import (
    ACCOUNT_COLUMNS,
    ACCOUNTS,
    EVENT_COLUMNS,
    EVENTS,
    csv_text,
    parquet_file,
    project_yml,
    write_project,
)

DAY1, DAY2 = "2025-03-01", "2025-03-02"
TYPED = [(a, u, e, datetime.fromisoformat(t)) for a, u, e, t in EVENTS]
FIRST, SECOND = TYPED[:3], TYPED[3:]  # two parts of the usage events
NEW = [("A3", "u4", "login", datetime(2025, 3, 2, 9)), ("A1", "u1", "export", datetime(2025, 3, 2))]
LATE = [("A3", "u4", "login", datetime(2025, 2, 27, 9))]  # dated before the kept state's day
REJECTED = [("A9", "u9", "login", datetime(2025, 3, 2, 9))]  # an unknown account


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of each check of the usage events from here on."""
    seen: list[int] = []
    real = cache.clean

    def counting(raw: Any, source: Any, *args: Any, **kw: Any) -> Any:
        table, health = real(raw, source, *args, **kw)
        if source.entity == "usage_events":
            seen.append(health.rows_read)
        return table, health

    monkeypatch.setattr(cache, "clean", counting)
    return seen


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of each fingerprint scan from here on."""
    seen: list[int] = []
    real = incremental._scanned

    def counting(loaded: Any, entity: str, t: Any) -> Any:
        out = real(loaded, entity, t)
        seen.append(sum(n for n, _, _ in out.days.values()))
        return out

    monkeypatch.setattr(incremental, "_scanned", counting)
    return seen


def _project(root: Path) -> Path:
    return write_project(root, {
        "healthscore.yml": project_yml(
            "accounts: {path: data/accounts.csv}\n"
            "usage_events: {path: data/usage_events/, max_rejected_share: 0.5}\n"),
        "data/usage_events.csv": None,
        "data/usage_events/part-1.parquet": parquet_file(EVENT_COLUMNS, FIRST),
        "data/usage_events/part-2.parquet": parquet_file(EVENT_COLUMNS, SECOND),
    })


def _seen(result: Any, root: Path) -> dict[str, Any]:
    """What a run of ``root`` shows: scores, data health, warnings, its plan, the kept state
    (the project's folder written as ROOT)."""
    frame = result.to_pandas()
    state = json.loads((root / ".healthscore" / incremental.FOLDER / incremental.MANIFEST)
                       .read_text())
    seen = {"scores": sorted(frame.astype(str).itertuples(index=False, name=None)),
            "health": {k: h.as_dict() for k, h in result.health.items()},
            "warnings": result.warnings, "plan": result.incremental,
            "state": {k: state[k] for k in ("columns", "days", "date")}}
    return json.loads(json.dumps(seen).replace(str(root), "ROOT"))


def _next_day(tmp_path: Path, change: Any, checked: list[int], scanned: list[int],
              filtered: list[list[str]] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the next day's run after ``change``, that of a copy without its source cache: every
    source read, checked and fingerprinted whole, from the same kept state)."""
    root, fresh = _project(tmp_path / "p"), tmp_path / "fresh"
    Project.load(root).run(as_of=DAY1)
    change(root / "data" / "usage_events")
    shutil.copytree(root, fresh)
    shutil.rmtree(fresh / ".healthscore" / cache.FOLDER)
    checked.clear()
    scanned.clear()
    if filtered is not None:
        filtered.clear()
    seen = _seen(Project.load(root).run(as_of=DAY2), root)
    return seen, _seen(Project.load(fresh).run(as_of=DAY2), fresh)


def _add(rows: list[tuple[Any, ...]]) -> Any:
    return lambda folder: parquet_file(EVENT_COLUMNS, rows)(folder / "part-3.parquet")


def _accounts(rows: list[tuple[Any, ...]]) -> Any:
    return lambda folder: (folder.parent / "accounts.csv").write_text(
        csv_text(ACCOUNT_COLUMNS, rows))


def _new_account(folder: Path) -> None:
    """A new file and a new account (the other accounts' rows still all known)."""
    _accounts([*ACCOUNTS, ("A4", "Umbrella", "SMB", "2025-02-01")])(folder)
    _add(NEW)(folder)


def test_a_new_file_alone_is_read_checked_and_fingerprinted(
        tmp_path: Path, checked: list[int], scanned: list[int], filtered: list[list[str]]
        ) -> None:
    seen, fresh = _next_day(tmp_path, _add(NEW), checked, scanned, filtered)
    assert checked[:1] == [len(NEW)] and scanned[:1] == [len(NEW)]
    assert filtered[0] == []  # every filter matched a row of the entry: of all the rows too
    assert seen == fresh
    assert seen["health"]["usage_events"]["rows_read"] == len(TYPED) + len(NEW)
    assert seen["plan"] == f"{DAY2} computed from the state kept as of {DAY1}"
    # the day after: the entry built on is built on again
    checked.clear()
    parquet_file(EVENT_COLUMNS, NEW[:1])(tmp_path / "p" / "data" / "usage_events" / "part-4.parquet")
    Project.load(tmp_path / "p").run(as_of="2025-03-03")
    assert checked == [1]


def test_a_new_file_with_a_new_account_is_read_alone(
        tmp_path: Path, checked: list[int], scanned: list[int]) -> None:
    """The entry's rows were checked against other account ids: every one of them still
    known, it is built on (a removed account's rows: see below)."""
    seen, fresh = _next_day(tmp_path, _new_account, checked, scanned)
    assert checked[:1] == [len(NEW)]
    assert seen == fresh


def test_late_rows_in_a_new_file_recompute_what_they_touch(
        tmp_path: Path, checked: list[int], scanned: list[int]) -> None:
    seen, fresh = _next_day(tmp_path, _add(LATE), checked, scanned)
    assert seen["plan"].startswith("late rows in usage_events dated 2025-02-27: recomputing "
                                   f"{DAY1} and {DAY2}")
    assert checked[:1] == [len(LATE)] and scanned[:1] == [len(LATE)]
    assert seen == fresh


def _changed(folder: Path) -> None:
    parquet_file(EVENT_COLUMNS, FIRST[:2])(folder / "part-1.parquet")
    _add(NEW)(folder)


def _removed(folder: Path) -> None:
    """One file removed and two added: as many files as the entry's, and more."""
    (folder / "part-2.parquet").unlink()
    _add(NEW)(folder)
    parquet_file(EVENT_COLUMNS, NEW[:1])(folder / "part-4.parquet")


@pytest.mark.parametrize(("change", "checks"), [
    (_changed, [2 + len(SECOND) + len(NEW)]),  # one file changed: none of it is known
    (_removed, [len(FIRST) + len(NEW) + 1]),
    (_add(REJECTED), [len(REJECTED), len(TYPED) + len(REJECTED)]),  # the new file, then all
    (lambda f: (_accounts(ACCOUNTS[:1] + ACCOUNTS[2:])(f), _add(NEW)(f)),  # A2's rows unknown
     [len(TYPED) + len(NEW)]),
])
def test_a_changed_or_removed_file_or_a_rejected_row_checks_every_file(
        tmp_path: Path, checked: list[int], scanned: list[int], change: Any,
        checks: list[int]) -> None:
    seen, fresh = _next_day(tmp_path, change, checked, scanned)
    assert checked[:len(checks)] == checks
    assert seen == fresh
