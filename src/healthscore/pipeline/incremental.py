"""Daily runs that compute only the new date, from the state the last run kept.

After every run whose last date is the newest stored one, the project's state folder keeps
(in ``.incremental/``) each active account's running values as of that date P
(:mod:`healthscore.measures.carry`) and a manifest: the date, a hash of the configuration
and of the code that builds measures, and each source's columns and per-day fingerprints
(rows and a hash of their values, by the day of the entity's time column).

``run --as-of D`` with D after P then scores D over the grid ``[P, D]``: the tables of the
measures that allow it are cut down, once each, to the rows that move a value between P and
D (:func:`cut_tables`: an event on its day and on the day its window closes, a row open for
a while when it opens or closes, a latest value from the rows after P; a distinct count or
min/max reads its window before D), and everything up to P is taken from the kept values;
other tables (distinct values or min/max over all time, the outcomes, the workflow store's
CTAs and marks) are read whole. Accounts that were not active on P are scored from their
whole history, and so are those kept as of P whose start date today's accounts file moves
after P (:func:`restarted`): the accounts are read whole every run, and the kept values
depend on them only through the dates each is a customer on. When such accounts are few,
their every row joins the same cut tables and pass (:func:`_score_day`). The running values
of D are computed once (:class:`Carry` with ``materialize``): scored, and kept for the next
run. The values are those of a cold run of D.

Anything the state cannot prove unchanged makes a cold run, said in one line: no state, a
changed configuration, a source whose columns changed, a date not after P. Rows that arrived
late (changed fingerprints on days up to P) make the run recompute, from the sources, D and
exactly the stored dates whose windows hold a changed day. ``run --full`` ignores the state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pyarrow as pa

from healthscore.config.model import Change, ProjectConfig, columns_read
from healthscore.engine.adapter import DuckDBEngine, Engine, nested_selects
from healthscore.engine.compiled import compiled_sql
from healthscore.entities import ENTITIES
from healthscore.measures import asof, history
from healthscore.measures.build import active_spine, known_accounts
from healthscore.measures.carry import Carry
from healthscore.measures.parts import time_column
from healthscore.pipeline.load import Loaded
from healthscore.pipeline.score import measures_expr, score_wide, union_aligned
from healthscore.sources.cache import pid_alive

FOLDER = ".incremental"  # in the state folder; a dot: not in backups
MANIFEST = "state.json"
RUNNING = "running.parquet"
SEEN = "seen-{}.parquet"  # a distinct count's values and the last day each was seen
AHEAD = "ahead-{}.parquet"  # a source's rows the next days' cuts read (see Ahead)
AHEAD_DAYS = 7  # the days after the kept date whose cuts the kept rows serve
KNOWN = "ahead-accounts.parquet"  # the accounts' ids when the rows ahead were last kept
VERSION = 3
_TMP = ".incremental-tmp-"
_CUT_TYPES = ("count", "sum", "avg", "latest", "days_since", "count_distinct", "min", "max")
_WHOLE = (history.HISTORY, "outcomes", "ctas", "module_marks")  # never cut: read for more
# the most accounts without kept values scored in the day's one pipeline: their ids are
# literals in its filters, which cost more the more there are (100,000 accounts, CPU s of the
# day with 100 / 300 / 1,000 of them: 6.6 / 7.8 / 11.0 so, 10.9 / 10.8 / 10.7 in a second
# pipeline over their rows alone, which scores more of them)
FOLDED = 500
_P = 2147483629  # a prime below 2**31: the row hashes are summed in two parts of 31 bits
_SWITCH = 0.0001  # seconds: Python's thread switch interval while the queue works (see Queued)


@dataclass
class Plan:
    """What a run scores: ``dates`` (cold, from the sources), or with ``prev`` set, the one
    date ``dates[0]`` from the state kept as of ``prev``. ``note`` says why, in one line."""

    dates: list[date]
    prev: date | None = None
    note: str = ""
    recomputed: list[date] = field(default_factory=list)  # stored dates late rows touched
    prints: dict[str, Fingerprint] | None = None  # the sources' fingerprints, when computed
    seen: dict[str, str] = field(default_factory=dict)  # with ``prev``: the state's (State.seen)
    # with ``prev``: accounts kept as of ``prev`` whose start date today's accounts file moves
    # after it (customers on the date): scored from their whole history (see restarted)
    restarted: list[str] = field(default_factory=list)
    ahead: dict[str, Ahead] = field(default_factory=dict)  # with ``prev``: the state's, then
    # (after cut_tables) the rows to keep for the next days


Band = tuple[str, date, date]  # a column, and the rows dated in (after, until] by it


@dataclass
class Ahead:
    """A source's rows that the cuts of the next days read (:func:`cut_tables`): those in
    ``bands``, of the ``columns`` a cut keeps, from the source's rows ``key``. A run whose
    cut the bands cover, on a source of those rows (or of those and files added since), cuts
    these rows instead of scanning the source; a run that scans keeps the rows of its next
    ``AHEAD_DAYS`` days, so a daily run scans its largest sources once a week."""

    bands: list[Band]
    columns: list[str]
    key: str
    file: str = ""  # in the state folder (kept), or the file to keep as it is
    rows: ir.Table | None = None  # to keep, when not the file as it is

    def manifest(self) -> dict[str, Any]:
        return {"bands": [[c, a.isoformat(), u.isoformat()] for c, a, u in self.bands],
                "columns": self.columns, "key": self.key, "file": self.file}

    @classmethod
    def read(cls, saved: dict[str, Any]) -> Ahead:
        bands = [(str(c), date.fromisoformat(a), date.fromisoformat(u)) for c, a, u in saved["bands"]]
        return cls(bands, list(saved["columns"]), str(saved["key"]), str(saved["file"]))


@dataclass
class State:
    day: date
    config: str
    columns: dict[str, list[str]]
    days: dict[str, dict[str, list[int]]]
    folder: Path
    keys: dict[str, str] = field(default_factory=dict)  # the sources' cache keys then
    seen: dict[str, str] = field(default_factory=dict)  # distinct count -> its file (SEEN)
    ahead: dict[str, Ahead] = field(default_factory=dict)  # source -> its rows kept (AHEAD)


# ----------------------------------------------------------------------------- planning


def plan(config: ProjectConfig, loaded: Loaded, stored: list[date], dates: list[date],
         full: bool = False) -> Plan:
    """How to score ``dates`` given the kept state and the stored dates."""
    cold = Plan(sorted(set(dates)))
    if full or len(cold.dates) != 1:
        if full:
            cold.note = "--full: every date computed from the sources"
        return cold
    day = cold.dates[0]
    state = read_state(config.state_dir)
    if state is None:
        return cold if not stored else _cold(cold, "no kept state from an earlier run")
    if config.engine != "duckdb":
        return _cold(cold, f"engine {config.engine}: only the duckdb engine keeps state")
    if day <= state.day:
        return _cold(cold, f"{day} is not after the kept state's date, {state.day}")
    if stored and max(stored) != state.day:
        return _cold(cold, f"the newest stored date, {max(stored)}, is not the kept state's "
                           f"date, {state.day}")
    if state.config != config_digest(config):
        return _cold(cold, "the configuration (healthscore.yml, measures, scorecards) changed "
                           "since the kept state")
    now = fingerprints(config, loaded, state)
    for entity in sorted(set(now) | set(state.columns)):
        if now.get(entity, Fingerprint([], {})).columns != state.columns.get(entity):
            return _cold(cold, f"{entity}: its columns changed since the kept state")
    changed = {e: _changed_days(state.days.get(e, {}), now[e].days, state.day) for e in now}
    changed = {e: days for e, days in changed.items() if days}
    if changed:
        touched = sorted({d for e, days in changed.items()
                          for d in touched_dates(config, e, days, stored)})
        late = "; ".join(f"{e} dated {_listed([str(d) for d in days])}"
                         for e, days in sorted(changed.items()))
        again = ", ".join(str(d) for d in touched) or "no stored date"
        return Plan(sorted({*touched, day}), None,
                    f"late rows in {late}: recomputing {again} and {day} from the sources",
                    touched, now)
    note = f"{day} computed from the state kept as of {state.day}"
    moved = restarted(loaded, state, day)
    if moved:
        note += (f", and from their whole history for {_counted(len(moved), 'account')} whose "
                 f"start date moved after {state.day}: {_listed(moved)}")
    return Plan([day], state.day, note, prints=now, seen=state.seen, restarted=moved,
                ahead=dict(state.ahead))


def restarted(loaded: Loaded, state: State, day: date) -> list[str]:
    """The accounts kept as of the state's date P whose start date today's accounts file
    moves after P, and that are customers on ``day``.

    A running value as of a date is the sum (max, latest) of every contribution up to it,
    placed on the account's first date when earlier (``merged_contributions``): it depends
    on the accounts only through the dates each is a customer on. The kept values of
    an account that was a customer on P, and by today's file still is, or is not on ``day``,
    are its values of a cold run; one gone since P, or starting only after ``day``, is not
    scored; one that was not kept is scored from its whole history. Only an account whose
    start date moved from on or before P to (P, ``day``] is left: its kept values belong on a
    date it has no row on, so it is scored from its whole history too."""
    engine = loaded.engine
    until = ibis.literal(day, type="date")
    a = loaded.tables["accounts"]
    kept = engine.read_parquet([str(state.folder / RUNNING)], engine.temp_name("kept_accounts"))
    moved = a.filter((a.start_date > ibis.literal(state.day, type="date")) & (a.start_date <= until))
    ids = engine.to_arrow(moved.select("account_id").semi_join(kept.select("account_id"),
                                                               "account_id"))
    if not ids.num_rows:  # (the usual case, 100,000 accounts: 0.01 CPU s; the churn dates
        return []  # of outcomes joined to every account's first: 0.045)
    a = known_accounts(a.filter(a.account_id.isin(ids["account_id"].to_pylist())),
                       loaded.tables.get("outcomes"))
    a = a.filter(a.churn_date.isnull() | (a.churn_date > until))  # (not scored on the date)
    return sorted(engine.to_arrow(a.select("account_id"))["account_id"].to_pylist())


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _listed(items: list[str], most: int = 5) -> str:
    return ", ".join(items[:most]) + (" ..." if len(items) > most else "")


def _cold(p: Plan, why: str) -> Plan:
    p.note = f"computed from the sources: {why}"
    return p


def _changed_days(before: dict[str, list[int]], now: dict[str, list[int]], until: date) -> list[date]:
    last = until.isoformat()
    keys = {k for k in (*before, *now) if k != "none" and k <= last}
    return sorted(date.fromisoformat(k) for k in keys if before.get(k) != now.get(k))


def touched_dates(config: ProjectConfig, entity: str, days: list[date],
                  stored: list[date]) -> list[date]:
    """The stored dates that can see a row of ``entity`` dated on one of ``days``: those
    inside the widest window of the measures over it (every later date when one looks back
    without a window, keeps a latest value, counts open rows or dates rows otherwise)."""
    reach = _reach(config, entity)
    return sorted({s for s in stored for c in days
                   if s >= c and (reach is None or s < c + timedelta(days=reach))})


def _reach(config: ProjectConfig, entity: str) -> int | None:
    uses = _uses(config, entity)
    if not uses:
        return None
    time = ENTITIES[entity].time
    out = 0
    for m, shift in uses:
        if (m.type not in ("count", "sum", "avg", "count_distinct", "min", "max")
                or getattr(m, "mode", "events") != "events" or m.window.unbounded
                or time_column(m) != time):
            return None
        out = max(out, (m.window.days + 31 * m.window.months) * (shift + 1))
    return out


def _uses(config: ProjectConfig, entity: str) -> list[tuple[Any, int]]:
    """The entity measures over ``entity`` a run builds, each with how many windows it looks
    back beyond its own (1 for the previous window a change compares with)."""
    measures = {n: config.measures[n] for n in config.used_measures()}
    out = [(m, 0) for m in measures.values() if m.entity == entity]
    for m in measures.values():
        if isinstance(m, Change) and config.measures[m.of].entity == entity:
            prev = dataclasses.replace(config.measures[m.of], name=f"{m.of}__prev")
            out.append((prev, 1))
    return out


# ----------------------------------------------------------------------------- fingerprints


@dataclass
class Fingerprint:
    columns: list[str]
    days: dict[str, list[int]]  # ISO day (or "none") -> [rows, hash part 1, hash part 2]


def fingerprinted(config: ProjectConfig, loaded: Loaded) -> list[str]:
    """The sources whose rows measures read, by day: every one with a time column but the
    accounts (read whole every run) and the workflow store's tables."""
    out = []
    for entity, source in config.sources.items():
        time = ENTITIES[entity].time if entity in ENTITIES else None
        table = loaded.tables.get(entity)
        if (entity == "accounts" or source.format == "workflow" or entity in config.store_sources
                or not time or table is None or time not in table.columns):
            continue
        out.append(entity)
    return out


def fingerprints(config: ProjectConfig, loaded: Loaded,
                 state: State | None = None) -> dict[str, Fingerprint]:
    """Per source, per day: its rows and a hash of their values (one scan of each source;
    none for a source whose cache key is the one of the kept ``state``: the same rows).

    A row's hash is summed into its day, so the fingerprints of a source whose rows are
    those the state fingerprinted (their cache key) and the rows of files added since
    (``Loaded.added``) are the kept ones and the added rows' summed: only those are
    scanned. Rows added on a day up to the state's date change that day's, as late rows."""
    out = {}
    for entity in fingerprinted(config, loaded):
        key = loaded.keys.get(entity)
        kept = _kept(state, entity)
        if kept is not None and key is not None and state is not None \
                and state.keys.get(entity) == key:
            out[entity] = kept
            continue
        added = loaded.added.get(entity)
        if kept is not None and added is not None and state is not None \
                and state.keys.get(entity) == added[0] and kept.columns == list(added[1].columns):
            out[entity] = _summed(kept, _scanned(loaded, entity, added[1]))
            continue
        out[entity] = _scanned(loaded, entity, loaded.tables[entity])
    return out


def _kept(state: State | None, entity: str) -> Fingerprint | None:
    if state is None or entity not in state.days or entity not in state.columns:
        return None
    return Fingerprint(state.columns[entity], state.days[entity])


def _scanned(loaded: Loaded, entity: str, t: ir.Table) -> Fingerprint:
    """The fingerprint of the rows ``t`` of ``entity`` (one scan)."""
    time = str(ENTITIES[entity].time)
    day = t[time].date() if t[time].type().is_timestamp() else t[time]
    h = ibis.struct({c: t[c] for c in t.columns}).hash()
    rows = t.select(__day=day, __h=h)  # grouped by the day itself: its text comes after
    per_day = rows.group_by("__day").aggregate(
        n=rows.count(), a=(rows.__h % _P).sum(), b=((rows.__h // _P) % _P).sum())
    frame = loaded.engine.to_arrow(per_day).to_pylist()
    days = {_day_key(r["__day"]): [int(r["n"]), int(r["a"] or 0), int(r["b"] or 0)]
            for r in frame}
    return Fingerprint(list(t.columns), days)


def _summed(kept: Fingerprint, added: Fingerprint) -> Fingerprint:
    """The fingerprint of two sets of rows of the same columns: each day's parts added."""
    days = {d: list(v) for d, v in kept.days.items()}
    for d, more in added.days.items():
        days[d] = [a + b for a, b in zip(days.get(d, [0, 0, 0]), more, strict=True)]
    return Fingerprint(list(kept.columns), days)


def _day_key(day: Any) -> str:
    """A fingerprint's day: ISO text (a time column of text keeps its text), or "none"."""
    return "none" if day is None else day.isoformat() if isinstance(day, date) else str(day)


def config_digest(config: ProjectConfig) -> str:
    """A hash of the project's configuration files and of the code that builds measures."""
    digest = hashlib.sha256()
    root = config.root
    files = [root / "healthscore.yml", *sorted((root / "measures").glob("**/*.y*ml")),
             *sorted((root / "scorecards").glob("**/*.y*ml"))]
    for f in files:
        if f.is_file():
            digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    package = Path(__file__).resolve().parent.parent
    for folder in ("config", "measures", "sources"):
        for f in sorted((package / folder).glob("*.py")):
            digest.update(f.name.encode() + f.read_bytes())
    digest.update((package / "entities.py").read_bytes())
    digest.update(config.engine.encode())
    return digest.hexdigest()[:32]


# ----------------------------------------------------------------------------- scoring


def score_day(config: ProjectConfig, loaded: Loaded, p: Plan) -> tuple[ir.Table, list[Carry]]:
    """The score expression of the one date of ``p`` from the state kept as of ``p.prev``,
    and the carries that keep the new state (see :func:`kept`). The tables it materialises
    are computed by the engine while their readers are built (:class:`Queued`)."""
    if p.prev is None:
        raise ValueError("the plan has no kept state to start from")
    day = p.dates[0]
    engine = loaded.engine
    folder = config.state_dir / FOLDER
    before = engine.read_parquet([str(folder / RUNNING)], engine.temp_name("kept"))
    if p.restarted:  # (kept as of a date they no longer have a row on: see restarted)
        before = before.filter(~before.account_id.isin(p.restarted))
    known = before.select("account_id")
    seen = {name: engine.read_parquet([str(folder / file)], engine.temp_name("kept_seen"))
            for name, file in p.seen.items()}
    grid = engine.register_arrow(asof.grid_arrow([day]), engine.temp_name("grid"))
    spine = active_spine(loaded.tables["accounts"], loaded.tables.get("outcomes"), grid)
    new = engine.to_arrow(spine.select("account_id").anti_join(known, "account_id"))
    if p.ahead and not _unknown_then(engine, folder, new["account_id"].to_pylist()):
        p.ahead = {}  # (the rows kept ahead may hold some of the new accounts' rows)
    kept_rows = {entity: engine.read_parquet([str(folder / a.file)], engine.temp_name("kept_ahead"))
                 for entity, a in p.ahead.items()}
    queued = Queued(engine) if isinstance(engine, DuckDBEngine) else engine
    try:
        scores, carries = _score_day(config, dataclasses.replace(loaded, engine=queued), p,
                                     before, seen, new, kept_rows)
        if queued is not engine:  # the snapshot writer compiles the scores so (nested
            with nested_selects():  # selects): compiled while the engine computes the
                compiled_sql(engine.con, scores)  # measures, the writer finds them compiled
    finally:
        if isinstance(queued, Queued):
            queued.close()  # (the queries it holds computed, or the first failure raised)
    return scores, carries


def _score_day(config: ProjectConfig, loaded: Loaded, p: Plan, before: ir.Table,
               seen: dict[str, ir.Table], new: pa.Table, kept_rows: dict[str, ir.Table]
               ) -> tuple[ir.Table, list[Carry]]:
    """The scores of the plan's date and the carries keeping its running values. The
    accounts not active on the state's date (``new``, the restarted ones among them) are
    scored from their whole history: when they are few, every row of theirs joins the cut
    tables and the one pipeline (their contributions up to the state's date their own, not
    kept values); else through a second pipeline over their rows alone."""
    day, prev = p.dates[0], p.prev
    if prev is None:
        raise ValueError("the plan has no kept state to start from")
    engine = loaded.engine
    ids = new["account_id"].to_pylist()
    whole = tuple(ids) if len(ids) <= FOLDED else ()
    known = before.select("account_id")
    ahead = {e: dataclasses.replace(a, rows=kept_rows[e]) for e, a in p.ahead.items()}
    tables, carried, distinct = cut_tables(config, loaded, prev, day, set(seen), whole, ahead)
    p.ahead = ahead  # (now the rows to keep for the next days)
    cut = Loaded(engine, tables, loaded.health, {}, loaded.observed_until, loaded.cached)
    carry = Carry(before, frozenset(carried), keep_only=None if whole else known,
                  materialize=engine.materialize, distinct_rows=distinct, seen_before=seen,
                  whole=whole)
    with nested_selects():  # (few rows: compiling costs more than the engine's work)
        wide = measures_expr(config, cut, [prev, day], asof.Span(prev, day), carry)
    missing = carry.missing()
    if missing:
        raise StateMismatch(f"the kept state has no {', '.join(missing[:3])}")
    wide = wide.filter(wide.as_of == day)
    parts, carries = [wide if whole or not ids else wide.semi_join(known, "account_id")], [carry]
    if ids and not whole:  # many: scored from their whole history in a pipeline of their own
        fresh = Carry(materialize=engine.materialize)
        parts.append(measures_expr(config, _their_rows(loaded, new), [day], asof.Span(day, day),
                                   fresh))
        carries.append(fresh)
    with nested_selects():  # the measures of one date: 0.36 -> 0.14 CPU s to compile at 100k
        scores = score_wide(config, loaded, union_aligned(parts), carry)
    return scores, carries


def _unknown_then(engine: Engine, folder: Path, ids: list[str]) -> bool:
    """Whether none of the accounts ``ids`` was in the accounts file when the rows kept ahead
    were kept (``KNOWN``): a source's rows of an account it did not know were rejected, and
    rows it keeps again after a new account id are those it had, so the rows kept ahead hold
    none of theirs, and the files added since hold all of them."""
    if not ids or len(ids) > FOLDED:  # (many: scored from the sources in a pipeline apart)
        return True
    if not (folder / KNOWN).is_file():
        return False
    known = engine.read_parquet([str(folder / KNOWN)], engine.temp_name("kept_known"))
    return not engine.to_arrow(known.filter(known.account_id.isin(ids))).num_rows


def _their_rows(loaded: Loaded, accounts: pa.Table) -> Loaded:
    """``loaded`` with every table of accounts' rows cut to those of ``accounts``."""
    ids = loaded.engine.register_arrow(accounts, loaded.engine.temp_name("new_accounts"))
    only = {e: (t.semi_join(ids, "account_id") if "account_id" in t.columns else t)
            for e, t in loaded.tables.items()}
    return Loaded(loaded.engine, only, loaded.health, {}, loaded.observed_until, loaded.cached)


class Queued(Engine):
    """A DuckDB engine whose tables are computed behind the caller's back: each table
    materialised (and each Arrow table registered) is named and typed at once, and filled
    by one worker thread, in the order asked, while this thread builds and compiles the
    queries that read it (DuckDB computes without holding Python's lock: the next day at
    100,000 accounts compiles about 1.2 CPU s of SQL and builds as much again of Ibis
    expressions, and left DuckDB's second core idle meanwhile). Anything else asked of the
    engine first waits for the queued work; :meth:`close` waits too, and raises the first
    failure of a queued query (those after it are not run).

    While the queue works, Python's thread switch interval is 0.1 ms instead of 5: the worker
    needs Python's lock back after each statement the engine runs, and while this thread
    compiles it got it only when the interval ran out. 40 small tables made by a worker
    beside a busy thread: 0.47-0.53 s with 5 ms, 0.14 s with 0.1 ms."""

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine
        self.name = engine.name
        self.rescans_files_cheaply = engine.rescans_files_cheaply
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="healthscore-queued")
        self._queued: list[Future[None]] = []
        self._failed = False
        self._scratch: DuckDBEngine | None = None
        _QUICK.enter()

    @property
    def con(self) -> Any:
        self.wait()
        return self.engine.con

    def __getattr__(self, name: str) -> Any:  # (what Engine does not name: DuckDB's own)
        if name.startswith("_"):
            raise AttributeError(name)
        self.wait()
        return getattr(self.engine, name)

    def temp_name(self, prefix: str) -> str:
        return self.engine.temp_name(prefix)

    def materialize(self, expr: ir.Table, prefix: str) -> ir.Table:
        """The table ``expr``, filled behind. The worker only runs the statements made here
        (compiled, typed, the in-memory tables they read found while the engine works): at
        100,000 accounts, making each table through Ibis (its statement built, its
        description read back and parsed) took the worker 0.83 s of wall time on a loaded
        machine (load 7), mostly waiting for Python's lock while this thread compiled."""
        name = self.engine.temp_name(prefix)
        sql = compiled_sql(self.engine.con, expr)  # (here: compiled while the engine works)
        schema = expr.schema()
        create = self.engine.creating(name, schema)
        statements = self.engine.filling(name, schema, sql, create)
        memtables = expr if expr.op().find(ops.InMemoryTable) else None
        self._queue(lambda: self.engine.make_table(name, statements, memtables))
        typed = self._types().created(name, create)  # (the same statement)
        return self._table(name, typed, ops.Namespace(catalog="temp", database="main"))

    def register_arrow(self, table: pa.Table, name: str) -> ir.Table:
        self._queue(lambda: self.engine.copy_arrow(table, name))
        typed = self._types().register_arrow(table.slice(0, 0), name)
        return self._table(name, typed.schema(), ops.Namespace(database="temp"))

    def _types(self) -> DuckDBEngine:
        """An engine of empty tables: each table made there as the engine makes it says
        the types the engine will give it, without waiting for it (Ibis reads a timestamp
        back in microseconds, though in milliseconds when DuckDB stores milliseconds)."""
        if self._scratch is None:
            self._scratch = DuckDBEngine(memory_limit="64MB", threads=1)
        return self._scratch

    def _table(self, name: str, typed: ibis.Schema, namespace: Any) -> ir.Table:
        """The table ``name`` of the engine (to be filled), of the columns ``typed``."""
        return ops.DatabaseTable(name, typed, self.engine.con, namespace).to_expr()

    def _queue(self, work: Callable[[], Any]) -> None:
        def run() -> None:
            if self._failed:
                return
            try:
                work()
            except BaseException:
                self._failed = True
                raise

        self._queued.append(self._pool.submit(run))

    def wait(self) -> None:
        """Once every queued table is computed; the first failure raised."""
        queued, self._queued = self._queued, []
        error: BaseException | None = None
        for future in queued:
            try:
                future.result()
            except BaseException as e:  # (the first one; later ones were skipped)
                error = error or e
        if error is not None:
            raise error

    def read_parquet(self, paths: list[str], name: str) -> ir.Table:
        self.wait()
        return self.engine.read_parquet(paths, name)

    def read_csv(self, path: str, name: str) -> ir.Table:
        self.wait()
        return self.engine.read_csv(path, name)

    def register_batches(self, batches: pa.RecordBatchReader, name: str) -> ir.Table:
        self.wait()
        return self.engine.register_batches(batches, name)

    def view(self, expr: ir.Table, prefix: str) -> ir.Table:
        self.wait()
        return self.engine.view(expr, prefix)

    def to_arrow(self, expr: ir.Table, nested: bool = False) -> pa.Table:
        self.wait()
        return self.engine.to_arrow(expr, nested)

    def write_parquet(self, expr: ir.Table, path: Path) -> None:
        self.wait()
        self.engine.write_parquet(expr, path)

    def close(self) -> None:
        """Wait for the queued work (raising its first failure) and stop the worker; the
        engine itself stays open."""
        try:
            self.wait()
        finally:
            self._pool.shutdown()
            _QUICK.leave()
            if self._scratch is not None:
                self._scratch.close()
                self._scratch = None


class _QuickSwitch:
    """Python's thread switch interval at ``_SWITCH`` while at least one queue works (runs
    in threads of one process, the web app's, may overlap), the process's own again after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._working = 0
        self._saved = sys.getswitchinterval()

    def enter(self) -> None:
        with self._lock:
            if not self._working:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, _SWITCH))
            self._working += 1

    def leave(self) -> None:
        with self._lock:
            self._working -= 1
            if not self._working:
                sys.setswitchinterval(self._saved)


_QUICK = _QuickSwitch()


class StateMismatch(Exception):
    """The kept state does not hold what this run needs: score from the sources instead."""


def cut_tables(config: ProjectConfig, loaded: Loaded, prev: date, day: date,
               kept_seen: AbstractSet[str] = frozenset(), new: tuple[str, ...] = (),
               ahead: dict[str, Ahead] | None = None
               ) -> tuple[dict[str, ir.Table], set[str], dict[str, ir.Table]]:
    """The tables with the rows a run over ``[prev, day]`` needs besides the kept values,
    the running columns taken from those values, and the rows the distinct counts read (a
    whole window before ``day``; only the rows after ``prev`` for those whose values and
    last days seen were kept, ``kept_seen``). Each cut table is computed once (one scan of
    its source) and kept in the engine: every measure over it reads that small copy. Every
    row of the ``new`` accounts is kept too (none of their values was kept).

    ``ahead``, when given, holds the rows an earlier run kept for the next days
    (:class:`Ahead`, their ``rows`` read): a source whose kept rows cover the cut is cut
    from them (and from the rows of files added since) instead of scanned; a source that is
    scanned has the rows of its next ``AHEAD_DAYS`` days cut in the same scan. On return it
    holds, for each source, the rows to keep for the days after ``day``."""
    tables = dict(loaded.tables)
    carried: set[str] = set()
    distinct: dict[str, ir.Table] = {}
    kept, keep = ahead or {}, {}
    for entity, t, uses in _cut_sources(config, loaded):
        whole, part = _split_uses(uses, kept_seen)
        bands = _bands(entity, part, prev, day, kept_seen)
        seen = _bands(entity, whole, prev, day)
        if bands is None or seen is None:
            continue
        columns = _read_by(t, entity, uses, bands)
        rows = None if ahead is None or seen else _kept_rows(loaded, entity, kept.get(entity),
                                                            bands, columns, new)
        later = (_ahead_bands(entity, part, day, kept_seen)
                 if ahead is not None and rows is None and entity in loaded.keys else None)
        if rows is not None:  # the rows kept ahead (and those of files added since)
            keep[entity] = dataclasses.replace(rows, key=loaded.keys[entity])
            t = rows.rows
        elif later:  # scanned once for this cut and the next days' cuts
            t = loaded.engine.materialize(t.filter(_within(t, bands + later, new))
                                          .select(*_read_by(t, entity, uses, bands + later)),
                                          f"ahead_{entity}")
            keep[entity] = Ahead(_merged(later), list(t.columns), loaded.keys[entity],
                                 rows=t.filter(_within(t, later)))
        cut = t.filter(_within(t, bands, new)).select(*columns)
        tables[entity] = loaded.engine.materialize(cut, f"cut_{entity}")
        if seen:  # (each distinct count keeps its own distinct values: read by it alone)
            distinct[entity] = loaded.tables[entity].filter(_within(loaded.tables[entity], seen))
        for m, _ in uses:
            carried |= {m.name, f"{m.name}__sum", f"{m.name}__n", f"{m.name}__ts"}
    h = loaded.tables.get(history.HISTORY)
    names = [c for c in (loaded.health[history.HISTORY].columns if h is not None else [])
             if c not in ("account_id", "valid_from")]
    if h is not None and names:  # attributes are latest values: the rows after prev will do
        if history.HISTORY not in {m.entity for m in config.measures.values()}:
            after = h.valid_from > prev
            tables[history.HISTORY] = h.filter((after | h.account_id.isin(new)) if new
                                               else after)
        if tables[history.HISTORY] is not h:
            carried |= {history.column(c) for c in names}
            carried |= {f"{history.column(c)}__ts" for c in names}
    if ahead is not None:
        ahead.clear()
        ahead.update(keep)
    return tables, carried, distinct


def _split_uses(uses: list[tuple[Any, int]], kept_seen: AbstractSet[str]
                ) -> tuple[list[tuple[Any, int]], list[tuple[Any, int]]]:
    """``uses`` as (the distinct counts read over their whole window, their last days seen
    not kept; the rest)."""
    whole = [u for u in uses if u[0].type == "count_distinct" and u[0].name not in kept_seen]
    return whole, [u for u in uses if u not in whole]


def _cut_sources(config: ProjectConfig, loaded: Loaded
                 ) -> list[tuple[str, ir.Table, list[tuple[Any, int]]]]:
    """The sources a run over a few days cuts, each with its table and its measures' uses:
    the entities of measures but those read for more than their measures (account
    attributes, churn dates...)."""
    out = []
    for entity in sorted({m.entity for m in config.measures.values() if m.entity}):
        t = loaded.tables.get(entity)
        uses = _uses(config, entity)
        if entity not in _WHOLE and t is not None and uses:
            out.append((entity, t, uses))
    return out


def _kept_rows(loaded: Loaded, entity: str, kept: Ahead | None, bands: list[Band],
               columns: list[str], new: tuple[str, ...] = ()) -> Ahead | None:
    """The rows kept ahead for ``entity`` when they hold every row of ``bands`` a scan of the
    source would give (the source's rows those they were kept from, or those and the rows of
    files added since, which are added to them with every row of the ``new`` accounts: the
    caller knows the kept rows hold none of theirs), of the ``columns``; else None."""
    if kept is None or kept.rows is None or not set(columns) <= set(kept.columns) \
            or not _covers(kept.bands, bands):
        return None
    if loaded.keys.get(entity) == kept.key:
        return kept
    added = loaded.added.get(entity)
    if added is None or added[0] != kept.key:
        return None  # (the source changed otherwise: scanned)
    more = added[1].filter(_within(added[1], kept.bands, new)).select(*kept.columns)
    return Ahead(kept.bands, kept.columns, kept.key,
                 rows=ibis.union(kept.rows, more.cast(kept.rows.schema())))


def _ahead_bands(entity: str, uses: list[tuple[Any, int]], day: date,
                 kept_seen: AbstractSet[str]) -> list[Band] | None:
    """The rows the cuts of every run over ``[prev, day']`` with ``day <= prev < day' <=
    day + AHEAD_DAYS`` read (see :func:`_bands`): each band grows with its later end, so the
    bands of the runs from ``day`` to each of those days hold them all."""
    out: list[Band] = []
    for days in range(1, AHEAD_DAYS + 1):
        bands = _bands(entity, uses, day, day + timedelta(days=days), kept_seen)
        if bands is None:
            return None
        out += bands
    return _merged(out)


def _covers(have: list[Band], need: list[Band]) -> bool:
    """Whether the (merged) bands ``have`` hold every row of the bands ``need``."""
    return all(any(c == col and after >= a and until <= u for c, a, u in have)
               for col, after, until in _merged(need))


def _read_by(t: ir.Table, entity: str, uses: list[tuple[Any, int]],
             bands: list[Band]) -> list[str]:
    """The columns of ``t`` its measures in ``uses`` read (the account, the days of the
    ``bands``, each measure's time, column and filter's columns) and the entity's key, in
    ``t``'s order: a cut table keeps only those (fewer text columns decoded)."""
    spec = ENTITIES.get(entity)
    read = {"account_id", spec.key if spec else None, *(col for col, _, _ in bands)}
    for m, _ in uses:
        read |= {time_column(m), *columns_read(m)}
    return [c for c in t.columns if c in read]


def _bands(entity: str, uses: list[tuple[Any, int]], prev: date, day: date,
           kept_seen: AbstractSet[str] = frozenset()
           ) -> list[Band] | None:
    """The rows that can move a value between ``prev`` and ``day`` for the measures in
    ``uses``, as bands of days; None when a measure needs older rows too.

    The values as of ``prev`` are kept, so a row matters only when one of its +/-
    contributions lands in ``(prev, day]``: an event row on the day it happens and on the
    day its window closes (a band of days before each), the start or end of a row open for
    a while (mode: open); a latest value or days since, rows dated after ``prev``. A
    distinct count or a min/max is not a running value: it reads its whole window before
    ``day``, unless the values it counted and their last days were kept (``kept_seen``):
    then the rows dated after ``prev``."""
    out: list[Band] = []
    for m, shift in uses:
        if m.type not in _CUT_TYPES:
            return None
        if getattr(m, "mode", "events") == "open":
            spec = ENTITIES.get(entity)
            start = m.open_from or (spec.time if spec else None)
            if m.type not in ("count", "sum") or spec is None or not spec.end or not start:
                return None
            delay = timedelta(days=m.open_after_days)
            out += [(str(start), prev - delay, day - delay), (str(spec.end), prev, day)]
            continue
        col, w = time_column(m), m.window
        if m.type in ("latest", "days_since") or (w.unbounded and m.type in ("count", "sum", "avg")):
            out.append((col, prev, day))
        elif w.unbounded:  # a distinct count or min/max over all time
            return None
        elif m.name in kept_seen:  # a distinct count: the values seen after prev
            out.append((col, prev, day))
        elif m.type in ("count_distinct", "min", "max"):
            out.append((col, day - _span(w, shift + 1)[1], day))
        else:  # count, sum, avg: +value on its day, -value when its window(s) end
            for times in sorted({shift, shift + 1}):
                least, most = _span(w, times)
                out.append((col, prev - most, day - least))
    return out


def _span(w: Any, times: int) -> tuple[timedelta, timedelta]:
    """The fewest and the most days ``times`` windows can span (calendar months vary)."""
    if w.months:
        return timedelta(days=28 * w.months * times), timedelta(days=31 * w.months * times)
    return timedelta(days=w.days * times), timedelta(days=w.days * times)


def _within(t: ir.Table, bands: list[Band], new: tuple[str, ...] = ()) -> Any:
    """Rows dated inside one of ``bands`` (overlapping bands of a column merged), or of one
    of the ``new`` accounts."""
    keep = t.account_id.isin(new) if new else None
    for col, after, until in _merged(bands):
        cond = _dated(t[col], after, until)
        keep = cond if keep is None else keep | cond
    return keep if keep is not None else ibis.literal(False)


def _dated(value: Any, after: date, until: date) -> Any:
    """Whether the day of ``value`` is in (after, until]. A timestamp without a time zone is
    compared as it is, from midnight to midnight: the engine filters the rows while it reads
    them instead of casting every one to a date first (19.2M usage events: 0.85 -> 0.65 CPU s
    for four bands of days)."""
    kind = value.type()
    if kind.is_timestamp() and kind.timezone is None:
        first = datetime.combine(after + timedelta(days=1), time())
        end = datetime.combine(until + timedelta(days=1), time())
        return (value >= ibis.literal(first, type=kind)) & (value < ibis.literal(end, type=kind))
    day = value.date() if kind.is_timestamp() else value
    return (day > ibis.literal(after, type="date")) & (day <= ibis.literal(until, type="date"))


def _merged(bands: list[Band]) -> list[Band]:
    out: list[Band] = []
    for col, after, until in sorted(bands):
        if out and out[-1][0] == col and after <= out[-1][2]:
            out[-1] = (col, out[-1][1], max(until, out[-1][2]))
        elif until > after:
            out.append((col, after, until))
    return out


# ----------------------------------------------------------------------------- the state


def distinct_measures(config: ProjectConfig) -> list[str]:
    """The distinct counts a run builds (with the previous window of those a change reads)."""
    names = [n for n in config.used_measures() if config.measures[n].type == "count_distinct"]
    return [*names, *[f"{n}__prev" for n in names]]


def read_state(state_dir: Path) -> State | None:
    folder = state_dir / FOLDER
    try:
        saved = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if saved["version"] != VERSION or not (folder / RUNNING).is_file():
            return None
        ahead = {e: Ahead.read(a) for e, a in saved.get("ahead", {}).items()
                 if (folder / a["file"]).is_file()}
        return State(date.fromisoformat(saved["date"]), saved["config"], saved["columns"],
                     saved["days"], folder, saved["keys"], saved["seen"], ahead)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_pending(config: ProjectConfig, loaded: Loaded, carries: list[Carry], day: date,
                  prints: dict[str, Fingerprint] | None = None,
                  ahead: dict[str, Ahead] | None = None) -> Path:
    """Write the new state into a folder beside the kept one (moved in by :func:`commit`):
    ``ahead``, the rows a run from the kept state keeps for the next days' cuts (None: a run
    from the sources, whose rows of the next days are cut here)."""
    _prune(config.state_dir)
    tmp = config.state_dir / f"{_TMP}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        distinct = distinct_measures(config)
        kept = union_aligned([c.kept(distinct) for c in carries])
        loaded.engine.write_parquet(kept, tmp / RUNNING)
        accounts = loaded.engine.read_parquet([str(tmp / RUNNING)], loaded.engine.temp_name("kept"))
        seen = _write_seen(loaded, carries, tmp, accounts.select("account_id"))
        if ahead is None:  # from the sources: the rows of the next days' cuts, cut now
            ahead = _ahead_from_sources(config, loaded, day, set(seen))
        kept_ahead = _write_ahead(config, loaded, ahead, tmp)
        if prints is None:
            prints = fingerprints(config, loaded, read_state(config.state_dir))
        manifest = {"version": VERSION, "date": day.isoformat(), "config": config_digest(config),
                    "columns": {e: f.columns for e, f in prints.items()},
                    "days": {e: f.days for e, f in prints.items()},
                    "keys": {e: loaded.keys[e] for e in prints if e in loaded.keys},
                    "seen": seen, "ahead": kept_ahead}
        (tmp / MANIFEST).write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _write_seen(loaded: Loaded, carries: list[Carry], folder: Path,
                accounts: ir.Table) -> dict[str, str]:
    """Each distinct count's values and their last days seen (:meth:`Carry.kept_seen`) for
    the ``accounts`` whose running values were kept, one file each; the file of each."""
    kept = [c.kept_seen(accounts) for c in carries]
    out = {}
    for i, name in enumerate(sorted({n for k in kept for n in k})):
        parts = [k[name] for k in kept if name in k]
        if len(parts) != len(carries):
            continue  # (not kept for every account: counted from the rows next time)
        out[name] = SEEN.format(i)
        loaded.engine.write_parquet(ibis.union(*parts) if len(parts) > 1 else parts[0],
                                    folder / out[name])
    return out


def _ahead_from_sources(config: ProjectConfig, loaded: Loaded, day: date,
                        kept_seen: AbstractSet[str]) -> dict[str, Ahead]:
    """Each source's rows that the cuts of the ``AHEAD_DAYS`` days after ``day`` read."""
    out = {}
    for entity, t, uses in _cut_sources(config, loaded):
        key = loaded.keys.get(entity)
        part = _split_uses(uses, kept_seen)[1]
        later = _ahead_bands(entity, part, day, kept_seen) if key else None
        if later:
            columns = _read_by(t, entity, uses, later)
            out[entity] = Ahead(later, columns, key or "",
                                rows=t.filter(_within(t, later)).select(*columns))
    return out


def _write_ahead(config: ProjectConfig, loaded: Loaded, ahead: dict[str, Ahead],
                 folder: Path) -> dict[str, dict[str, Any]]:
    """Keep each source's rows ahead in ``folder`` (one file each, a kept file linked as it
    is) and the accounts' ids now; their manifest entries."""
    out = {}
    for i, (entity, a) in enumerate(sorted(ahead.items())):
        file = AHEAD.format(i)
        if a.file:  # (kept as it was: no file added to the source since)
            try:
                os.link(config.state_dir / FOLDER / a.file, folder / file)
            except OSError:
                shutil.copyfile(config.state_dir / FOLDER / a.file, folder / file)
        elif a.rows is not None:
            loaded.engine.write_parquet(a.rows, folder / file)
        else:
            continue
        out[entity] = dataclasses.replace(a, file=file, rows=None).manifest()
    if out:  # (the accounts they know: see _unknown_then)
        loaded.engine.write_parquet(loaded.tables["accounts"].select("account_id"), folder / KNOWN)
    return out


def forget(state_dir: Path) -> None:
    """Remove the kept state (before the snapshots it describes are replaced)."""
    shutil.rmtree(state_dir / FOLDER, ignore_errors=True)


def commit(pending: Path, state_dir: Path) -> None:
    forget(state_dir)
    pending.rename(state_dir / FOLDER)


def discard(pending: Path | None) -> None:
    if pending is not None:
        shutil.rmtree(pending, ignore_errors=True)


def _prune(state_dir: Path) -> None:
    """Folders of runs that died before moving their state in."""
    for folder in state_dir.glob(f"{_TMP}*"):
        pid = folder.name[len(_TMP):].split("-")[0]
        if not pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
