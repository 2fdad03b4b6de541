"""The change report as one self-contained HTML file, for editors to open or attach to an email.

The report's data is :func:`watcher.report.build_report`'s; :func:`gather_evidence`
adds what only the database holds (the changed blocks of each change with
their context, and the archived snapshots), and :func:`render_html` is a pure
function of both. The file has inline CSS, no scripts and no external
resources: its Content-Security-Policy forbids loading any, which also keeps
the archived pages it embeds from reaching the network.

Insertions and deletions are told apart by more than colour: inserted words
are underlined on blue, deleted ones struck through on red, so that they read
in greyscale print and for colour-blind readers; screen readers hear where
each starts and ends.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any, Iterable

from selectolax.lexbor import LexborHTMLParser

from .config import Config
from .diff import Excerpt, Hunk, excerpts, render_markers, word_diff
from .evidence import (
    CONTENT_CHANGED,
    CONTEXT_CHANGED,
    QUOTE_CHANGED,
    QUOTE_MISSING,
    REASONS,
    REVIEW_DUE,
    SELECTOR_MISSING,
    SOURCE_ERROR,
    SOURCE_MOVED,
    WATCH_TERM,
    reason_tone,
)
from .extract import decode_html
from .report import build_report
from .store import Store

#: Unchanged blocks shown around each changed block of a page.
CONTEXT_LINES = 2
#: Windows of changed blocks shown per change; the rest is counted.
MAX_WINDOWS = 10
#: Largest snapshot embedded: as a base64 data: link it must stay under
#: Chromium's 2 MB limit on URLs.
MAX_EMBEDDED_SNAPSHOT = 1_500_000
#: All embedded snapshots together, so that a report stays small enough to mail.
MAX_EMBEDDED_TOTAL = 20_000_000
_TEXT_REASONS = (QUOTE_MISSING, QUOTE_CHANGED, CONTEXT_CHANGED, CONTENT_CHANGED, WATCH_TERM)
_QUOTE_REASONS = (QUOTE_MISSING, QUOTE_CHANGED, CONTEXT_CHANGED)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: Parts of an archived page that could run, load or navigate: removed from its preview.
_ACTIVE_PARTS = "script, noscript, base, meta[http-equiv], iframe, frame, frameset, object, embed, link"


@dataclass(frozen=True)
class SnapshotLink:
    label: str  # "before", "after", "fetched", "last archived copy"
    sha256: str


@dataclass(frozen=True)
class ChangeEvidence:
    """A change as the HTML report shows it: its changed blocks in context and its snapshots."""

    source: str
    from_seq: int | None
    to_seq: int
    windows: tuple[Excerpt, ...]
    more_windows: int
    snapshots: tuple[SnapshotLink, ...]


@dataclass(frozen=True)
class Snapshot:
    sha256: str
    source: str
    content_type: str | None
    first_seen_at: str
    size: int
    body: bytes | None  # None: too large to embed


@dataclass
class Evidence:
    """What the HTML form adds to the report data, read from the database."""

    flag_changes: dict[int, int] = field(default_factory=dict)  # flag id -> change id
    flag_snapshots: dict[int, tuple[SnapshotLink, ...]] = field(default_factory=dict)
    changes: dict[int, ChangeEvidence] = field(default_factory=dict)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)


def render_html_report(config: Config, store: Store, since: datetime | None, now: datetime) -> str:
    """``watcher report --format html``: the report, its changes in context and its snapshots, in one file."""
    report = build_report(config, store, since, now)
    return render_html(report, gather_evidence(report, store))


def _report_flags(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [flag for offering in report["offerings"] for record in offering["records"] for flag in record["flags"]]


def _marks(values: Iterable[Any]) -> str:
    return ", ".join("?" for _ in values)


def gather_evidence(report: dict[str, Any], store: Store, *, largest_snapshot: int = MAX_EMBEDDED_SNAPSHOT,
                    embed_budget: int = MAX_EMBEDDED_TOTAL) -> Evidence:
    """Changed blocks with context and archived snapshots for the report's flags and changes.

    Snapshots larger than ``largest_snapshot``, or beyond ``embed_budget`` bytes in all, are named, not embedded.
    """
    evidence = Evidence()
    flag_ids = [flag["id"] for flag in _report_flags(report)]
    flag_rows = store.rows(
        f"""SELECT f.id, f.change_id, f.source_id, fe.snapshot_sha256 AS fetched, s.last_snapshot_sha256 AS last
            FROM flags f LEFT JOIN fetches fe ON fe.id = f.fetch_id LEFT JOIN sources s ON s.id = f.source_id
            WHERE f.id IN ({_marks(flag_ids)})""",
        flag_ids,
    )
    change_ids = {row["change_id"] for row in flag_rows if row["change_id"]}
    change_ids |= {change["id"] for change in report["unattributed_changes"]}
    for row in store.rows(
        f"""SELECT c.id, c.source_id, c.hunks, c.to_version_id, old.seq AS from_seq, new.seq AS to_seq,
                   old.snapshot_sha256 AS before, new.snapshot_sha256 AS after
            FROM changes c LEFT JOIN versions old ON old.id = c.from_version_id
            JOIN versions new ON new.id = c.to_version_id
            WHERE c.id IN ({_marks(change_ids)})""",
        sorted(change_ids),
    ):
        new_version = store.version_by_id(row["to_version_id"])
        hunks = [Hunk(h["old_line"], h["new_line"], tuple(h["old"]), tuple(h["new"])) for h in json.loads(row["hunks"])]
        windows = excerpts(hunks, new_version.text if new_version else "", CONTEXT_LINES)
        links = tuple(SnapshotLink(label, row[label]) for label in ("before", "after") if row[label])
        evidence.changes[row["id"]] = ChangeEvidence(
            row["source_id"], row["from_seq"], row["to_seq"], tuple(windows[:MAX_WINDOWS]),
            max(0, len(windows) - MAX_WINDOWS), links,
        )
    for row in flag_rows:
        if row["change_id"] in evidence.changes:
            evidence.flag_changes[row["id"]] = row["change_id"]
            evidence.flag_snapshots[row["id"]] = evidence.changes[row["change_id"]].snapshots
        elif row["fetched"]:
            evidence.flag_snapshots[row["id"]] = (SnapshotLink("fetched", row["fetched"]),)
        elif row["last"]:
            # A failed fetch stores no body: the last good copy is what an editor can still read.
            evidence.flag_snapshots[row["id"]] = (SnapshotLink("last archived copy", row["last"]),)
    sources_of: dict[str, str] = {}
    for flag in _report_flags(report):
        for link in evidence.flag_snapshots.get(flag["id"], ()):
            sources_of.setdefault(link.sha256, flag["source"])
    for change in evidence.changes.values():
        for link in change.snapshots:
            sources_of.setdefault(link.sha256, change.source)
    budget = embed_budget
    rows = store.rows(f"""SELECT sha256, size, content_type, first_seen_at FROM snapshots
                           WHERE sha256 IN ({_marks(sources_of)})""", list(sources_of))
    for row in sorted(rows, key=lambda r: (sources_of[r["sha256"]], r["first_seen_at"], r["sha256"])):
        digest = row["sha256"]
        body = None
        if row["size"] <= min(largest_snapshot, budget):
            stored = store.snapshot(digest)
            body = stored[0] if stored else None
            budget -= row["size"]
        evidence.snapshots[digest] = Snapshot(digest, sources_of[digest], row["content_type"],
                                              row["first_seen_at"], row["size"], body)
    return evidence


# --------------------------------------------------------------------------
# Rendering: pure functions of the report data and the evidence.


def render_html(report: dict[str, Any], evidence: Evidence) -> str:
    title = f"watcher report, {_when(report['generated_at'])}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{escape(title)}</h1>",
    ]
    if report["since"]:
        out.append(f"<p>Flags and changes detected since {_time(report['since'])}.</p>")
    else:
        out.append("<p>Every open flag, and the changes and failures of the last check.</p>")
    out.append("</header>")
    out += _summary(report, evidence)
    out.append("<main>")
    for offering in report["offerings"]:
        out += _offering(offering, evidence)
    out.append("</main>")
    out += _snapshot_section(evidence)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _summary(report: dict[str, Any], evidence: Evidence) -> list[str]:
    flags = _report_flags(report)
    out = ['<section id="summary">', "<h2>Summary</h2>",
           f'<p class="headline"><strong>{_count(report["records_flagged"], "record")} need re-verification</strong> '
           f'({_count(report["flags"], "flag")}); {_count(len(report["failing_sources"]), "source")} failing; '
           f'{_count(len(report["unattributed_changes"]), "change")} affected no record.</p>']
    if flags:
        out += ['<table class="by-reason">', "<caption>Records to re-verify, by reason</caption>",
                "<thead><tr><th>reason</th><th>what happened</th><th>records</th></tr></thead>", "<tbody>"]
        for reason in [*REASONS, *sorted({f["reason"] for f in flags} - set(REASONS))]:
            records = sorted({f["record"] for f in flags if f["reason"] == reason})
            if not records:
                continue
            links = ", ".join(f'<a href="#{_record_anchor(r)}">{escape(r)}</a>' for r in records)
            out.append(f"<tr><td>{_reason_badge(reason)}</td><td>{escape(REASONS.get(reason, reason))}</td>"
                       f"<td>{len(records)}: {links}</td></tr>")
        out += ["</tbody>", "</table>"]
    out.append('<p class="legend">In passages: <del>deleted words</del> are struck through, '
               "<ins>inserted words</ins> are underlined.</p>")
    if report["failing_sources"]:
        out += ['<table class="failing">', "<caption>Failing sources</caption>",
                "<thead><tr><th>source</th><th>failure</th><th>since</th><th>checks failed in a row</th></tr></thead>",
                "<tbody>"]
        for source in report["failing_sources"]:
            error = f": {escape(source['error'])}" if source["error"] else ""
            out.append(f"<tr><td>{_link(source['url'], source['source'])}</td>"
                       f"<td>{escape(source['outcome'] or '')}{error}</td>"
                       f"<td>{_time(source['failing_since'])}</td><td>{source['consecutive_failures']}</td></tr>")
        out += ["</tbody>", "</table>"]
    out += _changes_and_recoveries(report, evidence)
    out.append("</section>")
    return out


def _offering(offering: dict[str, Any], evidence: Evidence) -> list[str]:
    anchor = f"offering-{offering['offering']}" if offering["offering"] else "offering-unconfigured"
    code = f" <code>{escape(offering['offering'])}</code>" if offering["offering"] else ""
    out = [f'<section class="offering" id="{escape(anchor)}">', f"<h2>{escape(offering['name'])}{code}</h2>"]
    for record in offering["records"]:
        question = f" {escape(record['question'])}" if record["question"] else ""
        out += [f'<article class="record" id="{escape(_record_anchor(record["record"]))}">',
                f'<h3><code class="record-id">{escape(record["record"])}</code>{question}</h3>']
        if record["status"]:
            out.append(f'<p class="claimed">Claimed: <strong>{escape(record["status"])}</strong></p>')
        for flag in record["flags"]:
            out += _flag(flag, evidence)
        out.append("</article>")
    out.append("</section>")
    return out


def _flag(flag: dict[str, Any], evidence: Evidence) -> list[str]:
    reason = flag["reason"]
    state = "" if flag["state"] == "open" else f' <span class="state">({escape(flag["state"])})</span>'
    out = [f'<div class="flag tone-{reason_tone(reason)}" data-reason="{escape(reason)}">',
           f"<h4>{_reason_badge(reason)} {escape(flag['reason_text'])}{state}</h4>", "<dl>"]
    if flag["source"]:
        out.append(f"<dt>source</dt><dd>{_link(flag['url'], flag['source'])}"
                   f" <span class=\"url\">{escape(flag['url'] or '')}</span></dd>")
        if flag["final_url"] and flag["final_url"] != flag["url"]:
            out.append(f"<dt>fetched from</dt><dd>{_link(flag['final_url'], flag['final_url'])}</dd>")
    if flag["subject"] and reason in _QUOTE_REASONS:
        out.append(f'<dt>quote</dt><dd class="subject">{escape(flag["subject"])}</dd>')
    elif flag["subject"] and reason == WATCH_TERM:
        out.append(f'<dt>watched term</dt><dd class="subject">{escape(flag["subject"])}</dd>')
    out.append(f"<dt>detected</dt><dd>{_time(flag['detected_at'])}</dd>")
    if flag["updated_at"] and flag["updated_at"] != flag["detected_at"]:
        out.append(f"<dt>last seen</dt><dd>{_time(flag['updated_at'])}</dd>")
    links = evidence.flag_snapshots.get(flag["id"], ())
    if links:
        out.append(f"<dt>archived</dt><dd>{_snapshot_links(links, evidence)}</dd>")
    out.append("</dl>")
    out.append(flag_body_html(flag))
    change_id = evidence.flag_changes.get(flag["id"])
    if change_id is not None:
        out += _change_details(evidence.changes[change_id], "What changed on the page",
                               open_=reason == CONTENT_CHANGED)
    out.append("</div>")
    return out


def flag_body_html(flag: dict[str, Any]) -> str:
    """What a flag (a ``flag_views`` dict) is about, as HTML: a passage's before and after, or the
    failure, the move, the missing selector or the due date."""
    reason, old, new, detail = flag["reason"], flag["old"], flag["new"], flag["detail"]
    if reason in _TEXT_REASONS or reason not in REASONS:
        term = flag["subject"] if reason == WATCH_TERM else None
        if old and new:
            return f'<p class="label">before → after</p><div class="passage">{diff_html(old, new)}</div>'
        out = []
        if old:
            out.append(f'<p class="label">before (no longer on the page)</p>'
                       f'<div class="passage"><del>{_marked(old, term)}</del></div>')
        if new:
            out.append(f'<p class="label">now on the page</p><div class="passage"><ins>{_marked(new, term)}</ins></div>')
        return "\n".join(out)
    if reason == SOURCE_ERROR:
        parts = [escape(flag["outcome"] or "failed")]
        if detail.get("error"):
            parts.append(escape(str(detail["error"])))
        elif detail.get("http_status"):
            parts.append(f"HTTP {int(detail['http_status'])}")
        failures = detail.get("consecutive_failures")
        tail = f" ({_count(int(failures), 'failed check')} in a row)" if failures else ""
        return f'<p class="failure">{": ".join(parts)}{tail}</p>'
    if reason == SOURCE_MOVED:
        return f'<p class="moved">{_link(old, old)} now redirects permanently to {_link(new, new)}</p>'
    if reason == SELECTOR_MISSING:
        return f'<p class="selector">The selector <code>{escape(old or "")}</code> matches nothing on the page.</p>'
    if reason == REVIEW_DUE:
        return f'<p class="review">{escape(old or "")}; {escape(new or "")}.</p>'
    return ""


def _change_details(change: ChangeEvidence, title: str, *, open_: bool) -> list[str]:
    versions = f"version {change.from_seq} → {change.to_seq}" if change.from_seq else f"version {change.to_seq}"
    blocks = sum(1 for window in change.windows for part in window.parts if part.changed)
    out = [f'<details class="change"{" open" if open_ else ""}>',
           f"<summary>{escape(title)} ({escape(versions)}, {_count(blocks, 'changed block')}"
           f"{' shown' if change.more_windows else ''})</summary>"]
    out += _excerpt_html(change.windows)
    if change.more_windows:
        command = f"watcher diff {change.source} --from {change.from_seq} --to {change.to_seq}"
        out.append(f'<p class="more">…and {_count(change.more_windows, "more place")} changed on the page: '
                   f"<code>{escape(command)}</code> shows them all.</p>")
    out.append("</details>")
    return out


def _excerpt_html(windows: Iterable[Excerpt]) -> list[str]:
    out = ['<div class="excerpt">']
    for window in windows:
        if window.skipped_before:
            out.append(f'<p class="skipped">… {_count(window.skipped_before, "unchanged block")} …</p>')
        for part in window.parts:
            if part.changed:
                out.append(f'<div class="block changed">{diff_html(chr(10).join(part.old), chr(10).join(part.new))}</div>')
            else:
                out += [f'<div class="block">{escape(line)}</div>' for line in part.new]
        if window.skipped_after:
            out.append(f'<p class="skipped">… {_count(window.skipped_after, "unchanged block")} …</p>')
    out.append("</div>")
    return out


def _changes_and_recoveries(report: dict[str, Any], evidence: Evidence) -> list[str]:
    """The summary's last parts: recovered sources, and, collapsed, the changes that flagged nothing."""
    out: list[str] = []
    if report["recovered_sources"]:
        out += ['<div id="recovered">', "<h3>Recovered sources</h3>", "<ul>"]
        out += [f"<li><code>{escape(r['source'])}</code> recovered at {_time(r['at'])}</li>"
                for r in report["recovered_sources"]]
        out += ["</ul>", "</div>"]
    changes = report["unattributed_changes"]
    if changes:
        out += ['<div id="unattributed">', "<details>",
                f"<summary><h3>{_count(len(changes), 'change')} that affected no record</h3></summary>",
                "<p>These edits were far from every quote and watched term: no record needs re-verification "
                "because of them.</p>"]
        for change in changes:
            source = change["source"]
            out.append(f'<div class="unattributed-change"><h4><code>{escape(source)}</code>, '
                       f"{_time(change['detected_at'])}: +{change['words_added']} / −{change['words_removed']} words</h4>")
            found = evidence.changes.get(change["id"])
            if found is not None:
                if found.snapshots:
                    out.append(f'<p class="archived">archived: {_snapshot_links(found.snapshots, evidence)}</p>')
                out += _change_details(found, "The change", open_=True)
            out.append("</div>")
        out += ["</details>", "</div>"]
    if report["technical_changes"]:
        out += ['<div id="technical">', "<details>",
                "<summary><h3>Technical changes (extraction rules edited; nothing flagged)</h3></summary>", "<ul>"]
        out += [f"<li><code>{escape(c['source'])}</code>, {_time(c['detected_at'])}: "
                f"{_count(c['blocks'], 'block')} re-derived</li>" for c in report["technical_changes"]]
        out += ["</ul>", "</details>", "</div>"]
    return out


def _snapshot_section(evidence: Evidence) -> list[str]:
    if not evidence.snapshots:
        return []
    out = ['<section id="snapshots">', "<h2>Archived snapshots</h2>",
           "<p>The raw responses as watcher stored them. Previews show the archived page without its scripts, "
           "styles or images: nothing is loaded from the network.</p>"]
    for snapshot in evidence.snapshots.values():
        kind = escape(snapshot.content_type or "unknown type")
        # A plain block, not a collapsed one, so that links to it work in every browser.
        out += [f'<div class="snapshot" id="{_snapshot_anchor(snapshot.sha256)}">',
                f"<h3><code>{escape(snapshot.source)}</code>, first seen {_time(snapshot.first_seen_at)}</h3>",
                f'<p class="digest">{_size(snapshot.size)}, {kind}, SHA-256 <code>{snapshot.sha256}</code></p>']
        if snapshot.body is None:
            out.append("<p>Too large to embed in this report; <code>watcher browse</code> shows it "
                       "(query <code>snapshot_body</code>).</p>")
        else:
            media_type = _media_type(snapshot.content_type)
            data = base64.b64encode(snapshot.body).decode("ascii")
            name = f"{snapshot.source}-{snapshot.sha256[:12]}{mimetypes.guess_extension(media_type) or '.bin'}"
            out.append(f'<p><a class="download" download="{escape(name)}" href="data:{escape(media_type)};base64,{data}">'
                       f"Download the archived response</a></p>")
            if media_type in ("text/html", "application/xhtml+xml", "text/plain"):
                preview = _preview_document(snapshot.body, snapshot.content_type)
                out += ['<details class="preview"><summary>Preview</summary>',
                        f'<iframe sandbox="" title="archived copy of {escape(snapshot.source)}" '
                        f'srcdoc="{escape(preview)}"></iframe>', "</details>"]
        out.append("</div>")
    out.append("</section>")
    return out


def _preview_document(body: bytes, content_type: str | None) -> str:
    """An archived page made inert: its active parts removed, and a policy that loads nothing."""
    text = decode_html(body, content_type)
    if _media_type(content_type) == "text/plain":
        return f'<meta http-equiv="Content-Security-Policy" content="{_CSP}"><pre>{escape(text)}</pre>'
    tree = LexborHTMLParser(text)
    for node in tree.css(_ACTIVE_PARTS):
        node.decompose()
    # First in the head, so that it governs everything after it (an inline style's @import too).
    policy = LexborHTMLParser(f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">').head.child
    head = tree.head
    if head.child is not None:
        head.child.insert_before(policy)
    else:
        head.insert_child(policy)
    return tree.html


# --------------------------------------------------------------------------
# Small pieces


def diff_html(old: str, new: str) -> str:
    """A word diff as HTML: ``<del>`` and ``<ins>`` around the changed words, everything escaped."""
    escaped = [(op, escape(text)) for op, text in word_diff(old, new)]
    return render_markers(escaped, deleted="<del>{}</del>", inserted="<ins>{}</ins>")


def _marked(text: str, term: str | None) -> str:
    """``text`` escaped, with each occurrence of a watched term highlighted."""
    if not term:
        return escape(text)
    pieces = re.split(f"({re.escape(term)})", text, flags=re.IGNORECASE)
    return "".join(f"<mark>{escape(p)}</mark>" if i % 2 else escape(p) for i, p in enumerate(pieces))


def _reason_badge(reason: str) -> str:
    return f'<span class="reason tone-{reason_tone(reason)}">{escape(reason)}</span>'


def _link(url: str | None, label: str | None) -> str:
    if not url or not url.lower().startswith(("http://", "https://")):
        return escape(label or url or "")
    return f'<a href="{escape(url)}">{escape(label or url)}</a>'


def _snapshot_links(links: Iterable[SnapshotLink], evidence: Evidence) -> str:
    shown = []
    for link in links:
        snapshot = evidence.snapshots.get(link.sha256)
        if snapshot is None:
            continue
        shown.append(f'<a class="snapshot-link" href="#{_snapshot_anchor(link.sha256)}">{escape(link.label)}</a> '
                     f"({_time(snapshot.first_seen_at)})")
    return ", ".join(shown)


def _record_anchor(record_id: str) -> str:
    return "record-" + re.sub(r"[^A-Za-z0-9._-]", "-", record_id)


def _snapshot_anchor(digest: str) -> str:
    return f"snapshot-{digest[:16]}"


def _media_type(content_type: str | None) -> str:
    """The media type of a stored response; without a header, HTML, as extraction reads every body."""
    if not content_type:
        return "text/html"
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", media_type) else "application/octet-stream"


def _when(stamp: str) -> str:
    """``2026-11-30T16:14:32Z`` as ``2026-11-30 16:14 UTC``."""
    return stamp[:16].replace("T", " ") + " UTC" if stamp and len(stamp) >= 16 else stamp or ""


def _time(stamp: str | None) -> str:
    if not stamp:
        return ""
    return f'<time datetime="{escape(stamp)}">{escape(_when(stamp))}</time>'


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.0f} kB"
    return f"{size / 1_000_000:.1f} MB"


_STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --rule: #d1d9e0;
  --del-ink: #82071e; --del-bg: #ffebe9; --ins-ink: #0a3069; --ins-bg: #ddf4ff;
  --gone: #a40e26; --changed: #7d4e00; --housekeeping: #0550ae; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem 4rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid var(--rule); padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.1rem; margin: 1.5rem 0 .3rem; }
h4 { font-size: 1rem; margin: 0 0 .4rem; font-weight: 600; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .9em; }
a { color: #0969da; }
table { border-collapse: collapse; margin: .8rem 0; width: 100%; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .6rem; border-bottom: 1px solid var(--rule); }
.headline { font-size: 1.1rem; }
.legend, .url, .label, .skipped, .more, .state, .digest { color: var(--muted); font-size: .9rem; }
.label { margin: .6rem 0 .2rem; }
.claimed { margin: 0 0 .6rem; }
.record { margin-bottom: 1.5rem; }
.flag { border: 1px solid var(--rule); border-left: .35rem solid var(--changed); border-radius: .3rem;
  padding: .7rem 1rem; margin: .7rem 0; }
.flag.tone-gone { border-left-color: var(--gone); }
.flag.tone-housekeeping { border-left-color: var(--housekeeping); }
.reason { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; font-weight: 600;
  padding: .05rem .4rem; border-radius: .3rem; border: 1px solid currentColor; color: var(--changed); }
.reason.tone-gone { color: var(--gone); }
.reason.tone-housekeeping { color: var(--housekeeping); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .3rem 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.passage, .excerpt { overflow-wrap: anywhere; background: #f6f8fa; border-radius: .3rem; padding: .5rem .7rem; }
.passage, .excerpt .block { white-space: pre-wrap; }
.excerpt .block { padding: .1rem 0; }
.excerpt .block.changed { background: #fff8c5; margin: 0 -.7rem; padding: .1rem .7rem; }
.skipped { font-style: italic; margin: .2rem 0; }
del { color: var(--del-ink); background: var(--del-bg); text-decoration: line-through 2px; }
ins { color: var(--ins-ink); background: var(--ins-bg); text-decoration: underline 2px; text-underline-offset: .15em; }
mark { background: #fff8c5; font-weight: 600; color: inherit; }
del::before, del::after, ins::before, ins::after { clip-path: inset(100%); clip: rect(1px, 1px, 1px, 1px);
  height: 1px; width: 1px; overflow: hidden; position: absolute; white-space: nowrap; }
del::before { content: " [deletion start] "; } del::after { content: " [deletion end] "; }
ins::before { content: " [insertion start] "; } ins::after { content: " [insertion end] "; }
details { margin: .5rem 0; }
summary { cursor: pointer; }
summary h3 { display: inline; }
.snapshot { border-top: 1px solid var(--rule); padding-top: .2rem; }
.snapshot h3 { font-size: 1rem; margin: .4rem 0 0; }
.snapshot p { margin: .2rem 0; }
.snapshot:target { background: #fff8c5; }
.preview iframe { width: 100%; height: 28rem; border: 1px solid var(--rule); background: white; }
@media print { .preview { display: none; } }
"""
