"""Read, map and check every source once (cached), plus the workflow store's state that
scoring reads: the tables a run scores, in one engine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir

from healthscore.config.model import EntityMeasure, ProjectConfig
from healthscore.engine.adapter import Engine, make_engine
from healthscore.errors import DataError
from healthscore.measures.contract import unmatched_filters
from healthscore.sources.cache import FOLDER as CACHE_FOLDER
from healthscore.sources.cache import (
    Limits,
    SourceCache,
    accounts_key,
    changed_file,
    file_stamps,
    load_source,
)
from healthscore.sources.clean import DataHealth
from healthscore.sources.read import no_data_yet, workflow_rows
from healthscore.sources.subscriptions import observed_until, with_subscription_dates

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
    keys: dict[str, str] = field(default_factory=dict)  # source cache keys: same key, same rows
    # sources whose rows are a cache entry's and those of files added since: entity -> (that
    # entry's key, the added files' rows), so that what was kept of its rows is added to
    added: dict[str, tuple[str, ir.Table]] = field(default_factory=dict)
    # files read again while the run goes (Parquet rows that pass as read are not copied):
    # entity -> (path, size, modification time) before they were first read
    stamps: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)

    def check_unchanged(self) -> None:
        """Fail when a source file the run reads from was changed or removed since the run
        began: its rows were checked before the change, so what was scored is not known to
        have been checked."""
        for entity, stamps in self.stamps.items():
            path = changed_file(stamps)
            if path is not None:
                raise DataError(
                    f"sources.{entity}: {path} changed while the run read it (its size or "
                    f"modification time is not what it was when the run began). Nothing was "
                    f"written. Run again once the file is written whole; to avoid this, write "
                    f"each new file under another name and rename it into place.")

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
        loaded.stamps[entity] = file_stamps(source)  # before the first read
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
        loaded.keys = dict(store.keys)
        loaded.added = dict(store.added)
    if with_subs:
        subs = loaded.tables["subscriptions"]
        loaded.observed_until = observed_until(subs)
        filled = with_subscription_dates(
            loaded.tables["accounts"], subs, config.settings.renewal_grace_days, loaded.observed_until
        )
        loaded.tables["accounts"] = engine.materialize(filled, "accounts")
    for entity, notes in filter_notes(config, loaded, store).items():
        loaded.health[entity].notes.extend(notes)
    _read_store_state(config, loaded)
    return loaded


def filter_notes(config: ProjectConfig, loaded: Loaded,
                 store: SourceCache | None) -> dict[str, list[str]]:
    """entity -> a note for every used measure whose filter matches none of its rows
    (:func:`unmatched_filters`: a scan of each source a filter reads). A source taken from
    the cache has the rows its entry had, so the notes kept in the entry for the same
    filters are its notes, not scanned for again (19.2M usage events: 0.3 CPU s a run)."""
    digests = _filter_digests(config)
    kept: dict[str, list[str]] = {}
    todo: dict[str, ir.Table] = {}
    for entity, digest in digests.items():
        key = _entry_key(loaded, entity)
        notes = None
        if store is not None and key is not None:
            notes = store.filter_notes(entity, key, digest)
        if notes is None:
            if entity in loaded.tables:
                todo[entity] = loaded.tables[entity]
        else:
            kept[entity] = notes
    found = unmatched_filters(config, todo)
    for entity in todo:
        key = _entry_key(loaded, entity)
        if store is not None and key is not None:
            store.keep_filter_notes(entity, key, digests[entity], found.get(entity, []))
    return {e: notes for e, notes in sorted({**kept, **found}.items()) if notes}


def _entry_key(loaded: Loaded, entity: str) -> str | None:
    """The source cache key of ``entity``'s rows as measures read them (the accounts' rows
    get their subscription dates after they are read: not those of the entry)."""
    return None if entity == "accounts" else loaded.keys.get(entity)


def _filter_digests(config: ProjectConfig) -> dict[str, str]:
    """entity -> a hash of the filters of the used measures over it (what a note says of
    each: file, name, filter, case) and of the code that checks them."""
    package = Path(__file__).resolve().parent.parent
    code = b"".join((package / f).read_bytes() for f in
                    ("measures/contract.py", "measures/parts.py", "config/expressions.py"))
    filters: dict[str, list[list[Any]]] = {}
    for m in (config.measures[n] for n in config.used_measures()):
        if isinstance(m, EntityMeasure) and m.filter:
            filters.setdefault(m.entity, []).append([m.file, m.name, m.filter, m.case_sensitive])
    return {e: hashlib.sha256(code + json.dumps(f, sort_keys=True).encode()).hexdigest()[:32]
            for e, f in sorted(filters.items())}


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
        table = loaded.engine.register_arrow(rows, loaded.engine.temp_name(entity))
        if entity in loaded.tables:  # a file's rows and the store's, alike
            have = loaded.tables[entity]
            table = have.union(table.select(**{
                c: (table[c] if c in table.columns else ibis.null()).cast(t)
                for c, t in have.schema().items()}))
        loaded.tables[entity] = table
