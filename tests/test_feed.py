"""The Atom feed of flags, checked against the required elements of RFC 4287."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from click.testing import CliRunner

from conftest import Clock
from edited_registry import check_twice
from watcher.check import run_check
from watcher.cli import cli
from watcher.evidence import FlagEvent
from watcher.feed import build_feed
from watcher.verify import verify_records

A = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def assert_valid_atom(text: str) -> ET.Element:
    """The RFC 4287 rules a feed of ours must meet (section 4.1.1 for feeds, 4.1.2 for entries)."""
    feed = ET.fromstring(text.encode("utf-8"))
    assert feed.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        assert len(feed.findall(f"{A}{name}")) == 1, f"feed needs exactly one atom:{name}"
    assert RFC3339.match(feed.findtext(f"{A}updated"))
    assert re.match(r"^[a-z][a-z0-9+.-]*:", feed.findtext(f"{A}id")), "ids are IRIs"
    entries = feed.findall(f"{A}entry")
    feed_has_author = feed.find(f"{A}author/{A}name") is not None
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{name}")) == 1, f"entry needs exactly one atom:{name}"
        assert RFC3339.match(entry.findtext(f"{A}updated"))
        assert re.match(r"^[a-z][a-z0-9+.-]*:", entry.findtext(f"{A}id"))
        assert feed_has_author or entry.find(f"{A}author/{A}name") is not None
        alternates = [link for link in entry.findall(f"{A}link") if link.get("rel", "alternate") == "alternate"]
        assert entry.find(f"{A}content") is not None or alternates, "an entry needs content or an alternate link"
        assert len({(link.get("type"), link.get("hreflang")) for link in alternates}) == len(alternates)
    ids = [entry.findtext(f"{A}id") for entry in entries]
    assert len(ids) == len(set(ids)), "entry ids are unique"
    return feed


@pytest.fixture
def registry(site, write_config, store):
    return check_twice(site, write_config, store)


def _entries(feed: ET.Element) -> dict[str, ET.Element]:
    return {entry.findtext(f"{A}title"): entry for entry in feed.findall(f"{A}entry")}


def test_the_feed_has_one_valid_entry_per_flag(registry, store, db_path, tmp_path):
    target = tmp_path / "flags.atom"
    result = CliRunner().invoke(cli, ["--config", registry.path, "--db", str(db_path), "feed", "--output", str(target)])
    assert result.exit_code == 0, result.output
    feed = assert_valid_atom(target.read_text(encoding="utf-8"))
    entries = _entries(feed)
    flags = store.rows("SELECT record_id, reason FROM flags")
    assert len(entries) == len(flags) == 5
    entry = entries["acme/retention: quote_changed on retention"]
    assert entry.find(f"{A}link").get("href").endswith("/retention")
    assert entry.findtext(f"{A}published") == entry.findtext(f"{A}updated")
    assert entry.find(f"{A}category").get("term") == "quote_changed"
    content = entry.find(f"{A}content")
    assert content.get("type") == "html"
    assert "<del>30</del><ins>14</ins>" in content.text
    assert "acme/baa: watch_term \u201cBAA\u201d on baa-page" in entries


def test_entry_ids_are_stable_and_updated_times_move_when_a_flag_is_closed(registry, store):
    first = build_feed(registry, store)
    assert build_feed(registry, store) == first  # the same flags give the same feed, byte for byte
    before = {e.findtext(f"{A}id"): e.findtext(f"{A}updated") for e in assert_valid_atom(first).iter(f"{A}entry")}

    later = Clock()
    later.now += timedelta(minutes=5)
    verify_records(registry, store, ["acme/retention"], "alice", None, later.now)
    after = assert_valid_atom(build_feed(registry, store))
    entries = after.findall(f"{A}entry")
    assert {e.findtext(f"{A}id") for e in entries} == set(before)
    closed = entries[0]  # the most recently updated comes first
    assert closed.findtext(f"{A}title") == "acme/retention: quote_changed on retention (verified)"
    assert closed.findtext(f"{A}updated") > before[closed.findtext(f"{A}id")]
    assert after.findtext(f"{A}updated") == closed.findtext(f"{A}updated")
    assert all(e.findtext(f"{A}updated") == before[e.findtext(f"{A}id")] for e in entries[1:])


def test_feeds_of_two_databases_never_share_ids(registry, store, tmp_path):
    from watcher.store import Store

    other = Store.open(tmp_path / "other.db")
    try:
        run_check(registry, other, list(registry.sources))
        ours = {e.findtext(f"{A}id") for e in assert_valid_atom(build_feed(registry, store)).iter(f"{A}entry")}
        theirs = assert_valid_atom(build_feed(registry, other))
        assert theirs.findtext(f"{A}id") != assert_valid_atom(build_feed(registry, store)).findtext(f"{A}id")
        assert not ours & {e.findtext(f"{A}id") for e in theirs.iter(f"{A}entry")}
    finally:
        other.close()


def test_an_empty_feed_and_text_xml_cannot_carry_stay_valid(make_config, store):
    config = make_config("""
        sources:
          page:
            url: http://127.0.0.1:9/
        offerings:
          acme:
            name: Acme
            records:
              a:
                cites: [page]
        """)
    assert_valid_atom(build_feed(config, store))
    store.sync_config(config)
    store.raise_flag(FlagEvent(record="acme/a", reason="content_changed", source="page",
                               old="before\x0b\x00", new="after \x1b[31m"), Clock()(), None)
    feed = assert_valid_atom(build_feed(config, store))
    assert "after [31m" in feed.find(f"{A}entry/{A}content").text
