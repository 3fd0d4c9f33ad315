"""The scoring pipeline: sources -> measures -> scores -> snapshots, for many dates at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.model import ProjectConfig
from healthscore.engine.adapter import Engine, make_engine, temp_name
from healthscore.errors import DataError
from healthscore.measures import asof
from healthscore.measures.build import MeasureBuilder, active_spine
from healthscore.measures.contract import unmatched_filters
from healthscore.scoring.scorecard import primary_of, score_scorecard
from healthscore.sources.cache import FOLDER as CACHE_FOLDER
from healthscore.sources.cache import Limits, SourceCache, accounts_key, load_source
from healthscore.sources.clean import DataHealth
from healthscore.sources.read import no_data_yet, workflow_rows
from healthscore.sources.subscriptions import observed_until, with_subscription_dates
from healthscore.store.snapshots import SnapshotStore

Progress = Callable[[str], None]
ENGINE_LOG = "engine.log"  # in the state folder: what the engine itself logs (Spark's JVM)


@dataclass
class Loaded:
    engine: Engine
    tables: dict[str, ir.Table]
    health: dict[str, DataHealth] = field(default_factory=dict)
    cache: dict[Any, ir.Table] = field(default_factory=dict)
    observed_until: date | None = None  # renewals known up to (from subscriptions)
    cached: set[str] = field(default_factory=set)  # sources taken from the source cache

    def materialize_once(self, expr: ir.Table, prefix: str) -> ir.Table:
        """Materialise an intermediate table; the same expression again reuses it."""
        key = expr.op()
        if key not in self.cache:
            self.cache[key] = self.engine.materialize(expr, prefix)
        return self.cache[key]


def open_engine(config: ProjectConfig) -> Engine:
    s = config.settings
    return make_engine(config.engine, s.memory_limit, s.threads, config.state_dir / ENGINE_LOG,
                       config.spark)


def load_sources(config: ProjectConfig, engine: Engine, progress: Progress,
                 cache: bool = True) -> Loaded:
    """Read, map, check every source; accounts first (others are checked against it). An
    unchanged file source is taken from the source cache (``cache=False``: every source is
    read and checked again, and the cache refreshed)."""
    missing = no_data_yet(list(config.sources.values()))
    if missing:
        raise DataError(missing)
    loaded = Loaded(engine, {})
    order = ["accounts", *[e for e in config.sources if e != "accounts"]]
    with_subs = "subscriptions" in config.sources
    store = SourceCache(config.state_dir / CACHE_FOLDER, read=cache) \
        if config.settings.source_cache else None
    ids = None
    for i, entity in enumerate(order):
        progress(f"reading {entity}|{i}|{len(order)}")
        source = config.sources[entity]
        share = source.spec.max_rejected_share
        share = config.settings.max_rejected_share if share is None else share
        rows = source.spec.max_rejected_rows
        rows = config.settings.max_rejected_rows if rows is None else rows
        accounts = loaded.tables.get("accounts")
        optional = frozenset({"start_date"}) if with_subs and entity == "accounts" else frozenset()
        table, health, cached = load_source(engine, source, accounts, Limits(share, rows),
                                            optional, store, ids)
        if cached:
            loaded.cached.add(entity)
        if entity == "accounts" and store is not None and len(order) > 1:
            ids = accounts_key(engine, table)
        loaded.tables[entity] = table
        loaded.health[entity] = health
    if store is not None:
        store.save(engine, set(order))
    if with_subs:
        subs = loaded.tables["subscriptions"]
        loaded.observed_until = observed_until(subs)
        filled = with_subscription_dates(
            loaded.tables["accounts"], subs, config.settings.renewal_grace_days, loaded.observed_until
        )
        loaded.tables["accounts"] = engine.materialize(filled, "accounts")
    for entity, notes in unmatched_filters(config, loaded.tables).items():
        loaded.health[entity].notes.extend(notes)
    _read_store_state(config, loaded)
    return loaded


def _read_store_state(config: ProjectConfig, loaded: Loaded) -> None:
    """What the workflow store holds for scoring: the marks and CTAs that colour modules, the
    values CSMs entered for manual measures (added to a manual_values file's rows)."""
    for entity, source in config.store_sources.items():
        listed = config.sources.get(entity)
        if listed is not None and listed.format == "workflow":
            continue  # listed as a workflow source: read and checked above
        rows = workflow_rows(source.location, entity)
        if not rows.num_rows and (entity != "manual_values" or entity in loaded.tables):
            continue  # nothing to add (a manual measure needs its table, empty or not)
        table = loaded.engine.register_arrow(rows, temp_name(entity))
        if entity in loaded.tables:  # a file's rows and the store's, alike
            have = loaded.tables[entity]
            table = have.union(table.select(**{
                c: (table[c] if c in table.columns else ibis.null()).cast(t)
                for c, t in have.schema().items()}))
        loaded.tables[entity] = table


def scores_expr(
    config: ProjectConfig, loaded: Loaded, dates: list[date], span: asof.Span | None = None
) -> ir.Table:
    """One expression holding every scorecard row for every active account and date.

    ``span`` is the first and last date of the whole run (when ``dates`` is one pass of it):
    intermediate tables that depend only on it are computed once and reused by every pass."""
    grid = loaded.engine.register_arrow(asof.grid_arrow(dates), temp_name("grid"))
    builder = MeasureBuilder(config, loaded.tables, grid)
    builder.stale_flags = _stale_dates(loaded.health, dates)
    builder.materialize = loaded.materialize_once
    builder.span = span or asof.Span(min(dates), max(dates))
    builder.n_dates = len(dates)
    builder.history = history_columns(loaded)
    spine = active_spine(loaded.tables["accounts"], loaded.tables.get("outcomes"), builder.grid)
    wide = builder.build(spine)
    # every scorecard reads the measures: compute them once
    wide = loaded.engine.materialize(wide.mutate(__primary=primary_of(config, wide)), "measures")
    parts = []
    every = tuple(dict.fromkeys(m for sc in config.all_scorecards for m in sc.measures))
    for sc in config.scorecards:
        rows = wide.filter(wide["__primary"] == sc.name)
        parts.append(score_scorecard(sc, rows, sc.version(config.measures), True, every,
                                     config.attributes))
    for sc in config.also:
        parts.append(score_scorecard(sc, wide, sc.version(config.measures), False,
                                     attributes=config.attributes))
    return _union_aligned(parts)


def history_columns(loaded: Loaded) -> list[str]:
    """The account attributes the project's account_history source gives (none without one)."""
    h = loaded.health.get("account_history")
    return [c for c in (h.columns if h is not None else []) if c not in ("account_id", "valid_from")]


def _stale_dates(health: dict[str, DataHealth], dates: list[date]) -> dict[str, list[date]]:
    out: dict[str, list[date]] = {}
    for entity, h in health.items():
        stale = [d for d in dates if h.stale_on(d)]
        if stale:
            out[entity] = stale
    return out


def _union_aligned(parts: list[ir.Table]) -> ir.Table:
    if len(parts) == 1:
        return parts[0]
    types: dict[str, Any] = {}
    for p in parts:
        for name, dtype in p.schema().items():
            types.setdefault(name, dtype)
    aligned = [
        p.select(**{c: (p[c] if c in p.columns else ibis.null().cast(t)) for c, t in types.items()})
        for p in parts
    ]
    return ibis.union(*aligned)


def passes(dates: list[date], accounts: int, max_rows: int) -> list[list[date]]:
    """Split the as-of dates so one pass holds at most ``max_rows`` account-dates."""
    size = max(1, max_rows // max(accounts, 1))
    return [dates[i:i + size] for i in range(0, len(dates), size)]


def pass_exprs(
    config: ProjectConfig, loaded: Loaded, dates: list[date], progress: Progress
) -> Iterator[ir.Table]:
    """The score expression of each set-based pass over ``dates`` (a batch of dates each)."""
    accounts = loaded.health["accounts"].rows_kept
    batches = passes(dates, accounts, config.settings.max_rows_per_pass)
    done = 0
    span = asof.Span(min(dates), max(dates))
    stage = f"scoring {len(dates)} as-of date(s)"
    for i, batch in enumerate(batches):
        step = f"{stage}, pass {i + 1} of {len(batches)}" if len(batches) > 1 else stage
        progress(f"{step}|{done}|{len(dates)}")  # dates done when this pass starts
        yield scores_expr(config, loaded, batch, span)
        done += len(batch)
    progress(f"{stage}|{done}|{len(dates)}")


def score_frame(config: ProjectConfig, loaded: Loaded, dates: list[date],
                progress: Progress) -> Any:
    """Every scorecard row for ``dates``, in memory (a pandas frame), nothing written: for
    the backtest and the dry run of a scorecard change."""
    import pandas as pd

    parts = [loaded.engine.to_arrow(expr).to_pandas()
             for expr in pass_exprs(config, loaded, dates, progress)]
    frame = pd.concat(parts, ignore_index=True)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    frame["is_primary"] = frame["is_primary"].astype(bool)
    return frame


def score_in_passes(
    config: ProjectConfig, loaded: Loaded, dates: list[date], stage: Path, progress: Progress
) -> None:
    """Score all dates, a batch of dates per set-based pass, into ``stage``."""
    for i, expr in enumerate(pass_exprs(config, loaded, dates, progress)):
        part = stage / f".pass-{i}"
        write_snapshots(config, loaded.engine, expr, part)
        for folder in part.iterdir():
            folder.rename(stage / folder.name)
        part.rmdir()


def write_snapshots(config: ProjectConfig, engine: Engine, expr: ir.Table, stage: Path) -> None:
    """Write ``expr`` partitioned by as_of into ``stage`` (swapped in by the store)."""
    # rows are not sorted: partitioning by date is enough, and sorting cost a quarter of the write
    writer = getattr(engine, "write_partitioned", None)
    if writer is not None:
        writer(expr, stage)
        return
    _write_with_arrow(engine, expr, stage)


def _write_with_arrow(engine: Engine, expr: ir.Table, stage: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = engine.to_arrow(expr)
    for day in pc.unique(table["as_of"]).to_pylist():
        folder = stage / f"as_of={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        part = table.filter(pc.equal(table["as_of"], day))
        pq.write_table(part, folder / "data_0.parquet", compression="zstd")


def save_definitions(config: ProjectConfig, store: SnapshotStore) -> None:
    for sc in config.all_scorecards:
        store.save_definition(sc.version(config.measures), sc.definition(config.measures))
