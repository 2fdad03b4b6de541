"""``watcher demo``: the whole cycle, offline, in one command.

A small HTTP server on 127.0.0.1 serves pages modelled on the sources the
Cohere API entry cites (written for this project, not copied from the real
sites). Every response carries per-request noise (timestamps, CSRF tokens,
build hashes, a rotating teaser), so the demo also shows that noise flags
nothing. watcher checks the pages, the "vendor" edits some of them, watcher
checks again and prints the change report.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tempfile
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Self

from .check import RunSummary, run_check
from .config import load_config
from .report import build_report, render_text
from .store import Store, utc_now

PAGES = {
    "/trust": "trust-center.html",
    "/security": "security.html",
    "/enterprise-data-commitments": "enterprise-data-commitments.html",
    "/docs/data-retention": "docs-data-retention.html",
    "/docs/command-a": "docs-command-a.html",
    "/eu/gpai-code-signatories": "gpai-signatories.html",
}
TEASERS = ["New: North for banking", "Webinar: agents in production", "Read our 2026 security report"]
EDITS = [
    "trust center: a new subprocessor joins the list (the SOC 2 passage on the same page is untouched)",
    "security page: the sentence after the SOC 2 claim is rewritten",
    "enterprise data commitments: prompts are now kept 60 days instead of 30",
    "docs, data retention: a new section offers a Business Associate Agreement (BAA)",
    "docs, Command A: the maximum output doubles (no record relies on it)",
    "every page: new timestamps, CSRF tokens, build hashes and teasers (noise)",
]
_EDITION_BLOCK = re.compile(r"<!--(v\d)-->\n?(.*?)<!--/\1-->\n?", re.DOTALL)


def page_template(name: str) -> str:
    return resources.files("watcher").joinpath("demo_site", name).read_text(encoding="utf-8")


def render_page(template: str, edition: str, request_number: int) -> bytes:
    """One edition of a page, with fresh per-request noise."""
    text = _EDITION_BLOCK.sub(lambda m: m.group(2) if m.group(1) == edition else "", template)
    noise = {
        "now": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
        "csrf": secrets.token_hex(16),
        "asset_hash": secrets.token_hex(4),
        "teaser": TEASERS[request_number % len(TEASERS)],
    }
    for key, value in noise.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode("utf-8")


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalServer:
    """An HTTP server on 127.0.0.1 (a free port), serving from a thread while ``running()`` lasts."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.name = name

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @contextmanager
    def running(self) -> Iterator[Self]:
        thread = threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join()


class DemoSite(LocalServer):
    """The demo's web server; ``edition`` switches every page between v1 and v2."""

    def __init__(self) -> None:
        self.edition = "v1"
        self.requests = 0
        self._templates = {path: page_template(name) for path, name in PAGES.items()}
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                site.requests += 1
                template = site._templates.get(self.path)
                if template is None:
                    self.send_error(404)
                    return
                body = render_page(template, site.edition, site.requests)
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler, "watcher-demo-site")


def demo_config_text(base_url: str) -> str:
    return page_template("sources.yaml").replace("{base}", base_url)


def _print_summary(echo: Callable[[str], None], summary: RunSummary) -> None:
    for report in sorted(summary.sources, key=lambda r: r.source_id):
        flags = f", {report.flags_raised} flag(s) raised" if report.flags_raised else ""
        echo(f"  {report.source_id:<28} {report.status:<10} ({report.outcome}){flags}")


def run_demo(echo: Callable[[str], None], keep: str | None = None) -> None:
    """Run the tour and print it with ``echo``; files go to ``keep`` or a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="watcher-demo-") as scratch:
        folder = Path(keep) if keep else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        site = DemoSite()
        with site.running():
            config_path = folder / "sources.yaml"
            config_path.write_text(demo_config_text(site.base_url), encoding="utf-8")
            config = load_config(config_path)
            store = Store.open(folder / "watcher.db")
            try:
                echo(f"watcher demo: {len(PAGES)} pages modelled on the Cohere API's sources, served at {site.base_url}")
                echo(f"config: {len(config.sources)} sources, {len(config.records)} evidence records\n")
                echo("1. First check: every source is fetched and its text stored as version 1.")
                _print_summary(echo, run_check(config, store, list(config.sources), trigger="demo"))
                echo("   (flags on a first check mean a quote in the config does not match the page)\n")
                echo("2. The vendor edits its pages:")
                for edit in EDITS:
                    echo(f"   - {edit}")
                site.edition = "v2"
                echo("\n3. Second check:")
                _print_summary(echo, run_check(config, store, list(config.sources), trigger="demo"))
                echo("\n4. The change report (`watcher report`):\n")
                echo(render_text(build_report(config, store, None, utc_now())))
                echo("Records not listed above were checked too: their evidence did not change.")
                if keep:
                    echo(f"The demo's files are in {folder}; try:\n"
                         f"  watcher --config {config_path} --db {folder / 'watcher.db'} flags")
            finally:
                store.close()
