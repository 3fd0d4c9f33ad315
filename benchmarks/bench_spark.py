"""Benchmark: the Spark engine against DuckDB at a few sizes (the scaling curve of docs/scale.md).

    python benchmarks/bench_spark.py                          # 250, 1,000 and 4,000 accounts
    python benchmarks/bench_spark.py --sizes 500,2000 --dates 1
    python benchmarks/bench_spark.py --master spark://host:7077

Each size gets the benchmark project (benchmarks/project) over demo data of that many accounts
(generated into bench-data-<accounts>/ when missing). Each run is a fresh process, so Spark's
seconds include starting its JVM; the time to start a session is measured alone as well.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_history import END, MONTHLY, REPO, ensure_data, project_copy, usage_rows

CHILD = """
import json, sys, time
from datetime import date
began = time.perf_counter()
from healthscore.project import Project
project = Project.load(sys.argv[1])
dates = [date.fromisoformat(d) for d in sys.argv[2].split(",")]
rows = project.run(dates=dates).rows
print(json.dumps({"seconds": time.perf_counter() - began, "rows": rows}))
"""

SESSION = """
import sys, time
from pathlib import Path
began = time.perf_counter()
from healthscore.config.specs import SparkSpec
from healthscore.engine.adapter import make_engine
spec = SparkSpec.model_validate_json(sys.argv[1])
engine = make_engine("spark", log_file=Path(sys.argv[2]), spark=spec)
engine.session.sql("SELECT 1").collect()
print(time.perf_counter() - began)
"""


def _run(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def _spark_project(work: Path, name: str, data: Path, spark: dict[str, object] | None) -> Path:
    root = project_copy(work, name, data, None)
    spec = yaml.safe_load((root / "healthscore.yml").read_text())
    if spark is not None:
        spec["engine"] = "spark"
        if spark:
            spec["spark"] = spark
    (root / "healthscore.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="250,1000,4000", help="account counts, comma-separated")
    p.add_argument("--dates", type=int, choices=(1, 12), default=1,
                   help="1 (the last day) or 12 (month ends)")
    p.add_argument("--master", default=None, help="spark: master (default local[2])")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    dates = [END] if args.dates == 1 else MONTHLY
    spark = {"master": args.master} if args.master else {}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as scratch:
        work = Path(scratch)
        session = float(_run(SESSION, json.dumps(spark), str(work / "session.log")))
        print(f"Spark session start alone: {session:.1f} s", flush=True)
        for accounts in (int(s) for s in args.sizes.split(",")):
            data = REPO / f"bench-data-{accounts}"
            ensure_data(data, accounts)
            events = usage_rows(data)
            row: dict[str, object] = {"accounts": accounts, "usage_events": events,
                                      "dates": len(dates), "session_s": session}
            for engine, conf in (("duckdb", None), ("spark", spark)):
                root = _spark_project(work, f"{engine}-{accounts}", data, conf)
                began = time.perf_counter()
                out = json.loads(_run(CHILD, str(root), ",".join(d.isoformat() for d in dates)))
                row[f"{engine}_s"] = round(time.perf_counter() - began, 1)
                row["rows"] = out["rows"]
            results.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
