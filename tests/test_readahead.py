"""Large runs read pages ahead in a worker process: the same texts, and no worker outlives its run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import html
from watcher.config import Source
from watcher.documents import read_document
from watcher.readahead import READ_AHEAD_FROM, ReadAhead
from watcher.store import Store


def _config(site, count: int) -> str:
    sources = "\n".join(f"  p{n}:\n    url: {site.url(f'/p{n}')}" for n in range(count))
    return f"""
settings:
  host_delay: 0s
  concurrency: 4
  per_host: 4
  timeout: 10s
sources:
{sources}
"""


def _page(n: int) -> str:
    return html(f"<h1>Policy {n}</h1><p>We keep logs for {n} days.</p><table><tr><td>Region</td><td>EU</td></tr></table>")


def test_a_large_run_stores_the_texts_a_page_read_on_the_spot_gives(site, make_config, store, check):
    count = READ_AHEAD_FROM
    for n in range(count):
        site.page(f"/p{n}", _page(n))
    config = make_config(_config(site, count))
    with ReadAhead(count, cpus=2) as read_ahead:
        assert read_ahead._pool is not None, "a run this large reads ahead on a machine with two CPUs"
    summary = check(config)
    assert summary.count("new") == count
    for n in range(count):
        expected = read_document(_page(n).encode(), "text/html; charset=utf-8", Source(f"p{n}", site.url(f"/p{n}")),
                                 "http")
        assert store.latest_version(f"p{n}").text == expected.text


def test_small_runs_and_single_cpus_read_pages_themselves():
    with ReadAhead(READ_AHEAD_FROM - 1, cpus=8) as small, ReadAhead(10_000, cpus=1) as single:
        assert small._pool is None and single._pool is None


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _recorded(db: Path) -> int:
    """Versions committed so far: pages the worker has read."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM versions").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_the_worker_leaves_when_its_run_is_killed(site, write_config, tmp_path):
    count = READ_AHEAD_FROM + 20

    def slow(request):
        time.sleep(0.05)
        from werkzeug import Response
        return Response(_page(1), content_type="text/html")

    for n in range(count):
        site.handler(f"/p{n}", slow)
    config = write_config(_config(site, count))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    process = subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(config), "--db",
                                str(tmp_path / "watcher.db"), "check", "--all"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not (_children(process.pid) and _recorded(tmp_path / "watcher.db") >= 10):
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.05)
        workers = _children(process.pid)
        assert workers, "the run started a worker"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "the worker outlived its killed run"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for worker in workers:
            if _alive(worker):  # a failed test leaves no stray process behind
                os.kill(worker, signal.SIGKILL)
    assert Store.open(tmp_path / "watcher.db").db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
