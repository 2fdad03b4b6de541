"""Sources rendered in real headless Chromium, served by the local test server.

These tests need the Playwright package and the system's Chromium. Outside CI
they are skipped, with the reason, where either is missing; in CI (CI=true)
a missing browser is a failure, so that they always run there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from conftest import Site
from watcher.browser import find_chromium
from watcher.config import load_config


def _browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the Playwright package is not installed (pip install -e '.[test]')"
    if find_chromium() is None:
        return "no Chromium on PATH (apt-get install chromium)"
    return None


@pytest.fixture(autouse=True)
def chromium() -> None:
    missing = _browser_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {missing}")
    if missing:
        pytest.skip(missing)


#: Slow enough for a busy machine: a render takes well under a second, a launch one or two.
SETTINGS = """
settings:
  host_delay: 0s
  timeout: 15s
  retries: 0
  backoff: 0s
"""

JS_PAGE = """<!DOCTYPE html><html><head><title>Trust</title></head><body>
<div id="app"></div>
<script>
  const app = document.getElementById("app");
  app.innerHTML = "<main><h1>Trust center</h1><p>Acme undergoes an annual SOC 2 Type II audit.</p></main>";
</script></body></html>"""

API_PAGE = """<!DOCTYPE html><html><head><title>Subprocessors</title></head><body>
<div id="root">Loading…</div>
<script type="module">
  const response = await fetch("/api/subprocessors.json");
  const data = await response.json();
  const root = document.getElementById("root");
  root.innerHTML = "<h1>Subprocessors</h1><ul id='list'></ul><p>" + data.retention + "</p>";
  for (const name of data.subprocessors) {
    const item = document.createElement("li");
    item.textContent = name;
    document.getElementById("list").append(item);
  }
</script></body></html>"""

CONFIG = SETTINGS + """
sources:
  trust:
    url: {trust}
    fetch: browser
  subprocessors:
    url: {api}
    fetch: browser
    wait_for: "#list li"
offerings:
  acme:
    records:
      soc2:
        cites:
          - source: trust
            quote: Acme undergoes an annual SOC 2 Type II audit.
      retention:
        cites:
          - source: subprocessors
            quote: Prompts are deleted after 30 days.
      subprocessors:
        cites:
          - subprocessors
"""


def serve_json(site, path: str, data: dict) -> None:
    site.page(path, json.dumps(data), content_type="application/json")


def test_pages_built_by_javascript_are_rendered_extracted_and_judged(site, write_config, check, store):
    site.page("/trust", JS_PAGE)
    site.page("/subprocessors", API_PAGE)
    serve_json(site, "/api/subprocessors.json",
               {"subprocessors": ["Google Cloud", "Cloudflare"], "retention": "Prompts are deleted after 30 days."})
    config = load_config(write_config(CONFIG.format(trust=site.url("/trust"), api=site.url("/subprocessors"))))
    summary = check(config)
    assert {s.source_id: (s.status, s.outcome) for s in summary.sources} == {
        "trust": ("new", "ok"), "subprocessors": ("new", "ok")}
    assert store.latest_version("trust").text == "Trust center\nAcme undergoes an annual SOC 2 Type II audit."
    assert store.latest_version("subprocessors").text == (
        "Subprocessors\nGoogle Cloud\nCloudflare\nPrompts are deleted after 30 days.")
    assert store.open_flags() == []
    assert {r["fetcher"] for r in store.rows("SELECT fetcher FROM fetches")} == {"browser"}
    assert {r["fetcher"] for r in store.rows("SELECT fetcher FROM versions")} == {"browser"}

    serve_json(site, "/api/subprocessors.json",
               {"subprocessors": ["Google Cloud", "Cloudflare", "Fastly"],
                "retention": "Prompts are deleted after 60 days."})
    summary = check(config)
    assert {s.source_id: s.status for s in summary.sources} == {"trust": "unchanged", "subprocessors": "changed"}
    flags = {(f["record_id"], f["reason"]): f for f in store.open_flags()}
    assert set(flags) == {("acme/retention", "quote_changed"), ("acme/subprocessors", "content_changed")}
    assert flags[("acme/retention", "quote_changed")]["new"] == "Prompts are deleted after 60 days."


def test_switching_a_source_to_the_browser_flags_nothing_when_the_text_is_the_same(site, make_config, check, store):
    site.page("/policy", "<html><body><main><p>We delete prompts after 30 days.</p></main></body></html>")
    plain = SETTINGS + f"""
sources:
  policy:
    url: {site.url('/policy')}
offerings:
  acme:
    records:
      retention:
        cites:
          - source: policy
            quote: We delete prompts after 30 days.
      everything:
        cites: [policy]
"""
    check(make_config(plain))
    summary = check(make_config(plain.replace("    url:", "    fetch: browser\n    url:")))
    assert (summary.sources[0].status, summary.sources[0].outcome) == ("unchanged", "ok")
    assert store.open_flags() == []
    assert store.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0
    versions = store.rows("SELECT seq, origin, fetcher FROM versions ORDER BY seq")
    assert versions == [{"seq": 1, "origin": "fetch", "fetcher": "http"},
                        {"seq": 2, "origin": "refetch", "fetcher": "browser"}]


def _chromium_pids() -> list[int]:
    """Chromium processes started by this test process (through Playwright's driver)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid = int(stat.parent.name)
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        names[pid] = name
        children.setdefault(int(rest[1]), []).append(pid)
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if "chrom" in names[child]:
                found.append(child)
    return found


def test_a_crashed_or_hung_browser_is_a_failed_fetch_and_the_run_goes_on(site, make_config, check, store):
    crashes = []

    def crash_the_browser(request):
        if not crashes:
            crashes.extend(_chromium_pids())
            for pid in crashes:
                os.kill(pid, signal.SIGKILL)
        return Response("<p>never seen</p>", content_type="text/html")

    site.handler("/crash", crash_the_browser)
    site.page("/hang", "<html><body><p>Busy</p><script>while (true) {}</script></body></html>")
    site.page("/fine", JS_PAGE)
    config = make_config(f"""
settings:
  host_delay: 0s
  timeout: 4s
  retries: 0
  browser_concurrency: 1
sources:
  a-crash:
    url: {site.url('/crash')}
    fetch: browser
  b-hang:
    url: {site.url('/hang')}
    fetch: browser
  c-fine:
    url: {site.url('/fine')}
    fetch: browser
""")
    started = time.monotonic()
    summary = check(config)
    assert time.monotonic() - started < 60
    outcomes = {s.source_id: s.outcome for s in summary.sources}
    assert crashes, "the browser was not running when the page was requested"
    assert outcomes == {"a-crash": "browser_error", "b-hang": "timeout", "c-fine": "ok"}
    assert store.latest_version("c-fine").text.startswith("Trust center")
    assert store.latest_version("a-crash") is None and store.latest_version("b-hang") is None
    assert _chromium_pids() == []


@pytest.fixture
def threaded_site():
    """A Site whose server answers requests in parallel, so that it can see how many arrive at once."""
    server = HTTPServer(threaded=True)
    server.start()
    yield Site(server)
    server.clear()
    server.stop()


def test_at_most_browser_concurrency_pages_render_at_once(threaded_site, make_config, check):
    site = threaded_site
    in_flight = []
    peak = []
    lock = threading.Lock()

    def slow_json(request):
        with lock:
            in_flight.append(1)
            peak.append(len(in_flight))
        time.sleep(0.5)
        with lock:
            in_flight.pop()
        return Response(json.dumps({"subprocessors": ["Google Cloud"], "retention": "30 days."}),
                        content_type="application/json")

    site.handler("/api/subprocessors.json", slow_json)
    site.page("/subprocessors", API_PAGE)
    sources = "".join(f"""
  s{n}:
    url: {site.url('/subprocessors')}?copy={n}
    fetch: browser
    wait_for: "#list li"
""" for n in range(4))
    config = make_config(f"settings:\n  host_delay: 0s\n  timeout: 15s\n  per_host: 4\n  browser_concurrency: 2\n"
                         f"sources:{sources}")
    summary = check(config)
    assert [s.outcome for s in summary.sources] == ["ok"] * 4
    assert len(peak) == 4 and max(peak) <= 2


def test_ctrl_c_during_a_render_closes_the_browser(site, write_config, tmp_path):
    site.page("/hang", "<html><body><script>while (true) {}</script></body></html>")
    config = write_config(SETTINGS.replace("15s", "60s") + f"""
sources:
  hang:
    url: {site.url('/hang')}
    fetch: browser
""")
    # Playwright puts each browser profile in TMPDIR: a directory of this test's own marks its browsers.
    # (A short path: Chromium's profile sockets must fit in a Unix socket address.)
    profiles = tempfile.mkdtemp(prefix="wtest")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(tmp_path / "w.db"), "check"],
            env={**os.environ, "TMPDIR": profiles}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while site.hits("/hang") == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert site.hits("/hang") == 1, "the browser never requested the page"
        os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        assert stderr.decode().strip() == "watcher: error: interrupted"
        assert _processes_mentioning(profiles) == []
    finally:
        shutil.rmtree(profiles, ignore_errors=True)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue  # the process ended while we looked
    return found
