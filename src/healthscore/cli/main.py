"""The `healthscore` command line. Every command is a thin layer over `Project`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from healthscore.cli import render
from healthscore.cli.common import ProjectOpt, _load, app, err, handle_errors, json_text, out
from healthscore.errors import HealthScoreError

__all__ = ["ProjectOpt", "_load", "app", "err", "handle_errors", "out"]


@app.command()
@handle_errors
def init(
    path: Path = typer.Argument(..., help="Folder to create."),
    template: str = typer.Option("starter", "--template", "-t", help="Project template."),
    data: Path = typer.Option(None, "--data", help="Folder with the data (default: PATH/data)."),
) -> None:
    """Write a new project folder from a template."""
    from healthscore.templates import write_template

    written = write_template(path, template, data)
    out.print(f"Created project [bold]{path}[/] from template [bold]{template}[/] "
              f"({len(written)} files).")
    then = f"'healthscore check -p {path}' and 'healthscore run -p {path}'"
    if data is None:
        out.print(f"Next: put your data files in {path / 'data'} (named as in {path / 'healthscore.yml'};"
                  f" or make the project with --data FOLDER to read them where they are), then "
                  f"{then}.", soft_wrap=True)  # paths whole, to copy
    else:
        out.print(f"Next: {then} (the data is read from {data}).", soft_wrap=True)


@app.command()
@handle_errors
def demo(
    path: Path = typer.Argument(Path("demo-project"), help="Folder for the demo project."),
    accounts: int = typer.Option(2000, help="Number of demo accounts."),
    months: int = typer.Option(12, help="Months of score history to compute."),
    template: str = typer.Option("eight-categories", help="Template for the demo project."),
    serve_after: bool = typer.Option(False, "--serve", help="Then serve the web app with demo logins."),
    port: int = typer.Option(8000, "--port", help="Port for --serve."),
) -> None:
    """Generate demo data, compute a year of history and print the portfolio."""
    from healthscore.demo.project import DEMO_PASSWORD, demo_users, make_demo, validate_demo

    with render.progress(out) as step:
        project, result = make_demo(path, accounts, months, template, step)
    render.run_summary(out, result)
    render.portfolio(out, project.portfolio())
    with render.progress(out) as step:
        check = validate_demo(project, step)
    html, _ = check.write(project.config.state_dir / "validation")
    check.record(html)
    render.validation_brief(out, check.to_json())
    out.print(f"Validation report: {html}")
    out.print(f"\nExplore: healthscore explain <account_id> -p {path}   "
              f"healthscore show -p {path}   healthscore validate -p {path}")
    users = demo_users(project)  # already there: made before the rules ran
    if serve_after:
        out.print(f"\n[bold]Web app: http://127.0.0.1:{port}[/bold]  sign in as [bold]admin[/bold] "
                  f"with password [bold]{DEMO_PASSWORD}[/bold]")
        out.print(f"  (also {users['lead']} - a team lead, {users['csm']} - a CSM, {users['viewer']} - "
                  f"a viewer; same password). Stop with Ctrl+C.")
        _serve(project, "127.0.0.1", port, None)


@app.command()
@handle_errors
def run(
    project: Path = ProjectOpt,
    as_of: str = typer.Option(None, "--as-of", help="Score as of this date (YYYY-MM-DD)."),
    start: str = typer.Option(None, "--from", help="First as-of date of a range."),
    end: str = typer.Option(None, "--to", help="Last as-of date of a range."),
    every: str = typer.Option("month", "--every", help="day, week or month."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Read and check every source again, "
                                  "even those unchanged since the last run (refreshes the cache)."),
    full: bool = typer.Option(False, "--full", help="Compute the date from the sources, not from "
                              "the state the last run kept."),
) -> None:
    """Score every account and store one snapshot per as-of date. A date after the newest
    stored one is computed from the state the last run kept (--full: from the sources)."""
    proj = _load(project)
    with render.progress(out) as step:
        result = proj.run(as_of, start=start, end=end, every=every, progress=step,
                          cache=not no_cache, full=full)
    render.run_summary(out, result)


@app.command()
@handle_errors
def daily(
    project: Path = ProjectOpt,
    as_of: str = typer.Option(None, "--as-of", help="The day to run for (YYYY-MM-DD; default: today)."),
    wait: float = typer.Option(0, "--wait", help="Seconds to wait for another daily run to finish."),
    as_json: bool = typer.Option(False, "--json", help="Print only the run's JSON log line."),
) -> None:
    """The daily job for cron: score today, apply the rules, remind owners of overdue CTAs,
    send the digests. Exits 0 when all is well, 1 on an error, 2 when it finished with
    warnings (a stale source, rejected rows, notifications that could not be sent)."""
    from datetime import date

    from healthscore.project.daily import run_daily

    day = None
    if as_of:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise HealthScoreError(f"--as-of: {as_of!r} is not a date. Write it as YYYY-MM-DD.") from None
    proj = _load(project)
    with render.progress(out if not as_json else err) as step:
        result = run_daily(proj, today=day, wait=wait, progress=step)
    if as_json:
        out.print_json(json_text(result.as_dict()))
    else:
        render.daily_summary(out, result)
    raise typer.Exit(result.exit_code)


@app.command()
@handle_errors
def validate(
    project: Path = ProjectOpt,
    start: str = typer.Option(None, "--from", help="First as-of date (default: validation.from)."),
    end: str = typer.Option(None, "--to", help="Last as-of date (default: validation.to)."),
    every: str = typer.Option(None, "--every", help="day, week or month (default: month)."),
    horizon: str = typer.Option(None, "--horizon", help="Outcome window after each date, e.g. 90d."),
    lead: str = typer.Option(None, "--lead", help="Gap before the window starts, e.g. 0d or 30d."),
    outcome: str = typer.Option(None, "--outcome", help="churn, renewal or expansion."),
    scorecard: str = typer.Option(None, "--scorecard", help="Scorecard to fit weights for."),
    compare: str = typer.Option(None, "--compare",
                                help="Another version: a scorecard .yml file or a git revision."),
    out_dir: Path = typer.Option(None, "--out", help="Report folder (default: .healthscore/validation)."),
    suggestion: Path = typer.Option(None, "--write-suggestion",
                                    help="Write the suggested scorecard YAML here (for review)."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON instead of a summary."),
) -> None:
    """Backtest the score against real outcomes: AUC, band rates, signals, suggested weights."""
    proj = _load(project)
    with render.progress(out) as step:
        result = proj.validate(start=start, end=end, every=every, horizon=horizon, lead=lead,
                               outcome=outcome, scorecard=scorecard, compare=compare, progress=step)
    folder = out_dir or proj.config.state_dir / "validation"
    html, data = result.write(folder)
    result.record(html)
    if suggestion is not None:
        suggestion.parent.mkdir(parents=True, exist_ok=True)
        suggestion.write_text(result.suggestion_yaml(), encoding="utf-8")
    if as_json:
        out.print_json(json_text(result.to_json()))
        return
    render.validation(out, result.to_json())
    out.print(f"\nReport: {html}\nNumbers: {data}")
    if suggestion is not None:
        out.print(f"Suggested scorecard (review it, nothing was changed): {suggestion}")


@app.command()
@handle_errors
def show(
    project: Path = ProjectOpt,
    as_of: str = typer.Option(None, "--as-of", help="Snapshot date (default: latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Portfolio: accounts and ARR per band, segment, CSM, stage; biggest movers."""
    data = _load(project).portfolio(as_of)
    if as_json:
        out.print_json(json_text(data))
    else:
        render.portfolio(out, data)


@app.command()
@handle_errors
def explain(
    account: str = typer.Argument(..., help="Account id."),
    project: Path = ProjectOpt,
    as_of: str = typer.Option(None, "--as-of", help="Snapshot date (default: latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    measure: str = typer.Option(None, "--measure", "-m", help="List the source rows behind this measure."),
) -> None:
    """Every measure's value, score, weight and contribution, and what changed; with
    --measure, the source rows behind that measure and whether each counted."""
    if measure:
        rows = _load(project).measure_rows(account, measure, as_of)
        if as_json:
            out.print_json(json_text(rows))
        else:
            render.measure_rows(out, rows)
        return
    data = _load(project).explain(account, as_of)
    if as_json:
        out.print_json(json_text(data))
    else:
        render.explanation(out, data)


@app.command()
@handle_errors
def export(
    project: Path = ProjectOpt,
    fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
    output: Path = typer.Option(None, "--output", "-o", help="File to write."),
    as_of: str = typer.Option(None, "--as-of", help="Snapshot date (default: latest)."),
    to: str = typer.Option(None, "--to", help="A database URL to upsert into instead of a file "
                           "(postgresql://user@host/db; ${NAME} reads the environment)."),
    table: str = typer.Option("healthscores", "--table", help="With --to: the table, NAME or SCHEMA.NAME."),
) -> None:
    """Write the scores of one snapshot for a CRM import (a file, or a database table)."""
    proj = _load(project)
    if to:
        n = proj.export_to(to, table, as_of)
        out.print(f"Upserted {n:,} row(s) into {table}.")
        return
    target = output or Path(f"healthscores.{fmt}")
    path = proj.export(target, fmt, as_of)
    out.print(f"Wrote {path}")


@app.command()
@handle_errors
def check(
    project: Path = ProjectOpt,
    no_cache: bool = typer.Option(False, "--no-cache", help="Read and check every source again, "
                                  "even those unchanged since the last run (refreshes the cache)."),
) -> None:
    """Validate the project and read the data, without scoring anything."""
    proj = _load(project)
    with render.progress(out) as step:
        result = proj.check(step, cache=not no_cache)
    render.check(out, result)


@app.command()
@handle_errors
def measures(
    project: Path = typer.Option(None, "--project", "-p", help="Include a project's measures."),
) -> None:
    """List the built-in measure library (and a project's own measures)."""
    render.measures(out, project)


@app.command()
@handle_errors
def serve(
    project: Path = ProjectOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    secure_cookies: bool = typer.Option(None, "--secure-cookies/--no-secure-cookies",
                                        help="Mark the session cookie Secure (default: over https)."),
    forwarded_allow_ips: str = typer.Option(
        None, "--forwarded-allow-ips",
        help="Addresses of your reverse proxies (comma-separated) whose X-Forwarded-For is "
             "believed; default none: the client's own address counts."),
    daily_at: str = typer.Option(None, "--daily-at", help="Also run the daily job here every day "
                                 "at HH:MM (the server's time zone), e.g. 06:30."),
) -> None:
    """Serve the web app and the REST API (OpenAPI docs at /docs)."""
    _serve(_load(project), host, port, secure_cookies, forwarded_allow_ips, daily_at)


def _serve(project: Any, host: str, port: int, secure_cookies: bool | None,
           forwarded_allow_ips: str | None = None, daily_at: str | None = None) -> None:
    import uvicorn

    from healthscore.web.app import create_app

    if daily_at:
        from healthscore.web.schedule import parse_time

        parse_time(daily_at)  # a wrong time stops here, before the server starts

    wf = project.workflow()
    try:
        if not wf.users():
            out.print("[yellow]No user yet: add the first admin with "
                      "'healthscore users add NAME --role admin --password'.[/yellow]")
    finally:
        wf.close()
    out.print(f"Serving {project.root} on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    # proxy headers only from the proxies named: else any local process could claim any address
    if daily_at:
        out.print(f"The daily job runs here every day at {daily_at}.")
    uvicorn.run(create_app(project, secure_cookies=secure_cookies, daily_at=daily_at), host=host, port=port,
                log_level="warning", proxy_headers=bool(forwarded_allow_ips),
                forwarded_allow_ips=forwarded_allow_ips or "")


from healthscore.cli import marks as _mark_commands  # noqa: E402,F401 - registers commands
from healthscore.cli import ops as _ops_commands  # noqa: E402,F401 - registers commands
from healthscore.cli import workflow as _workflow_commands  # noqa: E402,F401 - registers commands


def main() -> None:  # pragma: no cover
    app(prog_name="healthscore")
    sys.exit(0)
