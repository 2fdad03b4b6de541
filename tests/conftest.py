"""Shared fixtures: a real HTTP server on 127.0.0.1 and real SQLite files."""

from __future__ import annotations

import hashlib
import logging
import re
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable

import pytest
from werkzeug import Request, Response

from watcher.check import RunSummary, run_check
from watcher.config import Config, load_config
from watcher.store import Store

#: Settings that keep tests fast: no delay between requests, quick retries.
FAST_SETTINGS = """
settings:
  host_delay: 0s
  timeout: 3s
  retries: 1
  backoff: 0s
"""


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _restore_logging():
    """`watcher schedule` configures process-wide logging; later tests must not inherit its handler."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@dataclass
class Page:
    body: str | bytes = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    etag: bool = False


class Site:
    """Pages served by pytest-httpserver whose content a test can change between checks."""

    def __init__(self, server) -> None:
        self.server = server
        self.pages: dict[str, Page | Callable[[Request], Response]] = {}
        self.requests: list[Request] = []
        server.expect_request(re.compile(r".*")).respond_with_handler(self._handle)

    def url(self, path: str) -> str:
        return self.server.url_for(path)

    def page(self, path: str, body: str | bytes = "", **options) -> None:
        self.pages[path] = Page(body, **options)

    def handler(self, path: str, handler: Callable[[Request], Response]) -> None:
        self.pages[path] = handler

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def _handle(self, request: Request) -> Response:
        self.requests.append(request)
        page = self.pages.get(request.path)
        if page is None:
            return Response("not here", status=404)
        if callable(page):
            return page(request)
        body = page.body.encode("utf-8") if isinstance(page.body, str) else page.body
        headers = dict(page.headers)
        if page.etag and page.status == 200:
            tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            headers["ETag"] = tag
            if request.headers.get("If-None-Match") == tag:
                return Response(status=304, headers=headers)
        return Response(body, status=page.status, headers=headers, content_type=page.content_type)


@pytest.fixture
def site(httpserver) -> Site:
    return Site(httpserver)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "watcher.db"


@pytest.fixture
def store(db_path: Path):
    opened = Store.open(db_path)
    yield opened
    opened.close()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a sources.yaml (with fast test settings unless it has its own) and return its path."""

    def write(text: str, settings: bool = True) -> Path:
        body = textwrap.dedent(text)
        if settings and "settings:" not in body:
            body = FAST_SETTINGS + body
        path = tmp_path / "sources.yaml"
        path.write_text(body, encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_config(write_config) -> Callable[[str], Config]:
    def make(text: str) -> Config:
        return load_config(write_config(text))

    return make


class Clock:
    """A clock tests can move forward."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def check(store: Store) -> Callable[..., RunSummary]:
    """Check every source of a config now (or the given ones), against the real server."""

    def run(config: Config, sources: list[str] | None = None, **kwargs) -> RunSummary:
        return run_check(config, store, sources if sources is not None else list(config.sources), **kwargs)

    return run


def html(body: str, title: str = "Policy") -> str:
    """A small page with the usual chrome around ``body``."""
    return f"""<!DOCTYPE html><html><head><title>{title}</title></head><body>
<header><nav><a href="/">Home</a><a href="/pricing">Pricing</a></nav></header>
<main>{body}</main>
<footer><p>&copy; Example Corp</p></footer>
</body></html>"""
