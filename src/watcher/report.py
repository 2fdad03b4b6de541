"""Change reports for editors: what changed, which records it touches, before and after.

:func:`build_report` gathers a report as plain data (the JSON format is that
data); the ``render_*`` functions turn it into text or Markdown.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .config import Config
from .diff import render_markers, word_diff
from .evidence import REASONS
from .store import Store, timestamp

REPORT_FORMATS = ("text", "markdown", "json")
#: Hunks of a change that affected no record shown in a report.
_HUNKS_SHOWN = 3


def flag_view(row: dict, config: Config, final_urls: dict[int, str | None]) -> dict[str, Any]:
    """One flag as editors and machines see it (the ``flags --json`` object)."""
    source = config.sources.get(row["source_id"]) if row["source_id"] else None
    record = config.records.get(row["record_id"])
    return {
        "id": row["id"],
        "record": row["record_id"],
        "offering": row["record_id"].split("/", 1)[0],
        "question": record.question if record else None,
        "status_claimed": record.status if record else None,
        "source": row["source_id"],
        "reason": row["reason"],
        "reason_text": REASONS.get(row["reason"], row["reason"]),
        "subject": row["subject"],
        "outcome": row["outcome"],
        "state": row["status"],
        "detected_at": row["detected_at"],
        "updated_at": row["updated_at"],
        "url": source.url if source else None,
        "final_url": final_urls.get(row["fetch_id"]) if row["fetch_id"] else None,
        "old": row["old"],
        "new": row["new"],
        "detail": json.loads(row["detail"]) if row["detail"] else {},
    }


def flag_views(rows: list[dict], config: Config, store: Store) -> list[dict[str, Any]]:
    fetch_ids = sorted({r["fetch_id"] for r in rows if r["fetch_id"]})
    final_urls: dict[int, str | None] = {}
    if fetch_ids:
        marks = ", ".join("?" for _ in fetch_ids)
        final_urls = {
            row["id"]: row["final_url"]
            for row in store.rows(f"SELECT id, final_url FROM fetches WHERE id IN ({marks})", fetch_ids)
        }
    return [flag_view(row, config, final_urls) for row in rows]


def build_report(config: Config, store: Store, since: datetime | None, now: datetime) -> dict[str, Any]:
    """The report as data: flags grouped by offering and record, changes, failing sources."""
    last_run = store.last_run()
    if since is not None:
        flag_rows = store.flags_since(timestamp(since))
        change_rows = store.rows("SELECT * FROM changes WHERE detected_at >= ? ORDER BY id", [timestamp(since)])
        recovered_rows = store.rows(
            "SELECT source_id, started_at FROM fetches WHERE recovered = 1 AND started_at >= ? ORDER BY id",
            [timestamp(since)],
        )
        window = ("started_at >= ?", [timestamp(since)])
    else:
        flag_rows = store.open_flags()
        run_id = last_run["id"] if last_run else -1
        change_rows = store.rows("SELECT * FROM changes WHERE run_id = ? ORDER BY id", [run_id])
        recovered_rows = store.rows(
            "SELECT source_id, started_at FROM fetches WHERE recovered = 1 AND run_id = ? ORDER BY id", [run_id]
        )
        window = ("run_id = ?", [run_id])
    flags = flag_views(flag_rows, config, store)
    offerings = []
    for offering in config.offerings.values():
        records = []
        for record in offering.records:
            record_flags = [f for f in flags if f["record"] == record.id]
            if record_flags:
                records.append({"record": record.id, "question": record.question, "status": record.status,
                                "flags": record_flags})
        if records:
            offerings.append({"offering": offering.id, "name": offering.name, "records": records})
    known = set(config.records)
    orphans = [f for f in flags if f["record"] not in known]
    if orphans:
        offerings.append({"offering": None, "name": "Records no longer in the configuration",
                          "records": [{"record": f["record"], "question": None, "status": None, "flags": [f]}
                                      for f in orphans]})
    failing = [
        {
            "source": row["id"],
            "url": row["url"],
            "outcome": row["last_outcome"],
            "error": row["last_error"],
            "failing_since": row["failing_since"],
            "consecutive_failures": row["consecutive_failures"],
        }
        for row in store.rows("SELECT * FROM sources WHERE consecutive_failures > 0 ORDER BY id")
        if row["id"] in config.sources
    ]
    return {
        "generated_at": timestamp(now),
        "since": timestamp(since) if since else None,
        "last_run": last_run,
        "records_flagged": sum(len(o["records"]) for o in offerings),
        "flags": len(flags),
        "offerings": offerings,
        "unattributed_changes": [_change_view(row) for row in change_rows
                                 if row["kind"] == "content" and not row["records_flagged"]],
        "technical_changes": [_change_view(row) for row in change_rows if row["kind"] == "technical"],
        "failing_sources": failing,
        "recovered_sources": [{"source": r["source_id"], "at": r["started_at"]} for r in recovered_rows],
        "reverted_changes": _reverts(store, [row for row in change_rows if row["kind"] == "revert"]),
        "safety_overrides": _safety_overrides(config, store, *window),
    }


def _reverts(store: Store, rows: list[dict]) -> list[dict[str, Any]]:
    """Returns of a page to an earlier text (flip-flops, A/B tests): listed, but they raise no new flags."""
    reverts = []
    for row in rows:
        target = store.row("SELECT seq FROM versions WHERE id = ?", [row["reverts_to_version_id"]])
        reverts.append({**_change_view(row), "returns_to_version": target["seq"] if target else None})
    return reverts


def _safety_overrides(config: Config, store: Store, where: str, params: list) -> list[dict[str, Any]]:
    """Sources fetched without TLS verification or without obeying robots.txt, as the config allows."""
    used = {
        row["source_id"]: row["n"]
        for row in store.rows(
            f"""SELECT source_id, count(*) AS n FROM fetches WHERE {where}
                AND (tls_verified = 0 OR robots_ignored = 1) GROUP BY source_id""", params)
    }
    overrides = []
    for source in config.sources.values():
        kinds = ([] if source.verify_tls else ["TLS certificate not verified"]) + (
            ["robots.txt ignored"] if source.ignore_robots else [])
        if kinds or source.id in used:
            overrides.append({"source": source.id, "url": source.url, "overrides": kinds,
                              "fetches": used.get(source.id, 0)})
    return overrides


def _change_view(row: dict) -> dict[str, Any]:
    hunks = json.loads(row["hunks"])
    return {
        "id": row["id"],
        "source": row["source_id"],
        "detected_at": row["detected_at"],
        "kind": row["kind"],
        "words_added": row["words_added"],
        "words_removed": row["words_removed"],
        "blocks": len(hunks),
        "hunks": hunks[:_HUNKS_SHOWN],
    }


# --------------------------------------------------------------------------
# Rendering


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)


def _before_after(flag: dict[str, Any]) -> list[str]:
    old, new = flag["old"], flag["new"]
    lines = []
    if flag["reason"] in ("quote_changed", "context_changed") and old and new:
        lines += [f"before: {old}", f"after:  {new}", _marked(old, new)]
    else:
        if old:
            lines.append(f"before: {old}")
        if new:
            lines.append(f"after:  {new}")
    return lines


def _marked(old: str, new: str) -> str:
    return "changes: " + render_markers(word_diff(old, new))


def render_text(report: dict[str, Any]) -> str:
    out: list[str] = []
    title = f"watcher report, {report['generated_at']}"
    if report["since"]:
        title += f", since {report['since']}"
    out += [title, "=" * len(title), ""]
    out.append(
        f"{report['records_flagged']} record(s) need re-verification ({report['flags']} flag(s)); "
        f"{len(report['failing_sources'])} source(s) failing; "
        f"{len(report['unattributed_changes'])} change(s) affected no record."
    )
    out.append("")
    for offering in report["offerings"]:
        heading = f"{offering['name']} ({offering['offering']})" if offering["offering"] else offering["name"]
        out += [heading, "-" * len(heading)]
        for record in offering["records"]:
            out.append(f"{record['record']}" + (f": {record['question']}" if record["question"] else ""))
            if record["status"]:
                out.append(f"  claimed: {record['status']}")
            for flag in record["flags"]:
                state = "" if flag["state"] == "open" else f" [{flag['state']}]"
                outcome = f" ({flag['outcome']})" if flag["outcome"] else ""
                out.append(f"  * {flag['reason']}{outcome}{state}: {flag['reason_text']}")
                if flag["source"]:
                    out.append(f"    source: {flag['source']} <{flag['url']}>")
                if flag["subject"] and flag["reason"] != "review_due":
                    out.append(f"    about: {flag['subject']!r}")
                out.append(f"    detected: {flag['detected_at']}")
                out += ["    " + line for line in _before_after(flag)]
            out.append("")
    _render_sections_text(report, out)
    return "\n".join(out).rstrip() + "\n"


def _render_sections_text(report: dict[str, Any], out: list[str]) -> None:
    if report["unattributed_changes"]:
        out += ["Changes that affected no record", "-------------------------------"]
        for change in report["unattributed_changes"]:
            out.append(f"{change['source']}  {change['detected_at']}  +{change['words_added']}/-{change['words_removed']} "
                       f"words in {change['blocks']} block(s)")
            for hunk in change["hunks"]:
                out += [f"    - {line}" for line in hunk["old"]] + [f"    + {line}" for line in hunk["new"]]
        out.append("")
    if report["technical_changes"]:
        out += ["Technical changes (extraction rules; no flags)", "----------------------------------------------"]
        out += [f"{c['source']}  {c['detected_at']}  {c['blocks']} block(s) re-derived" for c in report["technical_changes"]]
        out.append("")
    if report["failing_sources"]:
        out += ["Failing sources", "---------------"]
        for source in report["failing_sources"]:
            out.append(f"{source['source']}  {source['outcome']}  since {source['failing_since']}  "
                       f"({source['consecutive_failures']} failed check(s) in a row): {source['error']}")
        out.append("")
    if report["recovered_sources"]:
        out += ["Recovered sources", "-----------------"]
        out += [f"{r['source']}  recovered at {r['at']}" for r in report["recovered_sources"]]
        out.append("")
    for title, lines in _robustness_sections(report):
        out += [title, "-" * len(title), *lines, ""]


def _robustness_sections(report: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Flip-flops and safety overrides, as (title, lines) for every format."""
    sections = []
    if report["reverted_changes"]:
        sections.append(("Returns to an earlier text (flip-flops; no new flags)", [
            f"{c['source']} at {c['detected_at']}: back to the text of v{c['returns_to_version']}"
            for c in report["reverted_changes"]]))
    if report["safety_overrides"]:
        sections.append(("Safety overrides", [
            f"{o['source']} <{o['url']}>: {'; '.join(o['overrides']) or 'no longer configured'} "
            f"({o['fetches']} fetch(es) in this report)" for o in report["safety_overrides"]]))
    return sections


def _md_marked(old: str, new: str) -> str:
    return render_markers(word_diff(old, new), deleted="~~{}~~", inserted="**{}**")


def _md_quote(text: str) -> str:
    return "\n".join("> " + line for line in text.split("\n"))


def render_markdown(report: dict[str, Any]) -> str:
    out: list[str] = [f"# watcher report, {report['generated_at']}", ""]
    if report["since"]:
        out += [f"Since {report['since']}.", ""]
    out.append(
        f"**{report['records_flagged']} record(s) need re-verification** ({report['flags']} flag(s)); "
        f"{len(report['failing_sources'])} source(s) failing; "
        f"{len(report['unattributed_changes'])} change(s) affected no record."
    )
    out.append("")
    for offering in report["offerings"]:
        out += [f"## {offering['name']}" + (f" (`{offering['offering']}`)" if offering["offering"] else ""), ""]
        for record in offering["records"]:
            out.append(f"### `{record['record']}`" + (f": {record['question']}" if record["question"] else ""))
            out.append("")
            if record["status"]:
                out += [f"Claimed: *{record['status']}*", ""]
            for flag in record["flags"]:
                outcome = f" ({flag['outcome']})" if flag["outcome"] else ""
                out.append(f"- **{flag['reason']}**{outcome}: {flag['reason_text']}")
                if flag["source"]:
                    out.append(f"  - source: [{flag['source']}]({flag['url']})")
                out.append(f"  - detected: {flag['detected_at']}")
                if flag["reason"] in ("quote_changed", "context_changed") and flag["old"] and flag["new"]:
                    out.append(f"  - changes: {_md_marked(flag['old'], flag['new'])}")
                else:
                    if flag["old"]:
                        out.append(f"  - before: {flag['old']}")
                    if flag["new"]:
                        out.append(f"  - after: {flag['new']}")
            out.append("")
    if report["unattributed_changes"]:
        out += ["## Changes that affected no record", ""]
        for change in report["unattributed_changes"]:
            out.append(f"- `{change['source']}` at {change['detected_at']}: +{change['words_added']}/-{change['words_removed']} words")
            for hunk in change["hunks"]:
                out += [f"  - ~~{line}~~" for line in hunk["old"]] + [f"  - **{line}**" for line in hunk["new"]]
        out.append("")
    if report["technical_changes"]:
        out += ["## Technical changes (extraction rules; no flags)", ""]
        out += [f"- `{c['source']}` at {c['detected_at']}: {c['blocks']} block(s) re-derived"
                for c in report["technical_changes"]]
        out.append("")
    if report["failing_sources"]:
        out += ["## Failing sources", ""]
        for source in report["failing_sources"]:
            out.append(f"- `{source['source']}`: {source['outcome']} since {source['failing_since']} "
                       f"({source['consecutive_failures']} in a row): {source['error']}")
        out.append("")
    if report["recovered_sources"]:
        out += ["## Recovered sources", ""]
        out += [f"- `{r['source']}` recovered at {r['at']}" for r in report["recovered_sources"]]
        out.append("")
    for title, lines in _robustness_sections(report):
        out += [f"## {title}", "", *(f"- {line}" for line in lines), ""]
    return "\n".join(out).rstrip() + "\n"
