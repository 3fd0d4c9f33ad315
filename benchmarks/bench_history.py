"""Benchmark: healthscore for 1, 12 and 365 as-of dates against a spine SQL and pandas,
and the next day of a stored history computed from the state its last run kept.

    python benchmarks/bench_history.py            # 100,000 accounts (~19M usage events)
    python benchmarks/bench_history.py --quick    # 2,000 accounts, a smoke run

Every variant runs in its own subprocess (``--variant NAME``, used by this script), so each
one's peak memory (max RSS, from ``os.wait4``) is its own. Measure values of the 12 monthly
as-of dates are then compared between all variants. See docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PROJECT = HERE / "project"
END = date(2026, 10, 31)  # the demo data's last day
MONTHS, SEED = 24, 7
FULL_ACCOUNTS, QUICK_ACCOUNTS = 100_000, 2_000


def _month_ends(last: date, n: int) -> list[date]:
    out, day = [], last
    for _ in range(n):
        out.append(day)
        day = day.replace(day=1) - timedelta(days=1)
    return sorted(out)


ONE = [END]
MONTHLY = _month_ends(END, 12)
WEEKLY = [END - timedelta(weeks=i) for i in range(51, -1, -1)]
DAILY = [END - timedelta(days=i) for i in range(364, -1, -1)]
HISTORY_DAYS = 30  # the incremental variant: the history stored before the timed day
HISTORY = [END - timedelta(days=i) for i in range(HISTORY_DAYS, 0, -1)]


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # healthscore, incremental, spine, pandas, floor
    dates: list[date]  # the timed dates (incremental: after a history of HISTORY, untimed)


VARIANTS = {v.name: v for v in [
    Variant("healthscore-1", "healthscore", ONE),
    Variant("healthscore-12", "healthscore", MONTHLY),
    Variant("healthscore-52", "healthscore", WEEKLY),
    Variant("healthscore-365", "healthscore", DAILY),
    Variant("spine-sql-12", "spine", MONTHLY),
    Variant("pandas-12", "pandas", MONTHLY),
    Variant("incremental", "incremental", ONE),
    Variant("floor-scan", "floor", []),
    Variant("floor-daily", "floor", []),
]}
# what ``make bench`` runs unless --variants says otherwise
DEFAULT = ["healthscore-1", "healthscore-12", "healthscore-365", "spine-sql-12", "pandas-12",
           "incremental", "floor-scan", "floor-daily"]
# (variant, compared with): every pair that shares as-of dates
PAIRS = [
    ("healthscore-1", "spine-sql-12"), ("healthscore-12", "spine-sql-12"),
    ("healthscore-12", "pandas-12"), ("healthscore-52", "spine-sql-12"),
    ("healthscore-365", "spine-sql-12"),
    ("spine-sql-12", "pandas-12"), ("pandas-12", "spine-sql-12"),
    ("incremental", "healthscore-1"),
]
HEALTHSCORE = ("healthscore", "incremental")  # the kinds that run healthscore


# ----------------------------------------------------------------------------- child


def run_variant(name: str, project: Path, data: Path, out: Path, setup: bool = False) -> None:
    """Run one variant in this process and write {seconds, rows, ...} to ``out``.
    ``setup``: store the incremental variant's history (its own process, not timed)."""
    v = VARIANTS[name]
    info: dict[str, object] = {}
    if v.kind in HEALTHSCORE:
        import healthscore
        from healthscore.project import Project

        frozen = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
        if frozen and not healthscore.__file__.startswith(frozen):
            raise SystemExit(f"imported {healthscore.__file__}, not the copy in {frozen}")
        if setup:
            Project.load(project).run(dates=HISTORY, apply_rules=False)
            return

        began, cpu = time.perf_counter(), time.process_time()
        result = Project.load(project).run(dates=v.dates)
        seconds = time.perf_counter() - began
        info["CPU s inside run"] = round(time.process_time() - cpu, 2)  # no imports
        rows = result.rows
        info["rejected"] = {k: h.rows_rejected for k, h in result.health.items()
                            if h.rows_rejected}
        info["warnings"] = result.warnings
        if v.kind == "incremental":
            info["computed"] = result.incremental
            if not result.incremental.startswith(f"{END} computed from the state kept"):
                raise SystemExit(f"the incremental day was not computed from the kept state: "
                                 f"{result.incremental}")
    elif v.kind == "floor":
        import floor

        began = time.perf_counter()
        rows = floor.run(data, name.removeprefix("floor-"))
        seconds = time.perf_counter() - began
    else:
        import pandas_loop
        import spine_sql

        module = spine_sql if v.kind == "spine" else pandas_loop
        began = time.perf_counter()
        rows = module.run(data, v.dates, out.with_suffix(".parquet"))
        seconds = time.perf_counter() - began
    out.write_text(json.dumps({"seconds": seconds, "rows": rows, **info}))


# ----------------------------------------------------------------------------- data


def ensure_data(data: Path, accounts: int) -> int:
    """Generate the demo data into ``data`` unless it is there; return its account count."""
    if not ((data / "accounts.csv").is_file() and (data / "usage_events").is_dir()):
        from healthscore.demo import generate

        print(f"generating {accounts:,} accounts into {data} ...", flush=True)
        began = time.perf_counter()
        data.mkdir(parents=True, exist_ok=True)
        (data / ".gitignore").write_text("*\n")
        generate(data, accounts=accounts, months=MONTHS, seed=SEED)
        (data / "bench-data.json").write_text(json.dumps(
            {"accounts": accounts, "months": MONTHS, "seed": SEED,
             "generator": generator_hash()}))
        print(f"generated in {time.perf_counter() - began:.0f} s", flush=True)
    marker = data / "bench-data.json"
    made_by = json.loads(marker.read_text()).get("generator") if marker.is_file() else None
    if made_by != generator_hash():
        print(f"note: {data} was not made by the current healthscore.demo generator; "
              f"delete it to regenerate.", flush=True)
    with (data / "accounts.csv").open("rb") as fh:
        have = sum(1 for _ in fh) - 1
    if have != accounts:
        print(f"note: {data} holds {have:,} accounts (not {accounts:,}); using it as it is. "
              f"Delete it or pass another --data to regenerate.", flush=True)
    return have


def generator_hash() -> str:
    """A hash of the demo generator's source: data made by another version may differ."""
    import hashlib

    import healthscore.demo

    folder = Path(healthscore.demo.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def data_files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*") if p.is_file() and p.suffix in (".csv", ".parquet"))


def warm_cache(data: Path) -> None:
    """Read every data file once so no variant pays for a cold OS file cache."""
    for path in data_files(data):
        with path.open("rb") as fh:
            while fh.read(1 << 24):
                pass


def usage_rows(data: Path) -> int:
    import pyarrow.parquet as pq

    parts = (data / "usage_events").glob("*.parquet")
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def project_copy(work: Path, name: str, data: Path, memory_limit: str | None) -> Path:
    """A copy of benchmarks/project whose sources point at ``data`` (absolute paths)."""
    target = work / name
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns(".healthscore"))
    spec = yaml.safe_load((target / "healthscore.yml").read_text())
    for source in spec["sources"].values():
        source["path"] = str(data / Path(source["path"]).name)
    if memory_limit:
        spec.setdefault("settings", {})["memory_limit"] = memory_limit
    (target / "healthscore.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


# ----------------------------------------------------------------------------- parent


def freeze_code(work: Path) -> tuple[Path, str]:
    """Copy the healthscore package into ``work`` and say which code it is.

    The variants import this copy (it goes first on PYTHONPATH), so every variant of a run
    runs the same code even when ``src/`` is edited while the benchmark runs.
    """
    import hashlib

    import healthscore

    source = Path(healthscore.__file__).parent
    target = work / "code"
    shutil.copytree(source, target / "healthscore",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted((target / "healthscore").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(target)).encode() + path.read_bytes())

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    changed = git("status", "--porcelain", "--", str(source)).splitlines()
    dirty = (f", with uncommitted changes to {len(changed)} file(s): "
             + ", ".join(c[3:].strip() for c in changed)) if changed else ""
    return target, f"{commit}{dirty} (source hash {digest.hexdigest()[:12]})"



@dataclass
class Outcome:
    variant: Variant
    seconds: float
    cpu_seconds: float  # user + system time of the subprocess: less sensitive to other load
    peak_mb: float
    rows: int
    info: dict[str, object]
    project: Path
    result: Path
    status: str = "ok"  # or "stopped" (after --timeout) or "failed"
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def spawn(v: Variant, work: Path, data: Path, code: Path, timeout: float | None,
          memory_limit: str | None = None) -> Outcome:
    """Run variant ``v`` in a subprocess; stop it after ``timeout`` seconds."""
    project = (project_copy(work, v.name, data, memory_limit) if v.kind in HEALTHSCORE
               else work / v.name)
    project.mkdir(exist_ok=True)
    out = work / f"{v.name}.json"
    log = work / f"{v.name}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--variant", v.name,
           "--project", str(project), "--data", str(data), "--out", str(out)]
    if v.kind == "incremental":
        failed = _setup(cmd, work, v, code)
        if failed is not None:
            return Outcome(v, 0.0, 0.0, 0.0, -1, {}, project, out.with_suffix(".parquet"),
                           "failed", failed)
    print(f"running {v.name} ...", flush=True)
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    with log.open("w") as fh:
        path = os.pathsep.join(p for p in [str(code), os.environ.get("PYTHONPATH")] if p)
        tmp = work / "tmp" / v.name  # spill files too: removed with the scratch folder
        tmp.mkdir(parents=True)
        env = {**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp)}
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=HERE, env=env)
        status, usage, stopped = _wait(proc, began, timeout)
    load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    peak_mb = usage.ru_maxrss / 1024  # Linux reports KiB
    cpu = usage.ru_utime + usage.ru_stime
    if stopped or status != 0:
        seconds = time.perf_counter() - began
        error = "" if stopped else _last_error(log.read_text())
        what = "stopped" if stopped else "failed"
        print(f"  {what} after {seconds:.0f} s ({cpu:.0f} s CPU), peak {peak_mb:,.0f} MB"
              + (f": {error}" if error else ""), flush=True)
        info: dict[str, object] = {"load average (1 min) before / after": load}
        return Outcome(v, seconds, cpu, peak_mb, -1, info, project, out.with_suffix(".parquet"),
                       what, error)
    got = json.loads(out.read_text())
    got["load average (1 min) before / after"] = load
    print(f"  {got['seconds']:.2f} s ({cpu:.0f} s CPU), peak {peak_mb:,.0f} MB, "
          f"{got['rows']:,} rows", flush=True)
    return Outcome(v, got.pop("seconds"), cpu, peak_mb, got.pop("rows"), got, project,
                   out.with_suffix(".parquet"))


def _setup(cmd: list[str], work: Path, v: Variant, code: Path) -> str | None:
    """Store the incremental variant's history of HISTORY_DAYS days before its timed day,
    in a process of its own (not measured); the error, if it failed."""
    print(f"storing {HISTORY_DAYS} days of history for {v.name} ({HISTORY[0]} .. "
          f"{HISTORY[-1]}) ...", flush=True)
    log = work / f"{v.name}-setup.log"
    path = os.pathsep.join(p for p in [str(code), os.environ.get("PYTHONPATH")] if p)
    tmp = work / "tmp" / f"{v.name}-setup"
    tmp.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": path, "TMPDIR": str(tmp)}
    began = time.perf_counter()
    with log.open("w") as fh:
        done = subprocess.run([*cmd, "--setup"], stdout=fh, stderr=subprocess.STDOUT, cwd=HERE,
                              env=env, check=False)
    if done.returncode != 0:
        error = _last_error(log.read_text())
        print(f"  history failed: {error}", flush=True)
        return f"storing its history failed: {error}"
    print(f"  stored in {time.perf_counter() - began:.0f} s", flush=True)
    return None


def _last_error(log: str) -> str:
    """The exception line of a traceback (the last line naming an Error or Exception)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line or "Exception" in line]
    return (named or lines or ["no output"])[-1][:300]


def _wait(proc: subprocess.Popen, began: float, timeout: float | None
          ) -> tuple[int, Any, bool]:
    """Wait for ``proc`` with ``os.wait4`` (its own rusage); kill it after ``timeout`` s."""
    stopped = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if timeout is not None and time.perf_counter() - began > timeout and not stopped:
            proc.kill()
            stopped = True
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage, stopped


def values_of(o: Outcome, dates: list[date]) -> Any:
    import compare

    if o.variant.kind in HEALTHSCORE:
        return compare.read_snapshots(o.project / ".healthscore", dates)
    return compare.read_result(o.result, dates)


def comparisons(outcomes: dict[str, Outcome]) -> dict[tuple[str, str], Any]:
    """Compare every pair in PAIRS that ran, on the as-of dates they share."""
    import compare

    out: dict[tuple[str, str], Any] = {}
    for left, right in PAIRS:
        if left not in outcomes or right not in outcomes:
            continue
        if not (outcomes[left].ok and outcomes[right].ok):
            continue
        common = sorted(set(outcomes[left].variant.dates) & set(outcomes[right].variant.dates))
        a, b = values_of(outcomes[left], common), values_of(outcomes[right], common)
        measures = [c for c in b.columns if c not in compare.KEYS]
        out[(left, right)] = compare.compare(a, b, measures)
    return out


def table(outcomes: dict[str, Outcome], checks: dict[tuple[str, str], Any]) -> list[list[str]]:
    rows = [["variant", "dates", "seconds", "CPU s", "peak MB", "rows", "identical?"]]
    for name, o in outcomes.items():
        mine = [(r, c) for (left, r), c in checks.items() if left == name]
        if not mine:
            same = "n/a"
        elif all(c.identical for _, c in mine):
            same = "yes (= " + ", ".join(r for r, _ in mine) + ")"
        else:
            same = "; ".join(f"vs {r}: {c.summary()}" for r, c in mine)
        if o.status == "stopped":
            rows.append([name, str(len(o.variant.dates)), f"> {o.seconds:.0f} (stopped)",
                         f"> {o.cpu_seconds:.0f}", f"> {o.peak_mb:,.0f}", "-", "n/a"])
            continue
        if o.status == "failed":
            rows.append([name, str(len(o.variant.dates)), f"{o.seconds:.2f} (failed)",
                         f"{o.cpu_seconds:.1f}", f"{o.peak_mb:,.0f}", "-",
                         "n/a: failed, see below"])
            continue
        rows.append([name, str(len(o.variant.dates)), f"{o.seconds:.2f}", f"{o.cpu_seconds:.1f}",
                     f"{o.peak_mb:,.0f}", f"{o.rows:,}", same])
    return rows


def targets(outcomes: dict[str, Outcome]) -> list[str]:
    """The team's targets, each with the wall-clock ratio (and the CPU-time one beside it)."""

    def check(text: str, a: str, b: str, limit: float) -> str:
        x, y = outcomes[a], outcomes[b]
        wall, cpu = x.seconds / y.seconds, x.cpu_seconds / y.cpu_seconds
        if x.status == "failed":
            return f"{text}: NOT met ({a} failed after {x.seconds:.0f} s: {x.error})"
        stopped = x.status == "stopped"  # then ``wall`` is only a lower bound
        met = wall <= limit and not stopped and y.ok
        inside = [o.info.get("CPU s inside run") for o in (x, y)]
        extra = (f", inside the run {inside[0] / inside[1]:.2f}x"
                 if all(isinstance(c, float) and c > 0 for c in inside) else "")
        return (f"{text}: {'more than ' if stopped else ''}{wall:.2f}x (CPU time {cpu:.2f}x"
                f"{extra}) -> {'met' if met else 'NOT met'}")

    out = []
    if "healthscore-12" in outcomes and "spine-sql-12" in outcomes:
        out.append(check("12 monthly dates in <= 0.5x the spine SQL's time",
                         "healthscore-12", "spine-sql-12", 0.5))
    if "healthscore-365" in outcomes and "healthscore-1" in outcomes:
        out.append(check("365 daily dates in <= 3x the time of one date",
                         "healthscore-365", "healthscore-1", 3))
    if "incremental" in outcomes and "healthscore-1" in outcomes:
        out.append(check(f"the next day of a {HISTORY_DAYS}-day history, from the kept state, in "
                         f"<= 0.25x the time of one date", "incremental", "healthscore-1", 0.25))
    out += floor_ratios(outcomes)
    hs = {n: o.peak_mb for n, o in outcomes.items() if o.variant.kind in HEALTHSCORE}
    if hs:
        worst = max(hs, key=lambda n: hs[n])
        partial = any(not o.ok for o in outcomes.values() if o.variant.kind in HEALTHSCORE)
        met = hs[worst] <= 2048 and not partial
        out.append(f"peak memory <= 2 GB (2,048 MB) for healthscore: highest {hs[worst]:,.0f} MB "
                   f"({worst}) -> {'met' if met else 'NOT met'}"
                   + (" (a stopped or failed run counts with its peak until it ended)"
                      if partial else ""))
    return out


def floor_ratios(outcomes: dict[str, Outcome]) -> list[str]:
    """healthscore's runs against the physical floor measured in the same run (no target)."""
    out = []
    for low in ("floor-scan", "floor-daily"):
        f = outcomes.get(low)
        if f is None or not f.ok:
            continue
        for name, o in outcomes.items():
            if o.variant.kind in HEALTHSCORE and o.ok:
                out.append(f"{name} against {low} (not a target): {o.seconds / f.seconds:.1f}x "
                           f"(CPU time {o.cpu_seconds / f.cpu_seconds:.1f}x)")
    return out


def markdown(rows: list[list[str]]) -> str:
    numeric = {"dates", "seconds", "CPU s", "peak MB", "rows"}
    rule = "|" + "|".join("---:" if h in numeric else "---" for h in rows[0]) + "|"
    return "\n".join(["| " + " | ".join(rows[0]) + " |", rule,
                      *["| " + " | ".join(r) + " |" for r in rows[1:]]])


def plain(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def environment(accounts: int, events: int, code: str) -> list[str]:
    import duckdb
    import pandas

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        f"- run: {datetime.now().isoformat(timespec='seconds')}",
        f"- data: {accounts:,} accounts, {events:,} usage events, {MONTHS} months ending {END} "
        f"(healthscore.demo.generate, seed {SEED})",
        f"- healthscore: {code}",
        f"- machine: {os.cpu_count()} cores, {mem:.0f} GB RAM, {platform.platform()}",
        f"- Python {platform.python_version()}, DuckDB {duckdb.__version__}, "
        f"pandas {pandas.__version__}",
        f"- dates: 1 = {END}; 12 = month ends {MONTHLY[0]} .. {MONTHLY[-1]}; "
        f"52 = every 7th day {WEEKLY[0]} .. {WEEKLY[-1]}; "
        f"365 = every day {DAILY[0]} .. {DAILY[-1]}; incremental = {END} after a stored "
        f"history of {HISTORY[0]} .. {HISTORY[-1]} (every day; stored untimed, in its own "
        f"process), from the state that history's run kept",
    ]


def report(outcomes: dict[str, Outcome], checks: dict[tuple[str, str], Any], accounts: int,
           events: int, code: str) -> str:
    rows = table(outcomes, checks)
    parts = ["# bench_history results", "", *environment(accounts, events, code), "",
             markdown(rows), "", "Targets:", ""]
    parts += [f"- {t}" for t in targets(outcomes)]
    notes = [f"- {o.variant.name}: {k} = {v}" for o in outcomes.values()
             for k, v in o.info.items() if v]
    if notes:
        parts += ["", "Notes:", "", *notes]
    failed = [o for o in outcomes.values() if o.status == "failed"]
    if failed:
        parts += ["", "Failures:", ""]
        parts += [f"- {o.variant.name}: failed after {o.seconds:.0f} s: `{o.error}`"
                  for o in failed]
    diffs = [(pair, c) for pair, c in checks.items() if not c.identical]
    if diffs:
        parts += ["", "Differences (first examples, left vs right):", ""]
        for (left, right), c in diffs:
            parts.append(f"- {left} vs {right}: {c.summary()}")
            parts += [f"  - {e}" for e in c.examples[:12]]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=None,
                   help=f"accounts to generate (default {FULL_ACCOUNTS:,})")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_ACCOUNTS:,} accounts, a smoke run")
    p.add_argument("--data", type=Path, default=None,
                   help="data folder (default bench-data/ at the repo root, or "
                        "bench-data-<accounts>/ for other sizes); generated when missing")
    p.add_argument("--variants", default=",".join(DEFAULT),
                   help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--results", type=Path, default=None,
                   help="Markdown output (default benchmarks/results.md; "
                        "benchmarks/results-quick.md with --quick)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--memory-limit", default=None,
                   help="healthscore's settings.memory_limit for the run (default: its own, "
                        "1500MB)")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop a variant after this many seconds (reported as stopped)")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.variant:
        run_variant(args.variant, args.project, args.data.resolve(), args.out, args.setup)
        return 0

    accounts = args.accounts or (QUICK_ACCOUNTS if args.quick else FULL_ACCOUNTS)
    default_dir = "bench-data" if accounts == FULL_ACCOUNTS else f"bench-data-{accounts}"
    data = (args.data or REPO / default_dir).resolve()
    results = args.results or HERE / ("results-quick.md" if args.quick else "results.md")
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)}. Valid: {', '.join(VARIANTS)}.")

    have = ensure_data(data, accounts)
    events = usage_rows(data)
    warm_cache(data)
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        code, code_note = freeze_code(work)
        print(f"healthscore code: {code_note}", flush=True)
        outcomes = {n: spawn(VARIANTS[n], work, data, code, args.timeout, args.memory_limit)
                    for n in names}
        if args.memory_limit:
            code_note += f"; settings.memory_limit: {args.memory_limit}"
        print("comparing measure values ...", flush=True)
        checks = comparisons(outcomes)
        text = report(outcomes, checks, have, events, code_note)
        print()
        print(plain(table(outcomes, checks)))
        print()
        print("\n".join(targets(outcomes)))
        results.write_text(text)
        print(f"\nwritten to {results}")
    finally:
        if args.keep:
            print(f"scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    bad = [c for c in checks.values() if not c.identical]
    return 1 if bad or any(o.status == "failed" for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
