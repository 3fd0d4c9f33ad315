"""Phase timers for one healthscore run on the benchmark data: CPU seconds (this process,
every thread) and wall seconds of each part of a run: reading and checking each source,
hashing the source files for the source cache, storing the clean sources in the cache,
the measures' filters that match no row (a scan, unless the cache kept the answer), each
table the run materialises (by its kind), each snapshot write, the sources' per-day
fingerprints and the running values kept for the next day.

    python benchmarks/phases_history.py --dates 365 --data bench-data-20000
    python benchmarks/phases_history.py --dates 1 --data bench-data      # one cold date
    python benchmarks/phases_history.py --monthly --data bench-data      # 12 month ends
    python benchmarks/phases_history.py --next-day --data bench-data --keep /tmp/hist

``--next-day``: the day after a stored history of 30 days (the benchmark's incremental
variant), computed from the state that history kept. The history is stored once into
``--keep`` (when that folder holds none yet; not timed); every run times a fresh copy of it.
``--profile FILE`` writes a cProfile of the timed run.

The next day fills the tables it materialises in a worker thread while the main thread
compiles the queries that read them (``pipeline.incremental.Queued``): their timers run in
that thread, and the CPU seconds of a part that overlaps them (compiling, mostly) count the
engine's work meanwhile too. Read the wall seconds there, and the run's CPU total.

The dates are the last N days up to the data's last day (2026-10-31), or with --monthly the 12
month ends of the benchmark's healthscore-12 variant. The project is a copy of
``benchmarks/project`` in a scratch folder (removed at the end), so every run is cold. Parts
nest (a source's check inside "sources", the fingerprints inside "state"); the split at the
end has no part twice. See docs/benchmark.md, "A second profile" and "One cold date".
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_history import END, HISTORY, MONTHLY, project_copy

Timings = list[tuple[str, float, float]]


def timed(label: Callable[..., str], f: Callable[..., Any], out: Timings) -> Callable[..., Any]:
    """``f`` recording (label, CPU s, wall s) of each call into ``out``."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        result = f(*args, **kwargs)
        out.append((label(*args), time.process_time() - cpu, time.perf_counter() - wall))
        return result
    return wrapper


def instrument(out: Timings) -> None:
    import healthscore.engine.adapter as adapter
    import healthscore.pipeline as pipeline
    import healthscore.pipeline.incremental as incremental
    import healthscore.pipeline.load as load
    from healthscore.engine.adapter import DuckDBEngine
    from healthscore.sources.cache import SourceCache

    adapter.compiled_sql = timed(  # type: ignore[attr-defined]
        lambda con, expr: "compile", adapter.compiled_sql, out)
    if hasattr(incremental, "compiled_sql"):  # (the next day's queued tables compile here)
        incremental.compiled_sql = timed(
            lambda con, expr: "compile", incremental.compiled_sql, out)
    if hasattr(DuckDBEngine, "make_table"):  # (every table filled, queued or not, runs here)
        DuckDBEngine.make_table = timed(  # type: ignore[method-assign]
            lambda self, name, *rest: name[3:].rsplit("_", 1)[0], DuckDBEngine.make_table, out)
    elif hasattr(DuckDBEngine, "fill"):
        DuckDBEngine.fill = timed(  # type: ignore[method-assign]
            lambda self, name, expr, sql: name[3:].rsplit("_", 1)[0], DuckDBEngine.fill, out)
    else:  # (code before tables were filled apart from their naming)
        DuckDBEngine.materialize = timed(  # type: ignore[method-assign]
            lambda self, expr, prefix: prefix, DuckDBEngine.materialize, out)
    DuckDBEngine.write_sorted = timed(  # type: ignore[method-assign]
        lambda self, expr, path, *rest: "write", DuckDBEngine.write_sorted, out)
    pipeline.load_sources = timed(  # type: ignore[attr-defined]
        lambda *a: "sources", pipeline.load_sources, out)
    load.load_source = timed(  # type: ignore[attr-defined]
        lambda engine, source, *a: f"check:{source.entity}", load.load_source, out)
    load.accounts_key = timed(  # type: ignore[attr-defined]
        lambda *a: "accounts key", load.accounts_key, out)
    load.filter_notes = timed(  # type: ignore[attr-defined]
        lambda *a: "filter notes", load.filter_notes, out)
    SourceCache.key = timed(  # type: ignore[method-assign]
        lambda self, source, *a: "cache key", SourceCache.key, out)
    SourceCache.save = timed(  # type: ignore[method-assign]
        lambda *a: "cache write", SourceCache.save, out)
    incremental.fingerprints = timed(  # type: ignore[attr-defined]
        lambda *a: "fingerprints", incremental.fingerprints, out)
    incremental.write_pending = timed(  # type: ignore[attr-defined]
        lambda *a: "state", incremental.write_pending, out)


def split(out: Timings, run: tuple[float, float]) -> list[tuple[str, float, float]]:
    """The run's CPU and wall seconds by part, each counted once (nested parts subtracted)."""
    total: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for label, c, w in out:
        kind = label.split(":")[0]
        total[kind][0] += c
        total[kind][1] += w

    def take(name: str) -> tuple[float, float]:
        c, w = total.get(name, [0.0, 0.0])
        return c, w

    check = take("check")  # each source read and checked (inside: its cache key)
    key = take("cache key")
    write = take("cache write")
    ids = take("accounts key")
    notes = take("filter notes")
    sources = take("sources")
    prints = take("fingerprints")
    state = take("state")
    snapshots = take("write")
    materialized = [(k, v) for k, v in total.items() if k not in {
        "check", "cache key", "cache write", "accounts key", "filter notes", "sources",
        "fingerprints", "state", "write", "compile"} and not k.startswith("clean_")]
    measures = [(k, v) for k, v in materialized if k != "accounts"]  # accounts: in loading
    rows = [
        ("hash source files (cache key)", *key),
        ("read + check sources", check[0] - key[0], check[1] - key[1]),
        ("store clean sources (cache)", *write),
        ("hash account ids", *ids),
        ("filters that match no row (scanned, or kept in the cache)", *notes),
        ("rest of loading", sources[0] - check[0] - write[0] - ids[0] - notes[0],
         sources[1] - check[1] - write[1] - ids[1] - notes[1]),
        ("materialised tables: " + ", ".join(k for k, _ in measures),
         sum(v[0] for _, v in measures), sum(v[1] for _, v in measures)),
        ("score + write snapshots", *snapshots),
        ("fingerprints", *prints),
        ("keep running values", state[0] - prints[0], state[1] - prints[1]),
    ]
    rows.append(("other (planning, Python)", run[0] - sum(r[1] for r in rows),
                 run[1] - sum(r[2] for r in rows)))
    return rows


def next_day_copy(args: argparse.Namespace, work: Path) -> Path:
    """A copy of the stored history (stored first into ``args.keep`` when not there)."""
    from healthscore.project import Project

    keep = (args.keep or work / "history").resolve()
    stored = keep / "project"
    if not (stored / ".healthscore").is_dir():
        keep.mkdir(parents=True, exist_ok=True)
        project_copy(keep, "project", args.data.resolve(), None)
        began = time.perf_counter()
        Project.load(stored).run(dates=HISTORY, apply_rules=False)
        print(f"stored {len(HISTORY)} days of history in {time.perf_counter() - began:.0f} s")
    shutil.copytree(stored, work / "project")
    return work / "project"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=365)
    parser.add_argument("--monthly", action="store_true",
                        help="the 12 month ends up to the data's last day instead of --dates")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--next-day", action="store_true")
    parser.add_argument("--keep", type=Path, help="--next-day: the stored history's folder")
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    from healthscore.project import Project

    out: Timings = []
    dates = MONTHLY if args.monthly else [END - timedelta(days=i) for i in reversed(range(args.dates))]
    work = Path(tempfile.mkdtemp(prefix="phases-history-"))
    try:
        if args.next_day:
            project, dates = next_day_copy(args, work), [END]
        else:
            project = project_copy(work, "project", args.data.resolve(), None)
        instrument(out)
        profile = None
        if args.profile:
            import cProfile
            profile = cProfile.Profile()
            profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        result = Project.load(project).run(dates=dates)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.next_day:
        print(result.incremental)
    for label, c, w in out:
        print(f"{label:24s} CPU {c:7.2f} s  wall {w:7.2f} s")
    print("split (each part once):")
    for label, c, w in split(out, (cpu, wall)):
        print(f"  {label:60s} CPU {c:7.2f} s  wall {w:7.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    compile_cpu = sum(c for label, c, _ in out if label == "compile")
    compile_wall = sum(w for label, _, w in out if label == "compile")
    print(f"  {'(of these: Ibis compiling SQL)':60s} CPU {compile_cpu:7.2f} s  wall {compile_wall:7.2f} s")
    print(f"{'run':24s} CPU {cpu:7.2f} s  wall {wall:7.2f} s  {result.rows:,} rows, "
          f"peak {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
