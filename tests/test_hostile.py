"""The fault matrix: a hostile server on 127.0.0.1, one test per misbehaviour.

For every fault the check finishes in bounded time, the outcome is classified
and recorded in the fetch log, `watcher history` shows it, the citing records'
`source_error` flag names it in `watcher flags --json`, and nothing is ever
stored as a text version or a change. Transient faults flag after
FAILURES_BEFORE_FLAG checks in a row (the rule itself is tested in
test_check.py; here the count is seeded so that each fault needs one check);
walls, gates, soft 404s and robots.txt bans flag at once.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import html
from hostile import (
    HostileServer,
    brotli_bomb,
    endless_body,
    gzip_bomb,
    redirect,
    reset_mid_body,
    respond,
    retry_after_date,
    silent,
    slow_headers,
    trickle,
)
from watcher.check import FAILURES_BEFORE_FLAG, run_check
from watcher.cli import cli
from watcher.config import load_config

TIMEOUT = 0.6
POLICY = html(
    "<h1>Data retention</h1><p>We delete prompts after 30 days.</p>"
    + "".join(f"<p>Section {i}: customer data is processed only to provide the service, stored in the "
              f"region the customer selects, encrypted at rest and in transit, and never used to train "
              f"models without an explicit opt-in by the customer's administrator.</p>" for i in range(12))
)
CONFIG = """
settings:
  host_delay: 0s
  timeout: {timeout}s
  retries: {retries}
  backoff: 0s
  max_size: 1MB
sources:
  p:
    url: {url}
{extra}offerings:
  acme:
    records:
      retention:
        cites:
          - source: p
            quote: "We delete prompts after 30 days."
      whole:
        cites: [p]
"""


class Harness:
    """One source on the hostile server, its config file, its database, and the CLI on both."""

    def __init__(self, server: HostileServer, tmp_path: Path, retries: int = 0, extra: str = ""):
        self.server = server
        self.config_path = tmp_path / "sources.yaml"
        self.config_path.write_text(CONFIG.format(timeout=TIMEOUT, retries=retries, url=server.url("/p"),
                                                  extra=extra))
        self.db_path = tmp_path / "watcher.db"
        self.config = load_config(self.config_path)

    def check(self):
        from watcher.store import Store

        store = Store.open(self.db_path)
        try:
            return run_check(self.config, store, ["p"]).sources[0]
        finally:
            store.close()

    def rows(self, sql: str) -> list[dict]:
        from watcher.store import Store

        store = Store.open(self.db_path)
        try:
            return store.rows(sql)
        finally:
            store.close()

    def seed_failures(self, count: int) -> None:
        from watcher.store import Store

        store = Store.open(self.db_path)
        try:
            store.update_source("p", consecutive_failures=count)
        finally:
            store.close()

    def cli(self, *args: str) -> str:
        result = CliRunner().invoke(cli, ["--config", str(self.config_path), "--db", str(self.db_path), *args])
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture
def server():
    with HostileServer() as running:
        yield running


@pytest.fixture
def harness(server, tmp_path):
    server.route("/p", respond(POLICY))
    made = Harness(server, tmp_path)
    assert made.check().status == "new"
    return made


def chain(server: HostileServer, length: int) -> None:
    for i in range(length):
        server.route(f"/hop{i}", redirect(f"/hop{i + 1}"))
    server.route(f"/hop{length}", respond(POLICY))
    server.route("/p", redirect("/hop0"))


def loop(server: HostileServer) -> None:
    server.route("/p", redirect("/q"))
    server.route("/q", redirect("/p"))


def robots(behaviour):
    def install(server: HostileServer) -> None:
        server.route("/robots.txt", behaviour)
    return install


def serve(behaviour):
    def install(server: HostileServer) -> None:
        server.route("/p", behaviour)
    return install


CHALLENGE = html("<h1>Checking your browser before accessing the site</h1><p>This takes a few seconds.</p>",
                 title="Just a moment...")
LOGIN = """<!DOCTYPE html><html><head><title>Sign in</title></head><body><main><h1>Sign in to continue</h1>
<form><label>Email <input type="email"></label><label>Password <input type="password"></label>
<button>Sign in</button></form></main></body></html>"""
NDA_GATE = html("<h1>SOC 2 Type II report</h1><p>This document is private. Request access and sign the NDA "
                "to view it.</p><button>Request access</button>")
SOFT_404 = html("<h1>Page not found</h1><p>Sorry, we couldn't find that page. Go back home.</p>",
                title="404 | Example")
UNAVAILABLE = html("<h1>Service temporarily unavailable</h1><p>We are performing maintenance. Please try "
                   "again later.</p>", title="Maintenance")
CONSENT_WALL = html("<div class='consent'><h2>We value your privacy</h2><p>We use cookies to improve your "
                    "experience. Choose whether to accept them.</p><button>Accept all</button>"
                    "<button>Reject all</button><a>Manage preferences</a></div>")
VERIFY_HUMAN = html("<h1>One more step</h1><p>Please verify you are human to continue.</p>"
                    "<div class='captcha-box'></div>")

# (behaviour, outcome, flagged at once)
FAULTS = {
    "slow headers": (serve(slow_headers()), "timeout", False),
    "slow body trickling past the deadline": (serve(trickle()), "timeout", False),
    "accepts and never answers": (serve(silent()), "timeout", False),
    "connection reset mid-body": (serve(reset_mid_body(POLICY.encode()[:400])), "connection_error", False),
    "truncated body (Content-Length larger than sent)": (
        serve(respond(POLICY[:300], content_length=len(POLICY))), "truncated", False),
    "not HTTP at all": (serve(lambda request, writer: _raw(writer, b"SSH-2.0-OpenSSH_9.6\r\n\r\n")),
                        "protocol_error", False),
    "429 with Retry-After in seconds": (serve(respond("slow down", status=429, headers={"Retry-After": "1"})),
                                        "rate_limited", False),
    "503 with Retry-After as an HTTP date": (
        serve(respond("busy", status=503, headers={"Retry-After": retry_after_date(1)})), "server_error", False),
    "500": (serve(respond("oops", status=500)), "server_error", False),
    "502": (serve(respond("bad gateway", status=502)), "server_error", False),
    "504": (serve(respond("gateway timeout", status=504)), "server_error", False),
    "200 saying temporarily unavailable": (serve(respond(UNAVAILABLE)), "unavailable", False),
    "redirect loop": (loop, "redirect_loop", False),
    "redirect chain longer than 10": (lambda server: chain(server, 12), "too_many_redirects", False),
    "redirect to ftp:": (serve(redirect("ftp://127.0.0.1/policy.html")), "bad_redirect", False),
    "redirect to javascript:": (serve(redirect("javascript:alert(1)")), "bad_redirect", False),
    "redirect to file:": (serve(redirect("file:///etc/passwd")), "bad_redirect", False),
    "endless body past the size cap": (serve(endless_body()), "too_large", False),
    "Content-Length over the size cap": (serve(respond(POLICY, content_length=50_000_000_000)), "too_large", False),
    "gzip decompression bomb": (serve(gzip_bomb()), "too_large", False),
    "brotli decompression bomb": (serve(brotli_bomb(64)), "too_large", False),
    "Content-Length that lies short": (serve(respond(POLICY, content_length=len(POLICY) // 2)), "truncated", False),
    "unknown Content-Encoding": (serve(respond(POLICY, headers={"Content-Encoding": "zstd"})), "bad_encoding", False),
    "corrupt gzip": (serve(respond(b"\x1f\x8b\x08\x00garbage-not-deflate" * 20, headers={"Content-Encoding": "gzip"})),
                     "bad_encoding", False),
    "gzip cut before its end": (serve(respond(gzip.compress(POLICY.encode())[:200],
                                              headers={"Content-Encoding": "gzip"})), "bad_encoding", False),
    "binary served as text/html": (serve(respond(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)), "binary", False),
    "empty body": (serve(respond(b"")), "empty", False),
    "a page of only scripts": (serve(respond("<html><head><script>boot()</script></head><body>"
                                             "<script>render()</script><noscript></noscript></body></html>")),
                               "empty", False),
    "403 challenge page": (serve(respond(CHALLENGE, status=403)), "blocked", True),
    "503 challenge page": (serve(respond(CHALLENGE, status=503, headers={"cf-mitigated": "challenge"})),
                           "blocked", True),
    "200 'verify you are human'": (serve(respond(VERIFY_HUMAN)), "blocked", True),
    "200 cookie consent wall in place of the page": (serve(respond(CONSENT_WALL)), "blocked", True),
    "login gate where content used to be": (serve(respond(LOGIN)), "gated", True),
    "redirect to a login page": (lambda server: (server.route("/p", redirect("/login?next=/p")),
                                                 server.route("/login", respond(LOGIN))), "gated", True),
    "NDA 'request access' gate": (serve(respond(NDA_GATE)), "gated", True),
    "soft 404": (serve(respond(SOFT_404)), "not_found", True),
    "robots.txt never answers": (robots(silent()), "timeout", False),
    "robots.txt answers 503": (robots(respond("busy", status=503)), "server_error", False),
    "robots.txt disallows the page": (robots(respond("User-agent: *\nDisallow: /p\n", content_type="text/plain")),
                                      "robots_disallowed", True),
}


async def _raw(writer, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


@pytest.mark.parametrize(("install", "outcome", "at_once"), list(FAULTS.values()), ids=list(FAULTS))
def test_a_fault_is_a_classified_failure_never_a_change(harness, server, install, outcome, at_once):
    install(server)
    if not at_once:
        harness.seed_failures(FAILURES_BEFORE_FLAG - 1)
    report = harness.check()

    assert (report.status, report.outcome) == ("failed", outcome), report.error
    fetch = harness.rows("SELECT * FROM fetches ORDER BY id DESC LIMIT 1")[0]
    assert fetch["outcome"] == outcome and fetch["version_id"] is None
    assert fetch["duration_ms"] < (TIMEOUT + 3) * 1000  # a deadline per request, not per read
    assert harness.rows("SELECT count(*) AS n FROM versions")[0]["n"] == 1
    assert harness.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0
    assert harness.rows("SELECT last_outcome FROM sources")[0]["last_outcome"] == outcome

    history = harness.cli("history", "p")
    assert outcome in history.split("fetches:")[1].splitlines()[1]
    flags = json.loads(harness.cli("flags", "--json"))
    assert {(f["record"], f["reason"], f["outcome"]) for f in flags} == {
        ("acme/retention", "source_error", outcome), ("acme/whole", "source_error", outcome)}


def test_retry_after_in_seconds_is_honoured_then_the_page_is_read(server, tmp_path):
    calls: list[float] = []

    async def busy_once(request, writer):
        calls.append(time.monotonic())
        busy = respond("slow down", status=429, headers={"Retry-After": "1"})
        await (busy if len(calls) == 1 else respond(POLICY))(request, writer)

    server.route("/p", busy_once)
    report = Harness(server, tmp_path, retries=1).check()
    assert (report.status, report.outcome) == ("new", "ok")
    assert calls[1] - calls[0] >= 0.9  # the second request waited as long as the server asked


def test_retry_after_as_an_http_date_is_honoured(server, tmp_path):
    server.route("/p", respond("busy", status=503, headers={"Retry-After": retry_after_date(2)}))
    harness = Harness(server, tmp_path, retries=1)
    report = harness.check()
    assert report.outcome == "server_error"
    fetch = harness.rows("SELECT attempts, duration_ms FROM fetches")[0]
    assert fetch["attempts"] == 2 and fetch["duration_ms"] >= 800


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        ("Windows-1252 bytes labelled UTF-8", "cp1252", "text/html; charset=utf-8"),
        ("a UTF-8 BOM against a Latin-1 header", "bom", "text/html; charset=iso-8859-1"),
        ("<meta charset> disagreeing with the header", "meta", "text/html; charset=windows-1252"),
        ("no charset anywhere", "utf-8", "text/html"),
        ("stray invalid bytes in UTF-8", "mixed", "text/html; charset=utf-8"),
        ("Windows-1252 labelled as such", "cp1252", "text/html; charset=windows-1252"),
    ],
)
def test_charset_faults_decode_to_the_same_text(server, tmp_path, name, body, content_type):
    text = "<h1>Données</h1><p>We delete prompts after 30 days – “always”, café and naïve users included.</p>"
    server.route("/p", respond(html(text)))
    harness = Harness(server, tmp_path)
    assert harness.check().status == "new"
    page = html(text)
    encoded = {
        "cp1252": page.encode("cp1252"),
        "bom": b"\xef\xbb\xbf" + page.encode("utf-8"),
        "meta": page.replace("<head>", '<head><meta charset="utf-8">').encode("utf-8"),
        "utf-8": page.encode("utf-8"),
        "mixed": page.encode("utf-8").replace("café".encode(), "café".encode("cp1252")),
    }[body]
    server.route("/p", respond(encoded, content_type=content_type))
    report = harness.check()
    assert (report.status, report.outcome) == ("unchanged", "ok"), name
    assert harness.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0


@pytest.mark.parametrize(
    "drifted",
    [
        html("<div class='terms-v2'><p>We delete prompts after 30 days.</p></div>"),
        html("<div id='terms'></div><p>We delete prompts after 30 days.</p>"),
        html("<div id='terms'><h2>Cookies</h2><p>We use cookies. Accept all or reject all?</p>"
             "<button>Accept all</button><button>Reject all</button></div><article>"
             + "".join(f"<p>Clause {i}: we delete prompts after 30 days.</p>" for i in range(60)) + "</article>"),
    ],
    ids=["select matches nothing", "select matches an empty element", "select matches a cookie wall"],
)
def test_selector_drift_is_an_alert_never_a_deletion(server, tmp_path, drifted):
    terms = "<div id='terms'>" + "".join(f"<p>Clause {i}: we delete prompts after 30 days.</p>" for i in range(20))
    server.route("/p", respond(html(terms + "</div>")))
    config = tmp_path / "sources.yaml"
    config.write_text(f"settings:\n  host_delay: 0s\nsources:\n  p:\n    url: {server.url('/p')}\n    select: '#terms'\n"
                      "offerings:\n  o:\n    records:\n      r:\n        cites: [p]\n")
    loaded = load_config(config)
    from watcher.store import Store

    store = Store.open(tmp_path / "w.db")
    run_check(loaded, store, ["p"])
    server.route("/p", respond(drifted))
    report = run_check(loaded, store, ["p"]).sources[0]
    assert report.status == "selector_missing"
    assert [f["reason"] for f in store.open_flags()] == ["selector_missing"]
    assert store.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0
    store.close()


def swung(server: HostileServer, tmp_path: Path, a: str, b: str) -> Harness:
    """A source checked at text A, then at text B."""
    server.route("/p", respond(a))
    harness = Harness(server, tmp_path)
    harness.check()
    server.route("/p", respond(b))
    assert harness.check().status == "changed"
    return harness


def test_a_flip_flopping_page_raises_no_new_flag_and_closes_none(server, tmp_path):
    a = POLICY
    b = POLICY.replace("<p>Section 3:", "<p>Try our new assistant today!</p><p>Section 3:")
    harness = swung(server, tmp_path, a, b)
    flags_after_first_swing = json.loads(harness.cli("flags", "--json"))
    assert [f["reason"] for f in flags_after_first_swing] == ["content_changed"]
    for page, status in ((a, "reverted"), (b, "reverted"), (a, "reverted")):
        server.route("/p", respond(page))
        assert harness.check().status == status
    assert json.loads(harness.cli("flags", "--json")) == flags_after_first_swing
    kinds = [row["kind"] for row in harness.rows("SELECT kind FROM changes ORDER BY id")]
    assert kinds == ["content", "revert", "revert", "revert"]
    assert "back to the text of v1" in harness.cli("history", "p")
    report = json.loads(harness.cli("report", "--format", "json"))
    assert [c["returns_to_version"] for c in report["reverted_changes"]] == [3]  # the last run: A again
    assert report["unattributed_changes"] == []


def test_a_return_to_a_text_after_a_verification_is_news(server, tmp_path):
    a = POLICY
    harness = swung(server, tmp_path, a, POLICY.replace("after 30 days", "after 90 days"))
    harness.cli("verify", "acme/retention", "acme/whole", "--by", "editor")
    server.route("/p", respond(a))
    assert harness.check().status == "reverted"
    flags = {(f["record"], f["reason"]) for f in json.loads(harness.cli("flags", "--json"))}
    assert flags == {("acme/retention", "quote_changed"), ("acme/whole", "content_changed")}


def test_a_text_older_than_the_last_five_is_a_change_not_a_revert(server, tmp_path):
    harness = Harness(server, tmp_path)
    pages = [POLICY.replace("Section 0:", f"Edition {n}:") for n in range(6)]
    for page in pages:
        server.route("/p", respond(page))
        harness.check()
    server.route("/p", respond(pages[0]))
    assert harness.check().status == "changed"
    server.route("/p", respond(pages[2]))
    assert harness.check().status == "reverted"


def test_one_slow_server_does_not_stall_the_others(server, tmp_path):
    with HostileServer() as other:
        other.route("/fine", respond(POLICY))
        server.route("/p", trickle())
        config = tmp_path / "sources.yaml"
        config.write_text(CONFIG.format(timeout=1, retries=0, url=server.url("/p"),
                                        extra=f"  fine:\n    url: {other.url('/fine')}\n"))
        from watcher.store import Store

        store = Store.open(tmp_path / "w.db")
        started = time.monotonic()
        summary = run_check(load_config(config), store)
        elapsed = time.monotonic() - started
        store.close()
    assert {s.source_id: s.outcome for s in summary.sources} == {"p": "timeout", "fine": "ok"}
    assert elapsed < 5
