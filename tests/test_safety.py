"""Safe crawling: TLS verification, the redirect guard, robots.txt and credentials from the environment."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from click.testing import CliRunner

from conftest import html
from hostile import HostileServer, redirect, respond
from watcher.addresses import is_public
from watcher.check import run_check
from watcher.cli import cli
from watcher.config import Settings, Source, load_config
from watcher.fetch import Fetcher
from watcher.store import Store

PAGE = html("<h1>Security</h1><p>We are SOC 2 Type II audited every year.</p>")
USER_AGENT = "watcher-test/1.0 (+https://example.org/contact)"


def write_config(tmp_path: Path, sources: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(f"""settings:
  user_agent: "{USER_AGENT}"
  host_delay: 0s
  timeout: 2s
  retries: 0
sources:
{sources}offerings:
  acme:
    records:
      soc2:
        cites: [p]
""")
    return path


def invoke(config: Path, db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(db), *args])
    assert result.exit_code == 0, result.output
    return result.output


def check(config: Path, db: Path):
    store = Store.open(db)
    try:
        return run_check(load_config(config), store)
    finally:
        store.close()


@pytest.fixture
def server():
    with HostileServer() as running:
        yield running


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_server():
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with HostileServer(tls=context) as running:
        running.route("/p", respond(PAGE))
        yield running


def test_tls_is_verified_by_default(tls_server, tmp_path):
    config = write_config(tmp_path, f"  p:\n    url: {tls_server.url('/p')}\n")
    summary = check(config, tmp_path / "w.db")
    assert summary.sources[0].outcome == "tls_error"
    assert tls_server.hits("/p") == 0


def test_a_source_may_opt_out_of_tls_verification_and_reports_say_so(tls_server, tmp_path):
    config = write_config(tmp_path, f"  p:\n    url: {tls_server.url('/p')}\n    verify_tls: false\n")
    db = tmp_path / "w.db"
    assert check(config, db).sources[0].outcome == "ok"
    assert "(TLS not verified)" in invoke(config, db, "history", "p")
    report = invoke(config, db, "report")
    assert "Safety overrides" in report and "p <https://127.0.0.1" in report
    assert "TLS certificate not verified (1 fetch(es) in this report)" in report
    data = json.loads(invoke(config, db, "report", "--format", "json"))
    assert data["safety_overrides"][0]["overrides"] == ["TLS certificate not verified"]


# --------------------------------------------------------------------------- the redirect guard


@pytest.mark.parametrize(
    ("address", "public"),
    [("93.184.215.14", True), ("2606:4700::1111", True), ("127.0.0.1", False), ("10.1.2.3", False),
     ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
     ("0.0.0.0", False), ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:127.0.0.1", False),
     ("::ffff:10.0.0.1", False), ("224.0.0.1", False), ("not an address", False)],
)
def test_public_addresses(address, public):
    assert is_public(address) is public


def moved(location: str) -> tuple[int, dict[str, str], bytes]:
    return 302, {"Location": location}, b""


OK = (200, {"Content-Type": "text/html"}, PAGE.encode())


def _fetch_through(responses: dict[str, tuple[int, dict[str, str], bytes]], url: str, names: dict[str, list[str]]):
    """Fetch ``url`` with a transport that answers from ``responses`` and a resolver that knows ``names``.

    No packet leaves the process: neither DNS nor HTTP goes to the network.
    """
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        status, headers, body = responses.get(str(request.url), (404, {}, b""))
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    async def resolve(host: str, port: int) -> list[str]:
        return [host] if host.replace(".", "").isdigit() or ":" in host else names[host]

    async def run():
        settings = Settings(host_delay=0, retries=0, timeout=2)
        async with Fetcher(settings, transport=httpx.MockTransport(answer), resolver=resolve) as fetcher:
            return await fetcher.fetch(Source("p", url))

    return asyncio.run(run()), seen


VENDOR = {"vendor.example": ["93.184.215.14"], "cdn.example": ["93.184.215.15"], "intranet.example": ["10.0.0.5"]}


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:8080/admin", "http://169.254.169.254/latest/meta-data/", "http://intranet.example/wiki",
     "http://[::1]:9000/", "http://10.0.0.9/"],
)
def test_a_redirect_from_a_public_address_to_a_private_one_is_refused(target):
    responses = {"https://vendor.example/trust": moved(target)}
    result, seen = _fetch_through(responses, "https://vendor.example/trust", VENDOR)
    assert result.outcome == "unsafe_redirect"
    assert seen == ["https://vendor.example/robots.txt", "https://vendor.example/trust"]  # never the target


def test_a_redirect_between_public_addresses_is_followed():
    responses = {"https://vendor.example/trust": moved("https://cdn.example/trust"), "https://cdn.example/trust": OK}
    result, _ = _fetch_through(responses, "https://vendor.example/trust", VENDOR)
    assert (result.outcome, result.final_url) == ("ok", "https://cdn.example/trust")


def test_a_source_configured_on_a_private_address_may_redirect_within_it():
    responses = {"http://10.0.0.7/policy": moved("http://10.0.0.8/policy"), "http://10.0.0.8/policy": OK}
    result, _ = _fetch_through(responses, "http://10.0.0.7/policy", {})
    assert result.outcome == "ok"


def test_a_name_that_resolves_public_but_connects_private_is_refused(server):
    """DNS rebinding: the guard also checks the address the connection really reached."""
    server.route("/p", respond(PAGE))

    async def lying_resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    async def run():
        async with Fetcher(Settings(host_delay=0, retries=0, timeout=2), resolver=lying_resolver) as fetcher:
            return await fetcher.fetch(Source("p", server.url("/p"), ignore_robots=True))

    result = asyncio.run(run())
    assert result.outcome == "unsafe_redirect" and "127.0.0.1" in result.error


# --------------------------------------------------------------------------- robots.txt


def test_robots_txt_is_read_once_per_host_and_run(server, tmp_path):
    for path in ("/p", "/q", "/r"):
        server.route(path, respond(PAGE))
    sources = "".join(f"  {name}:\n    url: {server.url('/' + name)}\n" for name in "pqr")
    config = write_config(tmp_path, sources)
    check(config, tmp_path / "w.db")
    assert server.hits("/robots.txt") == 1
    assert {r.headers["user-agent"] for r in server.requests} == {USER_AGENT}


def test_the_group_for_our_user_agent_wins_over_the_wildcard(server, tmp_path):
    server.route("/robots.txt", respond("User-agent: *\nDisallow: /\n\nUser-agent: watcher-test\nDisallow: /private\n",
                                        content_type="text/plain"))
    server.route("/p", respond(PAGE))
    server.route("/private", respond(PAGE))
    config = write_config(tmp_path, f"  p:\n    url: {server.url('/p')}\n  private:\n    url: {server.url('/private')}\n")
    outcomes = {s.source_id: s.outcome for s in check(config, tmp_path / "w.db").sources}
    assert outcomes == {"p": "ok", "private": "robots_disallowed"}
    assert server.hits("/private") == 0


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_a_robots_txt_that_is_not_there_for_us_allows_everything(server, tmp_path, status):
    server.route("/robots.txt", respond("no", status=status))
    server.route("/p", respond(PAGE))
    config = write_config(tmp_path, f"  p:\n    url: {server.url('/p')}\n")
    assert check(config, tmp_path / "w.db").sources[0].outcome == "ok"


def test_a_redirected_robots_txt_is_followed(server, tmp_path):
    server.route("/robots.txt", redirect("/robots-live.txt", status=301))
    server.route("/robots-live.txt", respond("User-agent: *\nDisallow: /p\n", content_type="text/plain"))
    server.route("/p", respond(PAGE))
    config = write_config(tmp_path, f"  p:\n    url: {server.url('/p')}\n")
    assert check(config, tmp_path / "w.db").sources[0].outcome == "robots_disallowed"


def test_a_source_may_ignore_robots_txt_and_reports_name_it(server, tmp_path):
    server.route("/robots.txt", respond("User-agent: *\nDisallow: /\n", content_type="text/plain"))
    server.route("/p", respond(PAGE))
    config = write_config(tmp_path, f"  p:\n    url: {server.url('/p')}\n    ignore_robots: true\n")
    db = tmp_path / "w.db"
    assert check(config, db).sources[0].outcome == "ok"
    assert server.hits("/robots.txt") == 0
    assert "(robots.txt ignored)" in invoke(config, db, "history", "p")
    assert "p <http://127.0.0.1" in invoke(config, db, "report") and "robots.txt ignored" in invoke(config, db, "report")
    assert "robots.txt ignored" in invoke(config, db, "report", "--format", "markdown")


# --------------------------------------------------------------------------- credentials

SECRET = "s3cr3t-token-0123456789"
CREDENTIALS = """    credentials:
      headers:
        Authorization: ACME_TRUST_TOKEN
      cookies:
        session: ACME_TRUST_SESSION
"""


def test_credentials_come_from_the_environment_and_are_never_stored_logged_or_reported(
        server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ACME_TRUST_TOKEN", f"Bearer {SECRET}")
    monkeypatch.setenv("ACME_TRUST_SESSION", SECRET + "-cookie")
    server.route("/p", respond(PAGE))
    config = write_config(tmp_path, f"  p:\n    url: {server.url('/p')}\n" + CREDENTIALS)
    db = tmp_path / "w.db"
    caplog.set_level(logging.DEBUG)
    outputs = [invoke(config, db, "check")]
    server.route("/p", respond("denied", status=401))
    outputs.append(invoke(config, db, "check", "--all"))
    sent = [r for r in server.requests if r.path == "/p"]
    assert sent[0].headers["authorization"] == f"Bearer {SECRET}"
    assert sent[0].headers["cookie"] == f"session={SECRET}-cookie"
    assert "authorization" not in next(r for r in server.requests if r.path == "/robots.txt").headers
    for args in (["history", "p"], ["flags", "--json"], ["report", "--format", "json"], ["report", "--format", "markdown"],
                 ["validate"]):
        outputs.append(invoke(config, db, *args))
    assert not any(SECRET in output for output in outputs)
    assert SECRET not in caplog.text
    for path in tmp_path.iterdir():
        if path.name.startswith("w.db"):
            assert SECRET.encode() not in path.read_bytes(), path.name


def test_credentials_never_follow_a_redirect_to_another_origin(server, tmp_path, monkeypatch):
    monkeypatch.setenv("ACME_TRUST_TOKEN", SECRET)
    monkeypatch.setenv("ACME_TRUST_SESSION", SECRET)
    with HostileServer() as elsewhere:
        elsewhere.route("/p", respond(PAGE))
        server.route("/p", redirect("/moved"))
        server.route("/moved", redirect(elsewhere.url("/p")))
        config = write_config(tmp_path, f"  p:\n    url: {server.url('/p')}\n" + CREDENTIALS)
        assert check(config, tmp_path / "w.db").sources[0].outcome == "ok"
        assert next(r for r in server.requests if r.path == "/moved").headers.get("authorization") == SECRET
        assert [r.headers.get("authorization") for r in elsewhere.requests] == [None, None]  # robots.txt and /p


def test_a_missing_credential_is_a_failed_check_that_sends_nothing(server, tmp_path, monkeypatch):
    monkeypatch.delenv("ACME_TRUST_TOKEN", raising=False)
    monkeypatch.delenv("ACME_TRUST_SESSION", raising=False)
    server.route("/p", respond(PAGE))
    config = write_config(tmp_path, f"  p:\n    url: {server.url('/p')}\n" + CREDENTIALS)
    report = check(config, tmp_path / "w.db").sources[0]
    assert report.outcome == "missing_credentials" and "ACME_TRUST_TOKEN" in report.error
    assert server.requests == []
