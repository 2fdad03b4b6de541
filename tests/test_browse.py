"""The database as editors browse it: mirrored records, views, and Datasette serving them."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edited_registry import CONFIG, check_twice
from watcher.browse import datasette_metadata
from watcher.config import load_config
from watcher.store import utc_now
from watcher.verify import verify_records


@pytest.fixture
def registry(site, write_config, store):
    return check_twice(site, write_config, store)


def _view(db_path: Path, name: str) -> list[dict]:
    """A view read with plain sqlite3: the views must work in any SQLite tool, without watcher's functions."""
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {name}")]


def test_record_status_answers_from_the_database_alone(registry, store, db_path):
    verify_records(registry, store, ["acme/retention"], "alice", "14 days confirmed", utc_now())
    status = {row["record_id"]: row for row in _view(db_path, "record_status")}
    assert set(status) == set(registry.records)
    assert status["acme/soc2"]["state"] == "ok" and status["acme/soc2"]["open_flags"] == 0
    assert status["beta/retention"]["state"] == "needs re-verification"
    assert status["beta/retention"]["open_reasons"] == "quote_changed"
    assert status["beta/retention"]["offering_name"] == "Beta Chat"
    assert status["acme/retention"]["state"] == "ok"
    assert status["acme/retention"]["last_reviewed_by"] == "alice"
    assert status["acme/uptime"]["open_reasons"] == "source_error"


def test_a_record_removed_from_the_config_keeps_its_row_and_history(registry, store, db_path, write_config, site):
    trimmed = CONFIG.format(base=site.url("").rstrip("/")).split("  beta:")[0]
    store.sync_config(load_config(write_config(trimmed)))
    status = {row["record_id"]: row for row in _view(db_path, "record_status")}
    assert status["beta/retention"]["in_config"] == 0
    assert status["beta/retention"]["state"] == "no longer in the configuration"
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM cites WHERE record_id = 'beta/retention'").fetchone()[0] == 0
        assert conn.execute("SELECT in_config FROM offerings WHERE id = 'beta'").fetchone()[0] == 0


def test_open_flags_source_health_and_recent_changes(registry, db_path):
    flags = _view(db_path, "open_flags")
    assert {(f["record_id"], f["reason"]) for f in flags} == {
        ("acme/retention", "quote_changed"), ("beta/retention", "quote_changed"), ("acme/baa", "watch_term"),
        ("acme/subprocessors", "content_changed"), ("acme/uptime", "source_error"),
    }
    retention = next(f for f in flags if f["record_id"] == "acme/retention")
    assert (retention["before"], retention["after"]) == ("We delete prompts after 30 days.",
                                                         "We delete prompts after 14 days.")
    assert retention["reason_meaning"] == "the wording of the quoted passage changed"
    health = {row["source_id"]: row for row in _view(db_path, "source_health")}
    assert health["status"]["health"] == "failing" and health["status"]["last_outcome"] == "not_found"
    assert health["retention"]["health"] == "ok" and health["retention"]["versions"] == 2
    assert health["retention"]["cited_by_records"] == 2
    assert next(iter(health)) == "status"  # unhealthy sources first
    changes = {row["source_id"]: row for row in _view(db_path, "recent_changes")}
    assert changes["retention"]["flagged_records"] == "acme/retention, beta/retention"
    assert changes["trust"]["records_flagged"] == 0 and changes["trust"]["blocks_changed"] == 2
    assert (changes["trust"]["from_version"], changes["trust"]["to_version"]) == (1, 2)


def test_the_metadata_is_filed_under_the_database_name(tmp_path):
    metadata = datasette_metadata(tmp_path / "registry.db")
    tables = metadata["databases"]["registry"]["tables"]
    assert {"open_flags", "record_status", "source_health", "recent_changes"} <= set(tables)
    assert all(tables[name].get("description") for name in tables)


def _free_port_from(process: subprocess.Popen, deadline: float) -> int:
    assert process.stderr is not None
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError("Datasette did not start: " + "".join(seen))


def test_watcher_browse_serves_the_views_over_datasettes_json_api(registry, db_path):
    pytest.importorskip("datasette")
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher", "--config", registry.path, "--db", str(db_path), "browse", "--port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        port = _free_port_from(process, time.monotonic() + 60)
        base = f"http://127.0.0.1:{port}/{db_path.stem}"
        with httpx.Client(timeout=30) as client:
            rows = client.get(f"{base}/record_status.json", params={"_shape": "array"}).json()
            assert {row["record_id"]: row["state"] for row in rows}["beta/retention"] == "needs re-verification"
            flags = client.get(f"{base}/open_flags.json", params={"_shape": "array", "reason": "source_error"}).json()
            assert [(f["record_id"], f["source_id"]) for f in flags] == [("acme/uptime", "status")]
            metadata = client.get(f"http://127.0.0.1:{port}/-/metadata.json").json()
            assert metadata["databases"][db_path.stem]["tables"]["record_status"]["title"] == "Record status"
            # The plugin's SQL function reads the compressed texts.
            texts = client.get(f"{base}/version_text.json", params={"_shape": "array", "source_id": "retention"}).json()
            assert [t["text"] for t in texts][0].startswith("We delete prompts after 14 days.")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            process.stderr.close()
    assert process.returncode == 0


def test_browse_without_a_database_says_so(tmp_path, write_config):
    config = write_config("sources:\n  a:\n    url: http://127.0.0.1:9/\n")
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(config), "--db", str(tmp_path / "none.db"), "browse"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "no database here yet" in result.stderr and "Traceback" not in result.stderr
