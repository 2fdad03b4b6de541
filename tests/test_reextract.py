"""Re-deriving stored texts with new rules: a technical upgrade, never a change an editor must review."""

from __future__ import annotations

import json

from click.testing import CliRunner

from conftest import html
from watcher import check as check_module
from watcher.check import reextract
from watcher.cli import cli
from watcher.report import build_report, render
from watcher.store import utc_now

PAGE = html('<p>We delete prompts after 30 days.</p><aside class="promo">Try our new model</aside>'
            '<div class="banner-x">Webinar on Tuesday</div>')
CONFIG = """
sources:
  retention:
    url: {url}
    select: main{remove}
offerings:
  acme:
    records:
      retention:
        cites: [retention]
"""


def config_for(make_config, site, remove: str = ""):
    return make_config(CONFIG.format(url=site.url("/retention"), remove=remove))


def test_new_rules_rederive_the_stored_text_without_fetching_or_flagging(site, make_config, check, store):
    site.page("/retention", PAGE)
    check(config_for(make_config, site))
    assert "Webinar on Tuesday" in store.latest_version("retention").text
    hits = site.hits("/retention")

    [result] = reextract(config_for(make_config, site, "\n    remove: ['.banner-x']"), store)
    assert (result.status, result.version) == ("changed", 2)
    assert site.hits("/retention") == hits
    latest = store.latest_version("retention")
    assert "Webinar" not in latest.text and "We delete prompts after 30 days." in latest.text
    assert store.open_flags() == []
    assert [row["kind"] for row in store.rows("SELECT kind FROM changes")] == ["technical"]
    assert [v["origin"] for v in store.version_list("retention")] == ["fetch", "reextract"]


def test_the_report_shows_a_reextraction_as_technical(site, make_config, check, store):
    site.page("/retention", PAGE)
    check(config_for(make_config, site))
    config = config_for(make_config, site, "\n    remove: ['.banner-x']")
    reextract(config, store)
    report = build_report(config, store, None, utc_now())
    assert report["records_flagged"] == 0 and report["unattributed_changes"] == []
    assert [c["source"] for c in report["technical_changes"]] == ["retention"]
    assert "Technical changes (extraction rules; no flags)" in render(report, "text")
    assert "## Technical changes (extraction rules; no flags)" in render(report, "markdown")


def test_a_new_extractor_version_rederives_even_the_same_text(site, make_config, check, store, monkeypatch):
    site.page("/retention", PAGE)
    config = config_for(make_config, site)
    check(config)
    assert reextract(config, store)[0].status == "current"
    monkeypatch.setattr(check_module, "EXTRACTOR_VERSION", check_module.EXTRACTOR_VERSION + 1)
    [result] = reextract(config, store)
    assert result.status == "rederived"
    assert store.latest_version("retention").extractor_version == check_module.EXTRACTOR_VERSION
    assert store.rows("SELECT * FROM changes") == []
    check(config)  # the next check compares like with like: nothing changed
    assert store.open_flags() == [] and store.latest_version("retention").seq == 2


def test_a_selector_that_finds_nothing_in_the_stored_page_keeps_the_text(site, make_config, check, store):
    site.page("/retention", PAGE)
    check(config_for(make_config, site))
    config = make_config(CONFIG.format(url=site.url("/retention"), remove="").replace("select: main", "select: '#x'"))
    [result] = reextract(config, store)
    assert result.status == "kept" and store.latest_version("retention").seq == 1


def test_the_reextract_command(site, write_config, db_path):
    site.page("/retention", PAGE)
    config = write_config(CONFIG.format(url=site.url("/retention"), remove=""))
    runner = CliRunner()
    base = ["--config", str(config), "--db", str(db_path)]
    assert "never fetched" in runner.invoke(cli, [*base, "reextract"]).output
    runner.invoke(cli, [*base, "check"])
    config.write_text(CONFIG.format(url=site.url("/retention"), remove="\n    remove: ['.banner-x']"))
    result = runner.invoke(cli, [*base, "reextract", "retention"])
    assert result.exit_code == 0, result.output
    assert "text changed (recorded as a technical change; no flags)" in result.output
    assert "re-derived 1 source(s); 1 text(s) changed" in result.output
    flags = runner.invoke(cli, [*base, "flags", "--json"])
    assert json.loads(flags.output) == []
    unknown = runner.invoke(cli, [*base, "reextract", "nope"])
    assert unknown.exit_code == 2 and "unknown source 'nope'" in unknown.output
