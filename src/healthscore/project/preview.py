"""The dry run's new scores, kept by what they are computed from: while that is the same,
so are the scores, and the dry-run page scores the project once, not on every visit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date

import pandas as pd
import pyarrow as pa

from healthscore.config.model import ProjectConfig
from healthscore.errors import DataError
from healthscore.sources.cache import FOLDER as CACHE_FOLDER
from healthscore.sources.cache import SourceCache
from healthscore.sources.read import workflow_rows

_kept: dict[str, pd.DataFrame] = {}  # the latest dry run's scores, by scores_key


def dry_run_scores(config: ProjectConfig, day: date, score: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``score()``, or the frame it returned last time while :func:`scores_key` is the same
    (the key is taken before and after scoring: a source changed meanwhile keeps nothing).
    Each caller gets its own copy."""
    key = scores_key(config, day)
    frame = _kept.get(key) if key is not None else None
    if frame is not None:
        return frame.copy()
    frame = score()
    if key is not None and scores_key(config, day) == key:
        _kept.clear()
        _kept[key] = frame.copy()
    return frame


def scores_key(config: ProjectConfig, day: date) -> str | None:
    """A digest of everything scoring ``day`` reads: the loaded configuration (scorecards,
    measures, sources, settings: its whole text), the content of every source file (SHA-256,
    not computed again for a file whose size and time the source cache recorded) and the
    workflow store's rows scoring reads (CTAs, module marks, entered values). None when a
    source has no content to hash short of reading it (a database table or query): such a
    project is scored on every dry run."""
    files = SourceCache(config.state_dir / CACHE_FOLDER)
    digest = hashlib.sha256(f"{day.isoformat()}\n{config!r}".encode())
    store = {(s.location, e) for e, s in config.store_sources.items()}
    for entity, source in sorted(config.sources.items()):
        if source.format == "workflow":
            store.add((source.location, entity))
            continue
        try:
            contents = files.contents(source)
        except DataError:  # no file yet: scoring says so, as it would without a key
            return None
        if contents is None:
            return None
        digest.update(repr((entity, contents)).encode())
    for location, entity in sorted(store):
        digest.update(f"{entity}\n".encode())
        digest.update(_arrow_bytes(workflow_rows(location, entity)))
    return digest.hexdigest()


def _arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())

