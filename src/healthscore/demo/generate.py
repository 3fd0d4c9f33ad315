"""Seeded, streaming generator of realistic customer-success demo data.

``generate`` writes every canonical entity (except ``manual_values``) for a population of
accounts whose churn is caused by hidden behaviour; see ``docs/demo-data.md`` for what is
planted. Accounts are simulated and written in chunks, so memory stays flat however many
accounts are asked for, and the same arguments always give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from healthscore.demo.account_history import build_history
from healthscore.demo.behaviour import simulate
from healthscore.demo.calendar import Calendar, build_calendar
from healthscore.demo.columns import Columns, Ids
from healthscore.demo.people import build_accounts, build_contacts
from healthscore.demo.population import build_population
from healthscore.demo.rows import (
    Chunk,
    activities,
    advocacy,
    business_outcomes,
    invoices,
    milestones,
    outcomes,
    surveys,
    tickets,
    usage_events,
)
from healthscore.entities import ENTITIES

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
WRITTEN = (
    "accounts", "account_history", "contacts", "usage_events", "activities", "tickets",
    "invoices", "surveys", "advocacy", "milestones", "business_outcomes", "outcomes",
)
CHUNK_ACCOUNTS = 2_000
HISTORY_STREAM = 1  # account_history draws from the stream (seed, chunk, HISTORY_STREAM)
USAGE_PART = "part-{:05d}.parquet"


def schema_for(entity: str) -> pa.Schema:
    """Arrow schema of a canonical entity (required columns are not nullable)."""
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type], nullable=not c.required)
         for c in ENTITIES[entity].columns]
    )


def entity_paths(out_dir: Path) -> dict[str, Path]:
    """Where each entity is written: accounts as CSV, usage as a folder of parts."""
    paths = {name: out_dir / f"{name}.parquet" for name in WRITTEN}
    paths["accounts"] = out_dir / "accounts.csv"
    paths["usage_events"] = out_dir / "usage_events"
    return paths


def _table(entity: str, cols: Columns) -> pa.Table:
    schema = schema_for(entity)
    arrays = []
    for f in schema:
        array = cols[f.name]
        if array.type != f.type:
            raise TypeError(f"{entity}.{f.name}: built {array.type}, expected {f.type}")
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=schema)


def build_chunk(first: int, n: int, cal: Calendar, rng: np.random.Generator, ids: Ids,
                history_rng: np.random.Generator) -> dict[str, pa.Table]:
    """Simulate accounts ``first`` .. ``first + n - 1`` and build every entity's rows.

    ``history_rng`` is account_history's own stream: what it draws leaves ``rng`` (and so
    every other entity) untouched.
    """
    pop = build_population(first, n, cal, rng)
    sim = simulate(pop, cal, rng)
    contact_cols, directory = build_contacts(sim, pop, rng)
    chunk = Chunk(pop, cal, sim, rng, ids, directory)
    ticket_cols, csat = tickets(chunk)
    cols = {
        "accounts": build_accounts(sim, pop, cal),
        "account_history": build_history(sim, pop, cal, history_rng), "contacts": contact_cols,
        "usage_events": usage_events(chunk), "activities": activities(chunk),
        "tickets": ticket_cols, "invoices": invoices(chunk), "surveys": surveys(chunk, csat),
        "advocacy": advocacy(chunk), "milestones": milestones(chunk),
        "business_outcomes": business_outcomes(chunk), "outcomes": outcomes(chunk),
    }
    return {name: _table(name, cols[name]) for name in WRITTEN}


class _Writers:
    """Open writers for every entity; one usage part file per chunk."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self.csv = pa_csv.CSVWriter(str(paths["accounts"]), schema_for("accounts"))
        self.parquet = {
            name: pq.ParquetWriter(str(paths[name]), schema_for(name))
            for name in WRITTEN if name not in ("accounts", "usage_events")
        }

    def write(self, chunk_index: int, tables: dict[str, pa.Table]) -> None:
        self.csv.write_table(tables["accounts"])
        part = self.paths["usage_events"] / USAGE_PART.format(chunk_index)
        pq.write_table(tables["usage_events"], str(part))
        for name, writer in self.parquet.items():
            if tables[name].num_rows:
                writer.write_table(tables[name])

    def close(self) -> None:
        self.csv.close()
        for writer in self.parquet.values():
            writer.close()


def _prepare(out_dir: Path) -> dict[str, Path]:
    paths = entity_paths(out_dir)
    paths["usage_events"].mkdir(parents=True, exist_ok=True)
    for old in paths["usage_events"].glob("part-*.parquet"):
        old.unlink()
    return paths


def generate(
    out_dir: Path,
    accounts: int = 2000,
    months: int = 24,
    seed: int = 7,
    end_date: date = date(2026, 10, 31),
    progress: Callable[[int, int], None] | None = None,
    *,
    chunk_size: int = CHUNK_ACCOUNTS,
) -> dict[str, Path]:
    """Write the demo data into ``out_dir``; return entity name -> path.

    ``months`` months of history ending at ``end_date``; same arguments, same bytes. Chunk
    ``i`` of ``chunk_size`` accounts draws from the stream seeded with ``(seed, i)`` (its
    account_history from ``(seed, i, 1)``), and ``progress(done, total)`` is called after
    each chunk.
    """
    if accounts < 1 or chunk_size < 1:
        raise ValueError("accounts and chunk_size must be positive")
    paths = _prepare(Path(out_dir))
    cal = build_calendar(end_date, months)
    ids = Ids()
    writers = _Writers(paths)
    try:
        for index, first in enumerate(range(0, accounts, chunk_size)):
            n = min(chunk_size, accounts - first)
            rng = np.random.default_rng([seed, index])
            history_rng = np.random.default_rng([seed, index, HISTORY_STREAM])
            writers.write(index, build_chunk(first, n, cal, rng, ids, history_rng))
            if progress is not None:
                progress(first + n, accounts)
    finally:
        writers.close()
    return paths
