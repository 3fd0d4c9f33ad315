"""`create_app`: the FastAPI app over one project (pages, REST API, OpenAPI at /docs)."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from healthscore.errors import AuthError, HealthScoreError
from healthscore.project import Project
from healthscore.web import api, ops, pages
from healthscore.web.auth import LoginLimiter
from healthscore.web.views import Site

STATIC = Path(__file__).parent / "static"
GZIP_MIN_BYTES = 1000  # smaller responses are sent as they are
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "frame-ancestors 'self'; form-action 'self'; base-uri 'self'")
# Swagger UI (vendored) starts itself with an inline script
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'self'")


def create_app(project: Project, *, url: str | None = None, today: date | None = None,
               secure_cookies: bool | None = None, cache: int = 8,
               daily_at: str | None = None) -> FastAPI:
    """The web app and REST API over ``project``. ``secure_cookies=None`` marks the session
    cookie Secure when the request came over https; ``cache`` is how many snapshot tables to
    keep in memory; ``daily_at`` ('06:30') also runs the daily job in this process."""
    project.store.cache = cache
    app = FastAPI(title="healthscore", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Customer health scores: the JSON twin of every page of the web app. "
                              "Authenticate with 'Authorization: Bearer <token>' (tokens are made on "
                              "the Admin page or with 'healthscore users token').")
    app.state.site = Site(project, project.workflow(url=url, today=today))
    app.state.limiter = LoginLimiter()
    app.state.secure_cookies = secure_cookies
    app.get("/docs", include_in_schema=False)(_docs)
    app.state.metrics = ops.Metrics(app.state.site)
    app.include_router(ops.router)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(HealthScoreError, _error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.middleware("http")(_headers)
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES)  # outermost: compresses all
    app.router.on_shutdown.append(app.state.site.wf.close)
    app.state.scheduler = None
    if daily_at:
        from healthscore.web.schedule import daily_scheduler

        app.state.scheduler = scheduler = daily_scheduler(project, daily_at)
        app.router.on_startup.append(scheduler.start)
        app.router.on_shutdown.append(lambda: scheduler.shutdown(wait=False))
    return app


def _docs() -> Response:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="healthscore API",
                               swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                               swagger_css_url="/static/vendor/swagger-ui.css",
                               swagger_favicon_url="/static/favicon.svg")


async def _headers(request: Request, call_next: Any) -> Response:
    began = time.perf_counter()
    response: Response = await call_next(request)
    seconds = time.perf_counter() - began
    ms = seconds * 1000
    request.app.state.metrics.observe(request, response.status_code, seconds)
    response.headers["Server-Timing"] = f"app;dur={ms:.1f}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    docs = request.url.path in ("/docs", "/openapi.json") or request.url.path.startswith("/docs/")
    response.headers["Content-Security-Policy"] = DOCS_CSP if docs else CSP
    if not request.url.path.startswith("/static/"):  # scores and people's data: never cached
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, err: HealthScoreError) -> Response:
    """One place where errors become responses: stable JSON for the API, a page for people."""
    if _is_api(request):
        return JSONResponse({"error": err.kind, "message": err.message, "details": err.details},
                            status_code=err.http_status)
    if isinstance(err, AuthError):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return pages.error_page(request, err)


async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
    """A body that is not JSON at all (Starlette's 400) is an invalid request like any other:
    the same 422 and error body; other HTTP errors (an unknown route...) as FastAPI has them."""
    if err.status_code == 400 and _is_api(request):
        message = ("request: the body could not be read as JSON. Send a JSON object in "
                   "UTF-8 with 'Content-Type: application/json'.")
        return JSONResponse({"error": "invalid_request", "message": message, "details": []},
                            status_code=422)
    return await http_exception_handler(request, err)


def _invalid(request: Request, err: RequestValidationError) -> Response:
    details = []
    for e in err.errors():
        where = ".".join(str(x) for x in e.get("loc", ()))
        details.append(f"{where}: {e.get('msg', 'invalid')}")
    message = "request: " + (details[0] if details else "invalid input")
    if _is_api(request):
        return JSONResponse({"error": "invalid_request", "message": message, "details": details},
                            status_code=422)
    return pages.error_page(request, HealthScoreError(message, details=details[1:]), status=422)
