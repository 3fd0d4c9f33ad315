"""The daily job: what a team's server runs every morning from cron or a systemd timer.

One call scores the day, applies the rules (CTAs opened and closed, overrides lapsed, overdue
CTAs escalated, instant notifications sent), removes snapshots older than ``history.keep``,
reminds owners of overdue CTAs and sends the digests, each of those two once a day however
often the job runs. A lock in the state folder keeps two runs of the same project from
overlapping; a run killed midway leaves the last good snapshots (they are swapped in whole,
see :mod:`healthscore.store.snapshots`) and its lock goes with its process. Every run, good
or not, appends one JSON line to ``daily.jsonl``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from healthscore.errors import HealthScoreError
from healthscore.project import Project

OK, ERROR, WARNINGS = 0, 1, 2  # exit codes: cron and CI alert on anything but 0
LOG = "daily.jsonl"
DONE = "daily.json"  # the day each once-a-day step last ran
LOCK = "daily.lock"


@dataclass
class DailyResult:
    day: date
    status: str = "ok"  # ok | warnings | error
    seconds: dict[str, float] = field(default_factory=dict)  # per step, and "total"
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return {"ok": OK, "warnings": WARNINGS}.get(self.status, ERROR)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "day": self.day.isoformat(), "exit": self.exit_code}


def run_daily(project: Project, *, today: date | None = None, wait: float = 0,
              clock: Callable[[], datetime] = datetime.now,
              progress: Callable[[str], None] = lambda _: None) -> DailyResult:
    """Run the day's job once. Raises :class:`HealthScoreError` when it cannot finish (after
    writing its log line); data and notification problems finish with status 'warnings'."""
    day = today or clock().date()
    state = project.config.state_dir
    state.mkdir(parents=True, exist_ok=True)
    result = DailyResult(day)
    began = time.perf_counter()
    try:
        with _locked(state / LOCK, wait):
            _steps(project, result, progress)
    except BaseException as err:
        result.status = "error"
        result.error = err.message if isinstance(err, HealthScoreError) else f"{type(err).__name__}: {err}"
        raise
    finally:
        result.seconds["total"] = round(time.perf_counter() - began, 3)
        if result.status != "error" and result.warnings:
            result.status = "warnings"
        _log(state / LOG, result, clock())
    return result


@contextmanager
def _locked(path: Path, wait: float) -> Iterator[None]:
    lock = FileLock(path, timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise HealthScoreError(
            f"daily: another daily run of this project is still going (it holds {path}). Let it "
            f"finish, or pass --wait SECONDS to queue behind it."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _steps(project: Project, r: DailyResult, progress: Callable[[str], None]) -> None:
    wf = project.workflow(today=r.day)
    try:
        first = wf.last_notification_id()
    finally:
        wf.close()
    with _timed(r, "score"):
        run = project.run(r.day, apply_rules=True, today=r.day, progress=progress)
    r.counts["rows"] = run.rows
    r.warnings += run.warnings
    applied = run.workflow or {}
    for key in ("opened", "closed", "lapsed", "escalated"):
        r.counts[f"ctas_{key}" if key != "lapsed" else "overrides_lapsed"] = len(applied.get(key, []))
    r.counts["band_changes"] = int(applied.get("band_changes", 0))
    keep = project.config.keep_days
    if keep:
        with _timed(r, "retention"):
            gone = project.store.prune(r.day - timedelta(days=keep))
        r.counts["snapshots_removed"] = len(gone)
    done = _read_done(project.config.state_dir / DONE)
    wf = project.workflow(today=r.day)
    try:
        if done.get("overdue") != r.day.isoformat():
            with _timed(r, "overdue"):
                progress("reminding owners of overdue CTAs")
                r.counts["overdue_reminded"] = wf.notify_overdue()
            done["overdue"] = r.day.isoformat()
            _write_done(project.config.state_dir / DONE, done)
        if done.get("digest") != r.day.isoformat():
            with _timed(r, "digest"):
                progress("sending the digests")
                sent = wf.send_digest()
            r.counts["digests_sent"] = sent["sent"]
            r.counts["digests_failed"] = sent["failed"]
            done["digest"] = r.day.isoformat()
            _write_done(project.config.state_dir / DONE, done)
        failed = wf.notifications(after_id=first, status="failed")
    finally:
        wf.close()
    if failed:
        r.warnings.append(f"notifications: {len(failed)} could not be sent today (first: "
                          f"{failed[0]['channel']} to {failed[0]['user']}: {failed[0]['error']}).")


@contextmanager
def _timed(r: DailyResult, step: str) -> Iterator[None]:
    began = time.perf_counter()
    try:
        yield
    finally:
        r.seconds[step] = round(time.perf_counter() - began, 3)


def _read_done(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write_done(path: Path, done: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(done), encoding="utf-8")
    os.replace(tmp, path)  # a kill leaves the old file or the new one, never half of one


def _log(path: Path, r: DailyResult, now: datetime) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"at": now.isoformat(timespec="seconds"), **r.as_dict()}) + "\n")


def last_daily(project: Project) -> dict[str, Any] | None:
    """The log line of the newest daily run (None before the first)."""
    path = project.config.state_dir / LOG
    try:
        lines = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a full disk: the one before is the newest whole one
        if isinstance(entry, dict):
            return entry
    return None
