"""Raw YAML specs: strict, frozen pydantic models that mirror the files one to one.

Only :mod:`healthscore.config.resolve` turns these into the domain objects the engine uses.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Number = Annotated[float, Field(allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- sources


class SourceSpec(Spec):
    path: str | None = None
    url: str | None = None
    format: Literal["csv", "parquet", "excel", "duckdb", "sql", "query", "workflow"] | None = None
    table: str | None = None
    query: str | None = None
    sheet: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    refresh: str | None = None
    stale_after: str | None = None
    encoding: str | None = None  # of a CSV file (default UTF-8), e.g. latin-1, cp1252, utf-16
    max_rejected_share: Annotated[float, Field(ge=0, le=1)] | None = None
    max_rejected_rows: Annotated[int, Field(ge=0)] | None = None
    # accounts only: the project's own columns kept as attributes, each with its type
    attributes: dict[str, Literal["string", "int", "float", "bool", "date"]] = Field(
        default_factory=dict)


MEMORY = r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$"


class SettingsSpec(Spec):
    min_coverage: Percent = 50
    max_rejected_share: Annotated[float, Field(ge=0, le=1)] = 0.05
    max_rejected_rows: Annotated[int, Field(ge=0)] | None = None  # a count limit as well
    memory_limit: Annotated[str, Field(pattern=MEMORY)] = "1500MB"  # spliced into SET: checked
    max_rows_per_pass: Annotated[int, Field(ge=1000)] = 3_000_000
    threads: Annotated[int, Field(ge=1, le=256)] | None = None
    renewal_grace_days: Annotated[int, Field(ge=0)] = 7
    source_cache: bool = True  # keep clean tables of unchanged file sources between runs


class ChurnSpec(Spec):
    """Churn without contracts: an account churns once it has had no activity (no row of
    ``entity``, or none matching ``filter``) for ``inactive_for``."""

    inactive_for: str
    entity: str = "usage_events"
    filter: str | None = None


class ValidationSpec(Spec):
    """Defaults for `healthscore validate`; the command's options override them."""

    outcome: Literal["churn", "renewal", "expansion"] = "churn"
    horizon: str = "90d"
    lead: str = "0d"
    every: Literal["day", "week", "month"] = "month"
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    observed_until: date | None = None
    segment_by: str = "segment"
    review_every: str = "90d"
    folds: Annotated[int, Field(ge=2, le=20)] = 4
    bootstrap: Annotated[int, Field(ge=0, le=5000)] = 200
    seed: int = 0
    churn: ChurnSpec | None = None  # churn as inactivity (no contracts), instead of churn dates


class NotifySpec(Spec):
    """Where notifications go: a Slack-compatible webhook (per user, or this default) and SMTP."""

    webhook: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "healthscore@localhost"


class RangeSpec(Spec):
    min: Percent
    name: str
    move: str


DEFAULT_RANGES = [
    RangeSpec(min=0, name="rescue", move="Executive call this week and a recovery success plan."),
    RangeSpec(min=40, name="stabilise", move="Find the weakest group and fix it; agree a plan."),
    RangeSpec(min=70, name="grow", move="Drive adoption of unused modules; look for expansion."),
    RangeSpec(min=85, name="advocate", move="Ask for a referral, a review or a case study."),
]


class OwnerSpec(Spec):
    """Who holds an owner name that rules, playbooks, success plans and escalation use: one
    user, a team (its lead, else its first member) or an app role (the holder in the account's
    CSM's team, else the first one)."""

    user: str | None = None
    team: str | None = None
    role: Literal["admin", "lead", "csm"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> OwnerSpec:
        given = [k for k in ("user", "team", "role") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of user, team or role, e.g. {team: finance}. "
                             f"Got {', '.join(given) or 'none'}")
        return self


# the owner names the built-in playbooks, templates and escalation chain use; 'csm' (the
# account's CSM) is built in and needs no entry
DEFAULT_OWNERS = {
    "lead": OwnerSpec(role="lead"),
    "vp_cs": OwnerSpec(role="admin"),
    "ceo": OwnerSpec(role="admin"),
    "finance": OwnerSpec(team="finance"),
    "sales": OwnerSpec(team="sales"),
    "support": OwnerSpec(team="support"),
    "product": OwnerSpec(team="product"),
}


class WorkflowSpec(Spec):
    url: str | None = None  # default: a SQLite file in the state folder
    owners: dict[str, OwnerSpec] = Field(default_factory=dict)  # added to / replacing DEFAULT_OWNERS
    # the large-customer line (a condition over the rules' facts, e.g. "arr >= 100000"): above
    # it CSMs raise CTAs from success-plan objectives, so rules with 'touch: low' skip it
    high_touch: str | None = None
    escalation: list[str] = Field(default_factory=lambda: ["csm", "lead", "vp_cs", "ceo"])
    departments: list[str] = Field(default_factory=lambda: ["support", "product", "finance"])
    escalate_after_days: Annotated[int, Field(ge=1)] | None = 7
    cooldown_days: Annotated[int, Field(ge=0)] = 14
    notifications: NotifySpec = NotifySpec()
    temperature: str | None = None  # the business-outcome measure (GMV, closed leads...)
    maturity: list[str] = Field(default_factory=lambda: ["tenure_months", "module_adoption",
                                                         "features_used_90d"])
    healthy_from: Percent = 70  # score at which health counts as high in the quadrants
    score_ranges: list[RangeSpec] = Field(default_factory=lambda: list(DEFAULT_RANGES))


class HistorySpec(Spec):
    keep: str | None = None  # how long stored snapshots are kept (e.g. 400d); default forever


# a Spark master URL: local[N], a standalone cluster (several masters: comma-separated), YARN
# or Kubernetes; and a Spark Connect server
SPARK_MASTER = r"^(local(\[(\d+|\*)(,\d+)?\])?|spark://[^\s/]+|yarn|k8s://\S+)$"
SPARK_REMOTE = r"^sc://[^\s/:;]+(:\d+)?(/\S*)?$"
SPARK_MEMORY = r"(?i)^\d+\s*(k|m|g|t)b?$"  # what Spark reads: a whole number and a unit
# set by healthscore whatever the project says: its dates are UTC, and a bad cast gives null
SPARK_FIXED = ("spark.sql.session.timeZone", "spark.sql.ansi.enabled")
# what has its own key in the spark: section
SPARK_OWN_KEYS = {"spark.master": "master: ...", "spark.remote": "remote: ...",
                  "spark.driver.memory": "driver_memory: ...",
                  "spark.executor.memory": "executor: {memory: ...}",
                  "spark.executor.cores": "executor: {cores: ...}",
                  "spark.executor.instances": "executor: {instances: ...}"}


class ExecutorSpec(Spec):
    memory: Annotated[str, Field(pattern=SPARK_MEMORY)] | None = None  # spark.executor.memory
    cores: Annotated[int, Field(ge=1, le=1024)] | None = None  # spark.executor.cores
    instances: Annotated[int, Field(ge=1, le=100_000)] | None = None  # spark.executor.instances


class SparkSpec(Spec):
    """Where ``engine: spark`` runs: a ``master`` (default: ``local[threads]`` in this process)
    or a Spark Connect server (``remote``), with the executors' size and any other Spark
    settings (``conf``, passed to the session as they are)."""

    master: Annotated[str, Field(pattern=SPARK_MASTER)] | None = None
    remote: Annotated[str, Field(pattern=SPARK_REMOTE)] | None = None
    driver_memory: Annotated[str, Field(pattern=SPARK_MEMORY)] = "2g"
    executor: ExecutorSpec = ExecutorSpec()
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("conf")
    @classmethod
    def _spark_keys(cls, conf: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
        for key in conf:
            if key in SPARK_OWN_KEYS:
                raise ValueError(f"'{key}' has its own key: write '{SPARK_OWN_KEYS[key]}' under "
                                 f"spark: instead. Got {key!r}")
            if key in SPARK_FIXED:
                raise ValueError(f"'{key}' is set by healthscore (dates are UTC, a bad cast gives "
                                 f"no value): remove it. Got {key!r}")
            if not key.startswith("spark."):
                raise ValueError(f"keys are Spark settings, which start with 'spark.'. Got {key!r}")
        return conf

    @model_validator(mode="after")
    def _one_place(self) -> SparkSpec:
        if self.master is not None and self.remote is not None:
            raise ValueError("give exactly one of 'master' (e.g. spark://host:7077) or 'remote' "
                             "(Spark Connect, e.g. sc://host:15002). Got both")
        if self.remote is not None and self.executor != ExecutorSpec():
            raise ValueError("the Spark Connect server sizes its executors: remove 'executor', "
                             "or give 'master' instead of 'remote'. Got remote and executor")
        return self

    @property
    def settings(self) -> dict[str, str]:
        """The ``conf`` values as Spark takes them (text; true/false in lower case)."""
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in self.conf.items()}


class ProjectSpec(Spec):
    name: str
    description: str = ""
    engine: Literal["duckdb", "spark"] = "duckdb"
    state_dir: Annotated[str, Field(min_length=1, pattern=r"\S")] = ".healthscore"
    sources: dict[str, SourceSpec]
    scorecards: list[str] = Field(default_factory=list)
    also: list[str] = Field(default_factory=list)
    settings: SettingsSpec = SettingsSpec()
    validation: ValidationSpec = ValidationSpec()
    workflow: WorkflowSpec = WorkflowSpec()
    history: HistorySpec = HistorySpec()
    spark: SparkSpec = SparkSpec()  # read with engine: spark


# ----------------------------------------------------------------------------- scoring schemes


class _SchemeBase(Spec):
    def problem(self) -> tuple[str, str] | None:
        """(the key, what is wrong with it) for what the types alone do not check; None when
        the scheme is sound."""
        return None


class ThresholdsScheme(_SchemeBase):
    type: Literal["thresholds"]
    cuts: list[Number]
    scores: list[Percent]

    def problem(self) -> tuple[str, str] | None:
        if list(self.cuts) != sorted(self.cuts) or len(set(self.cuts)) != len(self.cuts):
            return ".cuts", f"must be in increasing order. Got {self.cuts}."
        if len(self.scores) != len(self.cuts) + 1:
            return ".scores", (f"needs one score more than there are cuts "
                               f"({len(self.cuts) + 1}). Got {len(self.scores)}.")
        return None


class LinearScheme(_SchemeBase):
    type: Literal["linear"]
    low: Number
    high: Number

    def problem(self) -> tuple[str, str] | None:
        if self.low == self.high:
            return "", f"low and high must differ. Got {self.low} for both."
        return None


class PercentileScheme(_SchemeBase):
    type: Literal["percentile"]
    by: str = "segment"
    higher_is_better: bool = True

    # 'by' is checked where the accounts' declared attributes are known (config.resolve and
    # config.scorecards: check_account_column)


class BooleanScheme(_SchemeBase):
    type: Literal["boolean"]
    if_true: Percent = 100
    if_false: Percent = 0


class CategoryScheme(_SchemeBase):
    type: Literal["category"]
    map: dict[str, Percent]
    default: Percent | None = None
    case_sensitive: bool = False  # 'Pro' matches the key 'pro' unless this is true


# the one list of schemes: a new scheme is a Spec class here (with its problem() if the types
# alone cannot check it), a compiler in scoring/schemes.py (SCHEMES, keyed by its type) and a
# line in docs/configuration.md. The specs, frozen and checked, are also the resolved schemes.
Scheme = ThresholdsScheme | LinearScheme | PercentileScheme | BooleanScheme | CategoryScheme
SchemeSpec = Annotated[Scheme, Field(discriminator="type")]

Missing = Literal["skip"] | Percent

# ----------------------------------------------------------------------------- measures


# a group's or measure's name: one text, or one per language ({en: Logins, pl: Logowania})
Label = str | dict[str, str]


class _MeasureBase(Spec):
    description: str = ""
    label: Label | None = None
    category: str | None = None
    scheme: SchemeSpec | None = None
    missing: Missing = "skip"


class _EntityMeasure(_MeasureBase):
    entity: str
    filter: str | None = None
    case_sensitive: bool = False  # text in the filter matches 'Login' and 'login' alike
    window: str | None = None
    time: str | None = None


class CountMeasure(_EntityMeasure):
    type: Literal["count"]
    mode: Literal["events", "open"] = "events"
    open_from: str | None = None
    open_after: str | None = None


class CountDistinctMeasure(_EntityMeasure):
    type: Literal["count_distinct"]
    column: str


class AggregateMeasure(_EntityMeasure):
    type: Literal["sum", "avg", "min", "max"]
    column: str
    mode: Literal["events", "open"] = "events"
    open_from: str | None = None
    open_after: str | None = None


class LatestMeasure(_EntityMeasure):
    type: Literal["latest"]
    column: str


class DaysSinceMeasure(_EntityMeasure):
    type: Literal["days_since"]
    column: str | None = None


class RatioMeasure(_MeasureBase):
    type: Literal["ratio"]
    numerator: str
    denominator: str


class ChangeMeasure(_MeasureBase):
    type: Literal["change"]
    of: str
    to: Literal["absolute", "percent"] = "percent"


class TenureMeasure(_MeasureBase):
    type: Literal["tenure"]
    unit: Literal["days", "months", "years"] = "days"


class AttributeMeasure(_MeasureBase):
    type: Literal["attribute"]
    column: str


class ManualMeasure(_MeasureBase):
    type: Literal["manual"]
    name: str | None = None
    max_age: str = "90d"
    min: Number | None = None  # what a CSM may enter in the app or the CLI (e.g. 1-5)
    max: Number | None = None


class ExpressionMeasure(_MeasureBase):
    type: Literal["expression"]
    expr: str


MeasureSpec = Annotated[
    CountMeasure
    | CountDistinctMeasure
    | AggregateMeasure
    | LatestMeasure
    | DaysSinceMeasure
    | RatioMeasure
    | ChangeMeasure
    | TenureMeasure
    | AttributeMeasure
    | ManualMeasure
    | ExpressionMeasure,
    Field(discriminator="type"),
]

# ----------------------------------------------------------------------------- scorecards


class EntrySpec(Spec):
    weight: Percent
    scheme: SchemeSpec | None = None
    missing: Missing | None = None


class BandSpec(Spec):
    name: str
    min: Percent
    color: str | None = None


# how a group (a module) gets its colour: the band of its score, its CTAs and marks (seed 002:
# no open CTA green, an open CTA yellow, a critical one red), or the worse of the two
Colour = Literal["score", "ctas", "worst"]


class GroupSpec(Spec):
    weight: Percent
    label: Label | None = None
    colour: Colour = "score"
    bands: list[BandSpec] | None = None  # for colour: score; default the scorecard's
    red_at_ctas: int | None = Field(default=None, ge=1)  # this many open CTAs: red
    measures: dict[str, EntrySpec | Percent] = Field(default_factory=dict)
    groups: dict[str, GroupSpec] = Field(default_factory=dict)


class OverallSpec(Spec):
    """How the account's band follows from its score and its modules' colours."""

    policy: Literal["weighted", "worst_module", "count"] = "weighted"
    red: int = Field(default=2, ge=1)  # count: this many red modules make the account red
    yellow: int = Field(default=1, ge=1)  # count: this many modules not green make it yellow


class GradeSpec(Spec):
    grade: str
    min: Percent


class ScorecardSpec(Spec):
    description: str = ""
    when: str | None = None
    min_coverage: Percent | None = None
    bands: list[BandSpec] | None = None
    grades: list[GradeSpec] | None = None
    overall: OverallSpec = Field(default_factory=OverallSpec)
    groups: dict[str, GroupSpec]

    @field_validator("overall", mode="before")
    @classmethod
    def _policy_name(cls, v: object) -> object:
        return {"policy": v} if isinstance(v, str) else v

    @field_validator("groups")
    @classmethod
    def _not_empty(cls, v: dict[str, GroupSpec]) -> dict[str, GroupSpec]:
        if not v:
            raise ValueError("a scorecard needs at least one group")
        return v
