"""Workflow commands: plan/apply, CTAs, tasks, flags, the review list, overrides, success
plans, the timeline, quadrants and notifications. Each is a thin layer over `Workflow`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from healthscore.cli import render
from healthscore.cli.common import ProjectOpt, _load, app, handle_errors, json_text, out
from healthscore.errors import HealthScoreError

AsOpt = typer.Option(None, "--as", help="Who acts (a user name; default: $HEALTHSCORE_USER).")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")

users_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
cta_app = typer.Typer(help="Calls to action.", no_args_is_help=True)
task_app = typer.Typer(help="Tasks of CTAs and success plans.", no_args_is_help=True)
override_app = typer.Typer(help="Override an account's band or score.", no_args_is_help=True)
success_plans_app = typer.Typer(help="Success plans.", no_args_is_help=True)
notify_app = typer.Typer(help="Notifications.", no_args_is_help=True)
for sub, name in ((users_app, "users"), (cta_app, "cta"), (task_app, "task"),
                  (override_app, "override"), (success_plans_app, "success-plan"), (notify_app, "notify")):
    app.add_typer(sub, name=name)


@contextmanager
def _workflow(project: Path) -> Iterator[Any]:
    wf = _load(project).workflow()
    try:
        yield wf
    finally:
        wf.close()


def _who(actor: str | None) -> str:
    who = actor or os.environ.get("HEALTHSCORE_USER")
    if not who:
        raise HealthScoreError("say who you are: --as NAME, or set HEALTHSCORE_USER.")
    return who


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HealthScoreError(f"{option}: {text!r} is not a date. Write it as YYYY-MM-DD.") from None


def _day_or_after(text: str, option: str, today: date) -> date:
    """A date, or a duration counted from today ('90d', '3 months')."""
    from datetime import timedelta

    from healthscore.config.windows import parse_days

    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return today + timedelta(days=parse_days(text))
    except ValueError:
        raise HealthScoreError(f"{option}: {text!r} is neither a date nor a duration. Write "
                               f"YYYY-MM-DD, or e.g. 90d or '3 months'.") from None


def _show(data: Any, as_json: bool, title: str = "") -> None:
    if as_json or not isinstance(data, list):
        out.print_json(json_text(data))
        return
    if not data:
        out.print(f"{title}: none." if title else "None.")
        return
    keys = [k for k in data[0] if not isinstance(data[0][k], list | dict)][:9]
    t = Table(title=title or None, title_justify="left")
    for k in keys:  # ids are copied into the next command: whole; the rest wraps
        t.add_column(k, no_wrap=k in ("id", "account_id", "cta_id"))
    for row in data:
        t.add_row(*("" if row[k] is None else str(row[k]) for k in keys))
    out.print(t)


# ----------------------------------------------------------------------------- plan / apply


@app.command("plan")
@handle_errors
def plan_cmd(project: Path = ProjectOpt, as_json: bool = JsonOpt,
             save: Path = typer.Option(None, "--out", help="Save the plan for 'apply --plan'."),
             preview: bool | None = typer.Option(
                 None, "--preview/--no-preview",
                 help="Dry-run the scorecards against the latest snapshot (default: when a "
                      "scorecard changed since it).")) -> None:
    """Show what applying the rules would change: band changes, CTAs to open and close; and,
    after a scorecard change, what 'run' would change (nothing is written)."""
    proj = _load(project)
    changed = proj.scorecards_changed()
    dry = proj.preview() if (preview if preview is not None else bool(changed)) else None
    if dry is not None and not as_json:
        render.preview(out, dry, changed)
    with _workflow(project) as wf:
        plan = wf.plan()
    data = plan.to_dict()
    if save:
        save.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    if as_json:
        out.print_json(json_text({**data, "preview": dry} if dry is not None else data))
        return
    out.print(f"Plan as of {data['as_of']} (changes since {data['since'] or 'the previous snapshot'}):")
    out.print(f"  {len(plan.band_changes)} band change(s), {len(plan.open)} CTA(s) to open, "
              f"{len(plan.close)} to close, {len(plan.lapse)} override(s) lapsing, "
              f"{len(plan.escalate)} overdue CTA(s) to escalate; {len(plan.skipped)} skipped.")
    for ch in plan.band_changes[:20]:
        out.print(f"  band  {ch['account_id']}: {ch['from']} -> {ch['to']}")
    for o in plan.open[:20]:
        out.print(f"  open  {o['account_id']}: {o['type']} '{o['reason']}' (rule {o['rule']})")
    for c in plan.close[:20]:
        out.print(f"  close #{c['cta_id']} {c['account_id']}: '{c['reason']}' (condition cleared)")
    render.skipped(out, plan.skipped)
    if save:
        out.print(f"Saved to {save}: 'healthscore apply --plan {save}' executes exactly this.")


@app.command("apply")
@handle_errors
def apply_cmd(project: Path = ProjectOpt, plan_file: Path = typer.Option(
        None, "--plan", help="A plan saved by 'plan --out' (default: plan now and apply)."),
        actor: str = typer.Option("healthscore", "--as", help="Who applies.")) -> None:
    """Apply the rules' plan: open and close CTAs, record band changes, escalate, lapse."""
    from healthscore.workflow.rules import Plan

    with _workflow(project) as wf:
        plan = Plan.from_dict(json.loads(plan_file.read_text())) if plan_file else wf.plan()
        summary = wf.apply(plan, actor=actor)
    out.print(f"Applied: {summary['band_changes']} band change(s), opened {len(summary['opened'])} "
              f"CTA(s), closed {len(summary['closed'])}, escalated {len(summary['escalated'])}, "
              f"lapsed {len(summary['lapsed'])} override(s), checked {summary['criteria_checked']} "
              f"success criteria.")


# ----------------------------------------------------------------------------- users


@users_app.command("add")
@handle_errors
def users_add(name: str, role: str = typer.Option(..., "--role", help="admin, lead, csm or viewer."),
              team: str = typer.Option(None, "--team"), email: str = typer.Option(None, "--email"),
              password: bool = typer.Option(False, "--password", help="Ask for a web app password."),
              password_stdin: bool = typer.Option(False, "--password-stdin",
                                                  help="Read the password from standard input."),
              project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Add a user (the first one, an admin, needs no --as); with a password they can sign in."""
    from healthscore.workflow.access import hash_password

    with _workflow(project) as wf:
        first = not wf.users()
        who = "healthscore" if first else _who(actor)  # before asking for a password
        secret = _read_password(password, password_stdin)
        digest = hash_password(secret) if secret is not None else None
        user = wf.add_user(name, role, team=team, email=email, password_hash=digest, actor=who)
    login = " They can sign in to the web app ('healthscore serve')." if digest else ""
    out.print(f"Added {user['name']} ({user['role']}).{login}")


@users_app.command("password")
@handle_errors
def users_password(name: str, password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."),
        project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Set a user's web app password (your own, or anyone's as an admin); signs them out."""
    secret = _read_password(True, password_stdin)
    assert secret is not None
    with _workflow(project) as wf:
        wf.set_password(name, secret, actor=actor or name)
    out.print(f"Password set for {name}.")


@users_app.command("token")
@handle_errors
def users_token(name: str, label: str = typer.Option(..., "--label", help="What the token is for."),
                project: Path = ProjectOpt, actor: str = AsOpt,
                quiet: bool = typer.Option(False, "--quiet", "-q",
                                           help="Print only the token (TOKEN=$(...) in scripts).")) -> None:
    """Create a REST API token for a user (printed once; only its hash is kept)."""
    with _workflow(project) as wf:
        token = wf.create_token(name, label, actor=actor or name)
    if quiet:
        print(token["token"])
        return
    out.print(f"API token #{token['id']} for {name} ({label}):")
    out.print(token["token"], soft_wrap=True, highlight=False)
    out.print("Send it as 'Authorization: Bearer <token>'. It is not shown again.")


def _read_password(ask: bool, from_stdin: bool) -> str | None:
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if ask:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


@users_app.command("list")
@handle_errors
def users_list(project: Path = ProjectOpt, as_json: bool = JsonOpt) -> None:
    with _workflow(project) as wf:
        _show(wf.users(), as_json, "Users")


# ----------------------------------------------------------------------------- CTAs and tasks


@cta_app.command("list")
@handle_errors
def cta_list(project: Path = ProjectOpt, status: str = typer.Option("open", "--status"),
             owner: str = typer.Option(None, "--owner"), account: str = typer.Option(None, "--account"),
             as_json: bool = JsonOpt) -> None:
    """List CTAs (open ones by default; --status all or closed): due date, status, priority,
    owner, reason, and a total."""
    with _workflow(project) as wf:
        rows = wf.ctas(status=None if status == "all" else status, owner=owner, account_id=account)
        today = wf.today
    if as_json:
        out.print_json(json_text(rows))
    else:
        render.ctas(out, rows, today)


@cta_app.command("show")
@handle_errors
def cta_show(cta_id: int, project: Path = ProjectOpt) -> None:
    with _workflow(project) as wf:
        _show({**wf.cta(cta_id), "escalations": wf.escalations(cta_id)}, True)


@cta_app.command("open")
@handle_errors
def cta_open(account: str, type: str = typer.Option(..., "--type"), reason: str = typer.Option(...,
             "--reason"),
             priority: str = typer.Option("medium", "--priority"), owner: str = typer.Option(None, "--owner"),
             due_in: str = typer.Option("7d", "--due-in"), playbook: str = typer.Option(None, "--playbook"),
             project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Open a CTA by hand (no rule needed)."""
    with _workflow(project) as wf:
        c = wf.open_cta(account, type, reason, actor=_who(actor), priority=priority, owner=owner,
                        due_in=due_in, playbook=playbook)
    out.print(f"Opened CTA #{c['id']} for {account} with {len(c['tasks'])} task(s), due {c['due_on']}.")


@cta_app.command("close")
@handle_errors
def cta_close(cta_id: int, outcome: str = typer.Option(..., "--outcome"), project: Path = ProjectOpt,
              actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        wf.close_cta(cta_id, outcome, actor=_who(actor))
    out.print(f"Closed CTA #{cta_id}.")


@cta_app.command("snooze")
@handle_errors
def cta_snooze(cta_id: int, until: str = typer.Option(..., "--until"), reason: str = typer.Option(...,
               "--reason"),
               project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        wf.snooze(cta_id, _day(until, "--until"), reason, actor=_who(actor))
    out.print(f"Snoozed CTA #{cta_id} until {until}.")


@cta_app.command("assign")
@handle_errors
def cta_assign(cta_id: int, to: str = typer.Option(..., "--to"), project: Path = ProjectOpt,
               actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        wf.assign(cta_id, to, actor=_who(actor))
    out.print(f"CTA #{cta_id} assigned to {to}.")


@cta_app.command("escalate")
@handle_errors
def cta_escalate(cta_id: int, to: str = typer.Option(None, "--to", help="Default: next in the chain."),
                 note: str = typer.Option("", "--note"), project: Path = ProjectOpt,
                 actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        c = wf.escalate(cta_id, actor=_who(actor), to=to, note=note)
    out.print(f"CTA #{cta_id} escalated (level {c['escalation_level']}).")


@cta_app.command("critical")
@handle_errors
def cta_critical(cta_id: int, project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Mark a CTA critical: its module turns red."""
    with _workflow(project) as wf:
        wf.mark_critical(cta_id, actor=_who(actor))
    out.print(f"CTA #{cta_id} is critical.")


@cta_app.command("decide")
@handle_errors
def cta_decide(cta_id: int, decision: str = typer.Option(..., "--decision"), project: Path = ProjectOpt,
               actor: str = AsOpt) -> None:
    """Record the review meeting's decision on a CTA."""
    with _workflow(project) as wf:
        wf.decide(cta_id, decision, actor=_who(actor))
    out.print(f"Recorded the decision on CTA #{cta_id}.")


@task_app.command("done")
@handle_errors
def task_done(task_id: int, skip: bool = typer.Option(False, "--skip"), project: Path = ProjectOpt,
              actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        t = wf.complete_task(task_id, actor=_who(actor), skip=skip)
    out.print(f"Task #{task_id} {t['status']}.")
    if t.get("prompt"):
        out.print(t["prompt"])


@task_app.command("list")
@handle_errors
def task_list(project: Path = ProjectOpt, owner: str = typer.Option(None, "--owner"),
              as_json: bool = JsonOpt) -> None:
    with _workflow(project) as wf:
        _show(wf.tasks(owner=owner), as_json, "Open tasks")


@app.command()
@handle_errors
def flag(account: str, reason: str = typer.Option(..., "--reason"), project: Path = ProjectOpt,
         actor: str = AsOpt) -> None:
    """Flag an account for the review meeting (a CSM's call, no rule needed)."""
    with _workflow(project) as wf:
        c = wf.flag(account, reason, actor=_who(actor))
    out.print(f"Flagged {account} (CTA #{c['id']}).")


@app.command()
@handle_errors
def review(project: Path = ProjectOpt, as_json: bool = JsonOpt) -> None:
    """The review meeting's list: flagged, escalated and critical CTAs, last decisions."""
    with _workflow(project) as wf:
        _show(wf.review_list(), as_json, "For the review meeting")


# ----------------------------------------------------------------------------- overrides


@override_app.command("set")
@handle_errors
def override_set(account: str, band: str = typer.Option(None, "--band"),
                 score: float = typer.Option(None, "--score"),
                 reason_code: str = typer.Option(..., "--reason-code"), note: str = typer.Option(...,
                 "--note"),
                 expires: str = typer.Option(..., "--expires",
                                             help="YYYY-MM-DD, or a duration from today (90d, 3 months)."),
                 project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        until = _day_or_after(expires, "--expires", wf.today)
        wf.set_override(account, actor=_who(actor), reason_code=reason_code, note=note,
                        expires_on=until, band=band, score=score)
        final = wf.final(account)
    out.print(f"{account}: system {final['system_band']} ({final['system_score']:.1f}), "
              f"final {final['final_band']} until {until}.")


@override_app.command("clear")
@handle_errors
def override_clear(account: str, note: str = typer.Option("", "--note"), project: Path = ProjectOpt,
                   actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        wf.clear_override(account, actor=_who(actor), note=note)
    out.print(f"Cleared the override of {account}.")


@override_app.command("list")
@handle_errors
def override_list(project: Path = ProjectOpt, as_json: bool = JsonOpt) -> None:
    with _workflow(project) as wf:
        _show(wf.overrides(), as_json, "Active overrides")


@override_app.command("show")
@handle_errors
def override_show(account: str, project: Path = ProjectOpt) -> None:
    with _workflow(project) as wf:
        _show(wf.final(account), True)


# ----------------------------------------------------------------------------- success plans


@success_plans_app.command("create")
@handle_errors
def success_plan_create(account: str, template: str = typer.Option(None, "--template"),
                title: str = typer.Option(None, "--title"), project: Path = ProjectOpt,
                actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        p = wf.create_success_plan(account, actor=_who(actor), template=template, title=title)
    out.print(f"Created success plan #{p['id']} for {account}: {len(p['milestones'])} milestone(s), "
              f"{len(p['tasks'])} task(s), {len(p['criteria'])} criterion/criteria.")


@success_plans_app.command("show")
@handle_errors
def success_plan_show(plan_id: int, project: Path = ProjectOpt) -> None:
    with _workflow(project) as wf:
        _show(wf.plan_of(plan_id), True)


@success_plans_app.command("list")
@handle_errors
def success_plan_list(project: Path = ProjectOpt, account: str = typer.Option(None, "--account"),
              as_json: bool = JsonOpt) -> None:
    with _workflow(project) as wf:
        _show(wf.success_plans(account), as_json, "Success plans")


@success_plans_app.command("goal")
@handle_errors
def success_plan_goal(plan_id: int, title: str = typer.Option(..., "--title"),
                      kind: str = typer.Option("goal", "--kind", help="goal or initiative."),
                      project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Add a goal (or an initiative) to a success plan."""
    with _workflow(project) as wf:
        p = wf.add_goal(plan_id, title, actor=_who(actor), kind=kind)
    out.print(f"Added the {kind} {title!r} to success plan #{plan_id} ({len(p['goals'])} in all).")


@success_plans_app.command("milestone")
@handle_errors
def success_plan_add_milestone(plan_id: int, title: str = typer.Option(..., "--title"),
                               due: str = typer.Option(None, "--due", help="YYYY-MM-DD"),
                               project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Add a milestone to a success plan."""
    with _workflow(project) as wf:
        wf.add_milestone(plan_id, title, _day(due, "--due") if due else None, actor=_who(actor))
    out.print(f"Added the milestone {title!r} to success plan #{plan_id}"
              + (f", due {due}." if due else "."))


@success_plans_app.command("milestone-done")
@handle_errors
def success_plan_milestone(plan_id: int, milestone_id: int, project: Path = ProjectOpt,
                           actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        p = wf.complete_milestone(plan_id, milestone_id, actor=_who(actor))
    out.print(f"Milestone done; plan #{plan_id} is {p['progress']}% complete.")


@success_plans_app.command("criterion")
@handle_errors
def success_plan_criterion(plan_id: int, measure: str = typer.Option(..., "--measure"),
                   op: str = typer.Option(">=", "--op"),
                   target: float = typer.Option(..., "--target"), due: str = typer.Option(..., "--due"),
                   project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Add a measurable success criterion (checked on every applied run)."""
    with _workflow(project) as wf:
        wf.add_criterion(plan_id, measure, op, target, _day(due, "--due"), actor=_who(actor))
    out.print(f"Added: {measure} {op} {target:g} by {due}.")


# ----------------------------------------------------------------------------- timeline, strategy


@app.command()
@handle_errors
def log(account: str, kind: str = typer.Option("note", "--kind", help="note, call, meeting or email."),
        text: str = typer.Option(..., "--text"), project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    """Log a note or a touch (call, meeting, email) on an account's timeline."""
    with _workflow(project) as wf:
        wf.log(account, kind, text, actor=_who(actor))
    out.print(f"Logged a {kind} on {account}.")


@app.command()
@handle_errors
def timeline(account: str, project: Path = ProjectOpt, as_json: bool = JsonOpt) -> None:
    """Everything that happened to an account, newest first."""
    with _workflow(project) as wf:
        _show(wf.timeline(account), as_json, f"Timeline of {account}")


@app.command()
@handle_errors
def quadrants(project: Path = ProjectOpt, as_json: bool = JsonOpt) -> None:
    """Health x temperature and health x maturity, with the motion for each; score ranges."""
    with _workflow(project) as wf:
        data = {**wf.quadrants(), "score_ranges": wf.score_ranges()}
    if as_json:
        out.print_json(json_text(data))
        return
    for axis in ("temperature", "maturity"):
        for cell in data.get(axis, []):
            out.print(f"health {cell['health']:4} x {axis} {cell[axis]:4}: {cell['count']:5} accounts - "
                      f"{cell['motion']}")
    for r in data["score_ranges"]:
        out.print(f"{r['name']:10} {r['from']:g}-{r['to']:g}: {r['count']:5} accounts - {r['move']}")


@notify_app.command("digest")
@handle_errors
def notify_digest(project: Path = ProjectOpt) -> None:
    """Send the daily digests."""
    with _workflow(project) as wf:
        counts = wf.send_digest()
    out.print(f"Digests: {counts['sent']} sent, {counts['failed']} failed.")


@notify_app.command("overdue")
@handle_errors
def notify_overdue(project: Path = ProjectOpt) -> None:
    """Tell owners about their overdue CTAs."""
    with _workflow(project) as wf:
        n = wf.notify_overdue()
    out.print(f"{n} overdue CTA(s) notified.")


@notify_app.command("prefs")
@handle_errors
def notify_prefs(user: str, events: str = typer.Option(None, "--events", help="Comma-separated."),
                 webhook: str = typer.Option(None, "--webhook"), email: str = typer.Option(None, "--email"),
                 digest: bool = typer.Option(None, "--digest/--instant"),
                 channels: str = typer.Option(None, "--channels",
                                              help="Comma-separated: inapp, email, webhook ('' for none)."),
                 project: Path = ProjectOpt, actor: str = AsOpt) -> None:
    with _workflow(project) as wf:
        wf.set_preferences(user, actor=_who(actor), events=events.split(",") if events else None,
                           webhook_url=webhook, email=email, digest=digest,
                           channels=None if channels is None else [c for c in channels.split(",") if c])
    out.print(f"Saved the notification preferences of {user}.")


@app.command("inbox")
@handle_errors
def inbox_cmd(project: Path = ProjectOpt, actor: str = AsOpt,
              unread: bool = typer.Option(False, "--unread", help="Only what is not read yet."),
              read: int = typer.Option(None, "--read", help="Mark this item read."),
              read_all: bool = typer.Option(False, "--read-all", help="Mark every item read."),
              as_json: bool = JsonOpt) -> None:
    """Your inbox (what the app tells you): newest first, with the unread count."""
    who = _who(actor)
    with _workflow(project) as wf:
        if read is not None:
            wf.mark_read(who, read)
        if read_all:
            wf.mark_all_read(who)
        box = wf.inbox(who, unread_only=unread, per_page=200)
    if as_json:
        out.print_json(json_text(box))
        return
    rows = [{"id": i["id"], "at": i["at"], "event": i["event"], "read": "yes" if i["read_at"] else "",
             "text": i["text"]} for i in box["items"]]
    _show(rows, False, f"Inbox of {who}: {box['unread']} unread")
