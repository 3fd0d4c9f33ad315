"""The daily job inside the web process (``healthscore serve --daily-at 06:30``), so one
container serves the app and runs the morning job. APScheduler's cron trigger fires it once
a day in the server's time zone; the job takes the same lock as ``healthscore daily``, so a
cron line left in place as well never runs it twice at once."""

from __future__ import annotations

import logging
import re
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from healthscore.errors import HealthScoreError
from healthscore.project import Project
from healthscore.project.daily import run_daily

log = logging.getLogger("healthscore.project.daily")
TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_time(text: str) -> tuple[int, int]:
    match = TIME.match(text.strip())
    if not match:
        raise HealthScoreError(f"--daily-at: {text!r} is not a time of day. Write HH:MM "
                               f"(24-hour clock, the server's time zone), e.g. 06:30.")
    return int(match.group(1)), int(match.group(2))


def daily_scheduler(project: Project, at: str) -> BackgroundScheduler:
    """A scheduler (not started) whose one job runs the daily job at ``at`` every day."""
    hour, minute = parse_time(at)
    scheduler = BackgroundScheduler()
    scheduler.add_job(lambda: run_job(project), CronTrigger(hour=hour, minute=minute),
                      id="daily", name=f"healthscore daily at {at}", max_instances=1,
                      coalesce=True, misfire_grace_time=3600)
    return scheduler


def run_job(project: Project) -> dict[str, Any]:
    """One scheduled run: its log line is written by the job itself; errors are logged, never
    raised into the scheduler (tomorrow's run must still happen)."""
    try:
        result = run_daily(project, wait=60)
    except Exception as err:  # noqa: BLE001 - a failed morning must not stop the server
        log.error("daily run failed: %s", getattr(err, "message", err))
        return {"status": "error", "error": str(getattr(err, "message", err))}
    if result.warnings:
        log.warning("daily run finished with %d warning(s): %s", len(result.warnings),
                    "; ".join(result.warnings))
    return result.as_dict()
