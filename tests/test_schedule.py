"""The scheduler: due times from the database, jitter, restarts, reloads, the single-writer lock, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Response

from conftest import Clock, Site, html
from watcher.check import due_sources, run_check
from watcher.cli import cli
from watcher.config import load_config
from watcher.lock import lock_holder, writer_lock
from watcher.schedule import Scheduler, earliest_due, group_jitter, next_run_time
from watcher.store import Store

HOUR = 3600.0

SOURCES = """
sources:
  hourly-a:
    url: {base}/a
    every: 1h
  hourly-b:
    url: {base}/b
    every: 1h
  daily:
    url: {base}/c
    every: 1d
  weekly:
    url: {base}/d
    every: 1w
"""


def serve_pages(site: Site, *paths: str) -> None:
    for path in paths:
        site.page(path, html(f"<p>The page at {path} says something durable.</p>"))


def run_scheduler(scheduler: Scheduler, runs: int) -> None:
    """Run the real APScheduler loop until ``runs`` runs have finished (never longer than 30 s)."""
    finished = []

    def count(summary) -> None:
        finished.append(summary)
        if len(finished) == runs:
            scheduler.stop("test done")

    scheduler.on_run = count
    asyncio.run(asyncio.wait_for(scheduler.run_forever(), 30))


# --------------------------------------------------------------------------
# Due times and jitter


@given(
    due_offset=st.floats(min_value=-10 * 86400, max_value=10 * 86400),
    jitter=st.floats(min_value=0, max_value=3600),
    seed=st.integers(0, 2**32),
)
def test_a_run_never_starts_before_it_is_due_and_jitter_only_delays_it(due_offset, jitter, seed):
    now = datetime(2026, 5, 1, tzinfo=UTC)
    due = now + timedelta(seconds=due_offset)
    when = next_run_time(due, now, jitter, random.Random(seed))
    assert when >= max(due, now)
    assert when <= max(due, now) + timedelta(seconds=jitter)


def test_jitter_spreads_runs_but_stays_within_a_tenth_of_the_interval():
    assert group_jitter(86400, 300) == 300
    assert group_jitter(600, 300) == 60
    assert group_jitter(86400, 0) == 0
    now = datetime(2026, 5, 1, tzinfo=UTC)
    times = {next_run_time(now, now, group_jitter(86400, 300), random.Random(seed)) for seed in range(50)}
    assert len(times) == 50  # fifty watchers started together do not fire in the same second
    assert max(times) - min(times) > timedelta(seconds=200)


def test_groups_are_due_when_the_database_says(site, make_config, store):
    serve_pages(site, "/a", "/b", "/c", "/d")
    config = make_config(SOURCES.format(base=site.url("").rstrip("/")))
    t0 = datetime.now(UTC).replace(microsecond=0)
    states = store.source_states()
    hourly = [config.sources["hourly-a"], config.sources["hourly-b"]]
    assert earliest_due(hourly, states, t0) == t0  # never checked: due now
    run_check(config, store, ["hourly-a"], clock=Clock(t0))
    run_check(config, store, ["hourly-b"], clock=Clock(t0 + timedelta(minutes=20)))
    assert earliest_due(hourly, store.source_states(), t0) == t0 + timedelta(hours=1)

    async def next_runs() -> dict:
        scheduler = Scheduler(str(config.path), config, store, max_jitter=300, rng=random.Random(7),
                              clock=Clock(t0 + timedelta(minutes=5)))
        scheduler.start()
        try:
            return scheduler.next_runs()
        finally:
            await scheduler.close()

    runs = asyncio.run(next_runs())
    assert set(runs) == {HOUR, 86400.0, 604800.0}
    assert t0 + timedelta(hours=1) <= runs[HOUR] <= t0 + timedelta(hours=1, minutes=6)
    # The daily and weekly sources were never checked: due at once, within their jitter.
    assert t0 + timedelta(minutes=5) <= runs[86400.0] <= t0 + timedelta(minutes=10)


# --------------------------------------------------------------------------
# The real scheduler loop


def test_a_restart_after_a_day_checks_each_overdue_source_once(site, make_config, store):
    serve_pages(site, "/a", "/b", "/c", "/d")
    config = make_config(SOURCES.format(base=site.url("").rstrip("/")))
    yesterday = datetime.now(UTC) - timedelta(hours=25)
    run_check(config, store, list(config.sources), clock=Clock(yesterday))

    # Stopped for a day: 25 hourly runs and one daily run were missed; the weekly source is not due.
    run_scheduler(Scheduler(str(config.path), config, store, max_jitter=0), runs=2)

    assert {path: site.hits(path) for path in ("/a", "/b", "/c", "/d")} == {"/a": 2, "/b": 2, "/c": 2, "/d": 1}
    runs = store.rows("SELECT trigger, status, sources_checked FROM runs WHERE trigger = 'schedule' ORDER BY id")
    assert sorted(r["sources_checked"] for r in runs) == [1, 2]  # one run per group, each source once
    assert {r["status"] for r in runs} == {"finished"}
    assert due_sources(config, store, datetime.now(UTC)) == []


def test_config_reload_keeps_the_previous_config_when_the_new_one_is_invalid(site, write_config, store, caplog):
    serve_pages(site, "/a", "/b")
    path = write_config(f"sources:\n  a:\n    url: {site.url('/a')}\n    every: 1h\n")
    config = load_config(path)

    async def scenario() -> None:
        scheduler = Scheduler(str(path), config, store, max_jitter=0)
        scheduler.start()
        try:
            assert await scheduler.check_config_file() is False  # unchanged: nothing to do
            write_config(f"sources:\n  a:\n    url: {site.url('/a')}\n    every: 1h\n"
                         f"  b:\n    url: {site.url('/b')}\n    every: 2h\n")
            assert await scheduler.check_config_file() is True
            assert set(scheduler.config.sources) == {"a", "b"}
            assert set(scheduler.next_runs()) == {HOUR, 2 * HOUR}

            write_config(f"sources:\n  a:\n    url: {site.url('/a')}\n    every: often\n")
            with caplog.at_level(logging.ERROR, logger="watcher.schedule"):
                assert await scheduler.check_config_file() is False
                assert await scheduler.check_config_file() is False  # the same bad file is reported once
            assert set(scheduler.config.sources) == {"a", "b"}
            assert set(scheduler.next_runs()) == {HOUR, 2 * HOUR}

            write_config(f"sources:\n  b:\n    url: {site.url('/b')}\n    every: 2h\n")
            assert scheduler.reload("SIGHUP") is True
            assert set(scheduler.next_runs()) == {2 * HOUR}
        finally:
            await scheduler.close()

    asyncio.run(scenario())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "keeping the previous one" in errors[0]
    assert "sources.yaml:10: sources.a.every: bad duration 'often'" in errors[0]


# --------------------------------------------------------------------------
# One writer


def test_a_second_scheduler_on_the_same_database_refuses(site, write_config, db_path):
    serve_pages(site, "/a")
    config = write_config(f"sources:\n  a:\n    url: {site.url('/a')}\n")
    args = ["--config", str(config), "--db", str(db_path), "schedule", "--once"]
    with writer_lock(str(db_path), "schedule"):
        holder = lock_holder(str(db_path))
        assert holder["pid"] == os.getpid()
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1
        assert "another `watcher schedule` is already running on this database" in result.output
        assert f"pid {os.getpid()}" in result.output
        assert site.hits("/a") == 0
    assert lock_holder(str(db_path)) is None

    result = CliRunner().invoke(cli, args)  # the lock is free again: --once checks what is due, and exits
    assert result.exit_code == 0, result.output
    assert site.hits("/a") == 1
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert site.hits("/a") == 1  # nothing due the second time


def test_a_manual_check_waits_for_a_busy_database_or_says_why_it_cannot(site, write_config, db_path, monkeypatch):
    serve_pages(site, "/a")
    config = write_config(f"sources:\n  a:\n    url: {site.url('/a')}\n")
    Store.open(db_path).close()
    args = ["--config", str(config), "--db", str(db_path), "check"]

    def hold_write_lock(seconds: float, held: threading.Event) -> None:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        other.execute("ROLLBACK")
        other.close()

    held = threading.Event()
    writer = threading.Thread(target=hold_write_lock, args=(0.5, held))
    writer.start()
    held.wait(5)
    result = CliRunner().invoke(cli, args)  # waits for the other writer, then goes on
    writer.join()
    assert result.exit_code == 0, result.output
    assert "checked 1 source(s)" in result.output

    monkeypatch.setattr("watcher.store.BUSY_TIMEOUT_SECONDS", 1)
    held = threading.Event()
    writer = threading.Thread(target=hold_write_lock, args=(3.0, held))
    writer.start()
    held.wait(5)
    result = CliRunner().invoke(cli, [*args, "--all"])
    writer.join()
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "another watcher process kept the database locked for more than 1s; nothing was written" in result.output
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM fetches").fetchone()[0] == 1


# --------------------------------------------------------------------------
# SIGTERM in a real process


@pytest.fixture
def threaded_site():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield Site(server)
    server.clear()
    server.stop()


def _stderr_reader(process: subprocess.Popen, lines: list[str]) -> threading.Thread:
    def read() -> None:
        for line in process.stderr:
            lines.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_sigterm_mid_run_leaves_a_consistent_database_and_the_next_start_carries_on(
    threaded_site, write_config, db_path, tmp_path
):
    site = threaded_site
    serve_pages(site, "/fast")
    release = threading.Event()
    slow_requested = threading.Event()

    def slow(request) -> Response:
        slow_requested.set()
        release.wait(30)
        return Response(html("<p>Slow but steady.</p>"), content_type="text/html")

    site.handler("/slow", slow)
    valid = f"""
settings:
  host_delay: 0s
  timeout: 60s
  retries: 0
sources:
  fast:
    url: {site.url('/fast')}
  slow:
    url: {site.url('/slow')}
offerings:
  acme:
    records:
      wrong-from-the-start:
        cites: [{{source: fast, quote: A sentence the fast page never had.}}]
"""
    config = write_config(valid)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    command = [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(db_path),
               "schedule", "--jitter", "0s", "--log-format", "json"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    reader = _stderr_reader(process, lines)
    try:
        assert slow_requested.wait(30), "".join(lines)

        def fast_recorded() -> bool:
            if not db_path.exists():
                return False
            with sqlite3.connect(db_path) as db:
                try:
                    return db.execute("SELECT count(*) FROM versions WHERE source_id = 'fast'").fetchone()[0] == 1
                except sqlite3.OperationalError:
                    return False

        _wait_for(fast_recorded)

        config.write_text(valid.replace("fast:", "fast\t:"), encoding="utf-8")  # invalid YAML
        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: any("reload_failed" in line for line in lines))

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, "".join(lines)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
        process.wait(30)
        reader.join(5)
        process.stderr.close()

    events = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert {"started", "reload_failed", "stopping", "stopped"} <= {e.get("event") for e in events}
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT status, sources_checked, flags_raised FROM runs").fetchall() == [
            ("interrupted", 1, 1)]
        assert db.execute("SELECT record_id, reason FROM flags").fetchall() == [
            ("acme/wrong-from-the-start", "quote_missing")]
        assert db.execute("SELECT source_id, outcome FROM fetches").fetchall() == [("fast", "ok")]
        assert db.execute("SELECT count(*) FROM versions WHERE source_id = 'slow'").fetchone()[0] == 0

    config.write_text(valid, encoding="utf-8")
    hits = site.hits("/slow"), site.hits("/fast")
    result = CliRunner().invoke(cli, ["--config", str(config), "--db", str(db_path), "schedule", "--once"])
    assert result.exit_code == 0, result.output
    assert (site.hits("/slow"), site.hits("/fast")) == (hits[0] + 1, hits[1])  # only the unfinished source
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM versions WHERE source_id = 'slow'").fetchone()[0] == 1
