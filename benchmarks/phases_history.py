"""Phase timers for one healthscore run on the benchmark data: CPU seconds (this process,
every thread) and wall seconds of reading the sources and of each engine call a run makes
(each materialised table by its kind, each partitioned snapshot write).

    python benchmarks/phases_history.py --dates 365 --data bench-data-20000

The dates are the last N days up to the data's last day (2026-10-31). The project is a copy of
``benchmarks/project`` in a scratch folder (removed at the end). See docs/benchmark.md,
"A second profile".
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_history import END, project_copy

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
    import healthscore.pipeline as pipeline
    from healthscore.engine.adapter import DuckDBEngine

    DuckDBEngine.materialize = timed(  # type: ignore[method-assign]
        lambda self, expr, prefix: prefix, DuckDBEngine.materialize, out)
    DuckDBEngine.write_partitioned = timed(  # type: ignore[method-assign]
        lambda self, expr, folder: "write", DuckDBEngine.write_partitioned, out)
    pipeline.load_sources = timed(  # type: ignore[attr-defined]
        lambda *a: "sources", pipeline.load_sources, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=365)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args(argv)
    from healthscore.project import Project

    out: Timings = []
    instrument(out)
    dates = [END - timedelta(days=i) for i in reversed(range(args.dates))]
    work = Path(tempfile.mkdtemp(prefix="phases-history-"))
    try:
        project = project_copy(work, "project", args.data.resolve(), None)
        cpu, wall = time.process_time(), time.perf_counter()
        result = Project.load(project).run(dates=dates)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for label, c, w in out:
        if not label.startswith("clean_"):  # each source's clean table: inside "sources"
            print(f"{label:12s} CPU {c:7.2f} s  wall {w:7.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'run':12s} CPU {cpu:7.2f} s  wall {wall:7.2f} s  {result.rows:,} rows, "
          f"peak {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
