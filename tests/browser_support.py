"""Helpers for the browser tests: the app served by uvicorn in a thread, Debian's chromium,
a recorder of console errors and of requests that leave 127.0.0.1, and screenshots."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import uvicorn

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, Request

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]
LOCAL_HOSTS = {"127.0.0.1"}
# URLs that never go over the network
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-error"}


def artifacts_dir() -> Path:
    """Where screenshots go: $HEALTHSCORE_ARTIFACTS, else test-artifacts/screenshots/ in the repo."""
    folder = Path(os.environ.get("HEALTHSCORE_ARTIFACTS") or REPO / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG of what the page shows now, as ``<artifacts>/<name>.png``."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


class LiveServer:
    """``app`` served by uvicorn on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        # bind the socket here and hand it to uvicorn: no window for another process to take the port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name=f"uvicorn-{self.port}", daemon=True)

    def start(self, timeout: float = 20.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn stopped before it started serving (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start serving {self.url} within {timeout:g} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Recorder:
    """Everything a browser session did that a healthy page does not: console errors (a CSP
    violation is one), uncaught exceptions, and requests to any host but 127.0.0.1."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def watch_context(self, context: BrowserContext) -> None:
        context.on("request", self._request)

    def watch_page(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            self.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def _page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    @property
    def foreign_requests(self) -> list[str]:
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.hostname not in LOCAL_HOSTS:
                out.append(url)
        return out

    def problems(self) -> list[str]:
        return ([f"request left 127.0.0.1: {u}" for u in self.foreign_requests]
                + [f"console error: {e}" for e in self.console_errors]
                + [f"uncaught page error: {e}" for e in self.page_errors])


def path_is(path: str) -> re.Pattern[str]:
    """A URL pattern for ``expect(page).to_have_url``: this path, any query string."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")
