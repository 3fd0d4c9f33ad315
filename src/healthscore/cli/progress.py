"""The progress bar of long commands (run, validate, demo, daily): the stage, done/total,
time elapsed and time left. Imported only when a command shows it (rich.progress is not free)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def progress_bar(console: Console, clock: Callable[[], float] | None = None) -> Progress:
    """The bar, shown only on a terminal; ``clock`` gives seconds (default: the monotonic clock)."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                    Count(), Elapsed(), Left(), console=console, transient=True,
                    disable=not console.is_terminal, get_time=clock)


class ProgressSteps:
    """The library's progress callback. It takes a stage name, or 'stage|done|total' for a
    stage with a count; a new stage (no count, another total, or fewer done) starts a new
    count and clock, the same stage moves on."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task = bar.add_task("starting", total=None)

    def __call__(self, text: str) -> None:
        stage, *count = text.split("|")
        total = int(count[1]) if len(count) == 2 else None
        done = int(count[0]) if total is not None else 0
        task = self.bar.tasks[-1]
        if total is not None and total == task.total and done >= task.completed:
            self.bar.update(self.task, completed=done, description=stage)
            return
        self.bar.remove_task(self.task)
        self.task = self.bar.add_task(stage, total=total, completed=done)


def clock_text(seconds: float) -> str:
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Count(MofNCompleteColumn):
    """done/total; nothing while the stage has no count."""

    def render(self, task: Task) -> Text:
        return Text("") if task.total is None else super().render(task)


class Elapsed(TimeElapsedColumn):
    """Time since the stage started."""

    def render(self, task: Task) -> Text:
        return Text(f"{clock_text(task.elapsed or 0)} elapsed", style="progress.elapsed")


class Left(TimeRemainingColumn):
    """Time left at the stage's average pace so far. Rich's own estimate looks at the last 30
    seconds only, so it would show nothing while a pass takes longer than that."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        if not task.completed or not task.elapsed:
            return Text("-:--:-- left", style="progress.remaining")
        left = task.elapsed * (task.total - task.completed) / task.completed
        return Text(f"{clock_text(left)} left", style="progress.remaining")
