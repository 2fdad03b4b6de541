"""Human verification: close a record's flags, log the review, re-anchor its quotes.

Re-anchoring makes the wording an editor has just verified the baseline for
later checks: the config's ``quote`` is only the first anchor. The same state
then raises nothing again, while a later change of the passage does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .config import Config
from .errors import UsageError
from .passages import TextIndex
from .store import Store


@dataclass(frozen=True)
class Reanchored:
    source: str
    quote: str
    wording: str | None  # None: the passage is verified as absent


@dataclass(frozen=True)
class Review:
    record: str
    review_id: int
    flags_closed: int
    anchors: tuple[Reanchored, ...]


def verify_records(
    config: Config, store: Store, record_ids: list[str], by: str, note: str | None, now: datetime
) -> list[Review]:
    """Verify each record: one review log entry each, all in one transaction."""
    records = config.records
    unknown = [r for r in record_ids if r not in records]
    if unknown:
        raise UsageError(
            f"unknown record id {unknown[0]!r}: records are named offering/record, e.g. "
            f"{next(iter(records), 'cohere-api/soc2-type2')}"
        )
    if not by.strip():
        raise UsageError("--by must name the person verifying")
    reviews = []
    with store.transaction():
        for record_id in record_ids:
            review_id, closed = store.add_review(record_id, by, note, now)
            anchors = []
            for cite in records[record_id].cites:
                if cite.quote is None:
                    continue
                latest = store.latest_version(cite.source)
                if latest is None:
                    continue  # never fetched: the config quote stays the anchor
                current = store.anchor(record_id, cite.source, cite.quote)
                expected = current["wording"] if current and current["wording"] is not None else cite.quote
                match = TextIndex(latest.text).locate(expected)
                wording = match.wording if match is not None else None
                store.set_anchor(record_id, cite.source, cite.quote, wording, latest.id, review_id, now)
                anchors.append(Reanchored(cite.source, cite.quote, wording))
            reviews.append(Review(record_id, review_id, closed, tuple(anchors)))
    return reviews


def anchor_warnings(config: Config, store: Store) -> list[str]:
    """Config quotes whose verified wording on the page now differs, so editors can update sources.yaml."""
    warnings = []
    records = config.records
    for anchor in store.anchors():
        record = records.get(anchor["record_id"])
        if record is None or not any(c.quote == anchor["quote"] and c.source == anchor["source_id"] for c in record.cites):
            continue
        if anchor["wording"] is None:
            warnings.append(
                f"{anchor['record_id']} ({anchor['source_id']}): the quote {anchor['quote']!r} was verified as "
                f"no longer on the page; update or remove it in {config.path}"
            )
        elif " ".join(anchor["wording"].split()) != " ".join(anchor["quote"].split()):
            warnings.append(
                f"{anchor['record_id']} ({anchor['source_id']}): the quote in {config.path} differs from the "
                f"wording verified on {anchor['anchored_at'][:10]}: {anchor['wording']!r}"
            )
    return warnings
