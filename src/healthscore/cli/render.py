"""Rich rendering of library results for the terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

BAND_STYLE = {"red": "red", "yellow": "yellow", "green": "green", "insufficient data": "dim"}


@contextmanager
def progress(console: Console, clock: Callable[[], float] | None = None
             ) -> Iterator[Callable[[str], None]]:
    """A progress display (only on a terminal) whose callback takes a stage name, or
    'stage|done|total' for a stage with a count: dates or passes done of all, with the time
    elapsed and left."""
    from healthscore.cli.progress import ProgressSteps, progress_bar

    bar = progress_bar(console, clock)
    with bar:
        yield ProgressSteps(bar)


def _band(band: str) -> str:
    style = BAND_STYLE.get(band, "")
    return f"[{style}]{band}[/]" if style else band


def run_summary(console: Console, result: Any) -> None:
    first, last = result.dates[0], result.dates[-1]
    span = f"{first}" if first == last else f"{first} .. {last} ({len(result.dates)} dates)"
    console.print(f"Scored {span}: {result.rows:,} rows in {result.seconds:.1f}s.")
    if getattr(result, "incremental", ""):
        console.print(escape(result.incremental[0].upper() + result.incremental[1:]) + ".")
    data_health(console, result.health)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    for r in getattr(result, "reminders", []):
        console.print(f"[cyan]review:[/] {r}")
    wf = getattr(result, "workflow", None)
    if wf:
        console.print(f"Rules: {wf['band_changes']} band change(s), {len(wf['opened'])} CTA(s) opened, "
                      f"{len(wf['closed'])} closed, {len(wf['escalated'])} escalated.")


def daily_summary(console: Console, r: Any) -> None:
    c = r.counts
    console.print(f"Daily run for {r.day}: {c.get('rows', 0):,} score rows; "
                  f"{c.get('ctas_opened', 0)} CTA(s) opened, {c.get('ctas_closed', 0)} closed, "
                  f"{c.get('ctas_escalated', 0)} escalated, {c.get('overrides_lapsed', 0)} override(s) "
                  f"lapsed; {c.get('overdue_reminded', 0)} overdue reminder(s), "
                  f"{c.get('digests_sent', 0)} digest(s) sent; {r.seconds['total']:.1f}s.")
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if "overdue" not in r.seconds:
        console.print("Overdue reminders and digests went out earlier today; not sent again.")


def data_health(console: Console, health: dict[str, Any]) -> None:
    t = Table(title="Data health", title_justify="left")
    _key_column(t, "source", [h.entity for h in health.values()])
    for col in ("rows read", "rejected"):
        t.add_column(col, justify="right")
    t.add_column("newest", no_wrap=True)
    t.add_column("why rejected", ratio=1)
    for h in health.values():
        why = ", ".join(f"{k}: {v}" for k, v in h.reasons.items())
        t.add_row(h.entity, f"{h.rows_read:,}", f"{h.rows_rejected:,}", str(h.newest or ""), why)
    console.print(t)


def portfolio(console: Console, data: dict[str, Any]) -> None:
    console.print(f"\n[bold]Portfolio as of {data['as_of']}[/]: {data['accounts']:,} accounts, "
                  f"ARR {data['arr']:,.0f}, average score {data['average_score']}")
    t = Table(title="By band", title_justify="left")
    for col in ("band", "accounts", "ARR"):
        t.add_column(col)
    for b in data["bands"]:
        t.add_row(_band(b["band"]), f"{b['accounts']:,}", f"{b['arr']:,.0f}")
    console.print(t)
    for key, title in (("by_segment", "segment"), ("by_csm", "csm"),
                       ("by_lifecycle_stage", "lifecycle_stage")):
        _pivot(console, data[key], title, data["band_order"])
    _movers(console, data["movers_down"], "Biggest drops over 30 days")
    _movers(console, data["movers_up"], "Biggest gains over 30 days")


def _pivot(console: Console, rows: list[dict[str, Any]], key: str, order: list[str]) -> None:
    if not rows:
        return
    bands = [b for b in order if any(r["band"] == b for r in rows)]
    keys = sorted({str(r[key]) for r in rows})
    t = Table(title=f"By {key.replace('_', ' ')} (accounts)", title_justify="left")
    t.add_column(key)
    for b in bands:
        t.add_column(_band(b), justify="right")
    counts = {(str(r[key]), r["band"]): r["accounts"] for r in rows}
    for k in keys:
        t.add_row(k, *[str(counts.get((k, b), 0)) for b in bands])
    console.print(t)


def _movers(console: Console, rows: list[dict[str, Any]], title: str) -> None:
    if not rows:
        return
    t = Table(title=title, title_justify="left")
    _key_column(t, "account", [r["account_id"] for r in rows])
    t.add_column("name", ratio=3)
    t.add_column("segment", ratio=2)
    t.add_column("csm", ratio=2)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("band", no_wrap=True)
    t.add_column("change", justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["account_id"], str(r.get("name") or ""), str(r.get("segment") or ""),
                  str(r.get("csm") or ""), f"{r['score']}", _band(r["band"]),
                  f"{r['change_30d']:+.1f}")
    console.print(t)


def _key_column(t: Table, header: str, values: list[str], **kw: Any) -> None:
    """A column of ids or names people copy into the next command: never cut or wrapped
    (other columns wrap instead)."""
    width = max([len(header), *(len(v) for v in values)])
    t.add_column(header, no_wrap=True, min_width=width, **kw)


def explanation(console: Console, data: dict[str, Any]) -> None:
    console.print(f"\n[bold]{data['account_id']}[/] {data.get('name') or ''} "
                  f"({data.get('segment') or '-'}, CSM {data.get('csm') or '-'}) "
                  f"as of {data['as_of']}")
    trend = ", ".join(f"{k.removeprefix('change_')}: {v:+.1f}" for k, v in data["trend"].items()
                      if v is not None)
    if trend:
        console.print(f"Trend: {trend}")
    fin = data.get("final") or {}
    if fin.get("override"):
        console.print(f"Final: score {fin['score']} {_band(fin['band'])} (override, "
                      f"{fin['override']}); the system says {fin['system_score']} "
                      f"{_band(fin['system_band'])}")
    for card in data["scorecards"]:
        _card(console, card, data.get("previous_as_of"))


def _card(console: Console, card: dict[str, Any], previous: str | None) -> None:
    kind = "primary" if card["is_primary"] else "additional"
    console.print(f"\nScorecard [bold]{card['scorecard']}[/] ({kind}, version {card['version']}):"
                  f" score [bold]{card['score']}[/] {_band(card['band'])}"
                  f"{' grade ' + card['grade'] if card.get('grade') else ''}, "
                  f"coverage {card['coverage']}%")
    g = Table(title="Groups", title_justify="left")
    for col in ("group", "weight %", "effective %", "score", "colour"):
        g.add_column(col)
    for grp in card["groups"]:
        colour = grp.get("colour") or "-"
        g.add_row(grp["group"], f"{grp['weight']:g}", f"{grp['effective_weight']:g}",
                  "no data" if grp["score"] is None else f"{grp['score']}",
                  _band(colour) if colour != "-" else colour)
    console.print(g)
    wide = console.width >= 110  # narrower: the group and nominal weight give way to numbers
    m = Table(title="Measures", title_justify="left")
    _key_column(m, "measure", [r["measure"] for r in card["measures"]])
    heads = ("group", "value", "score", "weight %", "effective %", "contribution", "change")
    for col in heads if wide else ("value", "score", "weight %", "points", "change"):
        m.add_column(col, justify="left" if col == "group" else "right")
    for r in card["measures"]:
        v = r["value"]
        value = "no data" if v is None else (v if isinstance(v, str) else f"{v:g}")
        change = r.get("contribution_change")
        score = "-" if r["score"] is None else f"{r['score']}"
        tail = [f"{r['contribution']:g}", "" if not change else f"{change:+g}"]
        if wide:
            m.add_row(r["measure"], r["group"], value, score, f"{r['weight']:g}",
                      f"{r['effective_weight']:g}", *tail)
        else:
            m.add_row(r["measure"], value, score, f"{r['effective_weight']:g}", *tail)
    console.print(m)
    if card["why"]:
        console.print(f"Since {previous} (score {card['previous_score']}):")
        for line in card["why"]:
            console.print(f"  - {line}")


def check(console: Console, result: Any) -> None:
    cfg = result.config
    console.print(f"Project [bold]{cfg.name}[/]: {len(cfg.sources)} sources, "
                  f"{len(cfg.measures)} measures, "
                  f"scorecards {', '.join(s.name for s in cfg.all_scorecards)}: OK")
    data_health(console, result.health)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    for r in getattr(result, "reminders", []):
        console.print(f"[cyan]review:[/] {r}")
    wf = getattr(result, "workflow", None)
    if wf:
        console.print(f"Rules: {wf['band_changes']} band change(s), {len(wf['opened'])} CTA(s) opened, "
                      f"{len(wf['closed'])} closed, {len(wf['escalated'])} escalated.")


def measures(console: Console, project: Path | None) -> None:
    """One table per category: each measure's name in full, what it computes from which
    entity and columns, its window and filter; the description where the console is wide."""
    from healthscore.config.load import LIBRARY, load_measure_file, load_measures

    found = load_measures(project) if project else load_measure_file(LIBRARY, "(built-in library)")
    by_category: dict[str, list[tuple[str, Any]]] = {}
    for name, src in found.items():
        by_category.setdefault(src.spec.category or "other", []).append((name, src.spec))
    wide = console.width >= 120
    for category, rows in by_category.items():
        t = Table(title=f"Measures: {category}", title_justify="left", show_lines=True)
        t.add_column("name", no_wrap=True, min_width=max(len(n) for n, _ in rows))
        t.add_column("computes", overflow="fold", ratio=2 if wide else None)
        if wide:
            t.add_column("description", ratio=3)
        for name, spec in rows:
            t.add_row(name, _computes(spec), *([spec.description] if wide else []))
        console.print(t)


def _computes(spec: Any) -> str:
    """'count of activities (timestamp, type)' with its window and filter on the next lines;
    for a measure made of others, what it is made of."""
    from healthscore.config.model import columns_read, measure_entity

    entity = measure_entity(spec)
    if spec.type == "ratio":
        return f"ratio {spec.numerator} / {spec.denominator}"
    if spec.type == "change":
        return f"change ({spec.to}) of {spec.of}"
    if spec.type == "expression":
        return f"expression {spec.expr}"
    if spec.type == "manual":
        return f"manual value {spec.name or '(this name)'} from manual_values, for {spec.max_age}"
    lines = [f"{spec.type} of {entity} ({', '.join(columns_read(spec))})"]
    if getattr(spec, "window", None):
        lines.append(f"window {spec.window}")
    if getattr(spec, "filter", None):
        lines.append(f"filter {spec.filter}")
    return "\n".join(lines)


def _num(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _share(x: Any) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _auc(m: dict[str, Any]) -> str:
    """'AUC 0.701 (95% CI 0.65-0.76)', or the note that too few outcomes back it."""
    if m.get("auc_note"):
        return f"AUC: {m['auc_note']}"
    ci = m.get("auc_ci") or [None, None]
    return f"AUC {_num(m.get('auc'))} (95% CI {_num(ci[0], 2)}-{_num(ci[1], 2)})"


def validation_brief(console: Console, data: dict[str, Any]) -> None:
    """The headline of a validation: does the score predict the outcome?"""
    o = data["overall"]
    rates = ", ".join(f"{b['band']} {_share(b['rate'])}" for b in o["bands"])
    console.print(
        f"\n[bold]Does the score predict {data['outcome']}?[/] Backtest over {len(data['dates'])} "
        f"past dates ({o['observations']:,} observations): {_auc(o)}; {data['outcome']} within "
        f"{data['horizon_days']} days by band: {rates}."
    )
    _question(console, data)
    flagged = sorted({n for n, s in data["signals"].items()
                      if any(f["flag"] == "contradicts" for f in s["flags"])})
    if flagged:
        console.print(f"Measures that work backwards: {', '.join(flagged)}.")
    if data.get("alarm"):
        console.print(data["alarm"]["why"], style="red", markup=False, soft_wrap=True)


def _question(console: Console, data: dict[str, Any]) -> None:
    """Seed 000's question in plain words, as the report opens with it."""
    q = data.get("question")
    if q and q.get("answer"):
        console.print(f"{q['question']} {q['answer']}", markup=False, soft_wrap=True)


def validation(console: Console, data: dict[str, Any]) -> None:
    o = data["overall"]
    outcome = data["outcome"]
    console.print(
        f"[bold]Validation[/]: {outcome} within {data['horizon_days']} days after "
        f"{len(data['dates'])} as-of dates ({data['dates'][0]} .. {data['dates'][-1]}): "
        f"{o['observations']:,} observations of {o['accounts']:,} accounts, "
        f"{o['outcomes']:,} with {outcome} ({_share(o['base_rate'])})."
    )
    _question(console, data)
    lead = o.get("lead_time") or {}
    fg = o.get("false_green") or o.get("false_red") or {}
    kind = "false green" if "false_green" in o else "false red"
    tail = f", median lead time {_num(lead.get('median_days'), 0)} days" if lead else ""
    if data.get("alarm"):
        console.print(data["alarm"]["why"], style="red", markup=False, soft_wrap=True)
    console.print(
        f"{_auc(o)}, top-decile lift "
        f"{_num(o['top_decile_lift'], 2)}x, band rates monotonic: "
        f"{'[green]yes[/]' if o['monotonic'] else '[red]no[/]'}, {kind} {_share(fg.get('rate'))}{tail}."
    )
    t = Table(title=f"{outcome.capitalize()} rate by band", title_justify="left")
    for col in ("band", "observations", outcome, "rate", "95% CI"):
        t.add_column(col)
    for b in o["bands"]:
        t.add_row(_band(b["band"]), f"{b['observations']:,}", f"{b['outcomes']:,}", _share(b["rate"]),
                  f"{_share(b['ci_low'])} - {_share(b['ci_high'])}")
    console.print(t)
    parts = [("segment", data.get("segments") or {}), ("scorecard", data.get("scorecards") or {})]
    for kind, items in parts:
        if not items:
            continue
        t = Table(title=f"By {kind}", title_justify="left")
        for col in (kind, "observations", outcome, "AUC (95% CI)"):
            t.add_column(col)
        for name, m in items.items():
            ci = m.get("auc_ci") or [None, None]
            auc = m.get("auc_note") or f"{_num(m.get('auc'))} ({_num(ci[0], 2)}-{_num(ci[1], 2)})"
            t.add_row(name, f"{m['observations']:,}", f"{m['outcomes']:,}", auc)
        console.print(t)
    w = data["weights"]
    t = Table(title=f"Out of sample ({data['scorecard']}, {w.get('splits') or 'time-ordered'} folds)",
              title_justify="left")
    for col in ("ranking", "observations", "AUC", "95% CI", "top-decile lift"):
        t.add_column(col)
    for c in w["comparison"]:
        ci = c.get("auc_ci") or [None, None]
        t.add_row(c["model"], f"{c['observations']:,}", _num(c["auc"]),
                  f"{_num(ci[0], 2)}-{_num(ci[1], 2)}", _num(c["top_decile_lift"], 2))
    console.print(t)
    if w.get("black_box_gap"):
        console.print(w["black_box_gap"])
    if (w.get("schemes") or {}).get("why"):
        console.print(w["schemes"]["why"], markup=False, soft_wrap=True)
    if w.get("note"):
        console.print(f"[yellow]note:[/] {w['note']}")
    t = Table(title="Weights: configured -> suggested", title_justify="left")
    _key_column(t, "measure", [m["measure"] for m in w["measures"]])
    for col in ("configured", "suggested", "95% (resampled accounts)"):
        t.add_column(col, justify="right")
    t.add_column("effect of a higher value", ratio=1)
    for m in w["measures"]:
        ci = m.get("weight_ci")
        t.add_row(m["measure"], f"{m['configured_weight']:.1f}%", f"{m['suggested_weight']:.1f}%",
                  f"{ci[0]:.1f}-{ci[1]:.1f}%" if ci else "n/a", m["effect_of_higher_value"])
    console.print(t)
    flagged = [(n, f) for n, s in data["signals"].items() for f in s["flags"]]
    for name, f in flagged:
        console.print(f"[yellow]{f['flag']}[/] {name}: {f['why']}", soft_wrap=True)
    if data.get("compare"):
        c = data["compare"]
        console.print(f"Against {c['other']} on {c['observations']:,} shared observations: "
                      f"{_auc(c['this'])} (this) vs {_auc(c['that'])} (other).")


def preview(console: Console, data: dict[str, Any], changed: list[str]) -> None:
    """The dry run of a scorecard change: nothing was written."""
    what = ", ".join(changed) if changed else "no scorecard changed"
    console.print(f"\n[bold]Dry run of the scorecards[/] against the snapshot of {data['as_of']} "
                  f"({what}; nothing is written):")
    for v in data["versions"]:
        console.print(f"  scorecard {v['scorecard']}: version {v['from'] or '-'} -> {v['to'] or '-'}")
    console.print(f"  {data['band_changes']} of {data['accounts']} account(s) would change band.")
    bands = sorted({b for row in data["matrix"].values() for b in row} | set(data["matrix"]))
    m = Table(title="Band now (rows) -> after 'run' (columns)", title_justify="left")
    m.add_column("now")
    for b in bands:
        m.add_column(b, justify="right")
    for f in bands:
        if f in data["matrix"]:
            m.add_row(_band(f), *(f"{data['matrix'][f].get(t, 0):,}" for t in bands))
    console.print(m)
    if data["moves"]:
        t = Table(title=f"Biggest score moves (top {len(data['moves'])})", title_justify="left")
        _key_column(t, "account", [r["account_id"] for r in data["moves"]])
        for col in ("now", "after", "change"):
            t.add_column(col, no_wrap=True)
        t.add_column("why", overflow="fold", ratio=1)
        for r in data["moves"]:
            t.add_row(r["account_id"], f"{r['from_score']} {_band(r['from_band'])}",
                      f"{r['to_score']} {_band(r['to_band'])}", f"{r['change']:+.1f}",
                      "; ".join(r["reasons"]) or "-")
        console.print(t)
    rules = data.get("rules")
    if rules is not None:
        console.print(f"  Then the rules would open {len(rules['open'])} CTA(s) and close "
                      f"{len(rules['close'])} ({len(rules['open_because_of_change'])} opened and "
                      f"{len(rules['close_because_of_change'])} closed because of this change).")
        for o in rules["open_because_of_change"][:10]:
            console.print(f"    open  {o['account_id']}: {o['type']} '{o['reason']}' (rule {o['rule']})")
        for c in rules["close_because_of_change"][:10]:
            console.print(f"    close #{c['cta_id']} {c['account_id']}: '{c['reason']}'")
    console.print("")


def measure_rows(console: Console, data: dict[str, Any]) -> None:
    value = data.get("value")
    shown = "no data" if value is None else (value if isinstance(value, str) else f"{value:g}")
    console.print(f"\n[bold]{data['measure']}[/] ({data['type']}) of {data['account_id']} as of "
                  f"{data['as_of']}: {shown}")
    if data["entity"] is None:
        console.print(f"Derived from {', '.join(data['derived_from']) or 'other measures'}: "
                      f"explain those with --measure.")
        return
    parts = [f"source {data['source']} ({data['entity']})", f"window {data['window']}"]
    if data.get("filter"):
        parts.append(f"filter {data['filter']!r}")
    console.print(", ".join(parts))
    console.print(f"{data['total']} row(s) of this account; {data['counted']} counted.")
    t = Table(show_lines=False)
    t.add_column("row", justify="right")
    for c in data["columns"]:
        t.add_column(c, overflow="fold")
    t.add_column("counted")
    t.add_column("why", overflow="fold")
    for r in data["rows"]:
        t.add_row(str(r["row"]), *("" if r["values"][c] is None else str(r["values"][c])
                                   for c in data["columns"]),
                  "yes" if r["counted"] else "no", r["why"])
    console.print(t)
    if data["total"] > len(data["rows"]):
        console.print(f"(newest {len(data['rows'])} of {data['total']} shown; --json for the list)")


# ----------------------------------------------------------------------------- workflow


def cta_state(cta: dict[str, Any], today: Any) -> str:
    """closed, snoozed (an open CTA before its snooze ends), overdue or open."""
    if cta["status"] != "open":
        return str(cta["status"])
    if cta.get("snoozed_until") is not None and cta["snoozed_until"] > today:
        return "snoozed"
    return "overdue" if cta.get("overdue") else "open"


def ctas(console: Console, rows: list[dict[str, Any]], today: Any) -> None:
    """The CTA list: id, account, priority, status, due date, owner (and, from 110 columns,
    type and reason); then a total."""
    states = [cta_state(c, today) for c in rows]
    wide = console.width >= 110
    if rows:
        t = Table(title="CTAs", title_justify="left")
        t.add_column("#", justify="right", no_wrap=True)
        _key_column(t, "account", [c["account_id"] for c in rows])
        for col in ("type", "priority", "status", "due") if wide else ("priority", "status", "due"):
            t.add_column(col, no_wrap=True)
        t.add_column("owner", ratio=1)
        if wide:
            t.add_column("reason", ratio=2)
        for c, state in zip(rows, states, strict=True):
            cells = [c["priority"], state, str(c["due_on"] or "-"), c["owner"] or "-"]
            if wide:
                cells = [c["type"], *cells, c["reason"]]
            t.add_row(str(c["id"]), c["account_id"], *cells)
        console.print(t)
    console.print(cta_total(states))


def cta_total(states: list[str]) -> str:
    """'42 CTAs: 28 open, 2 overdue, 12 snoozed' (states in that order, those present)."""
    if not states:
        return "No CTAs."
    order = ["open", "overdue", "snoozed", "closed"]
    counts = {s: states.count(s) for s in [*order, *sorted(set(states) - set(order))]}
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"{len(states)} CTA{'s' if len(states) != 1 else ''}: {parts}"


def skipped(console: Console, rows: list[dict[str, Any]], examples: int = 3) -> None:
    """The rule matches that opened no CTA, by reason and rule: how many, and a few accounts."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        groups.setdefault((r["why"], r["rule"]), []).append(r["account_id"])
    if groups:
        console.print(f"  Skipped {len(rows)} rule match(es) that would open a CTA again:")
    for (why, rule), accounts in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        shown = ", ".join(accounts[:examples])
        more = f" and {len(accounts) - examples} more" if len(accounts) > examples else ""
        console.print(f"    {len(accounts)} {why} (rule {rule}): {shown}{more}", highlight=False)
