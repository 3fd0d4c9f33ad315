"""YAML specs of the workflow: rules (``rules/*.yml``), playbooks (``playbooks/*.yml``) and
success-plan templates (``success_plans/*.yml``). Built-in playbooks and templates ship in
``workflow/library/``; a project's own file of the same name wins."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

CtaType = Literal["risk", "opportunity", "lifecycle", "activity"]
Priority = Literal["low", "medium", "high", "critical"]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CtaSpec(Spec):
    type: CtaType
    reason: str
    priority: Priority = "medium"
    owner: str = "csm"  # "csm" (the account's CSM), a role (lead, vp_cs...), or a user name
    due_in: str = "7d"
    playbook: str | None = None
    module: str | None = None  # the risk module whose colour this CTA sets


class RuleSpec(Spec):
    description: str = ""
    when: str
    cta: CtaSpec
    close_when_clear: bool = True  # close the rule's open CTA once the condition no longer holds
    # which accounts of the workflow.high_touch line the rule serves: all, those below it (low,
    # where rules raise CTAs automatically) or those above it (high)
    touch: Literal["all", "low", "high"] = "all"


class TaskTemplateSpec(Spec):
    title: str
    offset_days: Annotated[int, Field(ge=0, le=3650)] = 0
    role: str = "csm"
    instructions: str = ""
    side: Literal["ours", "customer"] = "ours"


class PlaybookSpec(Spec):
    description: str = ""
    cta_type: CtaType = "risk"
    tasks: list[TaskTemplateSpec] = Field(min_length=1)


class CriterionTemplateSpec(Spec):
    measure: str
    op: Literal[">=", "<=", ">", "<", "="] = ">="
    target: float
    due_in: str = "90d"


class MilestoneTemplateSpec(Spec):
    title: str
    due_in: str = "30d"


class PlanTemplateSpec(Spec):
    """The ten elements of a success plan."""

    description: str = ""
    goals: list[str] = Field(default_factory=list)
    initiatives: list[str] = Field(default_factory=list)
    milestones: list[MilestoneTemplateSpec] = Field(default_factory=list)
    tasks: list[TaskTemplateSpec] = Field(default_factory=list)
    criteria: list[CriterionTemplateSpec] = Field(default_factory=list)
    roles: dict[str, str] = Field(default_factory=dict)
    reporting: dict[str, str] = Field(default_factory=dict)  # cadence, audience
    communication: list[str] = Field(default_factory=list)
    education: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
