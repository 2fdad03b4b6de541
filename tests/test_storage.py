"""Snapshots and texts stored as zstd deltas against a key: every byte comes back, and the database stays small."""

from __future__ import annotations

import sqlite3
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import html
from watcher import codec
from watcher.errors import StoreError
from watcher.store import Store, migrations, sha256

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@given(st.binary(max_size=4000), st.one_of(st.none(), st.binary(max_size=4000)))
@settings(max_examples=150, deadline=None)
def test_every_codec_gives_back_the_bytes_it_stored(data, key):
    blob, name = codec.compress(data, key)
    assert name == (codec.ZSTD if key is None else codec.ZSTD_DELTA)
    assert codec.decompress(blob, name, key) == data


def test_a_delta_against_the_page_before_is_a_fraction_of_the_page():
    before = html("".join(f"<p>Clause {n}: the processor keeps logs for {n} days.</p>" for n in range(400)))
    after = before.replace("keeps logs for 17 days", "keeps logs for 30 days").encode()
    whole, _ = codec.compress(after)
    delta, name = codec.compress(after, before.encode())
    assert len(delta) * 20 < len(whole)
    assert codec.decompress(delta, name, before.encode()) == after


def test_rows_written_before_zstd_stay_readable_and_a_delta_needs_its_key():
    assert codec.decompress(zlib.compress(b"old text"), codec.ZLIB) == b"old text"
    assert codec.decompress(b"plain", codec.IDENTITY) == b"plain"
    with pytest.raises(StoreError, match="key"):
        codec.decompress(codec.compress(b"abc", b"abd")[0], codec.ZSTD_DELTA)
    with pytest.raises(StoreError, match="newer watcher"):
        codec.decompress(b"", "lz77")


@given(st.lists(st.text(max_size=300), min_size=1, max_size=8))
@settings(max_examples=30, deadline=None)
def test_a_history_of_texts_reads_back_whole_whatever_was_stored_as_a_delta(tmp_path_factory, texts):
    store = Store.open(tmp_path_factory.mktemp("history") / "watcher.db")
    try:
        with store.transaction():
            store.sync_sources({})
            store.db.execute("INSERT INTO sources (id, url, every_seconds) VALUES ('s', 'https://example.org/', 60)")
            for text in texts:
                store.add_version("s", text, None, 1, "{}", "fetch", NOW)
        assert [store.version("s", seq).text for seq in range(1, len(texts) + 1)] == texts
        keys = store.rows("SELECT base_version_id FROM versions WHERE base_version_id IS NOT NULL")
        key_rows = store.rows("SELECT base_version_id FROM versions WHERE id IN (SELECT base_version_id FROM versions)")
        assert all(row["base_version_id"] is None for row in key_rows), "a key is always stored whole"
        assert len(keys) <= len(texts) - 1
    finally:
        store.close()


def test_each_changed_snapshot_costs_a_delta_and_reads_back_exactly(store):
    pages = [html("".join(f"<p>Section {n}: data stays in region {n % 7}.</p>" for n in range(300)))]
    for edit in range(1, 6):
        pages.append(pages[-1].replace(f"Section {edit * 11}:", f"Section {edit * 11} (amended):"))
    previous = None
    with store.transaction():
        for page in pages:
            previous = store.save_snapshot(page.encode(), "text/html", NOW, previous=previous)
    rows = store.rows("SELECT codec, stored_size, size FROM snapshots ORDER BY rowid")
    assert [r["codec"] for r in rows] == [codec.ZSTD] + [codec.ZSTD_DELTA] * 5
    assert all(r["stored_size"] * 5 < rows[0]["stored_size"] for r in rows[1:])
    for page in pages:
        assert store.snapshot(sha256(page.encode()))[0] == page.encode()


def test_a_page_that_drifted_far_from_its_key_is_stored_whole_again(store):
    first = html("".join(f"<p>Old clause {n}.</p>" for n in range(300))).encode()
    rewritten = html("".join(f"<li>New rule {n * 7919 % 1000} applies.</li>" for n in range(300))).encode()
    with store.transaction():
        key = store.save_snapshot(first, "text/html", NOW)
        store.save_snapshot(rewritten, "text/html", NOW, previous=key)
    assert store.row("SELECT codec, base_sha256 FROM snapshots WHERE sha256 = ?", [sha256(rewritten)]) == {
        "codec": codec.ZSTD, "base_sha256": None}


def test_a_database_written_with_zlib_is_migrated_and_read_as_before(db_path):
    import sqlite_utils

    db = sqlite_utils.Database(db_path)
    migrations.apply(db, stop_before="m006_delta_storage")
    db.execute("INSERT INTO sources (id, url, every_seconds) VALUES ('p', 'https://example.org/', 60)")
    db.execute("INSERT INTO snapshots (sha256, body, codec, size, stored_size, first_seen_at) VALUES (?, ?, 'zlib', ?, ?, ?)",
               [sha256(b"<p>old</p>"), zlib.compress(b"<p>old</p>"), 10, 18, "2026-01-01T00:00:00Z"])
    db.close()
    store = Store.open(db_path)
    try:
        assert store.snapshot(sha256(b"<p>old</p>"))[0] == b"<p>old</p>"
        with store.transaction():
            digest = store.save_snapshot(b"<p>old and new</p>", None, NOW, previous=sha256(b"<p>old</p>"))
        assert store.snapshot(digest)[0] == b"<p>old and new</p>"
    finally:
        store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT codec FROM snapshots WHERE sha256 = ?", [digest]).fetchone()[0] in (
            codec.ZSTD, codec.ZSTD_DELTA)
