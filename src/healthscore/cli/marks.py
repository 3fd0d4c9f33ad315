"""What CSMs enter by judgement, from the command line: module marks (seed 002: one module of
an account red, yellow or green, with a reason, a note and an expiry) and values for manual
measures."""

from __future__ import annotations

from pathlib import Path

import typer

from healthscore.cli.common import ProjectOpt, app, handle_errors, out
from healthscore.cli.workflow import AsOpt, JsonOpt, _day_or_after, _show, _who, _workflow

mark_app = typer.Typer(help="Mark a module of an account red, yellow or green by judgement.",
                       no_args_is_help=True)
app.add_typer(mark_app, name="mark")


@mark_app.command("set")
@handle_errors
def mark_set(account: str, module: str = typer.Argument(..., help="The group, e.g. sentiment."),
             colour: str = typer.Option(..., "--colour", help="red, yellow or green."),
             reason_code: str = typer.Option(..., "--reason-code"),
             note: str = typer.Option(..., "--note"),
             expires: str = typer.Option(..., "--expires",
                                         help="YYYY-MM-DD, or a duration from today (30d)."),
             project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Mark MODULE of ACCOUNT; the colour holds in every snapshot scored until the expiry."""
    with _workflow(project) as wf:
        until = _day_or_after(expires, "--expires", wf.today)
        wf.mark_module(account, module, colour, actor=_who(actor), reason_code=reason_code,
                       note=note, expires_on=until)
    out.print(f"{account}: {module} marked {colour} until {until}. The next 'healthscore run' "
              f"scores it so.")


@mark_app.command("clear")
@handle_errors
def mark_clear(account: str, module: str, note: str = typer.Option("", "--note"),
               project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        wf.clear_mark(account, module, actor=_who(actor), note=note)
    out.print(f"Cleared the mark of {account}'s {module}.")


@mark_app.command("list")
@handle_errors
def mark_list(account: str = typer.Argument(None, help="Only this account's marks."),
              project: Path = ProjectOpt, as_json: bool = JsonOpt) -> None:
    """Active module marks."""
    with _workflow(project) as wf:
        rows = wf.marks(account)
    keys = ("account_id", "module", "colour", "reason_code", "expires_on", "set_by", "note")
    _show([{k: r[k] for k in keys} for r in rows], as_json, "Active module marks")


input_app = typer.Typer(help="Values CSMs enter for manual measures (sentiment 1-5...).",
                        no_args_is_help=True)
app.add_typer(input_app, name="input")


@input_app.command("set")
@handle_errors
def input_set(account: str, measure: str, value: float,
              note: str = typer.Option("", "--note"), project: Path = ProjectOpt,
              actor: str = AsOpt) -> None:
    """Enter VALUE for the manual MEASURE of ACCOUNT (the next 'healthscore run' scores it)."""
    with _workflow(project) as wf:
        row = wf.enter_value(account, measure, value, actor=_who(actor), note=note)
    out.print(f"{account}: {row['measure']} = {row['value']:g}, entered by {row['entered_by']}.")


@input_app.command("list")
@handle_errors
def input_list(account: str, project: Path = ProjectOpt, as_json: bool = JsonOpt) -> None:
    """The values entered for ACCOUNT, newest first."""
    with _workflow(project) as wf:
        rows = wf.entered_values(account)
    keys = ("id", "measure", "value", "note", "entered_by", "entered_at")
    _show([{k: r[k] for k in keys} for r in rows], as_json, f"Values entered for {account}")
