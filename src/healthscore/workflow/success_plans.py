"""Success plans: goals and initiatives, milestones, tasks on both sides, measurable success
criteria (a measure, a target and a date, checked on every applied run), roles, reporting
cadence and audience, communication plan, education and tools; from templates. Progress is
the share of milestones, tasks and criteria that are done or met."""

from __future__ import annotations

import operator
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from healthscore.config.windows import parse_days
from healthscore.errors import InvalidActionError, NotFoundError
from healthscore.tables import Criterion, Goal, Milestone, SuccessPlan, Task
from healthscore.workflow.base import Context, Service, row_dict
from healthscore.workflow.owners import OwnerService

GOAL_KINDS = ("goal", "initiative")

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq}
DETAILS = ("roles", "reporting", "communication", "education", "tools")


class SuccessPlanService(Service):
    """Success plans: goals, milestones, criteria checked against the scores, plan elements."""

    def __init__(self, ctx: Context, owners: OwnerService) -> None:
        super().__init__(ctx)
        self.owners = owners

    def create_success_plan(self, account_id: str, *, actor: str, template: str | None = None,
                    title: str | None = None) -> dict[str, Any]:
        account = self.account(account_id)
        if template is not None and template not in self.wf.templates:
            raise InvalidActionError(f"template: no success-plan template named {template!r}. "
                                     f"Templates: {', '.join(sorted(self.wf.templates))}.")
        tpl = self.wf.templates.get(template or "")
        with self.store.session() as s:
            actor = self._actor(s, actor, account_id=account_id)
            default = tpl.description if tpl else "Success plan"
            plan = SuccessPlan(account_id=account_id, title=title or default,
                               template=template, status="active", created_at=self.now(), created_by=actor,
                               details={k: getattr(tpl, k) for k in DETAILS} if tpl else {})
            s.add(plan)
            s.flush()
            if tpl:
                self._fill(s, plan, tpl, account)
            s.flush()
            self._audit(s, actor, "plan", plan.id, "create", None, row_dict(plan))
            self._timeline(s, account_id, "plan_change", actor,
                           f"Success plan #{plan.id} created: {plan.title}", plan_id=plan.id)
            return self._success_plan_view(plan)

    def _fill(self, s: Session, plan: SuccessPlan, tpl: Any, account: dict[str, Any]) -> None:
        day = self.today
        plan.goals.extend([Goal(title=g, kind="goal") for g in tpl.goals]
                          + [Goal(title=g, kind="initiative") for g in tpl.initiatives])
        plan.milestones.extend(Milestone(title=m.title, due_on=day + timedelta(days=parse_days(m.due_in)))
                               for m in tpl.milestones)
        plan.tasks.extend(Task(title=t.title, instructions=t.instructions, role=t.role, side=t.side,
                               owner=self.owners.resolve(s, t.role, account),
                               due_on=day + timedelta(days=t.offset_days), status="open") for t in tpl.tasks)
        scored = {m for sc in self.config.all_scorecards for m in sc.measures}
        plan.criteria.extend(Criterion(measure=c.measure, op=c.op, target=c.target,
                                       due_on=day + timedelta(days=parse_days(c.due_in)))
                             for c in tpl.criteria if c.measure in scored)
        skipped = [c.measure for c in tpl.criteria if c.measure not in scored]
        if skipped:  # a built-in template may name a measure this project does not score
            plan.details = {**plan.details, "criteria_left_out": skipped}

    def plan_of(self, plan_id: int) -> dict[str, Any]:
        with self.store.session() as s:
            return self._success_plan_view(self._get_success_plan(s, plan_id))

    def success_plans(self, account_id: str | None = None) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = select(SuccessPlan).order_by(SuccessPlan.id)
            if account_id:
                q = q.where(SuccessPlan.account_id == account_id)
            return [self._success_plan_view(p) for p in s.scalars(q)]

    def _get_success_plan(self, s: Session, plan_id: int) -> SuccessPlan:
        p = s.get(SuccessPlan, plan_id)
        if p is None:
            raise NotFoundError(f"no success plan #{plan_id}.")
        return p

    def _success_plan_view(self, p: SuccessPlan) -> dict[str, Any]:
        out = row_dict(p)
        out["goals"] = [row_dict(g) for g in p.goals]
        out["milestones"] = [row_dict(m) for m in p.milestones]
        out["tasks"] = [row_dict(t) for t in p.tasks]
        out["criteria"] = [row_dict(c) for c in p.criteria]
        items = ([m.done_on is not None for m in p.milestones] + [t.status != "open" for t in p.tasks]
                 + [bool(c.met) for c in p.criteria])
        out["progress"] = round(100 * sum(items) / len(items), 1) if items else 0.0
        return out

    def add_criterion(self, plan_id: int, measure: str, op: str, target: float, due_on: date,
                      *, actor: str) -> dict[str, Any]:
        if measure not in self.config.measures:
            raise InvalidActionError(f"measure: unknown measure {measure!r}.")
        if op not in OPS:
            raise InvalidActionError(f"op: must be one of {', '.join(OPS)}. Got {op!r}.")
        return self._edit_success_plan(plan_id, actor, "criterion added",
                               lambda p: p.criteria.append(Criterion(measure=measure, op=op,
                                                                     target=target, due_on=due_on)))

    def add_milestone(self, plan_id: int, title: str, due_on: date | None, *, actor: str) -> dict[str, Any]:
        return self._edit_success_plan(plan_id, actor, "milestone added",
                               lambda p: p.milestones.append(Milestone(title=title, due_on=due_on)))

    def add_goal(self, plan_id: int, title: str, *, actor: str, kind: str = "goal") -> dict[str, Any]:
        if kind not in GOAL_KINDS:
            raise InvalidActionError(f"kind: {kind!r} is not a kind of goal. Use one of: "
                                     f"{', '.join(GOAL_KINDS)}.")
        return self._edit_success_plan(plan_id, actor, f"{kind} added",
                               lambda p: p.goals.append(Goal(title=title, kind=kind)))

    def complete_milestone(self, plan_id: int, milestone_id: int, *, actor: str) -> dict[str, Any]:
        def fn(p: SuccessPlan) -> None:
            m = next((m for m in p.milestones if m.id == milestone_id), None)
            if m is None:
                raise NotFoundError(f"success plan #{plan_id} has no milestone #{milestone_id}.")
            if m.done_on is not None:
                raise InvalidActionError(f"milestone #{milestone_id} is already done ({m.done_on}).")
            m.done_on = self.today
        return self._edit_success_plan(plan_id, actor, "milestone done", fn)

    def _edit_success_plan(self, plan_id: int, actor: str, what: str, fn: Any) -> dict[str, Any]:
        with self._commit_guard(f"success plan #{plan_id}"), self.store.session() as s:
            p = self._get_success_plan(s, plan_id)
            actor = self._actor(s, actor, account_id=p.account_id)
            before = self._success_plan_view(p)
            fn(p)
            s.flush()
            after = self._success_plan_view(p)
            self._audit(s, actor, "plan", p.id, what, before, after)
            self._timeline(s, p.account_id, "plan_change", actor, f"Success plan #{p.id}: {what}",
                           plan_id=p.id)
            return after

    def check_criteria(self, as_of: date | None = None) -> int:
        with self.store.session() as s:
            return self.check_criteria_in(s, as_of or self.snapshots.latest())

    def check_criteria_in(self, s: Session, as_of: date) -> int:
        """Evaluate every open criterion of an active plan against the scores as of ``as_of``."""
        rows = list(s.scalars(select(Criterion).join(SuccessPlan).where(SuccessPlan.status == "active")))
        if not rows:
            return 0
        frame = self.scores(as_of).set_index("account_id")
        for c in rows:
            plan = s.get(SuccessPlan, c.plan_id)
            col = f"m__{c.measure}"
            if plan is None or plan.account_id not in frame.index or col not in frame.columns:
                continue
            value = frame.at[plan.account_id, col]
            c.value = None if value is None or value != value else float(value)
            c.checked_on = as_of
            c.met = c.value is not None and bool(OPS[c.op](c.value, c.target))
        return len(rows)
