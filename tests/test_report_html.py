"""The HTML change report: one self-contained file, checked as parsed HTML and in a real browser."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from selectolax.lexbor import LexborHTMLParser

from edited_registry import AFTER, check_twice
from watcher.browser import find_chromium, launch_options
from watcher.cli import cli
from watcher.report import build_report
from watcher.report_html import gather_evidence, render_html
from watcher.store import utc_now


@pytest.fixture
def report_file(site, write_config, store, db_path, tmp_path) -> Path:
    config = check_twice(site, write_config, store)
    target = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--config", config.path, "--db", str(db_path),
                                      "report", "--format", "html", "--output", str(target)])
    assert result.exit_code == 0, result.output
    return target


def _texts(tree: LexborHTMLParser, selector: str) -> list[str]:
    return [node.text() for node in tree.css(selector)]


def test_flags_are_grouped_by_offering_then_record_with_reasons_in_plain_words(report_file):
    tree = LexborHTMLParser(report_file.read_text(encoding="utf-8"))
    assert [s.attributes["id"] for s in tree.css("section.offering")] == ["offering-acme", "offering-beta"]
    acme = tree.css_first("#offering-acme")
    assert _texts(acme, "article.record .record-id") == ["acme/retention", "acme/baa", "acme/subprocessors",
                                                         "acme/uptime"]
    assert _texts(tree.css_first("#offering-beta"), "article.record .record-id") == ["beta/retention"]
    retention = tree.css_first("#record-acme-retention")
    assert "Is retention documented?" in retention.css_first("h3").text()
    assert "Claimed: 30 days" in retention.css_first(".claimed").text()
    assert "the wording of the quoted passage changed" in retention.css_first(".flag h4").text()
    assert _texts(retention, ".passage del") == ["30"] and _texts(retention, ".passage ins") == ["14"]
    assert retention.css_first("dd a").attributes["href"].endswith("/retention")
    assert retention.css_first("time").attributes["datetime"].endswith("Z")
    uptime = tree.css_first("#record-acme-uptime")
    assert "the source cannot be fetched" in uptime.text() and "not_found" in uptime.text()
    baa = tree.css_first("#record-acme-baa")
    assert _texts(baa, ".passage ins mark") == ["BAA"]


def test_the_summary_counts_records_by_reason_and_collapses_changes_that_flagged_nothing(report_file):
    tree = LexborHTMLParser(report_file.read_text(encoding="utf-8"))
    summary = tree.css_first("#summary")
    assert "5 records need re-verification" in summary.css_first(".headline").text()
    rows = {row.css_first("td .reason").text(): row.css("td")[2].text() for row in summary.css("table.by-reason tbody tr")}
    assert rows["quote_changed"].startswith("2: ") and "beta/retention" in rows["quote_changed"]
    assert rows["source_error"] == "1: acme/uptime"
    assert "status" in summary.css_first("table.failing").text()
    collapsed = summary.css_first("#unattributed details")
    assert "open" not in collapsed.attributes
    assert "1 change that affected no record" in collapsed.css_first("summary").text()


def test_a_long_page_shows_only_the_changed_blocks_with_a_little_context(report_file):
    tree = LexborHTMLParser(report_file.read_text(encoding="utf-8"))
    change = tree.css_first("#unattributed .unattributed-change")
    shown = change.css_first(".excerpt").text()
    assert "Paragraph 29 of" in shown and "Paragraph 31 of" in shown
    assert "Paragraph 10 of" not in shown and "SOC 2" not in shown
    assert _texts(change, ".block.changed ins") == ["revised ", "Oracle Cloud | model training <b>new</b>"]
    assert [p.text() for p in change.css(".skipped")] == ["… 29 unchanged blocks …", "… 8 unchanged blocks …"]
    # Vendor text is text: the page's "<b>" arrives escaped, never as markup.
    assert change.css_first(".excerpt b") is None


def test_the_file_is_self_contained_and_embeds_the_archived_snapshots(report_file):
    source = report_file.read_text(encoding="utf-8")
    tree = LexborHTMLParser(source)
    assert tree.css("script, link, img, [src]") == []
    assert "default-src 'none'" in tree.css_first('meta[http-equiv="Content-Security-Policy"]').attributes["content"]
    retention = tree.css_first("#record-acme-retention")
    links = {a.text(): a.attributes["href"] for a in retention.css("a.snapshot-link")}
    assert set(links) == {"before", "after"}
    after = tree.css_first(links["after"])
    assert after is not None and after.attributes["class"] == "snapshot"
    href = after.css_first("a.download").attributes["href"]
    assert href.startswith("data:text/html;base64,")
    assert base64.b64decode(href.split(",", 1)[1]).decode("utf-8") == AFTER["/retention"]
    preview = LexborHTMLParser(after.css_first("iframe").attributes["srcdoc"])
    assert "We delete prompts after 14 days." in preview.body.text()
    assert after.css_first("iframe").attributes["sandbox"] == ""


def test_snapshots_too_large_to_embed_are_named_not_embedded(site, write_config, store):
    config = check_twice(site, write_config, store)
    report = build_report(config, store, None, utc_now())
    embedded = LexborHTMLParser(render_html(report, gather_evidence(report, store, embed_budget=300)))
    assert len(embedded.css("#snapshots .snapshot")) == 7  # before and after of 3 pages, and the gone one
    assert len(embedded.css("a.download")) == 1  # the first small page fits the budget, then nothing more
    too_large = LexborHTMLParser(render_html(report, gather_evidence(report, store, largest_snapshot=100)))
    assert too_large.css("a.download") == [] and too_large.css("iframe") == []
    assert "Too large to embed" in too_large.css_first("#snapshots .snapshot").text()


def _browser_or_skip() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test, but no Chromium is installed (.ci/run installs it)")
        pytest.skip("no Chromium on this machine: apt-get install chromium to run the browser test")


def test_the_report_in_headless_chromium(report_file, tmp_path):
    _browser_or_skip()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options(timeout=30))
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
            loaded: list[str] = []
            page.on("requestfinished", lambda request: loaded.append(request.url))
            page.goto(report_file.as_uri())

            groups = page.eval_on_selector_all(
                "section.offering",
                "sections => sections.map(s => [s.id, [...s.querySelectorAll('article.record')].map(r => r.id)])")
            assert groups == [
                ["offering-acme", ["record-acme-retention", "record-acme-baa", "record-acme-subprocessors",
                                   "record-acme-uptime"]],
                ["offering-beta", ["record-beta-retention"]],
            ]
            deleted = page.locator("#record-acme-retention .passage del")
            inserted = page.locator("#record-acme-retention .passage ins")
            assert deleted.inner_text() == "30" and inserted.inner_text() == "14"
            style = "e => { const s = getComputedStyle(e); return [s.textDecorationLine, s.backgroundColor, s.color]; }"
            del_line, del_background, del_color = deleted.evaluate(style)
            ins_line, ins_background, ins_color = inserted.evaluate(style)
            # Told apart without colour (struck through vs underlined), and by colour too.
            assert del_line == "line-through" and ins_line == "underline"
            assert del_background != ins_background and del_color != ins_color

            source = page.locator("#record-acme-retention dd a").first
            assert source.get_attribute("href").endswith("/retention")
            assert page.locator("#unattributed > details").evaluate("d => d.open") is False

            # The "after" link opens the archived snapshot inside the report, and its download is the raw body.
            page.locator("#record-acme-retention a.snapshot-link", has_text="after").click()
            target = page.evaluate("location.hash")
            expect(page.locator(target)).to_be_in_viewport()
            with page.expect_download() as download:
                page.locator(f"{target} a.download").click()
            assert Path(download.value.path()).read_text(encoding="utf-8") == AFTER["/retention"]
            page.locator(f"{target} .preview summary").click()
            preview = page.frame_locator(f"{target} iframe")
            assert "We delete prompts after 14 days." in preview.locator("body").inner_text()

            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    # Nothing but the report itself was loaded: no external assets, and archived pages stay offline.
    assert loaded == [report_file.as_uri()]
