"""Trying sources before trusting them: `watcher try` and `watcher validate --fetch`, against a real server."""

from __future__ import annotations

import itertools

import pytest
from click.testing import CliRunner
from werkzeug import Response

from conftest import html
from watcher.cli import cli

POLICY = "<h1>Data policy</h1><p>We delete prompts after 30 days.</p><p>We never train on customer data.</p>"


def rotating(site, path: str, body: str) -> None:
    """A page whose {n} changes with every request, as build ids and rotating teasers do."""
    counter = itertools.count(1)
    site.handler(path, lambda request: Response(body.replace("{n}", str(next(counter))),
                                                content_type="text/html; charset=utf-8"))


@pytest.fixture
def invoke(write_config, db_path):
    """Run watcher with a config written from ``config``, or with no config file at all."""

    def run(*args: str, config: str | None = None, code: int = 0) -> str:
        config_path = write_config(config) if config is not None else db_path.parent / "absent.yaml"
        result = CliRunner().invoke(cli, ["--config", str(config_path), "--db", str(db_path), *args])
        assert result.exit_code == code, result.output
        return result.output

    return run


def test_try_a_stable_url_prints_its_text_and_stores_nothing(site, invoke, db_path):
    site.page("/policy", html(POLICY))
    output = invoke("try", site.url("/policy"), "--pause", "0s")
    assert "Data policy\nWe delete prompts after 30 days.\nWe never train on customer data." in output
    assert "stable: both fetches, 0s apart, gave the same text" in output
    assert site.hits("/policy") == 2
    assert not db_path.exists()


def test_try_an_unstable_page_shows_the_words_and_a_remove_selector_that_fixes_it(site, invoke):
    rotating(site, "/policy", html(f'{POLICY}<div class="promo-strip"><p>Offer {{n}} ends soon</p></div>'))
    output = invoke("try", site.url("/policy"), "--select", "main", "--pause", "0s")
    assert "unstable: the two fetches, 0s apart, differ in 1 block(s):" in output
    assert "Offer [-1-]{+2+} ends soon" in output
    suggestions = output.split("suggested remove selectors")[1]
    assert suggestions.split("\n")[1].strip() == "div.promo-strip"


def test_try_a_configured_source_uses_its_rules_and_reports_a_missing_selector(site, invoke):
    site.page("/policy", html(POLICY))
    config = f"sources:\n  policy:\n    url: {site.url('/policy')}\n    select: '#terms'\n"
    output = invoke("try", "policy", "--pause", "0s", config=config)
    assert "select #terms matches nothing on the page" in output
    assert "We delete prompts" in invoke("try", "policy", "--select", "main", "--pause", "0s", config=config)


def test_try_refuses_what_it_cannot_use(site, invoke):
    assert "neither a source id of the configuration nor an http(s) URL" in invoke("try", "nope", code=2)
    assert "invalid CSS selector" in invoke("try", "https://example.invalid/", "--select", "p[", code=2)
    assert "--pause: bad duration" in invoke("try", site.url("/x"), "--pause", "soon", code=2)
    site.page("/gone", "gone", status=404)
    assert "the fetch failed (not_found" in invoke("try", site.url("/gone"), "--pause", "0s", code=1)


def test_validate_fetch_reports_drift_instability_and_quotes_not_found(site, invoke):
    site.page("/stable", html(POLICY))
    site.page("/redesigned", html(POLICY))
    site.page("/down", "maintenance", status=503)
    rotating(site, "/noisy", html(f"{POLICY}<p>Build {{n}}</p>"))
    config = f"""
sources:
  stable:
    url: {site.url('/stable')}
  redesigned:
    url: {site.url('/redesigned')}
    select: "#policy"
  noisy:
    url: {site.url('/noisy')}
    select: main
  down:
    url: {site.url('/down')}
offerings:
  acme:
    records:
      retention:
        cites:
          - source: stable
            quote: We delete prompts after 30 days.
          - source: stable
            quote: We delete prompts after 60 days.
          - source: stable
            quote: We keep logs forever.
"""
    output = invoke("validate", "--fetch", "--pause", "0s", config=config)
    assert "redesigned" in output and "selector_missing  select #policy matches nothing" in output
    assert "unstable          two fetches differ: -[1] +[2]" in output
    assert "quote_changed" in output and "'We delete prompts after 30 days.'" in output
    assert "quote_missing" in output and "We keep logs forever." in output
    assert "fetch_failed      " in output and "server_error" in output
    assert "fetched 4 source(s) twice, 0s apart: 5 problem(s)" in output
    assert site.hits("/stable") == 2
