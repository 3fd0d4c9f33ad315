"""Resolved domain objects: what the engine and the surfaces work with.

These are plain frozen dataclasses built by :mod:`healthscore.config.resolve` from the specs;
references are bound, windows parsed and weights normalised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from healthscore.config import specs
from healthscore.config.secrets import redact_url

Scheme = specs.Scheme


@dataclass(frozen=True)
class Window:
    """A look-back window: ``days`` or calendar ``months`` (a quarter is 3 months)."""

    days: int = 0
    months: int = 0
    label: str = "all"

    @property
    def unbounded(self) -> bool:
        return self.days == 0 and self.months == 0


ALL_TIME = Window()


@dataclass(frozen=True)
class Measure:
    name: str
    type: str
    spec: Any  # the MeasureSpec it came from
    file: str
    window: Window = ALL_TIME
    open_after_days: int = 0
    max_age_days: int = 0
    depends_on: tuple[str, ...] = ()

    @property
    def entity(self) -> str | None:
        return getattr(self.spec, "entity", None)

    @property
    def scheme(self) -> Scheme | None:
        return self.spec.scheme  # type: ignore[no-any-return]

    @property
    def description(self) -> str:
        return str(self.spec.description)


def measure_entity(spec: Any) -> str | None:
    """The entity whose rows a measure reads (account columns for attribute and tenure;
    None for a measure made of other measures)."""
    if getattr(spec, "entity", None):
        return str(spec.entity)
    return "accounts" if spec.type in ("attribute", "tenure") else None


def columns_read(spec: Any) -> list[str]:
    """The data columns a measure reads: what places a row in time (and closes an open row),
    the column it aggregates and the columns its filter names."""
    from healthscore.config.expressions import columns, parse
    from healthscore.entities import ENTITIES

    name = measure_entity(spec)
    if name is None:
        return []
    entity = ENTITIES[name]
    cols = [getattr(spec, "time", None) or entity.time, getattr(spec, "open_from", None)]
    cols += [entity.end] if getattr(spec, "mode", "events") == "open" else []
    cols += [getattr(spec, "column", None)]
    if getattr(spec, "filter", None):
        cols += columns(parse(spec.filter))
    if name == "accounts":
        cols += ["start_date"]
    return [c for c in dict.fromkeys(cols) if c]


@dataclass(frozen=True)
class Entry:
    """A measure's place in a scorecard group."""

    measure: str
    weight: float  # percent of its parent group, as written
    scheme: Scheme
    missing: str | float  # "skip" or a fixed score


@dataclass(frozen=True)
class Group:
    name: str
    path: str  # dotted path from the scorecard root, e.g. "usage.adoption"
    weight: float  # percent of its parent, as written
    label: str
    entries: tuple[Entry, ...] = ()
    groups: tuple[Group, ...] = ()

    def walk(self) -> list[Group]:
        out = [self]
        for g in self.groups:
            out.extend(g.walk())
        return out

    def all_entries(self) -> list[Entry]:
        return [e for g in self.walk() for e in g.entries]


@dataclass(frozen=True)
class Band:
    name: str
    min: float
    color: str


INSUFFICIENT = "insufficient data"

DEFAULT_BANDS = (
    Band("red", 0, "#d64545"),
    Band("yellow", 40, "#e0a800"),
    Band("green", 70, "#2f9e44"),
)


@dataclass(frozen=True)
class Grade:
    grade: str
    min: float


@dataclass(frozen=True)
class Scorecard:
    name: str
    file: str
    description: str
    when: str | None
    min_coverage: float
    bands: tuple[Band, ...]
    grades: tuple[Grade, ...]
    groups: tuple[Group, ...]
    measures: tuple[str, ...] = field(default=())

    def all_groups(self) -> list[Group]:
        return [g for root in self.groups for g in root.walk()]

    def all_entries(self) -> list[Entry]:
        return [e for g in self.all_groups() for e in g.entries]

    def definition(self, measures: dict[str, Measure]) -> dict[str, Any]:
        """The resolved definition, measures included: what the version hash covers."""
        body = {k: v for k, v in asdict(self).items() if k != "file"}
        body["measure_specs"] = {
            m: measures[m].spec.model_dump(mode="json") for m in sorted(self.measures)
        }
        return body

    def version(self, measures: dict[str, Measure]) -> str:
        text = json.dumps(self.definition(measures), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Source:
    entity: str
    spec: specs.SourceSpec
    location: str  # absolute path or URL (with its password: only for connecting)
    format: str
    stale_after_days: int | None

    @property
    def shown(self) -> str:
        """The location as people may see it: a URL's password hidden."""
        return redact_url(self.location)


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    name: str
    engine: str
    state_dir: Path
    sources: dict[str, Source]
    measures: dict[str, Measure]
    scorecards: tuple[Scorecard, ...]  # primary candidates, in order; the last is the default
    also: tuple[Scorecard, ...]
    settings: specs.SettingsSpec
    validation: specs.ValidationSpec = field(default_factory=specs.ValidationSpec)
    workflow: specs.WorkflowSpec = field(default_factory=specs.WorkflowSpec)
    keep_days: int | None = None  # history.keep: older snapshots are removed by 'daily'

    @property
    def all_scorecards(self) -> tuple[Scorecard, ...]:
        return self.scorecards + self.also

    def used_measures(self) -> list[str]:
        """Every measure any scorecard needs, dependencies first."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for dep in self.measures[name].depends_on:
                visit(dep)
            order.append(name)

        for sc in self.all_scorecards:
            for m in sc.measures:
                visit(m)
        return order
