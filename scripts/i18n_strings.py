"""List every text the web app passes through ``_()``: the msgids the catalogs in
src/healthscore/web/locales/<lang>.json must translate.

Two kinds of msgid:

* literal ones, read from the templates (src/healthscore/web/templates/*.html) with Jinja's own
  parser: ``_("...")`` or ``_('...')``, plus ``_(x)`` where ``x`` is the variable of a
  ``{% for %}`` loop over a literal list (``{% for p in ["low", "high"] %}`` or
  ``{% for col, label in [("band", "Band"), ...] %}``); and ``_n("{n} day", "{n} days", n)``,
  a count, whose msgid is the two joined by "|" and whose translation lists the forms of the
  language's CLDR plural categories (one|few|many|other for Polish and Russian, one form for
  Chinese) joined the same way;
* dynamic ones, values the code hands the templates and the templates translate (``_(cta.type)``,
  ``_(user.role)``, ...). They are listed below in DYNAMIC; DYNAMIC_CALLS says which template
  expression draws on which group, so tests/test_i18n.py fails when a template starts to
  translate a new expression nobody has classified.

Usage::

    python scripts/i18n_strings.py               # every msgid, one per line
    python scripts/i18n_strings.py --missing pl  # msgids pl.json does not translate (yet)
    python scripts/i18n_strings.py --stale pl    # keys of pl.json that are no msgid any more
    python scripts/i18n_strings.py --dynamic     # the non-literal _() calls, file: expression

Tests load this file by its path (it is not a package), e.g. with importlib.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from jinja2 import Environment, nodes

from healthscore.web.i18n import PLAN_CHANGES, PLURAL_SEP, POINTS, STORED, WHY

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "src" / "healthscore" / "web" / "templates"
LOCALES = ROOT / "src" / "healthscore" / "web" / "locales"
LANGS = ("pl", "ru", "zh")

# Values the code passes to the templates, which translate them. Keep each group in step with
# the source named in its comment (tests/test_i18n.py checks the ones it can import).
DYNAMIC: dict[str, tuple[str, ...]] = {
    # healthscore.tables.ROLES
    "roles": ("admin", "lead", "csm", "viewer"),
    # healthscore.config.model.DEFAULT_BANDS, INSUFFICIENT and the bands of the scorecards in
    # src/healthscore/templates/*/scorecards/*.yml
    "bands": ("red", "yellow", "green", "insufficient data", "not scored"),
    # healthscore.tables.CTA_TYPES
    "cta types": ("risk", "opportunity", "lifecycle", "activity"),
    # healthscore.tables.PRIORITIES
    "priorities": ("low", "medium", "high", "critical"),
    # healthscore.workflow.timeline.TOUCHES
    "touches": ("note", "call", "meeting", "email"),
    # the kinds the workflow writes to the timeline (WorkflowBase._timeline calls)
    "timeline kinds": ("flag", "cta_opened", "cta_closed", "cta_snoozed", "cta_assigned",
                       "cta_critical", "cta_decided", "cta_escalated", "cta_priority", "task_done",
                       "override_set", "override_cleared", "override_lapsed", "plan_change",
                       "band_change", "module_marked", "module_mark_cleared",
                       "module_mark_lapsed", "manual_value", "cta_comment"),
    # healthscore.workflow.notify.EVENTS: what a user may be told of (inbox, settings)
    "notification events": ("cta_opened", "cta_assigned", "cta_escalated", "cta_overdue", "task_due",
                            "cta_mention", "band_change"),
    # healthscore.workflow.overrides.REASON_CODES
    "reason codes": ("relationship", "data_gap", "known_issue", "business_change",
                     "renewal_signal", "other"),
    # healthscore.workflow.marks.MARK_REASONS
    "mark reasons": ("renewal_risk", "financial_trouble", "reorganisation", "sponsor_left",
                     "ebr_refused", "not_ready", "known_issue", "relationship", "other"),
    # the lifecycle stages of the demo accounts (healthscore.demo.people)
    "lifecycle stages": ("onboarding", "adoption", "renewal", "churned"),
    # success plan (active), goal and task (open, done, skipped), CTA (open, closed)
    "statuses": ("active", "open", "done", "skipped", "closed"),
    # healthscore.web.queue.DUE_BUCKETS: the Cockpit's groups by due date
    "due buckets": ("overdue", "this week", "later", "no due date"),
    # healthscore.tables.Goal.kind
    "goal kinds": ("goal", "initiative"),
    # healthscore.workflow.strategy: the quadrant axes and their two levels
    "quadrants": ("high", "low", "health", "temperature", "maturity"),
    # the outcomes a validation can predict (healthscore.validation.observations)
    "outcomes": ("churn", "renewal", "expansion"),
    # healthscore.workflow.strategy.TEMPERATURE_MOTIONS and MATURITY_MOTIONS
    "motions": (
        "Expand and ask for referrals.",
        "Fix temperature first (the customer's own results), then look for expansion.",
        "Fix health first, then look for expansion.",
        "Fix temperature first (the key), then health.",
        "Cash cow: minimal touch; advise on running their business, not on features.",
        "Has potential: retain it and raise health.",
        "Minimal touch or let go.",
    ),
    # the keys of a success plan's details: healthscore.workflow.success_plans.DETAILS and the
    # measures a built-in template names that the project does not score
    "plan elements": ("roles", "reporting", "communication", "education", "tools",
                      "criteria_left_out"),
    # healthscore.web.i18n.STORED: the timeline's sentences, shown by Formatter.stored, and
    # PLAN_CHANGES, the changes its success-plan sentence names
    "stored sentences": (*STORED, *PLAN_CHANGES),
    # the messages of the forms in healthscore.web.pages (tests/test_i18n.py reads them there)
    "form messages": (
        "View “{name}” saved.", "View “{name}” deleted.",
        "Override saved.", "Override cleared.", "Module marked.", "Mark cleared.", "Value saved.",
        "Flagged for review (CTA #{id}).", "Logged.", "CTA #{id} opened.",
        "Success plan #{id} created.", "{changed} CTAs changed ({action}).", "CTA #{id} closed.",
        "CTA #{id} snoozed.", "CTA #{id} assigned to {owner}.", "CTA #{id} escalated.",
        "Decision recorded on CTA #{id}.", "Comment added.", "Task #{id} {status}.", "Added.",
        "Milestone added.", "Success criterion added.", "Milestone done.", "Added {name} ({role}).",
        "Saved {name}.", "API token #{id} for {user}: {token} — copy it now, it is not shown again.",
        "Token #{id} revoked.", "Saved.", "Password changed.", "Notification settings saved.",
        "All marked as read.", "Marked as read.",
        "close", "snooze", "assign", "priority"),
    # healthscore.web.i18n.WHY and POINTS: the lines of "What changed and why" (Formatter.why)
    "why": (*WHY.values(), PLURAL_SEP.join(POINTS)),
}

# "template: expression" of every non-literal _() call -> the DYNAMIC groups it draws on
# (empty: the value is not ours to translate, e.g. customer data, and comes back as is).
DYNAMIC_CALLS: dict[str, tuple[str, ...]] = {
    "_accounts_table.html: a.lifecycle_stage": ("lifecycle stages",),
    "_accounts_table.html: a.override": ("reason codes",),
    "_accounts_table.html: a.system_band": ("bands",),
    "_cta.html: cta.type": ("cta types",),
    "_cta.html: cta.priority": ("priorities",),
    "cockpit.html: cta.type": ("cta types",),
    "cockpit.html: cta.priority": ("priorities",),
    "_queue_filters.html: b": ("bands",),
    "board.html: cta.type": ("cta types",),
    "board.html: cta.priority": ("priorities",),
    "cta.html: cta.type": ("cta types",),
    "cta.html: cta.priority": ("priorities",),
    "cta.html: cta.status": ("statuses",),
    "cta.html: t.status": ("statuses",),
    # healthscore.web.ctas._kind: the history's changes named like the timeline's
    "cta.html: h.kind": ("timeline kinds",),
    # data.group: only the type and due-date groups go through _()
    "cockpit.html: cta.group": ("cta types", "due buckets"),
    "account.html: fin.override.reason_code": ("reason codes",),
    "account.html: e.kind": ("touches", "timeline kinds"),
    "account.html: p.status": ("statuses",),
    "account.html: b": ("bands",),
    "account.html: r": ("reason codes", "mark reasons"),
    "account.html: m.colour": ("bands",),
    "account.html: m.mark.reason_code": ("mark reasons",),
    "review.html: m.colour": ("bands",),
    "review.html: m.reason_code": ("mark reasons",),
    # data.choices: only the bands and lifecycle stages go through _()
    "accounts.html: v": ("bands", "lifecycle stages"),
    "admin.html: r": ("roles",),
    "preview.html: f": ("bands",),
    "preview.html: t": ("bands",),
    "preview.html: m.from_band": ("bands",),
    "preview.html: m.to_band": ("bands",),
    "base.html: user.role": ("roles",),
    "macros.html: name": ("bands",),
    "me.html: user.role": ("roles",),
    "me.html: e": ("notification events",),
    "inbox.html: i.event": ("notification events",),
    "plan.html: data.status": ("statuses",),
    "plan.html: g.kind": ("goal kinds",),
    "plan.html: g.status": ("statuses",),
    "plan.html: t.status": ("statuses",),
    "plan.html: k": ("plan elements",),
    "plans.html: p.status": ("statuses",),
    "portfolio.html: q.health": ("quadrants",),
    "portfolio.html: q[kind]": ("quadrants",),
    "portfolio.html: q.motion": ("motions",),
    "portfolio.html: k": ("lifecycle stages",),
    "today.html: data.worst_band": ("bands",),
    # data.choices: only the lifecycle stages go through _()
    "trends.html: v": ("lifecycle stages",),
    "trends.html: b": ("bands",),
    "today.html: a.band": ("bands",),
    "_why.html: data.band": ("bands",),
    "_why.html: c.type": ("cta types",),
    "cta.html: b": ("bands",),
    "cta.html: k": ("touches",),
    "cta.html: r": ("reason codes",),
    "validation.html: v.outcome": ("outcomes",),
    "validation.html: h.outcome": ("outcomes",),
}

PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _parse(path: Path) -> nodes.Template:
    return Environment().parse(path.read_text(encoding="utf-8"), path.name, str(path))


def _expr(node: nodes.Node) -> str:
    """A short source-like text of a template expression, for DYNAMIC_CALLS."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_expr(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        return f"{_expr(node.node)}[{_expr(node.arg)}]"
    if isinstance(node, nodes.Const):
        return repr(node.value)
    return f"<{type(node).__name__}>"


def _loop_literals(loop: nodes.For) -> dict[str, list[str] | None]:
    """Loop variable -> the strings it takes when the loop runs over a literal list (None when
    it does not: the variable hides any outer one)."""
    target = loop.target
    names = [target] if isinstance(target, nodes.Name) else list(getattr(target, "items", []))
    out: dict[str, list[str] | None] = {n.name: None for n in names if isinstance(n, nodes.Name)}
    items = loop.iter.items if isinstance(loop.iter, nodes.List | nodes.Tuple) else None
    if not items:
        return out
    for i, n in enumerate(names):
        if not isinstance(n, nodes.Name):
            continue
        values: list[str] = []
        for item in items:
            if isinstance(target, nodes.Name):
                part = item
            elif isinstance(item, nodes.Tuple | nodes.List) and len(item.items) == len(names):
                part = item.items[i]
            else:
                break
            if not (isinstance(part, nodes.Const) and isinstance(part.value, str)):
                break
            values.append(part.value)
        else:
            out[n.name] = values
    return out


def _calls(node: nodes.Node, bound: dict[str, list[str] | None]) -> Iterator[tuple[str | None, str]]:
    """(msgid, "") for each literal _() argument, (None, expression) for each other one."""
    if isinstance(node, nodes.For):
        yield from _calls(node.iter, bound)
        inner = {**bound, **_loop_literals(node)}
        for child in [*node.body, *([node.test] if node.test else [])]:
            yield from _calls(child, inner)
        for child in node.else_:
            yield from _calls(child, bound)
        return
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "_n":
        texts = [a.value for a in node.args[:2] if isinstance(a, nodes.Const) and isinstance(a.value, str)]
        yield (PLURAL_SEP.join(texts), "") if len(texts) == 2 else (None, _expr(node))
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "_":
        if node.args:
            arg = node.args[0]
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                yield arg.value, ""
            elif isinstance(arg, nodes.Name) and bound.get(arg.name) is not None:
                for value in bound[arg.name] or ():
                    yield value, ""
            else:
                yield None, _expr(arg)
    for child in node.iter_child_nodes():
        yield from _calls(child, bound)


def template_files() -> list[Path]:
    return sorted(TEMPLATES.glob("*.html"))


def template_msgids() -> list[str]:
    """The literal msgids of the templates, in order of first use."""
    seen: dict[str, None] = {}
    for path in template_files():
        for msgid, _expr_text in _calls(_parse(path), {}):
            if msgid is not None:
                seen.setdefault(msgid, None)
    return list(seen)


def dynamic_calls() -> list[str]:
    """"template: expression" of every _() call whose argument is not a literal."""
    seen: dict[str, None] = {}
    for path in template_files():
        for msgid, expr in _calls(_parse(path), {}):
            if msgid is None:
                seen.setdefault(f"{path.name}: {expr}", None)
    return list(seen)


def dynamic_msgids() -> list[str]:
    return list(dict.fromkeys(v for group in DYNAMIC.values() for v in group))


def msgids() -> list[str]:
    """Every msgid, sorted: what each catalog must translate, and all it may hold."""
    return sorted({*template_msgids(), *dynamic_msgids()})


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def catalog(lang: str) -> dict[str, str]:
    path = LOCALES / f"{lang}.json"
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _print(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--missing", metavar="LANG", help="msgids LANG.json does not translate")
    group.add_argument("--stale", metavar="LANG", help="keys of LANG.json that are not msgids")
    group.add_argument("--dynamic", action="store_true", help="the non-literal _() calls")
    group.add_argument("--json", action="store_true", help="every msgid as a JSON list")
    args = parser.parse_args(argv)
    ids = msgids()
    if args.missing:
        texts = catalog(args.missing)
        _print(m for m in ids if not texts.get(m, "").strip())
    elif args.stale:
        _print(sorted(set(catalog(args.stale)) - set(ids)))
    elif args.dynamic:
        _print(dynamic_calls())
    elif args.json:
        print(json.dumps(ids, ensure_ascii=False, indent=1))
    else:
        _print(ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
