"""How a source is fetched: the `fetch` and `wait_for` keys, application shells, the recorded fetcher.

None of these tests starts a real browser (tests/test_browser.py does).
"""

from __future__ import annotations

import stat
import textwrap

import pytest
import sqlite_utils
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import html
from watcher.appshell import SHELL_MAX_WORDS, detect_app_shell
from watcher.cli import cli
from watcher.config import load_config, parse_config
from watcher.errors import ConfigError
from watcher.store import Store, migrations

# --------------------------------------------------------------------------- configuration


def test_fetch_and_wait_for_load_with_their_defaults():
    config = parse_config(textwrap.dedent("""
        settings:
          browser_concurrency: 3
        sources:
          app:
            url: https://example.org/trust
            fetch: browser
            wait_for: "#controls li"
          page:
            url: https://example.org/policy
    """))
    assert config.settings.browser_concurrency == 3
    assert (config.sources["app"].fetch, config.sources["app"].wait_for) == ("browser", "#controls li")
    assert (config.sources["page"].fetch, config.sources["page"].wait_for) == ("http", None)
    assert parse_config("sources:\n  p:\n    url: https://example.org/\n").settings.browser_concurrency == 2


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("    fetch: chrome\n", "sources.app.fetch: expected one of: http, browser; got 'chrome'"),
        ("    wait_for: main\n", "sources.app.wait_for: needs `fetch: browser`"),
        ("    fetch: browser\n    wait_for: 'main['\n", "sources.app.wait_for: invalid CSS selector 'main['"),
        ("    fetch: browser\n    wait_for: [main, article]\n", "sources.app.wait_for: expected one CSS selector"),
    ],
)
def test_bad_fetch_keys_name_the_file_line_and_key(source, message):
    text = "sources:\n  app:\n    url: https://example.org/\n" + source
    with pytest.raises(ConfigError) as error:
        parse_config(text, "sources.yaml")
    assert str(error.value).startswith(f"sources.yaml:{3 + source.count(chr(10))}: {message}")


def test_browser_concurrency_must_be_positive():
    with pytest.raises(ConfigError, match=r"sources.yaml:2: settings.browser_concurrency: must be at least 1"):
        parse_config("settings:\n  browser_concurrency: 0\nsources:\n  p:\n    url: https://example.org/\n",
                     "sources.yaml")


# --------------------------------------------------------------------------- application shells

SHELLS = {
    "react": '<html><body><div id="root"></div><script src="/static/js/main.4f1c.js"></script></body></html>',
    "next": '<html><body><div id="__next"></div><script src="/_next/static/chunks/main.js" defer></script>'
            '<script id="__NEXT_DATA__" type="application/json">{"props":{}}</script></body></html>',
    "nuxt": '<html><body><div id="__nuxt"><div class="spinner">Loading…</div></div>'
            '<script type="module" src="/_nuxt/entry.js"></script></body></html>',
    "angular": "<html><body><app-root></app-root><noscript>Please enable JavaScript to continue using "
               "this application, which needs it for everything.</noscript>"
               '<script src="runtime.js" type="module"></script><script src="main.js" type="module"></script>'
               "</body></html>",
    "vue-inline": '<html><body><div id="app">Loading trust center</div><script>createApp(App).mount("#app")</script>'
                  "</body></html>",
    "bare-bundle": '<html><head><script src="/bundle.js"></script></head><body></body></html>',
}
PAGES = {
    "server-rendered next": '<html><body><div id="__next"><main><h1>Security</h1><p>'
                            + "Acme encrypts customer data at rest with AES-256 and in transit with TLS 1.2 or later. " * 2
                            + '</p></main></div><script src="/_next/main.js"></script></body></html>',
    "short page without scripts": "<html><body><p>No subprocessors.</p></body></html>",
    "short page without a mount point": '<html><body><p>Page moved.</p><script src="/a.js"></script></body></html>',
    "json-ld only": '<html><body><div id="app"></div><script type="application/ld+json">{"a": 1}</script>'
                    "</body></html>",
    "textless page with an inline script": "<html><body><script>app()</script></body></html>",
}


@pytest.mark.parametrize("name", SHELLS)
def test_application_shells_are_recognised(name):
    assert "application shell" in detect_app_shell(SHELLS[name])


@pytest.mark.parametrize("name", PAGES)
def test_pages_with_content_or_without_an_application_are_not_shells(name):
    assert detect_app_shell(PAGES[name]) is None


@settings(max_examples=50)
@given(shell=st.sampled_from(sorted(SHELLS)), words=st.lists(st.sampled_from(["SOC", "2", "audit", "data", "é"]),
                                                              min_size=SHELL_MAX_WORDS + 1, max_size=40))
def test_a_shell_with_more_than_a_few_words_of_content_is_a_page(shell, words):
    """Whatever scripts and mount points a page has, enough text makes it a page (no false needs_browser)."""
    page = SHELLS[shell].replace("</body>", f"<main><p>{' '.join(words)}</p></main></body>")
    assert detect_app_shell(page) is None


SHELL_CONFIG = """
sources:
  trust:
    url: {url}
offerings:
  acme:
    records:
      soc2:
        cites:
          - source: trust
            quote: Acme undergoes an annual SOC 2 Type II audit.
"""


def test_a_shell_is_needs_browser_records_no_change_and_validate_suggests_the_browser(
        site, write_config, check, store, db_path):
    site.page("/trust", html("<h1>Trust</h1><p>Acme undergoes an annual SOC 2 Type II audit.</p>"))
    config_path = write_config(SHELL_CONFIG.format(url=site.url("/trust")))
    config = load_config(config_path)
    check(config)
    site.page("/trust", SHELLS["react"])  # the vendor moved its trust center to a single-page app
    for _ in range(3):
        summary = check(config)
        report = summary.sources[0]
        assert (report.status, report.outcome) == ("failed", "needs_browser")
    assert "set `fetch: browser`" in report.error
    assert store.latest_version("trust").seq == 1
    assert store.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0
    # Like any source that keeps failing, it flags its records after three checks, never as a content change.
    assert [(f["reason"], f["outcome"]) for f in store.open_flags()] == [("source_error", "needs_browser")]

    result = CliRunner().invoke(cli, ["--config", str(config_path), "--db", str(db_path), "validate"])
    assert result.exit_code == 0, result.output
    assert "warning: trust: the last check of" in result.output
    assert "set `fetch: browser`" in result.output

    history = CliRunner().invoke(cli, ["--config", str(config_path), "--db", str(db_path), "history", "trust"])
    assert "needs_browser" in history.output and "application shell" in history.output


# --------------------------------------------------------------------------- the recorded fetcher


def test_without_a_browser_a_browser_source_fails_clearly_and_plain_sources_still_work(
        site, make_config, check, store, tmp_path, monkeypatch):
    broken = tmp_path / "chromium"
    broken.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("WATCHER_CHROMIUM", str(broken))
    site.page("/app", SHELLS["react"])
    site.page("/policy", html("<p>We delete prompts after 30 days.</p>"))
    config = make_config(f"""
sources:
  app:
    url: {site.url('/app')}
    fetch: browser
  policy:
    url: {site.url('/policy')}
""")
    summary = check(config)
    reports = {r.source_id: r for r in summary.sources}
    assert (reports["app"].status, reports["app"].outcome) == ("failed", "browser_unavailable")
    assert reports["app"].error.startswith(("the browser did not start", "the Playwright package is not installed"))
    assert reports["policy"].status == "new"
    assert site.hits("/app") == 0
    assert {r["source_id"]: r["fetcher"] for r in store.rows("SELECT source_id, fetcher FROM fetches")} == {
        "app": "browser", "policy": "http"}


def test_a_database_from_before_fetchers_were_recorded_says_http(db_path):
    db = sqlite_utils.Database(db_path)
    migrations.apply(db, stop_before="m002_fetcher")
    db.execute("INSERT INTO sources (id, url, every_seconds) VALUES ('p', 'https://example.org/', 60)")
    db.execute("""INSERT INTO versions (source_id, seq, text_sha256, text, codec, chars, extractor_version,
                  rules, origin, created_at) VALUES ('p', 1, 'x', X'6f6c642074657874', 'identity', 8, 1, '{}', 'fetch',
                  '2026-01-01T00:00:00Z')""")
    db.close()
    store = Store.open(db_path)
    assert store.latest_version("p").fetcher == "http"
    assert store.latest_version("p").text == "old text"
    store.close()
