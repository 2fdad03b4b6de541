"""The verify workflow: closing flags, the append-only review log and re-anchoring."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import Clock, html
from watcher.errors import UsageError
from watcher.verify import anchor_warnings, verify_records

PAGE = html("<p>We delete logs after 30 days.</p><p>ZDR is available on request.</p>")
CONFIG = """
sources:
  p:
    url: {url}
offerings:
  o:
    records:
      retention:
        cites:
          - source: p
            quote: We delete logs after 30 days.
      zdr:
        cites:
          - source: p
            quote: ZDR is available on request.
"""


@pytest.fixture
def config(site, make_config):
    site.page("/p", PAGE)
    return make_config(CONFIG.format(url=site.url("/p")))


def reasons(store, record=None):
    return [(f["record_id"], f["reason"]) for f in store.open_flags() if record in (None, f["record_id"])]


def test_verify_closes_flags_and_reanchors_so_the_same_state_flags_nothing(config, site, check, store):
    check(config)
    site.page("/p", PAGE.replace("30 days", "60 days"))
    check(config)
    assert reasons(store) == [("o/retention", "quote_changed")]

    [review] = verify_records(config, store, ["o/retention"], "alice", "60 days confirmed", Clock()())
    assert review.flags_closed == 1
    assert review.anchors[0].wording == "We delete logs after 60 days."
    assert reasons(store) == []

    # Another edit elsewhere on the page: the re-anchored passage is intact.
    site.page("/p", PAGE.replace("30 days", "60 days").replace("on request", "by request"))
    check(config)
    assert reasons(store) == [("o/zdr", "quote_changed")]

    # A later change of the re-anchored passage is flagged again, against the new baseline.
    site.page("/p", PAGE.replace("30 days", "90 days").replace("on request", "by request"))
    check(config)
    flag = next(f for f in store.open_flags() if f["record_id"] == "o/retention")
    assert (flag["reason"], flag["old"], flag["new"]) == (
        "quote_changed", "We delete logs after 60 days.", "We delete logs after 90 days.")


def test_a_passage_verified_as_absent_stays_quiet_until_it_returns(config, site, check, store):
    check(config)
    site.page("/p", html("<p>ZDR is available on request.</p>"))
    check(config)
    assert reasons(store) == [("o/retention", "quote_missing")]
    [review] = verify_records(config, store, ["o/retention"], "bob", None, Clock()())
    assert review.anchors[0].wording is None
    site.page("/p", html("<p>ZDR is available on request.</p><p>New section.</p>"))
    check(config)
    assert reasons(store) == []
    site.page("/p", PAGE)
    check(config)
    assert reasons(store) == [("o/retention", "quote_changed")]


def test_the_review_log_is_append_only(config, check, store):
    check(config)
    verify_records(config, store, ["o/retention"], "alice", "first", Clock()())
    verify_records(config, store, ["o/retention"], "bob", None, Clock()())
    log = store.rows("SELECT reviewed_by, note, flags_closed FROM reviews ORDER BY id")
    assert log == [
        {"reviewed_by": "alice", "note": "first", "flags_closed": 0},
        {"reviewed_by": "bob", "note": None, "flags_closed": 0},
    ]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE reviews SET reviewed_by = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM reviews")


def test_an_unknown_record_is_a_usage_error_and_logs_nothing(config, store):
    with pytest.raises(UsageError, match="unknown record id 'o/nope'"):
        verify_records(config, store, ["o/retention", "o/nope"], "alice", None, Clock()())
    assert store.rows("SELECT * FROM reviews") == []


def test_validate_warns_when_a_config_quote_differs_from_its_verified_wording(config, site, check, store):
    check(config)
    site.page("/p", PAGE.replace("30 days", "60 days"))
    check(config)
    verify_records(config, store, ["o/retention"], "alice", None, Clock()())
    [warning] = anchor_warnings(config, store)
    assert "o/retention" in warning and "We delete logs after 60 days." in warning
