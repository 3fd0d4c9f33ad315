"""What every command module shares: the Typer app, the consoles, the project option, the
one error handler and the project loader. Command modules import this, never each other."""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from healthscore.errors import HealthScoreError

app = typer.Typer(
    help="Customer health scores from a project of YAML files: explained, stored, validated.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

INTERNAL = 3  # exit code of a bug (1 is a problem with the input, 2 a daily run with warnings)

ProjectOpt = typer.Option(Path("."), "--project", "-p", help="The project folder.")


def handle_errors(fn: F) -> F:
    """The one place where library errors become messages and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HealthScoreError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True,
                      soft_wrap=True)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as e:
            if os.environ.get("HEALTHSCORE_DEBUG"):
                raise
            err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))}. This is a bug in "
                      f"healthscore, not in your input: rerun with HEALTHSCORE_DEBUG=1 to see where, "
                      f"and report it.", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def _load(path: Path) -> Any:
    from healthscore.project import Project

    return Project.load(path)


def json_text(data: Any) -> str:
    """What --json prints: numbers rounded to the exports' 4 decimals (snapshots, saved plans
    and the validation report keep full precision)."""
    from healthscore.store.report import EXPORT_DECIMALS

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, EXPORT_DECIMALS) if math.isfinite(value) else value
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        return value

    return json.dumps(rounded(data), default=str)
