"""The scoring pipeline: sources -> measures -> scores -> snapshots, for many dates at once.

``load`` reads and checks the sources once; ``score`` scores the as-of dates in set-based
passes and writes the snapshots. The names below are what the project, validation and the
benchmarks use."""

from healthscore.pipeline.load import ENGINE_LOG, Loaded, Progress, load_sources, open_engine
from healthscore.pipeline.score import (
    history_columns,
    pass_exprs,
    passes,
    save_definitions,
    score_frame,
    score_in_passes,
    scores_expr,
    write_snapshots,
)

__all__ = ["ENGINE_LOG", "Loaded", "Progress", "history_columns", "load_sources", "open_engine",
           "pass_exprs", "passes", "save_definitions", "score_frame", "score_in_passes",
           "scores_expr", "write_snapshots"]
