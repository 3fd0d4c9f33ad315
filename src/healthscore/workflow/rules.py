"""Rules -> a plan -> apply. ``plan`` reads the latest snapshot and the store and returns, as
a value, everything ``apply`` would do: band changes, CTAs to open and to close, overrides
lapsing, overdue CTAs to escalate and success criteria to check. ``apply`` executes exactly
that plan, and refuses it if the store changed since it was made."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import func, select

from healthscore.config.expressions import compile_filter
from healthscore.config.windows import parse_days
from healthscore.engine.adapter import make_engine
from healthscore.errors import ConflictError
from healthscore.store.report import with_trends
from healthscore.tables import AppliedRun, Audit, Cta
from healthscore.workflow.base import SYSTEM, Context, Service, no_nan
from healthscore.workflow.ctas import CtaService
from healthscore.workflow.marks import MarkService
from healthscore.workflow.notify import NotifyService
from healthscore.workflow.overrides import OverrideService
from healthscore.workflow.owners import OwnerService
from healthscore.workflow.success_plans import SuccessPlanService


@dataclass
class Plan:
    as_of: date
    since: date | None  # the snapshot date of the last applied plan
    band_changes: list[dict[str, Any]] = field(default_factory=list)
    open: list[dict[str, Any]] = field(default_factory=list)
    close: list[dict[str, Any]] = field(default_factory=list)
    lapse: list[int] = field(default_factory=list)
    lapse_marks: list[int] = field(default_factory=list)  # module marks past their expiry
    escalate: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # duplicates, cooldown
    fingerprint: int = 0  # the newest audit id when the plan was made

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        body = dict(data)
        body["as_of"] = date.fromisoformat(body["as_of"])
        body["since"] = date.fromisoformat(body["since"]) if body.get("since") else None
        return cls(**body)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat()
        out["since"] = self.since.isoformat() if self.since else None
        return out


class RulesService(Service):
    """Rules -> a plan (a value) -> apply it in one transaction."""

    def __init__(self, ctx: Context, ctas: CtaService, overrides: OverrideService,
                 success_plans: SuccessPlanService, notify: NotifyService,
                 marks: MarkService, owners: OwnerService) -> None:
        super().__init__(ctx)
        self.marks, self.owners = marks, owners
        self.ctas, self.overrides = ctas, overrides
        self.success_plans, self.notify = success_plans, notify

    def facts(self, as_of: date | None = None, scores: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per account: measure values by name, score, band, previous band, changes over
        7/30/90 days, open CTAs and flags: what rules are written against. ``scores`` replaces
        the snapshot's primary scores of the day (a dry run of a scorecard change)."""
        day = as_of or self.snapshots.latest()
        now = self.scores(day) if scores is None else self.with_overrides(scores, day)
        frame = with_trends(self.snapshots, day, now)
        frame = frame.rename(columns={c: c[3:] for c in frame.columns if c.startswith("m__")})
        frame = frame.rename(columns={c: f"{_FACT_PREFIX[c[:3]]}.{c[3:]}" for c in frame.columns
                                      if c[:3] in _FACT_PREFIX})
        prev_day = self._previous_date(day)
        prev = self.scores(prev_day).set_index("account_id")["band"] if prev_day else None
        frame["previous_band"] = frame["account_id"].map(prev) if prev is not None else None
        with self.store.session() as s:
            rows = s.execute(select(Cta.account_id, Cta.flagged).where(Cta.status == "open")).all()
        counts: dict[str, int] = {}
        flags: dict[str, bool] = {}
        for account, flagged in rows:
            counts[account] = counts.get(account, 0) + 1
            flags[account] = flags.get(account, False) or bool(flagged)
        frame["open_ctas"] = frame["account_id"].map(lambda a: counts.get(a, 0)).astype(int)
        frame["flagged"] = frame["account_id"].map(lambda a: flags.get(a, False)).astype(bool)
        return frame

    def _previous_date(self, day: date) -> date | None:
        earlier = [d for d in self.snapshots.dates() if d < day]
        return earlier[-1] if earlier else None

    def _since(self) -> date | None:
        with self.store.session() as s:
            return s.scalar(select(AppliedRun.as_of).order_by(AppliedRun.id.desc()).limit(1))

    def matches(self, frame: pd.DataFrame) -> dict[str, set[str]]:
        """rule name -> accounts whose facts meet its condition."""
        engine = make_engine("duckdb")  # one row per account: the embedded engine, always
        try:
            table = engine.register_arrow(pa.Table.from_pandas(_plain(frame), preserve_index=False),
                                          "facts")
            out = {}
            line = self.spec.high_touch
            high = compile_filter(line, table).fill_null(False) if line else None
            for name, (rule, _) in self.wf.rules.items():
                cond = compile_filter(rule.when, table).fill_null(False)
                if high is not None and rule.touch != "all":  # the large-customer line
                    cond = cond & (high if rule.touch == "high" else ~high)
                ids = engine.to_arrow(table.filter(cond).select("account_id"))["account_id"].to_pylist()
                out[name] = set(ids)
            return out
        finally:
            engine.close()

    def plan(self, as_of: date | None = None, scores: pd.DataFrame | None = None) -> Plan:
        day = as_of or self.snapshots.latest()
        frame = self.facts(day, scores)
        plan = Plan(as_of=day, since=self._since())
        plan.band_changes = self._band_changes(frame, day, plan.since)
        matched = self.matches(frame)
        with self.store.session() as s:
            open_ctas = list(s.scalars(select(Cta).where(Cta.status == "open")))
            # closed on day C (at any time): no reopening through C + cooldown_days
            cooldown = datetime.combine(self.today - timedelta(days=self.spec.cooldown_days), time.min)
            recent = list(s.scalars(select(Cta).where(Cta.status == "closed", Cta.closed_at >= cooldown)))
            plan.fingerprint = s.scalar(select(func.max(Audit.id))) or 0
        is_open = {(c.account_id, c.type, c.reason) for c in open_ctas}
        cooling = {(c.account_id, c.type, c.reason) for c in recent}
        for name, (rule, _) in self.wf.rules.items():
            for account in sorted(matched[name]):
                key = (account, rule.cta.type, rule.cta.reason)
                if key in is_open or key in cooling:
                    days = self.spec.cooldown_days
                    why = "already open" if key in is_open else f"closed within {days} days"
                    plan.skipped.append({"account_id": account, "rule": name, "why": why})
                    continue
                plan.open.append({"account_id": account, "rule": name, **rule.cta.model_dump()})
        for c in open_ctas:
            found = self.wf.rules.get(c.rule or "")
            if c.source != "rule" or found is None or not found[0].close_when_clear:
                continue
            if c.account_id not in matched[c.rule or ""]:
                plan.close.append({"cta_id": c.id, "account_id": c.account_id, "rule": c.rule,
                                   "reason": c.reason})
        plan.lapse = self.overrides.lapsing_overrides()
        plan.lapse_marks = self.marks.lapsing_marks()
        closing = {c["cta_id"] for c in plan.close}  # a CTA that closes is not escalated too
        plan.escalate = [i for i in self.ctas.overdue_to_escalate()
                         if i not in closing]
        self._check_owners(plan)
        return plan

    def _check_owners(self, plan: Plan) -> None:
        """Everyone the plan gives work to exists: the owners of the CTAs it opens and of their
        playbooks' tasks, and the next step of each escalation. Nothing goes to nobody."""
        chain = self.spec.escalation
        with self.store.session() as s:
            levels = s.scalars(select(Cta.escalation_level).where(Cta.id.in_(plan.escalate)))
            steps = [chain[level + 1] for level in levels if level + 1 < len(chain)]
            self.owners.check(s, self.owners.needed_by_rules(sorted({o["rule"] for o in plan.open}))
                              + steps)

    def _band_changes(self, frame: pd.DataFrame, day: date, since: date | None) -> list[dict[str, Any]]:
        """Bands that changed since the last applied snapshot (or the one before ``day``)."""
        if since is not None and since >= day:
            return []  # already applied
        base = since if since is not None and since in self.snapshots.dates() else self._previous_date(day)
        if base is None:
            return []
        before = self.scores(base).set_index("account_id")["band"]
        was = frame["account_id"].map(before)
        # the column first: assigned to an empty selection, a Series would bring its rows along
        marked = frame.assign(__was=was)
        changed = marked[was.notna() & (marked["band"] != was)]
        return [no_nan({"account_id": r["account_id"], "from": r["__was"], "to": r["band"],
                         "csm": r.get("csm")}) for _, r in changed.iterrows()]

    def plan_and_apply(self, as_of: date | None = None, *, actor: str = SYSTEM,
                       attempts: int = 5) -> dict[str, Any]:
        """Plan and apply in one go (what 'run' and 'daily' do). A write by anyone between the
        two (a note, a task ticked) makes the plan stale: plan again and apply that, a few
        times, before giving up. 'apply --plan FILE' keeps the strict check."""
        for _ in range(attempts - 1):
            try:
                return self.apply(self.plan(as_of), actor=actor)
            except ConflictError:
                continue  # someone wrote meanwhile: plan again
        return self.apply(self.plan(as_of), actor=actor)

    def apply(self, plan: Plan, *, actor: str = SYSTEM) -> dict[str, Any]:
        """Execute exactly ``plan``: nothing more, nothing less."""
        accounts = self.scores(plan.as_of).set_index("account_id")
        with self.store.session() as s:  # one transaction: all of the plan or none of it
            current = s.scalar(select(func.max(Audit.id))) or 0
            if current != plan.fingerprint:
                raise ConflictError("the workflow store changed since this plan was made: make a new "
                                    "plan ('healthscore plan') and apply that.")
            for ch in plan.band_changes:
                self._timeline(s, ch["account_id"], "band_change", SYSTEM,
                               f"Band {ch['from']} -> {ch['to']} (as of {plan.as_of})", change=ch)
                self.notify.notify_later(s, ch.get("csm"), "band_change",
                                   f"{ch['account_id']}: band {ch['from']} -> {ch['to']}",
                                   account_id=ch["account_id"])
            for ov in plan.lapse:
                self.overrides.lapse(s, ov, SYSTEM)
            for mark in plan.lapse_marks:
                self.marks.lapse(s, mark, SYSTEM)
            opened = []
            for o in plan.open:
                account = {"account_id": o["account_id"],
                           **no_nan(accounts.loc[o["account_id"]].to_dict())}
                due = plan.as_of + timedelta(days=parse_days(o["due_in"]))
                view = self.ctas.open_in(s, account, o["type"], o["reason"], actor=SYSTEM,
                                  priority=o["priority"], owner=o["owner"], due=max(due, self.today),
                                  playbook=o["playbook"], module=o["module"], flagged=False,
                                  rule=o["rule"])
                opened.append(view["id"])
            for c in plan.close:
                self.ctas.close_cta(c["cta_id"], "condition cleared", actor=SYSTEM,
                               session=s)
            for cta_id in plan.escalate:
                self.ctas.escalate(cta_id, actor=SYSTEM, automatic=True, session=s,
                              note=f"overdue by more than {self.spec.escalate_after_days} days")
            checked = self.success_plans.check_criteria_in(s, plan.as_of)
            summary = {"band_changes": len(plan.band_changes), "opened": opened,
                       "closed": [c["cta_id"] for c in plan.close], "lapsed": plan.lapse,
                       "escalated": plan.escalate, "criteria_checked": checked}
            s.add(AppliedRun(as_of=plan.as_of, at=self.now(), by=actor, summary=summary))
        self.notify.flush_notifications()
        return summary


TEXT_FACTS = {"account_id", "name", "band", "previous_band", "grade", "scorecard", "version",
              "segment", "industry", "csm", "lifecycle_stage", "system_band", "override"}


_FACT_PREFIX = {"c__": "module", "g__": "group_score"}  # module.usage, group_score.usage


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Only columns a rule can read, with types DuckDB takes as they are."""
    keep = {}
    for col in frame.columns:
        if col.startswith(("s__", "g__")):
            continue
        series = frame[col]
        if col in TEXT_FACTS or col.startswith("module."):
            series = series.map(lambda v: None if v is None or v != v else str(v)).astype("string")
        elif series.dtype == object and (series.isna().all() or col.startswith("change_")):
            series = pd.to_numeric(series, errors="coerce").astype("float64")  # no history yet
        elif series.dtype == object:
            series = series.map(lambda v: None if v is None or v != v else v)
            try:
                series = series.astype("string")
            except (TypeError, ValueError):
                continue
        keep[col] = series
    return pd.DataFrame(keep)
