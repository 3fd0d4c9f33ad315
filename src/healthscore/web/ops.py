"""What operators and their monitoring read: /healthz (the process answers), /readyz (the
store answers and there are scores to show, with the newest one's age) and /metrics
(Prometheus: requests, latency, scores' and the daily job's age, CTAs by state). None needs
a sign-in and none shows people's data; put them behind the internal network's proxy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from healthscore.errors import HealthScoreError
from healthscore.project.daily import last_daily
from healthscore.web.views import Site

router = APIRouter(include_in_schema=False)


class Metrics:
    """One registry per app (so two apps in one process count apart)."""

    def __init__(self, site: Site) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("healthscore_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("healthscore_http_request_seconds", "Time to answer a request.",
                                 ["method", "route"], registry=self.registry)
        self.registry.register(_State(site))

    def observe(self, request: Request, status: int, seconds: float) -> None:
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        if route.startswith("/static"):
            route = "/static"
        self.requests.labels(request.method, route, str(status)).inc()
        self.latency.labels(request.method, route).observe(seconds)


class _State(Collector):
    """Read at each scrape: how old the newest scores and the last daily run are, CTAs by state."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def collect(self) -> Iterator[GaugeMetricFamily]:
        dates = self.site.store.dates()
        age = GaugeMetricFamily("healthscore_snapshot_age_days",
                                "Days from the newest stored as-of date to today.")
        if dates:
            age.add_metric([], (self.site.wf.today - dates[-1]).days)
        yield age
        daily = last_daily(self.site.project)
        run = GaugeMetricFamily("healthscore_daily_last_run_timestamp_seconds",
                                "When the last daily run ended (Unix time), by its status.",
                                labels=["status"])
        if daily:
            run.add_metric([daily["status"]], datetime.fromisoformat(daily["at"]).timestamp())
        yield run
        ctas = GaugeMetricFamily("healthscore_ctas", "CTAs by state.", labels=["state"])
        for state, n in self.site.wf.cta_status_counts().items():
            ctas.add_metric([state], n)
        yield ctas


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Response:
    site: Site = request.app.state.site
    problems: list[str] = []
    body: dict[str, Any] = {"store": "ok", "snapshots": 0, "newest": None, "age_days": None}
    try:
        site.wf.store.ping()
    except HealthScoreError as err:
        body["store"] = "unreachable"
        problems.append(err.message)
    dates = site.store.dates()
    body["snapshots"] = len(dates)
    if dates:
        body["newest"] = dates[-1].isoformat()
        body["age_days"] = (site.wf.today - dates[-1]).days
    else:
        problems.append("no scores stored yet: run 'healthscore run' or 'healthscore daily'.")
    daily = last_daily(site.project)
    body["daily"] = {k: daily[k] for k in ("at", "day", "status")} if daily else None
    body["status"] = "ready" if not problems else "not ready"
    body["problems"] = problems
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
