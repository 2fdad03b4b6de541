"""Crash safety and concurrency: kill -9 mid-run, two writers at once, old and new schemas.

The kill test runs `watcher check` on a few hundred local sources in a
subprocess and kills it at random moments. WATCHER_KILL_TRIALS sets the number
of trials (default 12) and WATCHER_KILL_SEED the random seed; each trial's
findings are printed (run pytest with -s to see them).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import sqlite_utils
from click.testing import CliRunner

from conftest import html
from hostile import HostileServer, Request
from watcher.cli import cli
from watcher.codec import decompress
from watcher.errors import StoreError
from watcher.store import Store, migrations

SOURCES = 200
TRIALS = int(os.environ.get("WATCHER_KILL_TRIALS", "8"))
SEED = int(os.environ.get("WATCHER_KILL_SEED", str(random.randrange(1 << 30))))


class Farm:
    """Pages /s0 … /sN whose text changes for a third of them at every edition."""

    def __init__(self, server: HostileServer, count: int):
        self.edition = 0
        for i in range(count):
            server.route(f"/s{i}", self._page(i))

    def _page(self, i: int):
        async def behaviour(request: Request, writer) -> None:
            edition = self.edition if i % 3 == 0 else 0
            body = html(f"<h1>Policy {i}</h1><p>Retention is {30 + edition} days.</p>"
                        + f"<p>Subprocessors: {', '.join(f'Vendor {n}' for n in range(edition % 4 + 2))}.</p>"
                        + "<p>Data is encrypted at rest and in transit.</p>" * 5).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html; charset=utf-8\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()

        return behaviour


def farm_config(server: HostileServer, count: int) -> str:
    sources = "".join(f"  s{i}:\n    url: {server.url(f'/s{i}')}\n" for i in range(count))
    records = "".join(
        f"      r{i}:\n        cites:\n          - source: s{i}\n            quote: Retention is 30 days.\n"
        f"          - s{i}\n" for i in range(0, count, 2))
    return (f"settings:\n  host_delay: 0s\n  per_host: 16\n  concurrency: 16\n  timeout: 10s\n  retries: 0\n"
            f"sources:\n{sources}offerings:\n  acme:\n    records:\n{records}")


@contextmanager
def serving_farm(tmp_path: Path, count: int) -> Iterator[tuple[Farm, Path, Path]]:
    with HostileServer() as server:
        config = tmp_path / "sources.yaml"
        config.write_text(farm_config(server, count))
        yield Farm(server, count), config, tmp_path / "watcher.db"


def watcher(config: Path, db: Path, *args: str, output: int = subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(config), "--db", str(db), *args],
                            stdout=output, stderr=output)


def stored_bytes(conn: sqlite3.Connection, table: str, key: str, blob: str, base: str, extra: str):
    """(row id, the bytes stored, ``extra``) for every row, decompressed by hand: a delta with its key's bytes."""
    rows = {row[0]: row for row in conn.execute(f"SELECT {key}, {blob}, codec, {base}, {extra} FROM {table}")}
    for row_id, data, name, base_id, value in rows.values():
        key_bytes = None
        if base_id is not None:
            _, key_blob, key_codec, _, _ = rows[base_id]
            key_bytes = decompress(key_blob, key_codec)
        yield row_id, decompress(data, name, key_bytes), value


def problems(db: Path) -> list[str]:
    """Everything wrong with a database: corruption, bytes that do not match their hash, dangling rows."""
    found = []
    conn = sqlite3.connect(db)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        if integrity != [("ok",)]:
            return [f"integrity_check: {integrity}"]
        found += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "versions" not in tables:
            return found  # killed before the schema existed: nothing to check yet
        for digest, data, size in stored_bytes(conn, "snapshots", "sha256", "body", "base_sha256", "size"):
            if hashlib.sha256(data).hexdigest() != digest or len(data) != size:
                found.append(f"snapshot {digest[:12]} does not match its hash")
        for version_id, data, digest in stored_bytes(conn, "versions", "id", "text", "base_version_id", "text_sha256"):
            if hashlib.sha256(data).hexdigest() != digest:
                found.append(f"version {version_id} does not match its hash")
        found += [f"change {row[0]} points at a missing version" for row in conn.execute(
            """SELECT c.id FROM changes c LEFT JOIN versions t ON t.id = c.to_version_id
               LEFT JOIN versions f ON f.id = c.from_version_id
               WHERE t.id IS NULL OR (c.from_version_id IS NOT NULL AND f.id IS NULL)""")]
        found += [f"source {row[0]} has gaps in its version numbers" for row in conn.execute(
            "SELECT source_id FROM versions GROUP BY source_id HAVING max(seq) != count(*)")]
        found += [f"source {row[0]} stored the same text twice in a row" for row in conn.execute(
            """SELECT a.source_id FROM versions a JOIN versions b ON b.source_id = a.source_id AND b.seq = a.seq + 1
               WHERE a.text_sha256 = b.text_sha256""")]
        found += [f"change {row[0]} does not join consecutive versions" for row in conn.execute(
            """SELECT c.id FROM changes c JOIN versions t ON t.id = c.to_version_id
               JOIN versions f ON f.id = c.from_version_id WHERE t.seq != f.seq + 1""")]
        found += [f"fetch {row[0]} points at a missing version or snapshot" for row in conn.execute(
            """SELECT f.id FROM fetches f LEFT JOIN versions v ON v.id = f.version_id
               LEFT JOIN snapshots s ON s.sha256 = f.snapshot_sha256
               WHERE (f.version_id IS NOT NULL AND v.id IS NULL)
                  OR (f.snapshot_sha256 IS NOT NULL AND s.sha256 IS NULL)""")]
    finally:
        conn.close()
    return found


def counts(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        tables = ("fetches", "snapshots", "versions", "changes", "flags")
        return ", ".join(f"{conn.execute(f'SELECT count(*) FROM {t}').fetchone()[0]} {t}" for t in tables)
    except sqlite3.OperationalError:
        return "no schema yet"
    finally:
        conn.close()


def test_kill_9_at_random_points_leaves_a_consistent_database(tmp_path):
    with serving_farm(tmp_path, SOURCES) as farm:
        kill_trials(*farm)


def kill_trials(pages: Farm, config: Path, db: Path) -> None:
    started = time.monotonic()
    first = watcher(config, db, "check", "--all")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    full_run = time.monotonic() - started
    chooser = random.Random(SEED)
    print(f"\nkill -9 trials: {TRIALS}, seed {SEED}, {SOURCES} sources, a full run takes {full_run:.1f}s")
    for trial in range(TRIALS):
        pages.edition = trial + 1
        delay = chooser.uniform(0.05, full_run)
        process = watcher(config, db, "check", "--all", output=subprocess.DEVNULL)
        time.sleep(delay)
        finished_first = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        found = problems(db)
        print(f"  trial {trial + 1}: killed after {delay:.2f}s{' (it had finished)' if finished_first else ''}; "
              f"{counts(db)}; problems: {found or 'none'}")
        assert found == [], f"trial {trial + 1} (seed {SEED})"
    pages.edition = TRIALS + 1
    last = watcher(config, db, "check", "--all")
    out, err = last.communicate(timeout=120)
    assert last.returncode == 0, err
    assert f"checked {SOURCES} source(s)" in out.decode()
    assert problems(db) == []
    conn = sqlite3.connect(db)
    statuses = dict(conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    conn.close()
    assert "running" not in statuses  # killed runs are marked interrupted by the next one
    print(f"  final run: {counts(db)}; runs by status: {statuses}")


def test_two_concurrent_runs_never_duplicate_or_interleave_versions(tmp_path):
    count = 90
    with serving_farm(tmp_path, count) as (pages, config, db):
        for edition in (0, 1):
            pages.edition = edition
            runs = [watcher(config, db, "check", "--all") for _ in range(2)]
            for run in runs:
                _, err = run.communicate(timeout=120)
                assert run.returncode == 0, err
            assert problems(db) == []
    conn = sqlite3.connect(db)
    per_source = dict(conn.execute("SELECT source_id, count(*) FROM versions GROUP BY source_id").fetchall())
    conn.close()
    assert per_source == {f"s{i}": 2 if i % 3 == 0 else 1 for i in range(count)}


# --------------------------------------------------------------------------- schema versions


def test_a_database_of_the_previous_schema_is_migrated_in_place(tmp_path, site, make_config):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m002_fetch_safety_and_reverts")
    old.execute("INSERT INTO sources (id, url, every_seconds, consecutive_failures) VALUES ('p', 'http://127.0.0.1/', 86400, 1)")
    old.execute("INSERT INTO runs (started_at, trigger, status) VALUES ('2026-01-01T00:00:00Z', 'check', 'finished')")
    old.execute("""INSERT INTO fetches (run_id, source_id, url, started_at, duration_ms, attempts, outcome)
                   VALUES (1, 'p', 'http://127.0.0.1/', '2026-01-01T00:00:00Z', 5, 1, 'server_error')""")
    old.conn.commit()
    old.close()

    store = Store.open(path)
    assert [m.name for m in migrations.pending(store.db)] == []
    fetch = store.rows("SELECT * FROM fetches")[0]
    assert (fetch["outcome"], fetch["tls_verified"], fetch["robots_ignored"]) == ("server_error", 1, 0)
    site.page("/p", html("<p>Retention is 30 days.</p>"))
    from watcher.check import run_check

    summary = run_check(make_config(f"sources:\n  p:\n    url: {site.url('/p')}\n"), store, ["p"])
    assert summary.sources[0].status == "new" and summary.sources[0].recovered
    store.close()


def test_a_database_of_a_newer_watcher_is_refused_clearly(tmp_path, write_config):
    path = tmp_path / "new.db"
    Store.open(path).close()
    newer = sqlite_utils.Database(path)
    newer["_sqlite_migrations"].insert({"migration_set": "watcher", "name": "m999_from_the_future",
                                        "applied_at": "2030-01-01"})
    newer.close()
    with pytest.raises(StoreError, match="written by a newer watcher.*m999_from_the_future"):
        Store.open(path)
    config = write_config("sources:\n  p:\n    url: http://127.0.0.1:9/\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(path), "flags"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "upgrade watcher" in result.output


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot use this database"):
        Store.open(path)
    assert path.read_text().startswith("these are my notes")


def test_a_migration_script_stays_inside_its_transaction(tmp_path):
    """sqlite3's executescript commits first; a crash mid-migration must leave the old schema whole."""
    from watcher.store import _AtomicScripts

    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    db = _AtomicScripts(conn)
    conn.execute("BEGIN IMMEDIATE")
    db.executescript("""CREATE TABLE a (x); CREATE TABLE b (y);
        CREATE TRIGGER b_no_delete BEFORE DELETE ON b BEGIN SELECT RAISE(ABORT, 'no'); END;""")
    assert conn.in_transaction
    conn.execute("ROLLBACK")  # as a crash would
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    conn.close()
