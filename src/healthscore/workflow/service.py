"""`Workflow`: one object for everything people do with the scores, a thin facade over the
workflow's services. Each service gets what it needs in its constructor (the shared
:class:`Context`, and the services it calls); this class only builds them and forwards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from healthscore.config.model import ProjectConfig
from healthscore.store.snapshots import SnapshotStore
from healthscore.workflow.access import SESSION_HOURS, AccessService
from healthscore.workflow.base import SYSTEM, Clock, Context, Service
from healthscore.workflow.ctas import CtaService, QueueWhere
from healthscore.workflow.inbox import InboxService
from healthscore.workflow.inputs import InputService
from healthscore.workflow.marks import MarkService
from healthscore.workflow.notify import NotifyService
from healthscore.workflow.overrides import OverrideService
from healthscore.workflow.owners import OwnerService
from healthscore.workflow.rules import Plan, RulesService
from healthscore.workflow.saved_views import SavedViewService
from healthscore.workflow.strategy import StrategyService
from healthscore.workflow.success_plans import SuccessPlanService
from healthscore.workflow.timeline import TimelineService


class Workflow(Service):
    """CTAs, playbooks, escalation, overrides, success plans, timeline and notifications over
    one store (SQLite in the project by default, PostgreSQL for a team)."""

    def __init__(
        self,
        config: ProjectConfig,
        snapshots: SnapshotStore,
        url: str | None = None,
        today: date | None = None,
        clock: Clock | None = None,
    ) -> None:
        ctx = Context(config, snapshots, url=url, today=today, clock=clock)
        super().__init__(ctx)
        self._svc_access = AccessService(ctx)
        self._svc_inbox = InboxService(ctx)
        self._svc_notify = NotifyService(ctx, self._svc_inbox)
        self._svc_timeline = TimelineService(ctx)
        self._svc_overrides = OverrideService(ctx)
        self._svc_owners = OwnerService(ctx)
        self._svc_success_plans = SuccessPlanService(ctx, self._svc_owners)
        self._svc_ctas = CtaService(ctx, self._svc_notify, self._svc_owners)
        self._svc_strategy = StrategyService(ctx)
        self._svc_marks = MarkService(ctx)
        self._svc_inputs = InputService(ctx)
        self._svc_saved_views = SavedViewService(ctx)
        self._svc_rules = RulesService(
            ctx, self._svc_ctas, self._svc_overrides, self._svc_success_plans, self._svc_notify,
            self._svc_marks, self._svc_owners,
        )

    # ------------------------------------------------------------------ shared
    # config, snapshots, spec, store, wf, today, now, scores, with_overrides and account come
    # from Service, like in every service

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.ctx.clock

    def close(self) -> None:
        self.ctx.close()

    def audit(self, entity: str | None = None, entity_id: str | None = None) -> list[dict[str, Any]]:
        return self.ctx.audit(entity, entity_id)

    def audit_of(self, entity: str, entity_ids: list[str]) -> list[dict[str, Any]]:
        return self.ctx.audit_of(entity, entity_ids)

    # ------------------------------------------------------------------ access
    def add_user(
        self,
        name: str,
        role: str,
        *,
        team: str | None = None,
        email: str | None = None,
        actor: str = SYSTEM,
        password_hash: str | None = None,
    ) -> dict[str, Any]:
        return self._svc_access.add_user(
            name, role, team=team, email=email, actor=actor, password_hash=password_hash
        )

    def users(self) -> list[dict[str, Any]]:
        return self._svc_access.users()

    def user(self, name: str) -> dict[str, Any]:
        return self._svc_access.user(name)

    def set_password(self, name: str, password: str, *, actor: str) -> None:
        return self._svc_access.set_password(name, password, actor=actor)

    def check_password(self, name: str, password: str) -> dict[str, Any]:
        return self._svc_access.check_password(name, password)

    def update_user(
        self,
        name: str,
        *,
        actor: str,
        role: str | None = None,
        team: str | None = None,
        email: str | None = None,
        language: str | None = None,
    ) -> dict[str, Any]:
        return self._svc_access.update_user(
            name, actor=actor, role=role, team=team, email=email, language=language
        )

    def owners(self) -> dict[str, str | None]:
        return self._svc_owners.holders()

    def check_owners(self) -> None:
        self._svc_owners.check_rules()

    def teams(self) -> dict[str, str | None]:
        return self._svc_access.teams()

    def start_session(self, name: str, hours: int = SESSION_HOURS) -> tuple[str, str]:
        return self._svc_access.start_session(name, hours)

    def session_user(self, token: str) -> tuple[dict[str, Any], str]:
        return self._svc_access.session_user(token)

    def end_session(self, token: str) -> None:
        return self._svc_access.end_session(token)

    def create_token(self, user: str, label: str, *, actor: str) -> dict[str, Any]:
        return self._svc_access.create_token(user, label, actor=actor)

    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        return self._svc_access.tokens(user)

    def revoke_token(self, token_id: int, *, actor: str) -> dict[str, Any]:
        return self._svc_access.revoke_token(token_id, actor=actor)

    def token_user(self, token: str) -> dict[str, Any]:
        return self._svc_access.token_user(token)

    def require_act(self, user: dict[str, Any], account_id: str) -> None:
        return self._svc_access.require_act(user, account_id)

    # ------------------------------------------------------------------ notifications
    def set_preferences(
        self,
        user: str,
        *,
        actor: str,
        events: list[str] | None = None,
        webhook_url: str | None = None,
        email: str | None = None,
        digest: bool | None = None,
        channels: list[str] | None = None,
    ) -> dict[str, Any]:
        return self._svc_notify.set_preferences(
            user, actor=actor, events=events, webhook_url=webhook_url, email=email, digest=digest,
            channels=channels,
        )

    def notify_overdue(self) -> int:
        return self._svc_notify.notify_overdue()

    def flush_notifications(self) -> dict[str, int]:
        return self._svc_notify.flush_notifications()

    def send_digest(self) -> dict[str, int]:
        return self._svc_notify.send_digest()

    def notifications(self, user: str | None = None, *, after_id: int = 0,
                      status: str | None = None) -> list[dict[str, Any]]:
        return self._svc_notify.notifications(user, after_id=after_id, status=status)

    def last_notification_id(self) -> int:
        return self._svc_notify.last_notification_id()

    # ------------------------------------------------------------------ inbox
    def inbox(self, user: str, *, unread_only: bool = False, page: int = 1,
              per_page: int = 50) -> dict[str, Any]:
        return self._svc_inbox.inbox(user, unread_only=unread_only, page=page, per_page=per_page)

    def unread_count(self, user: str) -> int:
        return self._svc_inbox.unread_count(user)

    def mark_read(self, user: str, item_id: int) -> dict[str, Any]:
        return self._svc_inbox.mark_read(user, item_id)

    def mark_all_read(self, user: str) -> dict[str, Any]:
        return self._svc_inbox.mark_all_read(user)

    # ------------------------------------------------------------------ timeline
    def log(
        self, account_id: str, kind: str, text: str, *, actor: str, at: datetime | None = None
    ) -> dict[str, Any]:
        return self._svc_timeline.log(account_id, kind, text, actor=actor, at=at)

    def timeline(self, account_id: str, limit: int = 200) -> list[dict[str, Any]]:
        return self._svc_timeline.timeline(account_id, limit)

    # ------------------------------------------------------------------ module marks
    def mark_module(self, account_id: str, module: str, colour: str, *, actor: str,
                    reason_code: str, note: str, expires_on: date,
                    version: int | None = None) -> dict[str, Any]:
        return self._svc_marks.mark_module(account_id, module, colour, actor=actor,
                                           reason_code=reason_code, note=note,
                                           expires_on=expires_on, version=version)

    def clear_mark(self, account_id: str, module: str, *, actor: str,
                   note: str = "") -> dict[str, Any]:
        return self._svc_marks.clear_mark(account_id, module, actor=actor, note=note)

    def marks(self, account_id: str | None = None, active_only: bool = True) -> list[dict[str, Any]]:
        return self._svc_marks.marks(account_id, active_only)

    def modules(self, scorecard: str | None) -> dict[str, str]:
        return self._svc_marks.modules(scorecard)

    # ------------------------------------------------------------------ manual inputs
    def enter_value(self, account_id: str, measure: str, value: float, *, actor: str,
                    note: str = "") -> dict[str, Any]:
        return self._svc_inputs.enter_value(account_id, measure, value, actor=actor, note=note)

    def entered_values(self, account_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self._svc_inputs.entered_values(account_id, limit)

    def manual_measures(self) -> dict[str, dict[str, Any]]:
        return self._svc_inputs.manual_measures()

    # ------------------------------------------------------------------ saved views

    def save_view(self, owner: str, page: str, name: str, query: str) -> dict[str, Any]:
        return self._svc_saved_views.save_view(owner, page, name, query)

    def saved_views(self, owner: str, page: str | None = None) -> list[dict[str, Any]]:
        return self._svc_saved_views.saved_views(owner, page)

    def delete_view(self, owner: str, view_id: int) -> dict[str, Any]:
        return self._svc_saved_views.delete_view(owner, view_id)

    # ------------------------------------------------------------------ overrides
    def set_override(
        self,
        account_id: str,
        *,
        actor: str,
        reason_code: str,
        note: str,
        expires_on: date,
        band: str | None = None,
        score: float | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        return self._svc_overrides.set_override(
            account_id,
            actor=actor,
            reason_code=reason_code,
            note=note,
            expires_on=expires_on,
            band=band,
            score=score,
            version=version,
        )

    def clear_override(self, account_id: str, *, actor: str, note: str = "") -> dict[str, Any]:
        return self._svc_overrides.clear_override(account_id, actor=actor, note=note)

    def overrides(self, active_only: bool = True) -> list[dict[str, Any]]:
        return self._svc_overrides.overrides(active_only)

    def lapsing_overrides(self) -> list[int]:
        return self._svc_overrides.lapsing_overrides()

    def lapse(self, s: Session, override_id: int, actor: str) -> None:
        return self._svc_overrides.lapse(s, override_id, actor)

    def final(self, account_id: str, account: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._svc_overrides.final(account_id, account)

    def band_names(self) -> list[str]:
        return self._svc_overrides.band_names()

    def band_of(self, score: float | None) -> str | None:
        return self._svc_overrides.band_of(score)

    # ------------------------------------------------------------------ success plans
    def create_success_plan(
        self, account_id: str, *, actor: str, template: str | None = None, title: str | None = None
    ) -> dict[str, Any]:
        return self._svc_success_plans.create_success_plan(
            account_id, actor=actor, template=template, title=title
        )

    def plan_of(self, plan_id: int) -> dict[str, Any]:
        return self._svc_success_plans.plan_of(plan_id)

    def success_plans(self, account_id: str | None = None) -> list[dict[str, Any]]:
        return self._svc_success_plans.success_plans(account_id)

    def add_criterion(
        self, plan_id: int, measure: str, op: str, target: float, due_on: date, *, actor: str
    ) -> dict[str, Any]:
        return self._svc_success_plans.add_criterion(plan_id, measure, op, target, due_on, actor=actor)

    def add_milestone(self, plan_id: int, title: str, due_on: date | None, *, actor: str) -> dict[str, Any]:
        return self._svc_success_plans.add_milestone(plan_id, title, due_on, actor=actor)

    def add_goal(self, plan_id: int, title: str, *, actor: str, kind: str = "goal") -> dict[str, Any]:
        return self._svc_success_plans.add_goal(plan_id, title, actor=actor, kind=kind)

    def complete_milestone(self, plan_id: int, milestone_id: int, *, actor: str) -> dict[str, Any]:
        return self._svc_success_plans.complete_milestone(plan_id, milestone_id, actor=actor)

    def check_criteria(self, as_of: date | None = None) -> int:
        return self._svc_success_plans.check_criteria(as_of)

    def check_criteria_in(self, s: Session, as_of: date) -> int:
        return self._svc_success_plans.check_criteria_in(s, as_of)

    # ------------------------------------------------------------------ ctas
    def ctas(
        self,
        *,
        status: str | None = "open",
        account_id: str | None = None,
        owner: str | None = None,
        type: str | None = None,
        with_tasks: bool = True,
    ) -> list[dict[str, Any]]:
        return self._svc_ctas.ctas(status=status, account_id=account_id, owner=owner, type=type,
                                   with_tasks=with_tasks)

    def tasks_of(self, cta_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        return self._svc_ctas.tasks_of(cta_ids)

    def queue_owners(self, type: str | None = None, *, status: str = "open",
                     closed_since: date | None = None) -> dict[str | None, int]:
        return self._svc_ctas.queue_owners(type, status=status, closed_since=closed_since)

    def queue_page(self, where: QueueWhere, *, sort: str = "priority", desc: bool = False,
                   group: str | None = None, offset: int = 0,
                   limit: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        return self._svc_ctas.queue_page(where, sort=sort, desc=desc, group=group, offset=offset,
                                         limit=limit)

    def queue_rows(self, where: QueueWhere, *, sort: str = "priority", desc: bool = False,
                   group: str | None = None, offset: int = 0,
                   limit: int | None = None) -> list[dict[str, Any]]:
        return self._svc_ctas.queue_rows(where, sort=sort, desc=desc, group=group, offset=offset,
                                         limit=limit)

    def queue_columns(self, where: QueueWhere) -> dict[str, int]:
        return self._svc_ctas.queue_columns(where)

    def queue_keys(self, where: QueueWhere) -> list[dict[str, Any]]:
        return self._svc_ctas.queue_keys(where)

    def ctas_by_id(self, cta_ids: list[int]) -> list[dict[str, Any]]:
        return self._svc_ctas.ctas_by_id(cta_ids)

    def tasks_due(self, due_by: date, owners: frozenset[str] | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
        return self._svc_ctas.tasks_due(due_by, owners, limit)

    def cta_accounts(self, status: str = "open") -> dict[int, str]:
        return self._svc_ctas.cta_accounts(status)

    def open_cta_counts(self) -> dict[str, int]:
        return self._svc_ctas.open_cta_counts()

    def cta_status_counts(self) -> dict[str, int]:
        return self._svc_ctas.cta_status_counts()

    def cta(self, cta_id: int) -> dict[str, Any]:
        return self._svc_ctas.cta(cta_id)

    def open_cta(
        self,
        account_id: str,
        type: str,
        reason: str,
        *,
        actor: str,
        priority: str = "medium",
        owner: str | None = None,
        due_in: str | None = None,
        due_on: date | None = None,
        playbook: str | None = None,
        module: str | None = None,
        flagged: bool = False,
        rule: str | None = None,
    ) -> dict[str, Any]:
        return self._svc_ctas.open_cta(
            account_id,
            type,
            reason,
            actor=actor,
            priority=priority,
            owner=owner,
            due_in=due_in,
            due_on=due_on,
            playbook=playbook,
            module=module,
            flagged=flagged,
            rule=rule,
        )

    def open_in(
        self,
        s: Session,
        account: dict[str, Any],
        type: str,
        reason: str,
        *,
        actor: str,
        priority: str,
        owner: str | None,
        due: date,
        playbook: str | None,
        module: str | None,
        flagged: bool,
        rule: str | None,
    ) -> dict[str, Any]:
        return self._svc_ctas.open_in(
            s,
            account,
            type,
            reason,
            actor=actor,
            priority=priority,
            owner=owner,
            due=due,
            playbook=playbook,
            module=module,
            flagged=flagged,
            rule=rule,
        )

    def flag(self, account_id: str, reason: str, *, actor: str, priority: str = "high") -> dict[str, Any]:
        return self._svc_ctas.flag(account_id, reason, actor=actor, priority=priority)

    def close_cta(
        self,
        cta_id: int,
        outcome: str,
        *,
        actor: str,
        version: int | None = None,
        session: Session | None = None,
    ) -> dict[str, Any]:
        return self._svc_ctas.close_cta(cta_id, outcome, actor=actor, version=version, session=session)

    def snooze(
        self, cta_id: int, until: date, reason: str, *, actor: str, version: int | None = None,
        session: Session | None = None,
    ) -> dict[str, Any]:
        return self._svc_ctas.snooze(cta_id, until, reason, actor=actor, version=version, session=session)

    def assign(self, cta_id: int, owner: str, *, actor: str, version: int | None = None,
               session: Session | None = None) -> dict[str, Any]:
        return self._svc_ctas.assign(cta_id, owner, actor=actor, version=version, session=session)

    def set_priority(self, cta_id: int, priority: str, *, actor: str, version: int | None = None,
                     session: Session | None = None) -> dict[str, Any]:
        return self._svc_ctas.set_priority(cta_id, priority, actor=actor, version=version, session=session)

    def bulk(self, cta_ids: list[int], action: str, *, actor: str, **args: Any) -> dict[str, Any]:
        return self._svc_ctas.bulk(cta_ids, action, actor=actor, **args)

    def mark_critical(self, cta_id: int, *, actor: str, version: int | None = None) -> dict[str, Any]:
        return self._svc_ctas.mark_critical(cta_id, actor=actor, version=version)

    def decide(self, cta_id: int, decision: str, *, actor: str, version: int | None = None) -> dict[str, Any]:
        return self._svc_ctas.decide(cta_id, decision, actor=actor, version=version)

    def escalate(
        self,
        cta_id: int,
        *,
        actor: str,
        to: str | None = None,
        note: str = "",
        version: int | None = None,
        automatic: bool = False,
        session: Session | None = None,
    ) -> dict[str, Any]:
        return self._svc_ctas.escalate(
            cta_id, actor=actor, to=to, note=note, version=version, automatic=automatic, session=session
        )

    def escalations(self, cta_id: int) -> list[dict[str, Any]]:
        return self._svc_ctas.escalations(cta_id)

    def comment(self, cta_id: int, text: str, *, actor: str) -> dict[str, Any]:
        return self._svc_ctas.comment(cta_id, text, actor=actor)

    def comments(self, cta_id: int) -> list[dict[str, Any]]:
        return self._svc_ctas.comments(cta_id)

    def overdue_to_escalate(self) -> list[int]:
        return self._svc_ctas.overdue_to_escalate()

    def complete_task(
        self, task_id: int, *, actor: str, version: int | None = None, skip: bool = False
    ) -> dict[str, Any]:
        return self._svc_ctas.complete_task(task_id, actor=actor, version=version, skip=skip)

    def task_links(self, task_id: int) -> tuple[int | None, int | None]:
        return self._svc_ctas.task_links(task_id)

    def tasks(self, owner: str | None = None, status: str = "open",
              due_by: date | None = None) -> list[dict[str, Any]]:
        return self._svc_ctas.tasks(owner, status, due_by)

    def review_list(self) -> list[dict[str, Any]]:
        return self._svc_ctas.review_list()

    def review_marks(self) -> list[dict[str, Any]]:
        return self._svc_marks.review_marks()

    # ------------------------------------------------------------------ strategy
    def quadrants(self) -> dict[str, Any]:
        return self._svc_strategy.quadrants()

    def score_ranges(self) -> list[dict[str, Any]]:
        return self._svc_strategy.score_ranges()

    # ------------------------------------------------------------------ rules
    def facts(self, as_of: date | None = None, scores: pd.DataFrame | None = None) -> pd.DataFrame:
        return self._svc_rules.facts(as_of, scores)

    def matches(self, frame: pd.DataFrame) -> dict[str, set[str]]:
        return self._svc_rules.matches(frame)

    def plan(self, as_of: date | None = None, scores: pd.DataFrame | None = None) -> Plan:
        return self._svc_rules.plan(as_of, scores)

    def apply(self, plan: Plan, *, actor: str = SYSTEM) -> dict[str, Any]:
        return self._svc_rules.apply(plan, actor=actor)

    def plan_and_apply(self, as_of: date | None = None, *, actor: str = SYSTEM,
                       attempts: int = 5) -> dict[str, Any]:
        return self._svc_rules.plan_and_apply(as_of, actor=actor, attempts=attempts)


__all__ = ["Plan", "Session", "Workflow"]
