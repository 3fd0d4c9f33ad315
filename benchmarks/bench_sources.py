"""Benchmark: reading sources (the source cache; a PostgreSQL source against Parquet).

    python benchmarks/bench_sources.py                     # 20,000 accounts (~3.8M usage events)
    python benchmarks/bench_sources.py --postgres-rows 5000000 --postgres-url postgresql://...

Every variant runs in its own subprocess, one after the other in the same run (seconds are
wall-clock around the work, CPU s the subprocess's user + system time, peak MB its max RSS):

* the source cache, on the benchmark project (benchmarks/project) over the demo data:
  ``check`` with the cache off, ``check`` that fills the cache, ``check`` with every source
  unchanged, and a one-date ``run`` with the cache off and with it warm (the scores of the
  two are compared value by value);
* with ``--postgres-rows N``: a usage-events table of N rows made in PostgreSQL, written once
  to Parquet, then loaded as a source (read and checked) from each: PostgreSQL through ADBC,
  the same through SQLAlchemy's rows (the path other databases take, and all did before),
  and the Parquet file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_history  # noqa: E402  (the data and the project copy of the history benchmark)

AS_OF = "2026-10-31"
PG_TABLE = "hs_bench_usage_events"


# ----------------------------------------------------------------------------- variants


def variant(name: str, project: Path, out: Path) -> None:
    from healthscore import Project

    began = time.perf_counter()
    info: dict[str, Any] = {}
    if name.startswith("check"):
        result = Project.load(project).check()
        info["cached"] = result.cached
    elif name.startswith("run"):
        result = Project.load(project).run(as_of=AS_OF, apply_rules=False)
        info["cached"] = result.cached
        info["rows"] = result.rows
        result.to_arrow().to_pandas().to_parquet(out.with_suffix(".parquet"))
    else:
        info["rows"] = _load_one(name, project)
    out.write_text(json.dumps({"seconds": time.perf_counter() - began, **info}))


def _load_one(name: str, project: Path) -> int:
    """Read and check the usage events of ``project/source.json`` (no accounts: the same in
    every variant) into the engine; the rows kept."""
    from healthscore.config.model import Source
    from healthscore.config.specs import SourceSpec
    from healthscore.engine.adapter import make_engine
    from healthscore.sources import read, sql
    from healthscore.sources.cache import Limits, load_source

    spec = SourceSpec(**json.loads((project / "source.json").read_text()))
    fmt = "sql" if spec.url else "parquet"
    source = Source("usage_events", spec, spec.url or str(spec.path), fmt, None)
    if name == "pg-sqlalchemy":
        read._READERS["sql"] = sql._read_sqlalchemy
    engine = make_engine("duckdb")
    table, health, _ = load_source(engine, source, None, Limits(1.0, None), frozenset(), None, None)
    rows = int(table.count().execute())
    engine.close()
    assert rows == health.rows_kept == health.rows_read
    return rows


# ----------------------------------------------------------------------------- parent


def spawn(name: str, project: Path, work: Path) -> dict[str, Any]:
    out = work / f"{name}.json"
    began = time.perf_counter()
    # every variant runs the same frozen copy of the code (see bench_history.freeze_code)
    path = os.pathsep.join(filter(None, [str(work / "code"), os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, __file__, "--variant", name, "--project", str(project),
                             "--out", str(out)],
                            env={**os.environ, "TMPDIR": str(work), "PYTHONPATH": path})
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{name} failed (status {status})")
    result = json.loads(out.read_text())
    result.update(name=name, wall=time.perf_counter() - began, cpu=usage.ru_utime + usage.ru_stime,
                  peak_mb=usage.ru_maxrss / 1024)
    print(f"{name:>16}: {result['seconds']:7.2f} s  CPU {result['cpu']:6.1f} s  "
          f"peak {result['peak_mb']:6.0f} MB  cached {result.get('cached', '-')}", flush=True)
    return result


def cache_variants(data: Path, work: Path) -> list[dict[str, Any]]:
    off = bench_history.project_copy(work, "cache-off", data, None)
    spec = yaml.safe_load((off / "healthscore.yml").read_text())
    spec.setdefault("settings", {})["source_cache"] = False
    (off / "healthscore.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    on = bench_history.project_copy(work, "cache-on", data, None)
    results = [spawn("check-off", off, work), spawn("check-fill", on, work),
               spawn("check-warm", on, work), spawn("run-off", off, work),
               spawn("run-warm", on, work)]
    import pandas as pd

    keys = ["account_id", "as_of", "scorecard"]
    a, b = (pd.read_parquet(work / f"{n}.parquet").sort_values(keys).reset_index(drop=True)
            for n in ("run-off", "run-warm"))
    pd.testing.assert_frame_equal(a, b)
    print(f"run-off and run-warm: identical ({len(a):,} rows x {len(a.columns)} columns)")
    return results


def postgres_variants(work: Path, rows: int, url: str, table_name: str = PG_TABLE,
                      repeat: int = 1, skip_rows: bool = False) -> list[dict[str, Any]]:
    import adbc_driver_postgresql.dbapi as pg
    import pyarrow.parquet as pq

    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    with pg.connect(libpq) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table_name}")
        cur.execute(f"CREATE TABLE {table_name} (account_id text, user_id text, event text, "
                    f"\"timestamp\" timestamp, module text, value double precision)")
        cur.execute(
            f"INSERT INTO {table_name} SELECT 'A' || lpad((i % 20000)::text, 6, '0'), "
            f"'u' || (i % 5000), (ARRAY['login','export','report','share'])[1 + i % 4], "
            f"timestamp '2025-01-01' + (i % 900000) * interval '1 minute', "
            f"(ARRAY['core','billing','analytics'])[1 + i % 3], (i % 97)::float8 "
            f"FROM generate_series(1, {rows}) AS i")
        conn.commit()
        cur.execute(f"SELECT * FROM {table_name}")
        pq.write_table(cur.fetch_arrow_table(), work / "usage_events.parquet")
    table = {"url": url, "table": table_name}
    projects = {"pg-adbc": table, "pg-sqlalchemy": table,
                "parquet": {"path": str(work / "usage_events.parquet")}}
    for name, source in projects.items():
        (work / name).mkdir()
        (work / name / "source.json").write_text(json.dumps(source))
    results = []
    try:
        # the row path once (it is slow); ADBC and Parquet in turn, `repeat` times each
        if not skip_rows:
            results.append(spawn("pg-sqlalchemy", work / "pg-sqlalchemy", work))
        for _ in range(repeat):
            results += [spawn(name, work / name, work) for name in ("pg-adbc", "parquet")]
    finally:
        with pg.connect(libpq) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table_name}")
            conn.commit()
    side_by_side(results)
    return results


def side_by_side(results: list[dict[str, Any]]) -> None:
    """The medians of the ADBC and Parquet runs, and PostgreSQL's speed as a share of
    Parquet's (by wall-clock and by CPU)."""
    import statistics

    med = {name: {k: statistics.median(r[k] for r in results if r["name"] == name)
                  for k in ("seconds", "cpu", "peak_mb")} for name in ("pg-adbc", "parquet")}
    runs = sum(r["name"] == "parquet" for r in results)
    for name, m in med.items():
        print(f"{name:>16}: median of {runs}: {m['seconds']:7.2f} s  CPU {m['cpu']:6.1f} s  "
              f"peak {m['peak_mb']:6.0f} MB")
    pg, pq_ = med["pg-adbc"], med["parquet"]
    print(f"PostgreSQL at {pq_['seconds'] / pg['seconds']:.0%} of Parquet's speed by wall-clock, "
          f"{pq_['cpu'] / pg['cpu']:.0%} by CPU")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant")
    parser.add_argument("--project", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--postgres-rows", type=int, default=0)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--postgres-table", default=PG_TABLE,
                        help="the table made (and dropped) in that database")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the ADBC and Parquet variants each, taken in turn")
    parser.add_argument("--skip-sqlalchemy", action="store_true",
                        help="leave out the (slow) SQLAlchemy rows variant")
    parser.add_argument("--skip-cache", action="store_true", help="only the PostgreSQL variants")
    args = parser.parse_args(argv)
    if args.variant:
        variant(args.variant, args.project, args.out)
        return 0
    data = args.data or HERE.parent / f"bench-data-{args.accounts}"
    work = Path(tempfile.mkdtemp(prefix="healthscore-bench-sources-"))
    try:
        _, code = bench_history.freeze_code(work)
        print(f"code: {code}", flush=True)
        if not args.skip_cache:
            bench_history.ensure_data(data, args.accounts)
            bench_history.warm_cache(data)
            cache_variants(data, work)
        if args.postgres_rows:
            postgres_variants(work, args.postgres_rows, args.postgres_url, args.postgres_table,
                              args.repeat, args.skip_sqlalchemy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
