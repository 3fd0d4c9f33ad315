"""Commands for whoever runs the server: backup and restore."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from healthscore.cli.common import ProjectOpt, _load, app, handle_errors, out


@app.command()
@handle_errors
def backup(project: Path = ProjectOpt,
           to: Path = typer.Option(None, "--to", help="The .tar.gz to write "
                                   "(default: healthscore-backup-YYYYMMDD-HHMMSS.tar.gz here).")) -> None:
    """Back up the state folder (snapshots, versions, logs) and the workflow store in one file."""
    from healthscore.project.backup import backup as write_backup

    target = to or Path(f"healthscore-backup-{datetime.now():%Y%m%d-%H%M%S}.tar.gz")
    made = write_backup(_load(project), target)
    rows = sum(made["tables"].values())
    out.print(f"Backed up {len(made['snapshots'])} snapshot(s) and {rows:,} workflow row(s) "
              f"to {target}.")


@app.command()
@handle_errors
def restore(source: Path = typer.Argument(..., help="A file made by 'healthscore backup'."),
            project: Path = ProjectOpt,
            force: bool = typer.Option(False, "--force", help="Replace what the project holds.")) -> None:
    """Restore a backup into the project (its workflow store may be another database)."""
    from healthscore.project.backup import restore as read_backup

    made = read_backup(_load(project), source, force=force)
    rows = sum(made["tables"].values())
    out.print(f"Restored {len(made['snapshots'])} snapshot(s) and {rows:,} workflow row(s) from "
              f"{source} (made {made['created']}).")
