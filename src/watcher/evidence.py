"""Which records a change affects, and why. Pure functions.

A flag event says that one record needs re-verification for one reason; the
store turns events into flags, keeping one open flag per record, source,
reason and passage however often the same event repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Iterable, Mapping

from .config import Cite, Record
from .diff import Comparison, Hunk
from .passages import TextIndex, block_around, term_lines

QUOTE_MISSING = "quote_missing"
QUOTE_CHANGED = "quote_changed"
CONTEXT_CHANGED = "context_changed"
WATCH_TERM = "watch_term"
CONTENT_CHANGED = "content_changed"
SOURCE_ERROR = "source_error"
SOURCE_MOVED = "source_moved"
REVIEW_DUE = "review_due"
SELECTOR_MISSING = "selector_missing"

#: Plain words for each reason, as reports show them.
REASONS = {
    QUOTE_MISSING: "the quoted passage can no longer be found in the source",
    QUOTE_CHANGED: "the wording of the quoted passage changed",
    CONTEXT_CHANGED: "the quote is intact but the paragraph around it changed",
    WATCH_TERM: "a watched term appeared or disappeared",
    CONTENT_CHANGED: "the cited source's text changed",
    SOURCE_ERROR: "the source cannot be fetched",
    SOURCE_MOVED: "the source moved permanently to another address",
    REVIEW_DUE: "the record is due for its periodic review",
    SELECTOR_MISSING: "the watched part of the page is gone (the page was redesigned; the selector needs updating)",
}

#: How pressing each reason is, so that every view colours it alike: the
#: evidence is gone or unreachable, its wording changed (the default), or the
#: record needs housekeeping.
GONE, CHANGED, HOUSEKEEPING = "gone", "changed", "housekeeping"
_REASON_TONES = {
    QUOTE_MISSING: GONE, SOURCE_ERROR: GONE, SELECTOR_MISSING: GONE,
    SOURCE_MOVED: HOUSEKEEPING, REVIEW_DUE: HOUSEKEEPING,
}


def reason_tone(reason: str) -> str:
    """``gone``, ``changed`` or ``housekeeping``: how urgently a reason asks for an editor."""
    return _REASON_TONES.get(reason, CHANGED)


_SUMMARY_LINES = 6
_SUMMARY_CHARS = 2000


@dataclass(frozen=True)
class FlagEvent:
    """One reason for one record to be re-verified."""

    record: str
    reason: str
    source: str | None = None
    subject: str | None = None  # the quote or term the flag is about
    old: str | None = None
    new: str | None = None
    outcome: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Baseline:
    """What a cite expects to find: the config quote, or the wording an editor last verified."""

    wording: str | None
    verified_absent: bool = False


def judge_version(
    record: Record,
    cite: Cite,
    baseline: Baseline,
    new: TextIndex,
    old: TextIndex | None = None,
    comparison: Comparison | None = None,
) -> list[FlagEvent]:
    """Events for one cite when its source has a new text version.

    ``old`` and ``comparison`` describe the previous version; both are None
    on a source's first version, which is judged only by its quotes.
    """
    events: list[FlagEvent] = []
    if cite.quote is not None:
        events.extend(_judge_quote(record, cite, baseline, new, old, comparison))
    if cite.watch_for and old is not None:
        events.extend(_judge_terms(record, cite, new, old))
    bare = cite.quote is None and not cite.watch_for
    if bare and comparison is not None and old is not None and old.text != new.text:
        events.append(_content_changed(record, cite, comparison.hunks))
    return events


def _judge_quote(
    record: Record,
    cite: Cite,
    baseline: Baseline,
    new: TextIndex,
    old: TextIndex | None,
    comparison: Comparison | None,
) -> list[FlagEvent]:
    assert cite.quote is not None
    base = dict(record=record.id, source=cite.source, subject=cite.quote)
    if baseline.verified_absent or baseline.wording is None:
        reappeared = new.locate(cite.quote)
        if reappeared is None:
            return []
        return [FlagEvent(reason=QUOTE_CHANGED, old=None, new=reappeared.wording,
                          detail={"note": "a passage verified as absent is on the page again"}, **base)]
    expected = baseline.wording
    before = old.locate(expected) if old is not None else None
    hint = comparison.map_position(before.start) if before is not None and comparison is not None else None
    now = new.locate(expected, hint=hint)
    if now is None:
        detail: dict[str, object] = {}
        replacement = None
        if before is not None and old is not None and comparison is not None:
            detail["block_before"] = block_around(old.text, before.start, before.end)
            hunk = comparison.hunk_at(before.start)
            replacement = _summary(hunk.new) if hunk is not None else None
        return [FlagEvent(reason=QUOTE_MISSING, old=expected, new=replacement, detail=detail, **base)]
    if not now.exact:
        return [FlagEvent(reason=QUOTE_CHANGED, old=expected, new=now.wording,
                          detail={"similarity": round(now.similarity, 3),
                                  "block_after": block_around(new.text, now.start, now.end)},
                          **base)]
    if before is not None and old is not None and before.exact:
        block_before = block_around(old.text, before.start, before.end)
        block_after = block_around(new.text, now.start, now.end)
        if block_before != block_after:
            return [FlagEvent(reason=CONTEXT_CHANGED, old=block_before, new=block_after, **base)]
    return []


#: Reasons judged against what an editor verified (the anchor), not against the previous version.
VERIFIED_STATE_REASONS = frozenset({QUOTE_MISSING, QUOTE_CHANGED})


def revert_events(events: Iterable[FlagEvent], last_review: datetime | None, left_at: datetime) -> list[FlagEvent]:
    """The events of one record that still count when a page returns to one of its recent texts.

    Flip-flopping pages (A/B tests) would otherwise raise a flag on every
    swing. A return to a text the page left at ``left_at`` raises nothing
    about the change itself (context, watched terms, content) when the record
    was not verified since: the flags of the swing away were raised then and
    stay open until verified. A quote that does not match its verified wording
    still counts. A record verified after the page left that text has
    accepted the newer text, so the return is news and is judged in full.
    """
    if last_review is not None and last_review >= left_at:
        return list(events)
    return [event for event in events if event.reason in VERIFIED_STATE_REASONS]


def _judge_terms(record: Record, cite: Cite, new: TextIndex, old: TextIndex) -> list[FlagEvent]:
    events = []
    for term in cite.watch_for:
        lines_before = term_lines(old, term)
        lines_after = term_lines(new, term)
        if bool(lines_before) == bool(lines_after):
            continue
        appeared = bool(lines_after)
        events.append(
            FlagEvent(
                record=record.id,
                source=cite.source,
                reason=WATCH_TERM,
                subject=term,
                old=None if appeared else lines_before[0],
                new=lines_after[0] if appeared else None,
                detail={"term": term, "change": "appeared" if appeared else "disappeared"},
            )
        )
    return events


def _content_changed(record: Record, cite: Cite, changed: list[Hunk]) -> FlagEvent:
    return FlagEvent(
        record=record.id,
        source=cite.source,
        reason=CONTENT_CHANGED,
        old=_summary(line for hunk in changed for line in hunk.old),
        new=_summary(line for hunk in changed for line in hunk.new),
        detail={"blocks_changed": len(changed)},
    )


def _summary(lines: Iterable[str]) -> str | None:
    chosen = list(lines)
    if not chosen:
        return None
    text = "\n".join(chosen[:_SUMMARY_LINES])
    if len(chosen) > _SUMMARY_LINES:
        text += f"\n… ({len(chosen) - _SUMMARY_LINES} more lines)"
    return text if len(text) <= _SUMMARY_CHARS else text[:_SUMMARY_CHARS] + "…"


def source_events(
    cites: Iterable[tuple[Record, Cite]],
    reason: str,
    old: str | None = None,
    new: str | None = None,
    outcome: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> list[FlagEvent]:
    """The same source-level event for every record citing the source (once per record)."""
    seen: set[tuple[str, str]] = set()
    events = []
    for record, cite in cites:
        if (record.id, cite.source) in seen:
            continue
        seen.add((record.id, cite.source))
        events.append(
            FlagEvent(record=record.id, source=cite.source, reason=reason, old=old, new=new,
                      outcome=outcome, detail=dict(detail or {}))
        )
    return events


def review_due(record: Record, last_review: datetime | None, now: datetime) -> FlagEvent | None:
    """A review_due event when ``review_every`` has elapsed since the last verification."""
    if record.review_every is None:
        return None
    candidates = []
    if record.verified is not None:
        candidates.append(_as_datetime(record.verified))
    if last_review is not None:
        candidates.append(last_review)
    if not candidates:
        return None
    verified = max(candidates)
    due = verified + timedelta(seconds=record.review_every)
    if now < due:
        return None
    due_text = due.strftime("%Y-%m-%dT%H:%M:%SZ")
    return FlagEvent(
        record=record.id,
        reason=REVIEW_DUE,
        subject=due_text,
        old=f"last verified {verified.strftime('%Y-%m-%d')}",
        new=f"review was due {due.strftime('%Y-%m-%d')}",
        detail={"verified": verified.strftime("%Y-%m-%dT%H:%M:%SZ"), "due": due_text},
    )


def _as_datetime(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
