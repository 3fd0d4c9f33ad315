"""Benchmark: server time of the app's pages (JSON and HTML) against baselines.

    python benchmarks/bench_web.py                    # 50,000 accounts, 24 monthly snapshots
    python benchmarks/bench_web.py --accounts 2000    # a CI-sized smoke run

Target (issue): with 50k accounts and 24 monthly snapshots, the accounts list and Account 360
respond in <= 300 ms server time, median of 20 requests; My day, the Cockpit (its first page
and pages across the whole queue), the board, a CTA's page and the portfolio's 12-month trends
in <= 300 ms at the 95th percentile. Every page's weight is reported as sent (gzip) and
uncompressed.

The project (demo data + the eight-categories template, scored on the 24 month ends up to
2026-10-31) is built once into ``--work`` (default benchmarks/.work/web-<N>/, which holds its
own ``.gitignore``) and reused while its arguments and the demo generator are unchanged.

Each variant runs in its own subprocess (``--variant NAME``, used by this script), so each has
its own caches and its own peak memory (VmHWM, read by the child itself):

- ``app``: ``create_app(project)`` as served (snapshot cache of 8 tables), through
  ``fastapi.testclient.TestClient``; the figure is the app's own ``Server-Timing: app;dur=``.
- ``app-nocache``: the same with ``create_app(project, cache=0)``: every read goes to Parquet.
- ``floor-pyarrow``: hand-written minimal work with pyarrow, no HTTP: read the latest
  snapshot's Parquet and sort/filter it (a list page, 50 rows), or take one account's rows of
  the latest snapshot plus its score on every date (Account 360); to Python dicts and JSON.
- ``floor-duckdb``: the same minimal work as DuckDB SQL over the Parquet files.
- ``floor-memory``: the same minimal work on Arrow tables loaded once (what a cache can reach).

Every variant does one warm-up request per endpoint (reported as "first") and then
``--requests`` measured ones; the Account 360 endpoints use a different account each time.
``--profile`` then profiles the app variants' endpoints (cProfile, all in one thread) and
writes the top functions to the work folder (profile-<variant>-<endpoint>.txt and .prof).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from bench_history import freeze_code  # the same frozen copy of the package as the history benchmark

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
END = date(2026, 10, 31)  # the demo data's last day
MONTHS, SEED, TEMPLATE = 24, 7, "eight-categories"
FULL_ACCOUNTS = 50_000
TARGET_MS = 300.0
PER_PAGE = 50
LIST_COLUMNS = ["account_id", "name", "segment", "csm", "lifecycle_stage", "arr", "renewal_date",
                "score", "band", "coverage"]
VARIANTS = ["app", "app-nocache", "floor-pyarrow", "floor-duckdb", "floor-memory"]
APP_CACHE = {"app": 8, "app-nocache": 0}


@dataclass(frozen=True)
class Endpoint:
    key: str  # list, list-filtered, list-html, account, account-html, today-html, ...
    label: str
    html: bool = False
    per_account: bool = False
    app_only: bool = False  # no floor does this work: the app's figures only


ENDPOINTS = [
    Endpoint("list", "GET /api/accounts"),
    Endpoint("list-filtered", "GET /api/accounts?segment=S&sort=arr&desc=true"),
    Endpoint("list-html", "GET /accounts (HTML)", html=True),
    Endpoint("account", "GET /api/accounts/{id} (Account 360)", per_account=True),
    Endpoint("account-html", "GET /accounts/{id} (HTML)", html=True, per_account=True),
    Endpoint("today-html", "GET /today (HTML, My day, all)", html=True, app_only=True),
    Endpoint("cockpit-html", "GET /cockpit (HTML, first page)", html=True, app_only=True),
    Endpoint("cockpit-paged", "GET /cockpit?page=N (HTML, pages across the queue)", html=True,
             app_only=True),
    Endpoint("board-html", "GET /cockpit/board (HTML)", html=True, app_only=True),
    Endpoint("cta-html", "GET /ctas/{id} (HTML, CTA page)", html=True, app_only=True),
    Endpoint("trends", "GET /api/portfolio/trends (12 months)", app_only=True),
    Endpoint("trends-html", "GET /portfolio/trends (HTML)", html=True, app_only=True),
    Endpoint("inbox-html", "GET /inbox (HTML, the signed-in user's inbox)", html=True, app_only=True),
]


# the endpoints whose target is on the median (the first issue's); the others' is on the p95
MEDIAN_TARGETS = {e.label for e in ENDPOINTS if not e.app_only}


# ----------------------------------------------------------------------------- build


def build_key(accounts: int, apply_rules: bool) -> dict[str, Any]:
    return {"accounts": accounts, "months": MONTHS, "seed": SEED, "end": END.isoformat(),
            "template": TEMPLATE, "apply_rules": apply_rules, "generator": generator_hash()}


def generator_hash() -> str:
    """A hash of the demo generator and template: a build made by another version may differ."""
    import hashlib

    import healthscore.demo
    import healthscore.templates

    digest = hashlib.sha256()
    for folder in (Path(healthscore.demo.__file__).parent,
                   Path(healthscore.templates.__file__).parent / TEMPLATE):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yml"):
                digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def month_ends(last: date, n: int) -> list[date]:
    from healthscore.dates import minus_months

    return [minus_months(last, i, month_end=True) for i in range(n - 1, -1, -1)]


def run_build(work: Path, accounts: int, apply_rules: bool, out: Path,
              memory_limit: str | None = None) -> None:
    """(child) Generate the data, write the project and score the 24 month ends."""
    from healthscore.demo.generate import generate
    from healthscore.project import Project
    from healthscore.templates import write_template

    data, root = work / "data", work / "project"
    began = time.perf_counter()
    generate(data, accounts=accounts, months=MONTHS, seed=SEED, end_date=END,
             progress=lambda done, total: print(f"  generated {done:,}/{total:,} accounts",
                                                flush=True) if done % 10_000 == 0 else None)
    generated = time.perf_counter() - began
    write_template(root, TEMPLATE, data)
    if memory_limit:  # DuckDB's limit for the scoring run (the project's default: 1500MB)
        import yaml

        spec = yaml.safe_load((root / "healthscore.yml").read_text())
        spec.setdefault("settings", {})["memory_limit"] = memory_limit
        (root / "healthscore.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    project = Project.load(root)
    began = time.perf_counter()
    result = project.run(dates=month_ends(END, MONTHS), apply_rules=apply_rules,
                         progress=lambda text: None)
    scored = time.perf_counter() - began
    ctas = 0
    if apply_rules:
        wf = project.workflow()
        try:
            ctas = len(wf.ctas(status="open"))
        finally:
            wf.close()
    out.write_text(json.dumps({"generate_s": generated, "run_s": scored, "rows": result.rows,
                               "open_ctas": ctas, "peak_mb": rss_mb("VmHWM")}))


def ensure_build(work: Path, accounts: int, apply_rules: bool, code: Path,
                 timeout: float | None, memory_limit: str | None = None) -> dict[str, Any]:
    """Build the project into ``work`` unless a build with the same key is there."""
    key = build_key(accounts, apply_rules)
    marker = work / "build.json"
    if marker.is_file():
        got = json.loads(marker.read_text())
        if got.get("key") == key and (work / "project" / ".healthscore" / "snapshots").is_dir():
            print(f"reusing the build in {work} (made {got['built_at']}, "
                  f"{got['seconds']:.0f} s)", flush=True)
            return {**got, "reused": True}
        print(f"{work}: built with other arguments or another generator; rebuilding", flush=True)
    for sub in ("data", "project"):
        shutil.rmtree(work / sub, ignore_errors=True)
    marker.unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    if work.parent.name == ".work" and work.parent.parent == HERE:
        (work.parent / ".gitignore").write_text("*\n")
    (work / ".gitignore").write_text("*\n")
    print(f"building {accounts:,} accounts x {MONTHS} monthly snapshots into {work} "
          f"(apply_rules={apply_rules}) ...", flush=True)
    out = work / "build-result.json"
    status, seconds, cpu, peak = spawn(["--build", "--work", str(work), "--accounts",
                                        str(accounts), "--out", str(out)]
                                       + ([] if apply_rules else ["--no-rules"])
                                       + (["--memory-limit", memory_limit] if memory_limit else []),
                                       code, work / "build.log", timeout, echo=True)
    if status != "ok":
        raise SystemExit(f"build {status} after {seconds:.0f} s: see {work / 'build.log'}")
    got = json.loads(out.read_text())
    info = {"key": key, "built_at": datetime.now().isoformat(timespec="seconds"),
            "seconds": seconds, "cpu_s": cpu, "accounts_generated": accounts, **got}
    marker.write_text(json.dumps(info, indent=1))
    print(f"built in {seconds:.0f} s (generate {got['generate_s']:.0f} s, score 24 dates "
          f"{got['run_s']:.0f} s), peak {got['peak_mb']:,.0f} MB", flush=True)
    return {**info, "reused": False}


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# ----------------------------------------------------------------------------- request plan


def make_plan(work: Path, requests: int) -> dict[str, Any]:
    """The accounts and segment every variant asks for (the same in every variant)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    snaps = work / "project" / ".healthscore" / "snapshots"
    latest = sorted(snaps.glob("as_of=*"))[-1]
    t = pq.read_table(latest, columns=["account_id", "segment", "is_primary"],
                      filters=[("is_primary", "=", True)])
    ids = sorted(t["account_id"].to_pylist())
    wanted = 2 * (requests + 1)  # warm-up + measured, for the JSON and the HTML 360
    step = max(1, len(ids) // wanted)
    picked = [ids[(i * step + step // 2) % len(ids)] for i in range(wanted)]
    counts = pc.value_counts(t["segment"]).to_pylist()
    segment = max(counts, key=lambda c: (c["counts"], str(c["values"])))["values"]
    half = requests + 1
    return {"snapshots": str(snaps), "latest": latest.name, "accounts": len(ids),
            "segment": segment, "json_ids": picked[:half], "html_ids": picked[half:],
            "dates": len(list(snaps.glob("as_of=*"))), "requests": requests}


def add_queue(plan: dict[str, Any], get: Callable[[str], Any]) -> dict[str, Any]:
    """The Cockpit pages and CTAs the queue endpoints ask for, read from the app itself (the
    open CTAs are in the workflow store, not in the snapshots): pages spread over the whole
    queue, and as many CTAs spread over it."""
    n = plan["requests"] + 1
    first = get("/api/cockpit?per_page=50")
    pages = int(first["pages"])
    paged = [1 + (i * (pages - 1)) // max(1, n - 1) for i in range(n)]
    ids = [int(c["id"]) for c in get("/api/cockpit?per_page=500&sort=id")["ctas"]]
    step = max(1, len(ids) // n)
    return {**plan, "cockpit_pages": paged, "queue_total": int(first["total"]),
            "cta_ids": [ids[(i * step) % len(ids)] for i in range(n)] if ids else []}


def urls(e: Endpoint, plan: dict[str, Any]) -> list[str]:
    """Warm-up URL first, then the measured ones."""
    n = plan["requests"] + 1
    fixed = {"today-html": "/today", "cockpit-html": "/cockpit", "board-html": "/cockpit/board",
             "trends": "/api/portfolio/trends", "trends-html": "/portfolio/trends",
             "inbox-html": "/inbox"}
    if e.key in fixed:
        return [fixed[e.key]] * n
    if e.key == "cockpit-paged":
        return [f"/cockpit?page={p}" for p in plan["cockpit_pages"]]
    if e.key == "cta-html":
        return [f"/ctas/{i}" for i in plan["cta_ids"]]
    if e.key == "list":
        return ["/api/accounts"] * n
    if e.key == "list-filtered":
        q = urlencode({"segment": plan["segment"], "sort": "arr", "desc": "true"})
        return [f"/api/accounts?{q}"] * n
    if e.key == "list-html":
        return ["/accounts"] * n
    if e.key == "account":
        return [f"/api/accounts/{quote(a)}" for a in plan["json_ids"]]
    return [f"/accounts/{quote(a)}" for a in plan["html_ids"]]


# ----------------------------------------------------------------------------- variants


def server_ms(response: Any) -> float:
    header = response.headers.get("server-timing", "")
    for part in header.split(";"):
        if part.strip().startswith("dur="):
            return float(part.strip()[4:])
    raise RuntimeError(f"no Server-Timing dur in {header!r}")


def wire_bytes(response: Any) -> int:
    """The body's size as sent: the bytes the client read before decoding (httpx hands back
    the decompressed body as ``content``)."""
    return int(response.num_bytes_downloaded)


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its peak (VmHWM), in MB. The peak is read
    here rather than from rusage: Linux carries a forked parent's RSS over into a child's
    ru_maxrss, so the children's rusage would show at least this script's own size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_app(root: Path, cache: int) -> Any:
    from healthscore.demo.project import demo_users
    from healthscore.project import Project
    from healthscore.web.app import create_app

    project = Project.load(root)
    demo_users(project)
    return create_app(project, cache=cache)


def run_app_variant(name: str, work: Path, plan: dict[str, Any]) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from healthscore.demo.project import DEMO_PASSWORD

    began = time.perf_counter()
    app = open_app(work / "project", APP_CACHE[name])
    startup = time.perf_counter() - began
    out: dict[str, Any] = {"startup_s": startup, "endpoints": {}}
    with TestClient(app) as client:
        r = client.post("/api/login", json={"name": "admin", "password": DEMO_PASSWORD})
        if r.status_code != 200:
            raise RuntimeError(f"login: {r.status_code} {r.text}")
        out["rss_after_login_mb"] = rss_mb()
        plan = add_queue(plan, lambda url: client.get(url).json())
        out["queue_total"] = plan["queue_total"]
        for e in ENDPOINTS:
            if e.key in ("cta-html",) and not plan["cta_ids"]:
                continue
            times, client_ms, sizes, sent = [], [], [], []
            for url in urls(e, plan):
                t0 = time.perf_counter()
                r = client.get(url, headers={"Accept-Encoding": "gzip"})
                client_ms.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:300]}")
                times.append(server_ms(r))
                sizes.append(len(r.content))
                sent.append(wire_bytes(r))
            out["endpoints"][e.key] = {"ms": times, "client_ms": client_ms,
                                       "bytes": statistics.median(sizes),
                                       "gzip_bytes": statistics.median(sent),
                                       "answer": answer(e, r.json()) if not e.html else None}
            print(f"  {e.label}: first {times[0]:.0f} ms, median "
                  f"{statistics.median(times[1:]):.0f} ms", flush=True)
    out["rss_end_mb"], out["peak_mb"] = rss_mb(), rss_mb("VmHWM")
    return out


class Floor:
    """The least work that answers each endpoint from the snapshots (no HTTP, no trends,
    no CTAs, no explanation): sort/filter one page, or one account's rows + score history."""

    def __init__(self, kind: str, snapshots: Path, latest: str) -> None:
        self.kind, self.snaps, self.latest = kind, snapshots, snapshots / latest
        self.con: Any = None
        self.mem: dict[str, Any] = {}

    def list_page(self, segment: str | None, sort: str, desc: bool) -> list[dict[str, Any]]:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if self.kind == "duckdb":
            where = "is_primary" + (" AND segment = ?" if segment else "")
            sql = (f"SELECT {', '.join(LIST_COLUMNS)} FROM read_parquet(?) WHERE {where} "
                   f"ORDER BY {sort} {'DESC' if desc else 'ASC'} NULLS LAST, account_id "
                   f"LIMIT {PER_PAGE}")
            params = [str(self.latest / "*.parquet")] + ([segment] if segment else [])
            return self.db().sql(sql, params=params).to_arrow_table().to_pylist()
        if self.kind == "memory":
            if "latest" not in self.mem:
                self.mem["latest"] = pq.read_table(self.latest, filters=[("is_primary", "=", True)])
            t = self.mem["latest"]
        else:
            t = pq.read_table(self.latest, columns=[*LIST_COLUMNS, "is_primary"],
                              filters=[("is_primary", "=", True)])
        if segment:
            t = t.filter(pc.equal(t["segment"], segment))
        order = [(sort, "descending" if desc else "ascending", "at_end"),
                 ("account_id", "ascending", "at_end")]
        idx = pc.sort_indices(t, sort_keys=order)
        return t.select(LIST_COLUMNS).take(idx[:PER_PAGE]).to_pylist()

    def account(self, account_id: str) -> dict[str, Any]:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        narrow = ["account_id", "score", "band", "coverage"]
        if self.kind == "duckdb":
            con = self.db()
            rows = con.sql("SELECT * FROM read_parquet(?) WHERE account_id = ?",
                           params=[str(self.latest / "*.parquet"), account_id]
                           ).to_arrow_table().to_pylist()
            hist = con.sql(
                "SELECT as_of, score, band, coverage FROM read_parquet(?, hive_partitioning=false) "
                "WHERE account_id = ? AND is_primary ORDER BY as_of",
                params=[str(self.snaps / "*" / "*.parquet"), account_id]
            ).to_arrow_table().to_pylist()
        elif self.kind == "memory":
            if "latest-all" not in self.mem:
                self.mem["latest-all"] = pq.read_table(self.latest)
                self.mem["history"] = pq.read_table(
                    self.snaps, columns=[*narrow, "as_of", "is_primary"], partitioning=None,
                    filters=[("is_primary", "=", True)])
            t, h = self.mem["latest-all"], self.mem["history"]
            rows = t.filter(pc.equal(t["account_id"], account_id)).to_pylist()
            hist = h.filter(pc.equal(h["account_id"], account_id)).to_pylist()
        else:
            rows = pq.read_table(self.latest, filters=[("account_id", "=", account_id)]).to_pylist()
            hist = pq.read_table(self.snaps, columns=[*narrow, "as_of", "is_primary"],
                                 partitioning=None, filters=[("account_id", "=", account_id),
                                          ("is_primary", "=", True)]).to_pylist()
        return {"rows": rows, "history": hist}

    def db(self) -> Any:
        if self.con is None:
            import duckdb

            self.con = duckdb.connect()
            self.con.execute("SET threads TO 2")
        return self.con


def answer(e: Endpoint, body: dict[str, Any]) -> str:
    """What the last response said, in short: to check that a floor did the app's work."""
    if e.key == "trends":
        return ",".join(f"{p['as_of']}:{p['accounts']}" for p in body["points"])
    if e.per_account:
        scores = [None if v is None else round(v, 1) for v in
                  (h["score"] if isinstance(h, dict) else h for h in body["history"])]
        return f"{body['account_id']}: {len(scores)} dates, scores {scores}"
    return ",".join(str(r if isinstance(r, str) else r["account_id"]) for r in body["accounts"])


def run_floor_variant(name: str, plan: dict[str, Any]) -> dict[str, Any]:
    import duckdb  # noqa: F401 - imports are not part of the timed work
    import pyarrow.compute  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    floor = Floor(name.split("-", 1)[1], Path(plan["snapshots"]), plan["latest"])
    calls: dict[str, Callable[[Any], Any]] = {
        "list": lambda _: floor.list_page(None, "score", False),
        "list-filtered": lambda _: floor.list_page(plan["segment"], "arr", True),
        "account": floor.account,
    }
    out: dict[str, Any] = {"startup_s": 0.0, "endpoints": {}}
    for e in ENDPOINTS:
        if e.key not in calls:
            continue
        args = plan["json_ids"] if e.per_account else [None] * (plan["requests"] + 1)
        times, sizes = [], []
        got: Any = None
        for a in args:
            t0 = time.perf_counter()
            got = calls[e.key](a)
            body = json.dumps(got, default=str)
            times.append((time.perf_counter() - t0) * 1000)
            sizes.append(len(body))
        if e.per_account:
            shown = {"account_id": got["rows"][0]["account_id"],
                     "history": [h["score"] for h in got["history"]]}
        else:
            shown = {"accounts": [r["account_id"] for r in got]}
        out["endpoints"][e.key] = {"ms": times, "bytes": statistics.median(sizes),
                                   "answer": answer(e, shown)}
        print(f"  {e.label}: first {times[0]:.1f} ms, median "
              f"{statistics.median(times[1:]):.1f} ms", flush=True)
    out["rss_end_mb"], out["peak_mb"] = rss_mb(), rss_mb("VmHWM")
    return out


def run_profile(name: str, work: Path, plan: dict[str, Any], requests: int) -> dict[str, str]:
    """Profile the served app's endpoints with cProfile. The app is driven over ASGI in this
    thread with the thread pool replaced by direct calls, so the profile sees every call."""
    import asyncio

    import anyio.to_thread
    import httpx

    from healthscore.demo.project import DEMO_PASSWORD

    async def inline(func: Any, *args: Any, **kwargs: Any) -> Any:
        return func(*args)

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    app = open_app(work / "project", APP_CACHE[name])
    texts: dict[str, str] = {}

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post("/api/login", json={"name": "admin", "password": DEMO_PASSWORD})
            r.raise_for_status()
            queue = {}
            for url in ("/api/cockpit?per_page=50", "/api/cockpit?per_page=500&sort=id"):
                queue[url] = (await c.get(url)).json()
            full = add_queue(plan, queue.__getitem__)
            for e in ENDPOINTS:
                if e.key == "cta-html" and not full["cta_ids"]:
                    continue
                todo = urls(e, full)
                await c.get(todo[0])  # warm: the profile is of the steady state
                prof = cProfile.Profile()
                ms = []
                for url in todo[1: requests + 1]:
                    prof.enable()
                    r = await c.get(url)
                    prof.disable()
                    r.raise_for_status()
                    ms.append(server_ms(r))
                prof.dump_stats(work / f"profile-{name}-{e.key}.prof")
                buf = io.StringIO()
                buf.write(f"{name}, {e.label}: {len(ms)} requests, median server time "
                          f"{statistics.median(ms):.0f} ms (under cProfile)\n\n"
                          f"healthscore's own functions, by cumulative time:\n")
                mine = pstats.Stats(prof, stream=buf)
                mine.sort_stats("cumulative").print_stats("/healthscore/", 30)
                buf.write("\nall functions, by own time:\n")
                pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(20)
                texts[e.key] = buf.getvalue()
                (work / f"profile-{name}-{e.key}.txt").write_text(texts[e.key])

    asyncio.run(main())
    return texts


def run_variant(name: str, work: Path, plan_path: Path, out: Path) -> None:
    """(child) Run one variant in this process and write its timings to ``out``."""
    plan = json.loads(plan_path.read_text())
    if name.startswith("profile:"):
        run_profile(name.split(":", 1)[1], work, plan, plan["requests"])
        out.write_text("{}")
        return
    got = run_app_variant(name, work, plan) if name in APP_CACHE else run_floor_variant(name, plan)
    out.write_text(json.dumps(got))


# ----------------------------------------------------------------------------- parent


def spawn(args: list[str], code: Path, log: Path, timeout: float | None,
          echo: bool = False) -> tuple[str, float, float, float]:
    """Run this script with ``args`` in a subprocess; (status, seconds, CPU s, peak MB)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    path = os.pathsep.join(p for p in [str(code), os.environ.get("PYTHONPATH")] if p)
    began = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=HERE,
                                env={**os.environ, "PYTHONPATH": path})
        stopped, shown = False, 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if echo or pid:
                text = log.read_text()
                if echo:
                    sys.stdout.write(text[shown:])
                    sys.stdout.flush()
                    shown = len(text)
            if pid:
                break
            if timeout is not None and time.perf_counter() - began > timeout and not stopped:
                proc.kill()
                stopped = True
            time.sleep(0.2)
    seconds = time.perf_counter() - began
    code_ = os.waitstatus_to_exitcode(status)
    state = "stopped" if stopped else ("ok" if code_ == 0 else "failed")
    if state == "failed" and not echo:
        tail = log.read_text().strip().splitlines()[-5:]
        print("    " + "\n    ".join(tail), flush=True)
    return state, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.1f}" if v < 10 else f"{v:,.0f}"


def tables(results: dict[str, dict[str, Any]]) -> tuple[list[list[str]], list[list[str]]]:
    """The full table (variant x endpoint) and the side-by-side table of medians."""
    full = [["variant", "endpoint", "first ms", "median ms", "p95 ms", "target <= 300 ms met?",
             "p95 <= 300 ms?"]]
    side = [["endpoint", *results]]
    for name, r in results.items():
        if r.get("status") != "ok":
            full.append([name, "(all)", "-", "-", "-", f"n/a: {r.get('status')}", "-"])
            continue
        for e in ENDPOINTS:
            got = r["endpoints"].get(e.key)
            if got is None:
                continue
            ms = got["ms"]
            med = statistics.median(ms[1:])
            met = "yes" if med <= TARGET_MS else "**NO**"
            met95 = "yes" if p95(ms[1:]) <= TARGET_MS else "**NO**"
            full.append([name, e.label, fmt_ms(ms[0]), fmt_ms(med), fmt_ms(p95(ms[1:])), met, met95])
    for e in ENDPOINTS:
        row = [e.label]
        for r in results.values():
            got = r.get("endpoints", {}).get(e.key) if r.get("status") == "ok" else None
            row.append(fmt_ms(statistics.median(got["ms"][1:])) if got else "n/a")
        side.append(row)
    return full, side


def weights(results: dict[str, dict[str, Any]]) -> str:
    """Each app endpoint's median body: as sent (gzip, Accept-Encoding: gzip) and uncompressed."""
    app = results.get("app", {})
    if app.get("status") != "ok":
        return "- not measured: the app variant did not run"
    rows = [["endpoint", "sent (gzip) KB", "uncompressed KB", "ratio"]]
    for e in ENDPOINTS:
        got = app["endpoints"].get(e.key)
        if got and "gzip_bytes" in got:
            rows.append([e.label, f"{got['gzip_bytes'] / 1024:,.1f}", f"{got['bytes'] / 1024:,.1f}",
                         f"{got['bytes'] / max(1, got['gzip_bytes']):.1f}x"])
    queue = f"The Cockpit's queue (admin, all): {app.get('queue_total', 0):,} open CTAs.\n\n"
    return queue + markdown(rows, 1)


def markdown(rows: list[list[str]], text_columns: int = 2) -> str:
    rule = "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(rows[0]))) + "|"
    return "\n".join(["| " + " | ".join(rows[0]) + " |", rule,
                      *["| " + " | ".join(r) + " |" for r in rows[1:]]])


def environment(plan: dict[str, Any], build: dict[str, Any], code: str, work: Path) -> list[str]:
    import duckdb
    import fastapi
    import pandas
    import pyarrow

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    snaps = Path(plan["snapshots"])
    how = "reused" if build.get("reused") else "built"
    return [
        f"- run: {datetime.now().isoformat(timespec='seconds')}",
        f"- data: {build.get('accounts_generated', build['key']['accounts']):,} accounts "
        f"generated, {plan['accounts']:,} of them scored on {plan['latest'][6:]} (the others "
        f"churned or not yet customers), {plan['dates']} monthly snapshots ending "
        f"{END} (healthscore.demo.generate, seed {SEED}; template {TEMPLATE}; "
        f"apply_rules={build['key']['apply_rules']}, {build.get('open_ctas', 0):,} open CTAs)",
        f"- build ({how}, made {build['built_at']}): {build['seconds']:.0f} s = generate "
        f"{build['generate_s']:.0f} s + score 24 dates {build['run_s']:.0f} s; "
        f"{build['rows']:,} snapshot rows; peak {build['peak_mb']:,.0f} MB",
        f"- disk: snapshots {folder_mb(snaps):,.1f} MB; source data "
        f"{folder_mb(work / 'data'):,.1f} MB; work folder {work}",
        f"- healthscore: {code}",
        f"- machine: {os.cpu_count()} cores, {mem:.0f} GB RAM, {platform.platform()}; "
        f"load average (1 min) at the end {os.getloadavg()[0]:.1f} (other work on the "
        f"machine makes the figures noisy: see the per-process load below)",
        f"- Python {platform.python_version()}, FastAPI {fastapi.__version__}, "
        f"pyarrow {pyarrow.__version__}, DuckDB {duckdb.__version__}, pandas {pandas.__version__}",
        f"- requests: 1 warm-up (\"first\") + {plan['requests']} measured per endpoint, in the "
        f"table's order; Account 360: a different account per request; filter: segment = "
        f"{plan['segment']!r}; app figures are Server-Timing (TestClient in process), floor "
        f"figures are perf_counter around the work",
    ]


def report(results: dict[str, dict[str, Any]], plan: dict[str, Any], build: dict[str, Any],
           code: str, work: Path, command: str) -> str:
    full, side = tables(results)
    parts = ["# bench_web results", "", *environment(plan, build, code, work), "",
             f"Reproduce: `{command}`", "", "## Median server time (ms), side by side", "",
             markdown(side, 1), "", "## All figures", "", markdown(full), "",
             "## Page weight (app)", "", weights(results), "",
             "## Processes", ""]
    for name, r in results.items():
        extra = ""
        if r.get("status") == "ok":
            sizes = ", ".join(f"{k} {v['bytes'] / 1024:,.0f} KB" for k, v in r["endpoints"].items())
            extra = (f"; startup {r['startup_s']:.1f} s; RSS at end {r['rss_end_mb']:,.0f} MB; "
                     f"median response size: {sizes}")
        parts.append(f"- {name}: {r.get('status')} in {r['seconds']:.1f} s "
                     f"({r['cpu_s']:.1f} s CPU; load average before / after {r['load']}), "
                     f"peak RSS (VmHWM) {r['peak_mb']:,.0f} MB{extra}")
    parts += ["", "## Same answers?", "",
              "The last response of each JSON endpoint (list: the page's account ids; "
              "Account 360: the account and its score on every date) against the app's:", ""]
    ref = results.get("app", {}).get("endpoints", {})
    for name, r in results.items():
        if name == "app" or r.get("status") != "ok":
            continue
        same = [e.key for e in ENDPOINTS if e.key in r["endpoints"] and e.key in ref
                and r["endpoints"][e.key]["answer"] == ref[e.key]["answer"]]
        differ = [e.key for e in ENDPOINTS if e.key in r["endpoints"] and e.key in ref
                  and e.key not in same and not e.html]
        parts.append(f"- {name}: same as app: {', '.join(same) or 'none'}"
                     + (f"; DIFFERENT: {', '.join(differ)}" if differ else ""))
    misses = [row for row in full[1:] if row[0] == "app"
              and (row[5] != "yes" if row[1] in MEDIAN_TARGETS else row[6] != "yes")]
    parts += ["", "## Target", ""]
    if "app" not in results or results["app"].get("status") != "ok":
        parts.append("- not measured: the app variant did not run")
    elif misses:
        parts += [f"- NOT met: {row[1]} median {row[3]} ms, p95 {row[4]} ms" for row in misses]
    else:
        parts.append("- met: the accounts list and Account 360 have a median <= 300 ms server "
                     "time, every other page a p95 <= 300 ms")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=FULL_ACCOUNTS,
                   help=f"accounts to generate (default {FULL_ACCOUNTS:,})")
    p.add_argument("--requests", type=int, default=20,
                   help="measured requests per endpoint, after one warm-up (default 20)")
    p.add_argument("--work", type=Path, default=None,
                   help="build folder (default benchmarks/.work/web-<accounts>); reused when "
                        "built with the same arguments")
    p.add_argument("--no-rules", action="store_true",
                   help="score without applying the rules (no CTAs); faster to build")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--profile", action="store_true",
                   help="also profile the app's endpoints (cProfile) into the work folder")
    p.add_argument("--results", type=Path, default=None,
                   help="Markdown output (default benchmarks/results-web.md for 50,000 "
                        "accounts, else results.md in the work folder)")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop a variant (or the build) after this many seconds")
    p.add_argument("--memory-limit", default=None,
                   help="the build's settings.memory_limit for DuckDB (default: the project's "
                        "own, 1500MB); the build does not depend on it, so it is reused either way")
    p.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    work = (args.work or HERE / ".work" / f"web-{args.accounts}").resolve()
    if args.build:
        run_build(work, args.accounts, not args.no_rules, args.out, args.memory_limit)
        return 0
    if args.variant:
        run_variant(args.variant, work, args.plan, args.out)
        return 0

    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {', '.join(unknown)}. Valid: {', '.join(VARIANTS)}.")
    if args.requests < 1:
        p.error("--requests must be 1 or more")
    results_path = args.results or (HERE / "results-web.md" if args.accounts == FULL_ACCOUNTS
                                    else work / "results.md")
    command = "python " + " ".join([str(Path(__file__).relative_to(REPO))
                                    if Path(__file__).is_relative_to(REPO) else __file__,
                                    *(argv if argv is not None else sys.argv[1:])])
    scratch = Path(tempfile.mkdtemp(prefix="bench-web-"))
    try:
        code, code_note = freeze_code(scratch)
        print(f"healthscore code: {code_note}", flush=True)
        build = ensure_build(work, args.accounts, not args.no_rules, code, args.timeout,
                             args.memory_limit)
        plan = make_plan(work, args.requests)
        plan_path = scratch / "plan.json"
        plan_path.write_text(json.dumps(plan))
        results: dict[str, dict[str, Any]] = {}
        for name in names:
            print(f"running {name} ...", flush=True)
            out = scratch / f"{name}.json"
            load = os.getloadavg()[0]
            status, seconds, cpu, peak = spawn(
                ["--variant", name, "--work", str(work), "--plan", str(plan_path), "--out",
                 str(out)], code, scratch / f"{name}.log", args.timeout, echo=True)
            got = json.loads(out.read_text()) if status == "ok" else {}
            results[name] = {"peak_mb": peak, **got, "status": status, "seconds": seconds,
                             "cpu_s": cpu, "load": f"{load:.1f} / {os.getloadavg()[0]:.1f}"}
            print(f"  {status} in {seconds:.1f} s, peak RSS {results[name]['peak_mb']:,.0f} MB",
                  flush=True)
        for name in [n for n in names if n in APP_CACHE] if args.profile else []:
            print(f"profiling {name} (cProfile) ...", flush=True)
            status, *_ = spawn(["--variant", f"profile:{name}", "--work", str(work), "--plan",
                                str(plan_path), "--out", str(scratch / "profile.json")],
                               code, scratch / "profile.log", args.timeout, echo=True)
            print(f"  {status}: profiles in {work}/profile-{name}-*.txt", flush=True)
        text = report(results, plan, build, code_note, work, command)
        print()
        print(text)
        results_path.write_text(text)
        print(f"written to {results_path}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    app = results.get("app", {})
    if app.get("status") == "failed" or any(r.get("status") == "failed" for r in results.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
