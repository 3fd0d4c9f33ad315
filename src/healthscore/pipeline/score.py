"""Score many as-of dates at once, in set-based passes: measures -> scorecards ->
snapshots (streamed to Parquet)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.model import ProjectConfig
from healthscore.engine.adapter import Engine, nested_selects
from healthscore.measures import asof
from healthscore.measures.build import MeasureBuilder, active_spine, known_accounts
from healthscore.measures.carry import Carry
from healthscore.pipeline.load import Loaded, Progress
from healthscore.scoring.scorecard import primary_of, score_scorecard
from healthscore.sources.clean import DataHealth
from healthscore.store.snapshots import SnapshotStore, add_pass

# account-dates up to which a pass stores its stacked contributions before they merge (see
# measures.build.merged_contributions). The demo's 2-date run (300): 6.0-6.8 -> 5.1-6.1 CPU s;
# 20,000 accounts, 1 date: 10.5 -> 9.8-10.4; 100,000 accounts, 1 date, stored: 24.2 -> 28-30,
# so a bigger pass merges straight from the union
SMALL_RUN = 20_000
# account-dates up to which a pass compiles its queries with nested selects (see
# engine.adapter.nested_selects): Ibis then does not merge each step into the next, which
# costs it more than the engine's work on few rows. The demo's 2-date run (300), three
# alternated pairs: 5.87 / 5.37 / 5.56 -> 5.32 / 5.08 / 5.13 CPU s, the same values; bigger
# passes stay merged (nested, DuckDB held 150-300 MB more at 20,000 accounts)
NESTED_RUN = 5_000


def scores_expr(
    config: ProjectConfig, loaded: Loaded, dates: list[date], span: asof.Span | None = None,
    carry: Carry | None = None, by_date: bool = False,
) -> ir.Table:
    """One expression holding every scorecard row for every active account and date.

    ``span`` is the first and last date of the whole run (when ``dates`` is one pass of it):
    intermediate tables that depend only on it are computed once and reused by every pass.
    ``carry`` keeps the running values of the last date (see :mod:`healthscore.measures.carry`).
    ``by_date``: each scorecard's rows come out in as-of date order (for a file in date
    order, see :func:`write_snapshots`)."""
    with nested_selects(loaded.health["accounts"].rows_kept * len(dates) <= NESTED_RUN):
        return score_wide(config, loaded, measures_expr(config, loaded, dates, span, carry),
                          carry, by_date and len(dates) > 1)


def measures_expr(
    config: ProjectConfig, loaded: Loaded, dates: list[date], span: asof.Span | None = None,
    carry: Carry | None = None,
) -> ir.Table:
    """Every measure for every active account and date (the wide table scorecards read)."""
    grid = loaded.engine.register_arrow(asof.grid_arrow(dates), loaded.engine.temp_name("grid"))
    builder = MeasureBuilder(config, loaded.tables, grid)
    builder.stale_flags = _stale_dates(loaded.health, dates)
    builder.materialize = loaded.materialize_once
    builder.span = span or asof.Span(min(dates), max(dates))
    builder.n_dates, builder.days = len(dates), (max(dates) - min(dates)).days
    builder.history = history_columns(loaded)
    builder.accounts = known_accounts(loaded.tables["accounts"], loaded.tables.get("outcomes"))
    builder.small = loaded.health["accounts"].rows_kept * len(dates) <= SMALL_RUN
    builder.carry = carry
    if carry is not None and carry.before is not None:
        builder.n_dates = 1  # from kept values one date is new: distinct counts join it directly
    if carry is not None:
        carry.last = len(dates) - 1
        carry.view = carry.view or loaded.engine.view
    spine = active_spine(loaded.tables["accounts"], loaded.tables.get("outcomes"), builder.grid)
    return builder.build(spine)


def score_wide(config: ProjectConfig, loaded: Loaded, wide: ir.Table,
               carry: Carry | None = None, by_date: bool = False) -> ir.Table:
    """Every scorecard row of the measures in ``wide``; ``carry``, when it keeps its running
    values from the measures, reads them from the copy computed here. ``by_date``: each
    scorecard's rows in as-of date order."""
    # every scorecard reads the measures: compute them once
    wide = loaded.engine.materialize(wide.mutate(__primary=primary_of(config, wide)), "measures")
    if carry is not None and carry.from_measures():
        carry.measures = wide
    parts = []
    every = tuple(dict.fromkeys(m for sc in config.all_scorecards for m in sc.measures))
    for sc in config.scorecards:
        rows = wide.filter(wide["__primary"] == sc.name)
        parts.append(score_scorecard(sc, rows, sc.version(config.measures), True, every,
                                     config.attributes, by_date))
    for sc in config.also:
        parts.append(score_scorecard(sc, wide, sc.version(config.measures), False,
                                     attributes=config.attributes, by_date=by_date))
    return union_aligned(parts)


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


def union_aligned(parts: list[ir.Table]) -> ir.Table:
    """The union of ``parts``, each given every column of the others (null where it has none)."""
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
    config: ProjectConfig, loaded: Loaded, dates: list[date], progress: Progress,
    carry: Carry | None = None, by_date: bool = False,
) -> Iterator[ir.Table]:
    """The score expression of each set-based pass over ``dates`` (a batch of dates each);
    ``carry`` keeps the running values of the last pass; ``by_date``: see :func:`scores_expr`."""
    accounts = loaded.health["accounts"].rows_kept
    batches = passes(dates, accounts, config.settings.max_rows_per_pass)
    done = 0
    span = asof.Span(min(dates), max(dates))
    stage = f"scoring {len(dates)} as-of date(s)"
    for i, batch in enumerate(batches):
        step = f"{stage}, pass {i + 1} of {len(batches)}" if len(batches) > 1 else stage
        progress(f"{step}|{done}|{len(dates)}")  # dates done when this pass starts
        yield scores_expr(config, loaded, batch, span, carry if i == len(batches) - 1 else None,
                          by_date)
        done += len(batch)
    progress(f"{stage}|{done}|{len(dates)}")


def score_frame(config: ProjectConfig, loaded: Loaded, dates: list[date],
                progress: Progress) -> Any:
    """Every scorecard row for ``dates``, in memory (a pandas frame), nothing written: for
    the backtest and the dry run of a scorecard change."""
    import pandas as pd

    parts = [loaded.engine.to_arrow(expr, nested=True).to_pandas()  # as write_sorted
             for expr in pass_exprs(config, loaded, dates, progress)]
    frame = pd.concat(parts, ignore_index=True)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    frame["is_primary"] = frame["is_primary"].astype(bool)
    return frame


def score_in_passes(
    config: ProjectConfig, loaded: Loaded, dates: list[date], stage: Path, progress: Progress,
    carry: Carry | None = None,
) -> None:
    """Score all dates, a batch of dates per set-based pass, into ``stage``."""
    one_file = _one_file_writer(loaded.engine) is not None
    for i, expr in enumerate(pass_exprs(config, loaded, dates, progress, carry, one_file)):
        part = stage / f".pass-{i}"
        write_snapshots(config, loaded.engine, expr, part, one_date=len(dates) == 1,
                        in_order=one_file)
        for folder in part.iterdir():
            folder.rename(stage / folder.name)
        part.rmdir()


def write_snapshots(config: ProjectConfig, engine: Engine, expr: ir.Table, stage: Path,
                    one_date: bool = False, in_order: bool = False) -> None:
    """Write ``expr`` into ``stage`` (swapped in by the store): one file in as_of order where
    the engine writes one, else a file per date. ``one_date``: ``expr`` holds one as-of
    date (nothing to sort); ``in_order``: its rows come in as-of date order (each
    scorecard's, scored ``by_date``: see :func:`scores_expr`), written as they come."""
    writer = _one_file_writer(engine)
    if writer is not None:
        add_pass(stage, lambda path: writer(expr, path, one_date, in_order))
        return
    _write_with_arrow(engine, expr, stage)


def _one_file_writer(engine: Engine) -> Any:
    """The engine's writer of a pass as one file in date order (None: it writes none)."""
    return getattr(engine, "write_sorted", None)


def _write_with_arrow(engine: Engine, expr: ir.Table, stage: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = engine.to_arrow(expr, nested=True)
    for day in pc.unique(table["as_of"]).to_pylist():
        folder = stage / f"as_of={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        part = table.filter(pc.equal(table["as_of"], day))
        pq.write_table(part, folder / "data_0.parquet", compression="zstd")


def save_definitions(config: ProjectConfig, store: SnapshotStore) -> None:
    for sc in config.all_scorecards:
        store.save_definition(sc.version(config.measures), sc.definition(config.measures))
