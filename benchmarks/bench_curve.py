"""Benchmark: how healthscore's cost grows with accounts and as-of dates (the scaling curve).

    python benchmarks/bench_curve.py                          # 10k, 50k, 100k accounts
    python benchmarks/bench_curve.py --accounts 2000,10000    # other sizes

For each size it runs healthscore for 1, 12, 52 and 365 as-of dates and the physical floor
(one scan of the usage events; their per-(account, day) aggregate), each in its own subprocess
like ``bench_history.py``, and writes one table to ``benchmarks/results-curve.md``. Values are
checked by ``bench_history.py``; this script measures cost only. See docs/scale.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import bench_history as bh

SIZES = [10_000, 50_000, 100_000]
RUNS = ["healthscore-1", "healthscore-12", "healthscore-52", "healthscore-365",
        "floor-scan", "floor-daily"]


def data_dir(accounts: int) -> Path:
    name = "bench-data" if accounts == bh.FULL_ACCOUNTS else f"bench-data-{accounts}"
    return (bh.REPO / name).resolve()


def measure(accounts: int, timeout: float | None
            ) -> tuple[int, dict[str, bh.Outcome], str]:
    """Run every variant of RUNS on ``accounts`` accounts.

    Returns the usage events, the outcomes and which code ran.
    """
    data = data_dir(accounts)
    bh.ensure_data(data, accounts)
    events = bh.usage_rows(data)
    bh.warm_cache(data)
    work = Path(tempfile.mkdtemp(prefix=f"bench-curve-{accounts}-"))
    try:
        code, note = bh.freeze_code(work)
        print(f"{accounts:,} accounts, healthscore code: {note}", flush=True)
        got = {n: bh.spawn(bh.VARIANTS[n], work, data, code, timeout) for n in RUNS}
        return events, got, note
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cell(o: bh.Outcome) -> str:
    if not o.ok:
        return f"{o.status} after {o.seconds:.0f} s"
    return f"{o.seconds:.1f} s / {o.cpu_seconds:.1f} CPU s / {o.peak_mb:,.0f} MB"


def rows(curve: dict[int, tuple[int, dict[str, bh.Outcome], str]]) -> list[list[str]]:
    head = ["accounts", "usage events", *RUNS, "365 / 1 (CPU)", "1 / floor-daily (CPU)"]
    out = [head]
    for accounts, (events, got, _) in curve.items():
        one, year, daily = got["healthscore-1"], got["healthscore-365"], got["floor-daily"]
        ratio = (f"{year.cpu_seconds / one.cpu_seconds:.1f}x" if one.ok and year.ok else "-")
        floor = (f"{one.cpu_seconds / daily.cpu_seconds:.1f}x" if one.ok and daily.ok else "-")
        out.append([f"{accounts:,}", f"{events:,}", *(cell(got[n]) for n in RUNS), ratio, floor])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", default=",".join(str(n) for n in SIZES),
                   help="comma-separated account counts (default 10000,50000,100000)")
    p.add_argument("--results", type=Path, default=bh.HERE / "results-curve.md",
                   help="Markdown output (default benchmarks/results-curve.md)")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop a variant after this many seconds (reported as stopped)")
    args = p.parse_args(argv)
    try:
        sizes = [int(n) for n in args.accounts.split(",") if n.strip()]
    except ValueError:
        p.error(f"--accounts: must be whole numbers separated by commas. Got {args.accounts!r}.")
    curve = {n: measure(n, args.timeout) for n in sizes}
    table = rows(curve)
    notes = sorted({note for _, _, note in curve.values()})
    env = bh.environment(sizes[-1], 0, "; ".join(notes))
    text = "\n".join(["# bench_curve results", "", env[0], *env[2:], "",
                      "Each cell: seconds / CPU seconds / peak memory.", "",
                      bh.markdown(table), ""])
    print(bh.plain(table))
    args.results.write_text(text)
    print(f"\nwritten to {args.results}")
    failed = [o for _, got, _ in curve.values() for o in got.values() if o.status == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
