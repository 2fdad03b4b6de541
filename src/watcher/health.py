"""``watcher status``: run health at a glance, for people and for monitoring.

:func:`build_status` gathers it as plain data (``--json`` prints that data);
:func:`render_status` is the one human rendering. Something *needs attention*
(exit status 3) when a source has been failing for over a day, when no run has
succeeded within twice the shortest ``every`` (the scheduler or cron stopped,
or the network is gone), or when the last digest could not be delivered on a
channel (editors are not being told).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .check import due_at
from .config import Config
from .evidence import reason_tone, review_due
from .lock import lock_holder
from .store import SourceState, Store, parse_timestamp, timestamp
from .terminal import PLAIN, TONE_STYLES, Cell, Display, render_table, styled

#: A source failing for longer than this needs someone to look at it.
FAILING_TOO_LONG = timedelta(days=1)


def build_status(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """Last and next runs, failing sources, open flags, due reviews, deliveries, and what needs attention."""
    attention: list[str] = []
    last_run = store.last_run()
    # A run succeeded when it finished and fetched at least one source: one where every fetch failed
    # says the network or the host is down, not that watching works.
    last_success = store.row(
        "SELECT * FROM runs WHERE status = 'finished' AND sources_checked > failed ORDER BY id DESC LIMIT 1"
    )
    if config.sources:
        shortest = min(source.every for source in config.sources.values())
        if last_success is None:
            attention.append("no run has succeeded yet")
        elif parse_timestamp(last_success["finished_at"]) < now - timedelta(seconds=2 * shortest):
            attention.append(f"no successful run since {last_success['finished_at']} "
                             f"(more than twice the shortest interval, {shortest * 2:g}s)")

    states = store.source_states()
    due_times = {source.id: due_at(source, states.get(source.id, SourceState(source.id))) or now
                 for source in config.sources.values()}
    next_due = min(due_times.values(), default=None)

    failing = _failing_sources(config, store)
    for source in failing:
        if parse_timestamp(source["since"]) < now - FAILING_TOO_LONG:
            attention.append(f"source {source['source']} has been failing since {source['since']} ({source['outcome']})")

    deliveries = store.last_deliveries("digest")
    for delivery in deliveries:
        if delivery["status"] != "sent":
            attention.append(f"the last digest by {delivery['channel']} could not be delivered: {delivery['error']}")

    last_reviews = store.last_reviews()
    reviews_due = []
    for record in config.records.values():
        event = review_due(record, last_reviews.get(record.id), now)
        if event is not None:
            reviews_due.append({"record": record.id, "due": event.detail["due"]})

    flags_by_reason = {row["reason"]: row["n"] for row in store.rows(
        "SELECT reason, count(*) AS n FROM flags WHERE status = 'open' GROUP BY reason ORDER BY reason")}
    return {
        "generated_at": timestamp(now),
        "needs_attention": bool(attention),
        "attention": attention,
        "scheduler": lock_holder(store.path),
        "last_run": last_run,
        "last_successful_run": last_success,
        "next_due": timestamp(next_due) if next_due else None,
        "due_now": sorted(source_id for source_id, when in due_times.items() if when <= now),
        "failing_sources": failing,
        "open_flags": sum(flags_by_reason.values()),
        "open_flags_by_reason": flags_by_reason,
        "reviews_due": reviews_due,
        "deliveries": [{"channel": d["channel"], "target": d["target"], "status": d["status"],
                        "at": d["sent_at"], "attempts": d["attempts"], "error": d["error"]} for d in deliveries],
    }


def _failing_sources(config: Config, store: Store) -> list[dict[str, Any]]:
    """Sources whose last fetch failed, and sources whose watched part is gone, with since when."""
    failing = []
    for row in store.rows("SELECT * FROM sources ORDER BY id"):
        if row["id"] not in config.sources:
            continue
        if row["consecutive_failures"]:
            failing.append({"source": row["id"], "url": row["url"], "outcome": row["last_outcome"],
                            "since": row["failing_since"], "checks_failed": row["consecutive_failures"],
                            "error": row["last_error"]})
        elif row["selector_missing_since"]:
            failing.append({"source": row["id"], "url": row["url"], "outcome": "selector_missing",
                            "since": row["selector_missing_since"], "checks_failed": None,
                            "error": "the selector matches nothing on the page"})
    return failing


def _run_line(run: dict[str, Any]) -> str:
    return (f"#{run['id']} {run['status']} {run['finished_at']} ({run['trigger']}): {run['sources_checked']} checked, "
            f"{run['unchanged']} unchanged, {run['changed']} changed, {run['failed']} failed, "
            f"{run['flags_raised']} flag(s) raised")


def render_status(status: dict[str, Any], display: Display = PLAIN) -> str:
    """The status for people: a verdict, then one short section (an aligned table) per question.

    Colour only where ``display`` allows it: problems red, everything fine green.
    """
    verdict = "NEEDS ATTENTION" if status["needs_attention"] else "ok"
    out = [f"watcher status, {status['generated_at']}: " + styled(verdict, "bold red" if status["needs_attention"]
                                                                   else "green", display)]
    out += ["  " + styled(f"! {line}", "red", display) for line in status["attention"]]
    out.append("")
    holder = status["scheduler"]
    out.append("scheduler:    " + (f"running (pid {holder.get('pid')}, since {holder.get('started_at')})"
                                   if holder is not None else "not running"))
    out.append("last run:     " + (_run_line(status["last_run"]) if status["last_run"] else "none yet"))
    success = status["last_successful_run"]
    out.append("last success: " + (f"#{success['id']} {success['finished_at']}" if success else "none yet"))
    due_now = status["due_now"]
    out.append("next due:     " + (f"{status['next_due']}" if status["next_due"] else "no sources")
               + (f" ({len(due_now)} source(s) due now)" if due_now else ""))
    out.append("")
    out.append(f"failing sources: {len(status['failing_sources'])}")
    if status["failing_sources"]:
        rows = [[source["source"], Cell(source["outcome"] or "", "bold red"), source["since"] or "",
                 str(source["checks_failed"] or ""), source["error"] or ""] for source in status["failing_sources"]]
        out.append(_indented(render_table(["source", "outcome", "since", "in a row", "error"], rows, display)))
    out.append(f"open flags: {status['open_flags']}")
    if status["open_flags_by_reason"]:
        rows = [[Cell(reason, TONE_STYLES[reason_tone(reason)]), str(count)]
                for reason, count in status["open_flags_by_reason"].items()]
        out.append(_indented(render_table(["reason", "flags"], rows, display)))
    out.append(f"reviews due: {len(status['reviews_due'])}")
    if status["reviews_due"]:
        rows = [[review["record"], review["due"]] for review in status["reviews_due"]]
        out.append(_indented(render_table(["record", "due"], rows, display)))
    if status["deliveries"]:
        out.append("last digests:")
        rows = [[delivery["channel"], Cell(delivery["status"], "green" if delivery["status"] == "sent" else "bold red"),
                 delivery["at"], delivery["target"], delivery["error"] or ""] for delivery in status["deliveries"]]
        out.append(_indented(render_table(["channel", "status", "at", "to", "error"], rows, display)))
    return "\n".join(out) + "\n"


def _indented(table: str) -> str:
    return "\n".join("  " + line for line in table.rstrip("\n").split("\n"))


