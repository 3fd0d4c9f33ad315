"""Step two: bind references, parse windows and conditions, return domain objects."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from healthscore.config import expressions, model, specs
from healthscore.config.labels import resolve_label
from healthscore.config.load import PROJECT_FILE, MeasureSource, ProjectSpecs
from healthscore.config.scorecards import (
    MissingSourceError,
    check_account_column,
    check_scheme,
    resolve_scorecard,
)
from healthscore.config.secrets import expand_env
from healthscore.config.windows import parse_days, parse_window, stale_after_days
from healthscore.entities import (
    ATTRIBUTE_ENTITIES,
    ATTRIBUTE_NAME,
    ENTITIES,
    RESERVED,
    with_attributes,
)
from healthscore.errors import ConfigError

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel",
            ".duckdb": "duckdb", ".db": "duckdb"}
WORKFLOW_ENTITIES = ("ctas", "module_marks", "touches", "manual_values")
ENTITY_TYPES = {t for t, c in model.MEASURE_TYPES.items() if issubclass(c, model.EntityMeasure)}


def resolve(ps: ProjectSpecs) -> model.ProjectConfig:
    state_dir = ps.root / ps.project.state_dir
    wf_url = ps.project.workflow.url
    if wf_url:
        _env(wf_url, "healthscore.yml: workflow.url")  # a missing ${NAME} is a config error
    attributes = _attributes(ps.project.sources)
    sources = {name: _source(ps.root, name, spec, state_dir, wf_url, attributes)
               for name, spec in ps.project.sources.items()}
    if "accounts" not in sources:
        raise ConfigError(
            f"{PROJECT_FILE}: sources: has no 'accounts' source. Every project needs one: "
            f"add 'accounts: {{path: data/accounts.csv}}' under sources."
        )
    _check_churn(ps.project.validation.churn, sources)
    measures = _LazyMeasures(ps.measures, sources)
    primary = _scorecard_list(ps, ps.project.scorecards, "scorecards")
    also = _scorecard_list(ps, ps.project.also, "also")
    both = sorted(set(primary) & set(also))
    if both:
        raise ConfigError(f"{PROJECT_FILE}: also: {both[0]!r} is also a primary scorecard "
                          f"(in 'scorecards'). Keep it in one of the two.")
    for name, ms in ps.measures.items():
        if ms.file != LIBRARY_FILE:
            measures[name]  # noqa: B018 - every project measure is checked, used or not
    accounts = sources["accounts"].definition.column_names
    scorecards = _resolve_scorecards(ps, primary, also, measures, accounts)
    # read from the workflow store even when not listed as sources: the CSMs' marks, the CTAs
    # (for colour: ctas/worst), the values CSMs enter for manual measures
    need = ["module_marks"]
    if any(sc.uses_ctas() for sc in scorecards.values()):
        need.append("ctas")
    used = {m for sc in scorecards.values() for m in sc.measures}
    if any(measures[m].type == "manual" for m in _closure(used, measures)):
        need.append("manual_values")
    store = specs.SourceSpec(format="workflow")
    store_sources = {e: _source(ps.root, e, store, state_dir, wf_url) for e in need}
    closure = _closure(used, measures)
    closure |= {n for n in measures.specs if measures.specs[n].file != LIBRARY_FILE}
    return model.ProjectConfig(
        root=ps.root,
        name=ps.project.name,
        engine=ps.project.engine,
        state_dir=(ps.root / ps.project.state_dir),
        sources=sources,
        measures={n: measures[n] for n in sorted(closure)},
        scorecards=tuple(scorecards[n] for n in primary),
        also=tuple(scorecards[n] for n in also),
        settings=ps.project.settings,
        validation=ps.project.validation,
        workflow=ps.project.workflow,
        spark=ps.project.spark,
        keep_days=_keep_days(ps.project.history.keep),
        store_sources=store_sources,
    )


MIN_KEEP_DAYS = 91  # the 7/30/90-day changes on every page read snapshots that old


def _keep_days(text: str | None) -> int | None:
    if text is None:
        return None
    where = f"{PROJECT_FILE}: history.keep"
    days = _duration(parse_days, text, where)
    if days < MIN_KEEP_DAYS:
        raise ConfigError(f"{where}: {text!r} is too short: keep at least {MIN_KEEP_DAYS} days, "
                          f"since the 90-day change of every score reads the snapshot from 90 "
                          f"days before. Write e.g. '400d', or remove the key to keep everything.")
    return int(days)


# ----------------------------------------------------------------------------- sources


def _check_encoding(encoding: str, fmt: str, where: str) -> None:
    import codecs

    if fmt != "csv":
        raise ConfigError(f"{where}.encoding: only CSV files take an encoding; this source is {fmt}.")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"{where}.encoding: unknown encoding {encoding!r}. Write e.g. utf-8, "
                          f"latin-1, cp1252 or utf-16.") from None


def _attributes(sources: dict[str, specs.SourceSpec]) -> tuple[tuple[str, str], ...]:
    """The project's own account columns (sources.accounts.attributes), checked: names that
    expressions can name and that no column or scored value already uses."""
    for name, spec in sources.items():
        if spec.attributes and name != "accounts":
            raise ConfigError(
                f"{PROJECT_FILE}: sources.{name}.attributes: only the accounts source keeps extra "
                f"columns as attributes (an account_history source gives their past values). "
                f"Move 'attributes:' to sources.accounts."
            )
    accounts_spec = sources.get("accounts")
    declared = accounts_spec.attributes if accounts_spec is not None else {}
    accounts = ENTITIES["accounts"]
    for name in declared:
        where = f"{PROJECT_FILE}: sources.accounts.attributes.{name}"
        if accounts.column(name) is not None or name in RESERVED:
            raise ConfigError(
                f"{where}: {name!r} is already a column of accounts or of the scores. Give the "
                f"attribute another name and map it: 'columns: {{<new name>: {name}}}'."
            )
        if not ATTRIBUTE_NAME.match(name) or "__" in name:
            raise ConfigError(
                f"{where}: an attribute's name must be lower-case letters, digits and single "
                f"underscores, starting with a letter, so that 'when:' and filters can name it. "
                f"Name it e.g. 'contract_type' and map your column: "
                f"'columns: {{contract_type: <your column name>}}'."
            )
    return tuple(declared.items())


def _source(root: Path, name: str, spec: specs.SourceSpec, state_dir: Path | None = None,
            workflow_url: str | None = None,
            attributes: tuple[tuple[str, str], ...] = ()) -> model.Source:
    where = f"{PROJECT_FILE}: sources.{name}"
    if name not in ENTITIES:
        raise ConfigError(
            f"{where}: unknown entity {name!r}. Valid entities: {', '.join(ENTITIES)}."
        )
    attributes = attributes if name in ATTRIBUTE_ENTITIES else ()
    entity = with_attributes(ENTITIES[name], dict(attributes))
    if spec.format == "workflow":
        if name not in WORKFLOW_ENTITIES or spec.path is not None or spec.url is not None:
            raise ConfigError(
                f"{where}: 'format: workflow' reads the project's workflow store and serves only "
                f"the entities ctas, module_marks, touches and manual_values, with no 'path' or 'url'."
            )
    elif spec.format == "query":
        if spec.path is not None or spec.url is not None or not spec.query:
            raise ConfigError(
                f"{where}: a 'format: query' source takes only 'query' (DuckDB SQL over files, "
                f"paths relative to the project folder), no 'path' or 'url'."
            )
    elif (spec.path is None) == (spec.url is None):
        raise ConfigError(f"{where}: give exactly one of 'path' (a file) or 'url' (a database).")
    for canonical in spec.columns:
        if entity.column(canonical) is None:
            raise ConfigError(
                f"{where}.columns.{canonical}: {name} has no column {canonical!r}. "
                f"Valid columns: {', '.join(entity.column_names)}."
            )
    fmt = spec.format or _infer_format(spec, where)
    if fmt == "sql" and not (spec.table or spec.query):
        raise ConfigError(f"{where}: a database source needs 'table' or 'query'.")
    if spec.encoding is not None:
        _check_encoding(spec.encoding, fmt, where)
    location = _env(spec.url, f"{where}.url") if spec.url else str((root / str(spec.path or ".")).resolve())
    if spec.format == "workflow":
        url = _env(workflow_url, "healthscore.yml: workflow.url") if workflow_url else None
        location = url or f"sqlite:///{((state_dir or root) / 'workflow.db').resolve()}"
    key = "stale_after" if spec.stale_after is not None else "refresh"
    try:
        stale = stale_after_days(spec.refresh, spec.stale_after)
    except ValueError as err:
        raise ConfigError(f"{where}.{key}: {err}") from None
    return model.Source(name, spec, location, fmt, stale, attributes)


def _check_churn(spec: specs.ChurnSpec | None, sources: dict[str, model.Source]) -> None:
    """validation.churn: a duration, and an entity with dated rows that the project reads."""
    if spec is None:
        return
    where = f"{PROJECT_FILE}: validation.churn"
    _duration(parse_days, spec.inactive_for, f"{where}.inactive_for")
    dated = [n for n in sources if ENTITIES[n].time and n not in ("account_history", "outcomes")]
    if spec.entity not in dated:
        raise ConfigError(
            f"{where}.entity: {spec.entity!r} is not a source of dated rows in this project, so "
            f"it cannot tell when an account was last active. Sources with dated rows: "
            f"{', '.join(dated) or 'none'}."
        )
    if spec.filter:
        _check_filter(spec.filter, sources[spec.entity].definition, f"{where}.filter")


def _env(url: str, where: str) -> str:
    """A URL with ``${NAME}`` taken from the environment (so a password need not sit in YAML)."""
    try:
        return expand_env(url)
    except KeyError as err:
        raise ConfigError(f"{where}: the environment variable {err.args[0]} is not set. Set it "
                          f"(e.g. export {err.args[0]}=...) or write the value in the URL.") from None


def _infer_format(spec: specs.SourceSpec, where: str) -> str:
    if spec.url is not None:
        return "sql"
    path = str(spec.path)
    for suffix, fmt in _FORMATS.items():
        if path.lower().rstrip("/*").endswith(suffix) or path.lower().endswith(suffix):
            return fmt
    if path.endswith("/") or "*" in path or "." not in Path(path).name:
        return "parquet"
    raise ConfigError(
        f"{where}.path: cannot tell the format of {path!r}. "
        f"Add 'format: csv' (or parquet, excel, duckdb)."
    )


# ----------------------------------------------------------------------------- measures


LIBRARY_FILE = "(built-in library)"


class _LazyMeasures(dict[str, model.Measure]):
    """Resolve a measure when first asked for, so unused library measures need no source."""

    def __init__(self, specs_: dict[str, MeasureSource], sources: dict[str, model.Source]):
        super().__init__()
        self.specs = specs_
        self.sources = sources

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __missing__(self, name: str) -> model.Measure:
        _check_cycle(name, self, [])
        m = _measure(name, self.specs[name], self.sources)
        self[name] = m
        for dep in m.depends_on:
            if dep not in self.specs:
                raise ConfigError(
                    f"{m.file}: {m.name}: refers to unknown measure {dep!r}. Define it under "
                    f"measures/ or use one of the built-in measures (healthscore measures)."
                )
            _check_change(m, self[dep])
        return m


def _measure(name: str, ms: MeasureSource, sources: dict[str, model.Source]) -> model.Measure:
    spec, where = ms.spec, f"{ms.file}: {name}"
    kwargs: dict[str, Any] = {}
    kwargs["label"], kwargs["labels"] = resolve_label(spec.label, f"{where}.label")
    if spec.type in ENTITY_TYPES:
        _check_entity_measure(spec, sources, where)
        kwargs["window"] = _duration(parse_window, spec.window, f"{where}.window")
    if getattr(spec, "open_after", None):
        kwargs["open_after_days"] = _duration(parse_days, spec.open_after, f"{where}.open_after")
    if spec.type == "manual":
        kwargs["max_age_days"] = _duration(parse_days, spec.max_age, f"{where}.max_age")
        kwargs["stored_as"] = spec.name or name
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            raise ConfigError(f"{where}: min ({spec.min:g}) is above max ({spec.max:g}). "
                              f"Swap them.")
    accounts = sources["accounts"].definition.column_names
    _check_account_columns(spec, where, accounts)
    check_scheme(spec.scheme, f"{where}.scheme")
    if isinstance(spec.scheme, specs.PercentileScheme):
        check_account_column(spec.scheme.by, f"{where}.scheme.by", accounts)
    deps = _dependencies(spec, where)
    return _typed(name, spec, ms.file, depends_on=deps, **kwargs)


def _typed(name: str, spec: Any, file: str, **resolved: Any) -> model.Measure:
    """The measure type's class, its keys copied from the spec where they are named alike
    (``resolved`` gives those parsed here: window, days, dependencies)."""
    cls = model.MEASURE_TYPES[spec.type]
    keys = {f.name for f in dataclasses.fields(cls)} - {"name", "window", *resolved}
    copied = {k: getattr(spec, k) for k in keys if k in type(spec).model_fields}
    return cls(name=name, file=file, spec=spec, **copied, **resolved)


def _duration(parse: Any, text: str | None, where: str) -> Any:
    try:
        return parse(text)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_account_columns(spec: Any, where: str, accounts: list[str]) -> None:
    refs: list[tuple[str, str]] = []
    if spec.type == "attribute":
        refs.append(("column", spec.column))
    if spec.type == "ratio":
        refs += [(k, getattr(spec, k).split(".", 1)[1]) for k in ("numerator", "denominator")
                 if _is_attribute(getattr(spec, k))]
    for key, col in refs:
        check_account_column(col, f"{where}.{key}", accounts)


def _check_entity_measure(spec: Any, sources: dict[str, model.Source], where: str) -> None:
    entity = ENTITIES.get(spec.entity)
    if entity is None:
        raise ConfigError(
            f"{where}.entity: unknown entity {spec.entity!r}. Valid entities: "
            f"{', '.join(ENTITIES)}."
        )
    if spec.entity not in sources:
        raise MissingSourceError(
            f"{where}.entity: the project has no source for {spec.entity!r}. Add "
            f"'{spec.entity}:' under sources in {PROJECT_FILE}, or remove this measure.",
            entity=spec.entity,
        )
    for key in ("column", "open_from", "time"):
        col = getattr(spec, key, None)
        if col is not None and entity.column(col) is None:
            raise ConfigError(
                f"{where}.{key}: {spec.entity} has no column {col!r}. Valid columns: "
                f"{', '.join(entity.column_names)}."
            )
    for key in ("open_from", "time"):
        col = entity.column(getattr(spec, key, None) or "")
        if col is not None and col.type not in ("date", "timestamp"):
            raise ConfigError(f"{where}.{key}: {spec.entity}.{col.name} is not a date or time.")
    if spec.filter:
        _check_filter(spec.filter, entity, f"{where}.filter")
    if getattr(spec, "mode", "events") == "open" and entity.end is None:
        raise ConfigError(
            f"{where}.mode: 'open' needs an entity whose rows close (tickets, invoices, "
            f"milestones, contacts); {spec.entity} has none. Use mode: events."
        )


def _check_filter(text: str, entity: Any, where: str) -> None:
    try:
        tree = expressions.parse(text)
        expressions.check_columns(text, tree, entity.column_names, f"{entity.name} column")
    except expressions.ExpressionError as err:
        raise ConfigError(f"{where}: {err}") from None
    for col in expressions.columns(tree):
        if col in entity.current_state:
            raise ConfigError(
                f"{where}: {entity.name}.{col} is the status today, so a score for a past date "
                f"would see the future. Use 'mode: open' (open between {entity.time} and "
                f"{entity.end}) instead of filtering on {col}."
            )


def _dependencies(spec: Any, where: str) -> tuple[str, ...]:
    if spec.type == "ratio":
        return tuple(d for d in (spec.numerator, spec.denominator) if not _is_attribute(d))
    if spec.type == "change":
        return (spec.of,)
    if spec.type == "expression":
        try:
            return tuple(expressions.columns(expressions.parse(spec.expr)))
        except expressions.ExpressionError as err:
            raise ConfigError(f"{where}.expr: {err}") from None
    return ()


def _is_attribute(name: str) -> bool:
    return name.startswith("accounts.")


def _check_change(m: model.Measure, of: model.Measure) -> None:
    if not isinstance(m, model.Change):
        return
    if of.type not in {"count", "sum", "count_distinct"} or getattr(of, "mode", "") == "open":
        raise ConfigError(
            f"{m.file}: {m.name}.of: 'change' needs a windowed count, count_distinct or sum "
            f"measure over events. Got {m.of!r} of type {of.type!r}."
        )
    if of.window.unbounded:
        raise ConfigError(
            f"{m.file}: {m.name}.of: {m.of!r} has no window, so there is no previous "
            f"window to compare with. Give it a window such as '30d'."
        )


def _check_cycle(name: str, measures: Any, path: list[str]) -> None:
    if name in path:
        loop = " -> ".join([*path[path.index(name):], name])
        raise ConfigError(
            f"{measures.specs[name].file}: {name}: measures refer to each other in a loop ({loop})."
        )
    ms = measures.specs[name]
    for dep in _dependencies(ms.spec, f"{ms.file}: {name}"):
        if dep in measures.specs:
            _check_cycle(dep, measures, [*path, name])


def _closure(names: set[str], measures: dict[str, model.Measure]) -> set[str]:
    out: set[str] = set()
    stack = list(names)
    while stack:
        n = stack.pop()
        if n not in out:
            out.add(n)
            stack.extend(measures[n].depends_on)
    return out


# ----------------------------------------------------------------------------- scorecards

def _scorecard_list(ps: ProjectSpecs, names: list[str], key: str) -> list[str]:
    seen = [n for i, n in enumerate(names) if n in names[:i]]
    if seen:
        raise ConfigError(f"{PROJECT_FILE}: {key}: {seen[0]!r} is listed twice. List each "
                          f"scorecard once.")
    for name in names:
        if name not in ps.scorecards:
            have = ", ".join(sorted(ps.scorecards)) or "none"
            raise ConfigError(
                f"{PROJECT_FILE}: {key}: no file scorecards/{name}.yml. "
                f"Scorecards in the project: {have}."
            )
    return list(names)


def _resolve_scorecards(
    ps: ProjectSpecs, primary: list[str], also: list[str], measures: dict[str, model.Measure],
    accounts: list[str],
) -> dict[str, model.Scorecard]:
    if not primary:
        if len(ps.scorecards) != 1:
            raise ConfigError(
                f"{PROJECT_FILE}: scorecards: list the scorecards in the order they are "
                f"tried, the default last, e.g. 'scorecards: [enterprise, default]'."
            )
        primary.append(next(iter(ps.scorecards)))
    out = {
        n: resolve_scorecard(n, *ps.scorecards[n], measures, ps.project.settings, accounts)
        for n in [*primary, *also]
    }
    last = out[primary[-1]]
    if last.when is not None:
        raise ConfigError(
            f"{last.file}: when: the last scorecard in the list is the default and must have no "
            f"'when:' condition, so that every account gets one."
        )
    return out
