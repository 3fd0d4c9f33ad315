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
from healthscore.entities import ENTITIES, Entity, with_attributes

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


# ----------------------------------------------------------------------------- measures
# One frozen class per measure type, built from its spec by config/resolve.py: the engine
# (measures/, scoring/) reads these typed fields only. A new type is its Spec class in
# specs.py, its class here (keys named as the spec's are copied from it) and its line in
# MEASURE_TYPES, its compiler in measures/build.py (COMPILERS) and its line in the docs.


@dataclass(frozen=True, kw_only=True)
class Measure:
    name: str
    type: str
    file: str
    spec: Any  # what it was written as: the version hash covers it; the engine never reads it
    description: str = ""
    label: str | None = None  # the YAML label (its English text, of a mapping); None: the name
    labels: tuple[tuple[str, str], ...] = ()  # the label per language, when given so
    category: str | None = None
    scheme: Scheme | None = None
    missing: str | float = "skip"
    window: Window = ALL_TIME  # over the rows it reads (all time for a derived measure)
    entity: str | None = None  # an entity measure's; None for the others (attribute and
    # tenure read the accounts on the spine: see measure_entity)
    depends_on: tuple[str, ...] = ()  # the measures it is made of


@dataclass(frozen=True, kw_only=True)
class EntityMeasure(Measure):
    """A measure over an entity's rows, dated by ``time`` (default the entity's)."""

    entity: str
    filter: str | None = None
    case_sensitive: bool = False  # text in the filter matches 'Login' and 'login' alike
    time: str | None = None


@dataclass(frozen=True, kw_only=True)
class RowsMeasure(EntityMeasure):
    """A measure over rows dated in its window, or (mode open) the rows open on the date."""

    mode: str = "events"  # events: rows dated in the window; open: rows open on the date
    open_from: str | None = None
    open_after_days: int = 0


@dataclass(frozen=True, kw_only=True)
class Count(RowsMeasure):
    pass


@dataclass(frozen=True, kw_only=True)
class CountDistinct(EntityMeasure):
    column: str


@dataclass(frozen=True, kw_only=True)
class Aggregate(RowsMeasure):
    """sum, avg, min or max of a column."""

    column: str


@dataclass(frozen=True, kw_only=True)
class Latest(EntityMeasure):
    column: str


@dataclass(frozen=True, kw_only=True)
class DaysSince(EntityMeasure):
    column: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ratio(Measure):
    numerator: str  # a measure, or accounts.COLUMN
    denominator: str


@dataclass(frozen=True, kw_only=True)
class Change(Measure):
    of: str
    to: str = "percent"  # percent | absolute


@dataclass(frozen=True, kw_only=True)
class Tenure(Measure):
    unit: str = "days"  # days | months | years


@dataclass(frozen=True, kw_only=True)
class Attribute(Measure):
    column: str  # of accounts


@dataclass(frozen=True, kw_only=True)
class Manual(Measure):
    stored_as: str  # the name its values are entered under (the spec's 'name', or its own)
    max_age_days: int = 0
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, kw_only=True)
class Expression(Measure):
    expr: str


# measure type -> its resolved class
MEASURE_TYPES: dict[str, type[Measure]] = {
    "count": Count, "count_distinct": CountDistinct,
    "sum": Aggregate, "avg": Aggregate, "min": Aggregate, "max": Aggregate,
    "latest": Latest, "days_since": DaysSince, "ratio": Ratio, "change": Change,
    "tenure": Tenure, "attribute": Attribute, "manual": Manual, "expression": Expression,
}


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
class Band:
    name: str
    min: float
    color: str


@dataclass(frozen=True)
class Group:
    name: str
    path: str  # dotted path from the scorecard root, e.g. "usage.adoption"
    weight: float  # percent of its parent, as written
    label: str  # the YAML label (its English text, of a mapping), else the name humanised
    entries: tuple[Entry, ...] = ()
    groups: tuple[Group, ...] = ()
    colour: str = "score"  # score | ctas | worst
    bands: tuple[Band, ...] = ()  # the bands of its colour: score
    red_at_ctas: int | None = None  # this many open CTAs on the module make it red
    labels: tuple[tuple[str, str], ...] = ()  # the label per language, when given so

    def walk(self) -> list[Group]:
        out = [self]
        for g in self.groups:
            out.extend(g.walk())
        return out

    def all_entries(self) -> list[Entry]:
        return [e for g in self.walk() for e in g.entries]


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
    overall: str = "weighted"  # weighted | worst_module | count
    count_red: int = 2  # overall: count - this many red modules make the account red
    count_yellow: int = 1  # ... and this many modules not green make it yellow

    @property
    def modules(self) -> tuple[Group, ...]:
        """The top-level groups: seed 002's modules, each with a colour."""
        return self.groups

    def colour_names(self) -> tuple[str, str, str]:
        """(red, yellow, green) in the scorecard's band names: the lowest band, the one below
        the top and the top (seed 002's three colours on any bands)."""
        names = [b.name for b in self.bands]
        return names[0], names[-2] if len(names) > 1 else names[0], names[-1]

    def band_from_modules(self, colours: list[str | None]) -> str:
        """The account's band under ``overall: worst_module`` or ``count`` from its modules'
        colours (the snapshot's rule, for a mark set since the snapshot was scored)."""
        names = [b.name for b in self.bands]
        present = [c for c in colours if isinstance(c, str) and c in names]
        if not present:
            return INSUFFICIENT
        if self.overall == "worst_module":
            return min(present, key=names.index)
        red, yellow, green = self.colour_names()
        if sum(c == red for c in present) >= self.count_red:
            return red
        if sum(c != green for c in present) >= self.count_yellow:
            return yellow
        return green

    def group_bands(self, g: Group) -> tuple[Band, ...]:
        return g.bands or self.bands

    def uses_ctas(self) -> bool:
        return any(g.colour != "score" for g in self.all_groups())

    def all_groups(self) -> list[Group]:
        return [g for root in self.groups for g in root.walk()]

    def all_entries(self) -> list[Entry]:
        return [e for g in self.all_groups() for e in g.entries]

    def definition(self, measures: dict[str, Measure]) -> dict[str, Any]:
        """The resolved definition, measures included: what the version hash covers."""
        body = {k: v for k, v in asdict(self).items() if k != "file"}
        _drop_defaults(body)
        body["measure_specs"] = {
            m: measures[m].spec.model_dump(mode="json", exclude={"label"}) for m in sorted(self.measures)
        }
        return body

    def version(self, measures: dict[str, Measure]) -> str:
        text = json.dumps(self.definition(measures), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


_COLOUR_DEFAULTS = {"colour": "score", "bands": (), "red_at_ctas": None}
_OVERALL_DEFAULTS = {"overall": "weighted", "count_red": 2, "count_yellow": 1}


def _drop_defaults(body: dict[str, Any]) -> None:
    """Leave out colour settings at their defaults: a scorecard that uses none keeps the
    version it had before module colours existed."""
    for k, v in _OVERALL_DEFAULTS.items():
        if body.get(k) == v:
            body.pop(k)

    def walk(groups: Any) -> None:
        for g in groups:
            for k, v in _COLOUR_DEFAULTS.items():
                if k in g and (g[k] == v or (k == "bands" and not g[k])):
                    g.pop(k)
            g.pop("labels", None)  # how it is shown in other languages: not how it scores
            walk(g.get("groups", ()))

    walk(body.get("groups", ()))


@dataclass(frozen=True)
class Source:
    entity: str
    spec: specs.SourceSpec
    location: str  # absolute path or URL (with its password: only for connecting)
    format: str
    stale_after_days: int | None
    attributes: tuple[tuple[str, str], ...] = ()  # the project's own account columns, typed

    @property
    def definition(self) -> Entity:
        """The entity the source maps onto, with the project's own attributes (accounts and
        account_history)."""
        return with_attributes(ENTITIES[self.entity], dict(self.attributes))

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
    spark: specs.SparkSpec = field(default_factory=specs.SparkSpec)  # where engine: spark runs
    keep_days: int | None = None  # history.keep: older snapshots are removed by 'daily'
    # what the workflow store holds that scoring reads whether listed as sources or not: the
    # CSMs' module marks, the CTAs (when a group is coloured by them) and the values CSMs
    # enter for manual measures (beside any manual_values file)
    store_sources: dict[str, Source] = field(default_factory=dict)

    @property
    def attributes(self) -> tuple[str, ...]:
        """The project's own account columns (sources.accounts.attributes), by name."""
        return tuple(name for name, _ in self.sources["accounts"].attributes)

    def entity(self, name: str) -> Entity:
        """An entity as this project reads it (accounts with its own attributes)."""
        source = self.sources.get(name)
        return source.definition if source is not None else ENTITIES[name]

    @property
    def all_scorecards(self) -> tuple[Scorecard, ...]:
        return self.scorecards + self.also

    def rule_names(self) -> list[str]:
        """What rules may read besides the fixed facts: every scored measure, and each group's
        colour and score as ``module.PATH`` and ``group_score.PATH``."""
        scored = {m for sc in self.all_scorecards for m in sc.measures}
        paths = self.group_paths()
        return sorted(scored | {f"module.{p}" for p in paths}
                      | {f"group_score.{p}" for p in paths})

    def group_paths(self) -> list[str]:
        """Every group (module) of every scorecard, by path: what a CTA's module may name."""
        return sorted({g.path for sc in self.all_scorecards for g in sc.all_groups()})

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
