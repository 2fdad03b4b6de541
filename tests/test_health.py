"""`watcher status`: run health for people and monitoring, exit status 3 when something needs attention."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from conftest import Clock, html
from watcher.check import run_check
from watcher.cli import cli
from watcher.config import load_config
from watcher.lock import writer_lock

CONFIG = """
sources:
  good:
    url: {good}
    every: 1d
  bad:
    url: {bad}
    every: 1d
offerings:
  acme:
    records:
      retention:
        verified: 2020-01-01
        review_every: 365d
        cites:
          - source: good
            quote: We delete prompts after 30 days.
      uptime:
        cites:
          - bad
"""


@pytest.fixture
def setup(site, write_config, db_path, store):
    site.page("/good", html("<p>We delete prompts after 30 days.</p>"))
    site.page("/bad", "down", status=503)
    path = write_config(CONFIG.format(good=site.url("/good"), bad=site.url("/bad")))
    config = load_config(path)

    def status(*options: str, code: int) -> str:
        result = CliRunner().invoke(cli, ["--config", str(path), "--db", str(db_path), "status", *options])
        assert result.exit_code == code, result.output
        return result.output

    def check_at(moment: datetime) -> None:
        run_check(config, store, list(config.sources), clock=Clock(moment))

    return status, check_at


def test_a_database_without_a_successful_run_needs_attention(setup):
    status, _ = setup
    output = status(code=3)
    assert "NEEDS ATTENTION" in output and "! no run has succeeded yet" in output
    data = json.loads(status("--json", code=3))
    assert data["needs_attention"] is True
    assert sorted(data["due_now"]) == ["bad", "good"]


def test_a_recent_run_is_healthy_and_the_status_shows_what_is_open(setup):
    status, check_at = setup
    now = datetime.now(UTC).replace(microsecond=0)
    check_at(now - timedelta(minutes=10))
    data = json.loads(status("--json", code=0))
    assert data["attention"] == []
    assert data["last_run"]["sources_checked"] == 2
    assert data["next_due"] == (now - timedelta(minutes=10) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["due_now"] == []
    assert [(s["source"], s["outcome"], s["checks_failed"]) for s in data["failing_sources"]] == [
        ("bad", "server_error", 1)]
    assert data["open_flags_by_reason"] == {"review_due": 1}
    assert [r["record"] for r in data["reviews_due"]] == ["acme/retention"]
    assert data["scheduler"] is None

    text = status(code=0)
    assert text.startswith("watcher status, ") and ": ok\n" in text.splitlines()[0] + "\n"
    assert "scheduler:    not running" in text
    assert re.search(r"bad\s+server_error\s+\d{4}-", text)
    assert "review_due" in text and "acme/retention" in text


def test_a_source_failing_for_over_a_day_needs_attention(setup):
    status, check_at = setup
    now = datetime.now(UTC)
    check_at(now - timedelta(hours=30))
    check_at(now - timedelta(hours=2))  # good still works: runs succeed, bad keeps failing
    data = json.loads(status("--json", code=3))
    [line] = data["attention"]
    assert line.startswith("source bad has been failing since") and "server_error" in line
    assert data["failing_sources"][0]["checks_failed"] == 2


def test_no_successful_run_within_twice_the_shortest_interval_needs_attention(setup):
    status, check_at = setup
    check_at(datetime.now(UTC) - timedelta(days=2, hours=1))
    output = status(code=3)
    assert "! no successful run since" in output


def test_status_shows_a_running_scheduler(setup, db_path):
    status, check_at = setup
    check_at(datetime.now(UTC))
    with writer_lock(str(db_path), "schedule"):
        assert "scheduler:    running (pid" in status(code=0)
