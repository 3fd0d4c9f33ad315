"""Load the workflow's YAML: rules, playbooks and success-plan templates, built-ins included."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from healthscore.config.errors import raise_config_error
from healthscore.config.expressions import ExpressionError, column_name, parse
from healthscore.config.load import read_yaml
from healthscore.config.specs import DEFAULT_OWNERS, OwnerSpec, WorkflowSpec
from healthscore.config.windows import parse_days
from healthscore.errors import ConfigError
from healthscore.workflow.specs import PlanTemplateSpec, PlaybookSpec, RuleSpec

LIBRARY = Path(__file__).parent / "library"
M = TypeVar("M", bound=BaseModel)
# names a rule can use besides the measures
FACTS = ("score", "band", "previous_band", "coverage", "grade", "scorecard", "change_7d",
         "change_30d", "change_90d", "segment", "industry", "csm", "lifecycle_stage", "arr",
         "open_ctas", "flagged")


@dataclass(frozen=True)
class WorkflowConfig:
    rules: dict[str, tuple[RuleSpec, str]]
    playbooks: dict[str, PlaybookSpec]
    templates: dict[str, PlanTemplateSpec]
    owners: dict[str, OwnerSpec]  # owner name -> who holds it (defaults + workflow.owners)


def _load_folder(root: Path, folder: str, model: type[M], builtin: str | None) -> dict[str, tuple[M, str]]:
    out: dict[str, tuple[M, str]] = {}
    files = [(LIBRARY / builtin, f"(built-in {folder})")] if builtin else []
    files += [(f, f.relative_to(root).as_posix()) for f in sorted((root / folder).glob("*.y*ml"))]
    for path, rel in files:
        data = read_yaml(path, rel) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{rel}: (top level): must be a mapping of names to definitions.")
        for name, body in data.items():
            try:
                out[str(name)] = (model.model_validate(body), rel)
            except ValidationError as err:
                raise_config_error(rel, err, prefix=str(name))
    return out


def load_workflow(root: Path, measures: list[str], spec: WorkflowSpec | None = None) -> WorkflowConfig:
    spec = spec or WorkflowSpec()
    rules = _load_folder(root, "rules", RuleSpec, None)
    books = _load_folder(root, "playbooks", PlaybookSpec, "playbooks.yml")
    playbooks = {k: v for k, (v, _) in books.items()}
    loaded = _load_folder(root, "success_plans", PlanTemplateSpec, "success_plans.yml")
    templates = {k: v for k, (v, _) in loaded.items()}
    known = set(FACTS) | set(measures)
    for name, (rule, rel) in rules.items():
        _check_rule(name, rule, rel, known, playbooks)
        if rule.touch != "all" and spec.high_touch is None:
            raise ConfigError(f"{rel}: {name}.touch: {rule.touch!r} needs the large-customer line: "
                              f"set workflow.high_touch in healthscore.yml (e.g. \"arr >= 100000\"), "
                              f"or drop touch.")
    if spec.high_touch is not None:
        _check_condition(spec.high_touch, "healthscore.yml: workflow.high_touch", known)
    for name, (tpl, rel) in loaded.items():
        for i, c in enumerate(tpl.criteria):
            if c.measure not in measures and not rel.startswith("(built-in"):
                raise ConfigError(
                    f"{rel}: {name}.criteria: unknown measure {c.measure!r}. "
                    f"Use a measure of the project's scorecards.")
            _duration(c.due_in, f"{rel}: {name}.criteria[{i}].due_in")
        for i, m in enumerate(tpl.milestones):
            _duration(m.due_in, f"{rel}: {name}.milestones[{i}].due_in")
    owners = {**DEFAULT_OWNERS, **spec.owners}
    _check_owners(owners, _owner_uses(spec, rules, books, loaded))
    return WorkflowConfig(rules, playbooks, templates, owners)


def _owner_uses(spec: WorkflowSpec, rules: dict[str, tuple[RuleSpec, str]],
                books: dict[str, tuple[PlaybookSpec, str]],
                plans: dict[str, tuple[PlanTemplateSpec, str]]) -> list[tuple[str, str]]:
    """Every owner name the workflow's YAML uses, with where it is written."""
    uses = [(name, f"healthscore.yml: workflow.escalation[{i}]") for i, name in enumerate(spec.escalation)]
    uses += [(name, f"healthscore.yml: workflow.departments[{i}]") for i, name in enumerate(spec.departments)]
    uses += [(rule.cta.owner, f"{rel}: {name}.cta.owner") for name, (rule, rel) in rules.items()]
    for folder in (books, plans):
        for name, (body, rel) in folder.items():
            uses += [(t.role, f"{rel}: {name}.tasks[{i}].role") for i, t in enumerate(body.tasks)]
    return uses


def _check_owners(owners: dict[str, OwnerSpec], uses: list[tuple[str, str]]) -> None:
    known = ["csm", *sorted(owners)]
    for name, where in uses:
        if name not in known:
            raise ConfigError(f"{where}: no owner named {name!r}, so its work would go to nobody. "
                              f"Owners: {', '.join(known)}. Declare it in healthscore.yml: "
                              f"workflow: {{owners: {{{name}: {{user: NAME}}}}}} (or team: TEAM, "
                              f"or role: lead).")


def _duration(text: str, where: str) -> None:
    try:
        parse_days(text)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_condition(text: str, where: str, known: set[str]) -> None:
    try:
        tree = parse(text)
    except ExpressionError as err:
        raise ConfigError(f"{where}: {err}") from None
    from sqlglot import exp

    unknown = sorted({column_name(c) for c in tree.find_all(exp.Column)} - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown name {unknown[0]!r} in {text!r}. Use a measure of "
            f"the project's scorecards, module.GROUP (its colour), group_score.GROUP or one "
            f"of: {', '.join(FACTS)}."
        )


def _check_rule(name: str, rule: RuleSpec, rel: str, known: set[str], playbooks: dict[str, Any]) -> None:
    _check_condition(rule.when, f"{rel}: {name}.when", known)
    module = rule.cta.module
    groups = sorted(k.removeprefix("module.") for k in known if k.startswith("module."))
    if module is not None and groups and module not in groups:
        raise ConfigError(f"{rel}: {name}.cta.module: no group {module!r} in the project's "
                          f"scorecards: the CTA would colour no module. Groups: "
                          f"{', '.join(groups)}.")
    if rule.cta.playbook and rule.cta.playbook not in playbooks:
        raise ConfigError(f"{rel}: {name}.cta.playbook: no playbook named {rule.cta.playbook!r}. "
                          f"Playbooks: {', '.join(sorted(playbooks))}.")
    try:
        parse_days(rule.cta.due_in)
    except ValueError as err:
        raise ConfigError(f"{rel}: {name}.cta.due_in: {err}") from None
