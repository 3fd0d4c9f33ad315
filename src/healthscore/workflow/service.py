"""`Workflow`: one object for everything people do with the scores."""

from __future__ import annotations

from healthscore.workflow.access import AccessMixin
from healthscore.workflow.ctas import CtaMixin
from healthscore.workflow.notify import NotifyMixin
from healthscore.workflow.overrides import OverrideMixin
from healthscore.workflow.plans import PlanMixin
from healthscore.workflow.rules import Plan, RulesMixin
from healthscore.workflow.strategy import StrategyMixin
from healthscore.workflow.timeline import TimelineMixin


class Workflow(AccessMixin, NotifyMixin, RulesMixin, CtaMixin, OverrideMixin, PlanMixin, StrategyMixin,
               TimelineMixin):
    """CTAs, playbooks, escalation, overrides, success plans, timeline and notifications over
    one store (SQLite in the project by default, PostgreSQL for a team)."""


__all__ = ["Plan", "Workflow"]
