"""A check run: fetch → extract → store → diff → flags, for a set of sources.

This is the one code path every check takes, whether started by ``watcher
check``, ``watcher recheck``, the scheduler or the demo. Everything one source
contributes to a run is written in one transaction.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping

import httpx

from .classify import Page, Verdict, classify_response, is_consent_wall
from .config import Config, Record, Source
from .diff import Comparison, changed_word_counts
from .documents import Unreadable, read_document
from .errors import UsageError
from .evidence import (
    SELECTOR_MISSING,
    SOURCE_ERROR,
    SOURCE_MOVED,
    Baseline,
    FlagEvent,
    judge_version,
    revert_events,
    review_due,
    source_events,
)
from .extract import EXTRACTOR_VERSION
from .fetch import Fetcher, FetchResult, Validators
from .passages import TextIndex
from .readahead import Read, ReadAhead, finished, reading_of
from .render import Renderer
from .store import SourceState, Store, Version, parse_timestamp, sha256, timestamp, utc_now

#: Failed checks in a row before a transient failure flags the citing records.
FAILURES_BEFORE_FLAG = 3
#: Outcomes flagged at once: the page is gone, or something now stands in its place
#: (a bot wall, a login or NDA gate, a robots.txt ban) that retrying will not remove.
PERMANENT_FAILURES = frozenset({"not_found", "gone", "blocked", "gated", "robots_disallowed"})
#: A new text equal to one of the source's last distinct texts is a revert (an A/B test, a flip-flop).
REVERT_WINDOW = 5


@dataclass
class SourceReport:
    """What one check of one source did."""

    source_id: str
    status: str  # new | changed | reverted | unchanged | failed | selector_missing
    outcome: str
    version: int | None = None
    flags_raised: int = 0
    error: str | None = None
    recovered: bool = False


@dataclass
class RunSummary:
    run_id: int
    started_at: datetime
    finished_at: datetime | None = None
    sources: list[SourceReport] = field(default_factory=list)
    flags_raised: int = 0

    def count(self, *statuses: str) -> int:
        return sum(1 for s in self.sources if s.status in statuses)

    def counts(self) -> dict[str, int]:
        return {
            "sources_checked": len(self.sources),
            "unchanged": self.count("unchanged"),
            "changed": self.count("changed", "new", "reverted"),
            "failed": self.count("failed", "selector_missing"),
            "flags_raised": self.flags_raised,
        }


def rules_of(source: Source) -> str:
    """The extraction rules a text version was made with, as stored beside it."""
    return json.dumps({"select": list(source.select), "remove": list(source.remove)}, sort_keys=True)


def due_at(source: Source, state: SourceState) -> datetime | None:
    """When ``source`` is next due: its last check plus ``every``; None when it was never checked (due now)."""
    if state.last_checked_at is None:
        return None
    return parse_timestamp(state.last_checked_at) + timedelta(seconds=source.every)


def due_sources(config: Config, store: Store, now: datetime) -> list[str]:
    """Sources never checked, or whose ``every`` has elapsed since their last check."""
    states = store.source_states()
    due = []
    for source in config.sources.values():
        when = due_at(source, states.get(source.id, SourceState(source.id)))
        if when is None or when <= now:
            due.append(source.id)
    return due


def resolve_targets(config: Config, ids: Iterable[str]) -> list[str]:
    """Source ids for a list of source, record (offering/record) or offering ids."""
    chosen: list[str] = []
    records = config.records
    for item in ids:
        if item in config.sources:
            found = [item]
        elif item in records:
            found = [cite.source for cite in records[item].cites]
        elif item in config.offerings:
            found = [cite.source for record in config.offerings[item].records for cite in record.cites]
        else:
            raise UsageError(f"unknown id {item!r}: not a source, record (offering/record) or offering in {config.path}")
        chosen.extend(s for s in found if s not in chosen)
    return chosen


def run_check(config: Config, store: Store, source_ids: Iterable[str] | None = None, **options) -> RunSummary:
    """Check ``source_ids`` (default: the sources that are due) and return what happened.

    The options are those of :func:`check_async`.
    """
    return asyncio.run(check_async(config, store, source_ids, **options))


async def check_async(
    config: Config,
    store: Store,
    source_ids: Iterable[str] | None = None,
    *,
    trigger: str = "check",
    clock: Callable[[], datetime] = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
    progress: Callable[[SourceReport], None] | None = None,
) -> RunSummary:
    """Check ``source_ids`` (default: the due ones): fetch, store, diff and flag, one source at a time.

    ``trigger`` names what started the run; ``clock`` gives the time (tests move
    it); ``transport`` replaces the network; ``progress`` hears about each source.
    """
    started = clock()
    store.sync_config(config)
    ids = list(source_ids) if source_ids is not None else due_sources(config, store, started)
    run = _Run(config, store, store.start_run(trigger, started), clock)
    summary = RunSummary(run.run_id, started)
    status = "interrupted"
    try:
        groups = {group[0].id: group for group in group_by_request(config.sources[i] for i in ids)}
        states = store.source_states()
        requests = [(group[0], run.validators(group, states)) for group in groups.values()]
        stored = {source_id: state.last_snapshot_sha256 for source_id, state in states.items()}
        # Fetched pages wait here to be recorded, one at a time, while the next ones are fetched and read ahead;
        # the bound keeps what waits in memory to one page per request in flight.
        waiting: asyncio.Queue[tuple[FetchResult, Future[Read] | None] | None] = asyncio.Queue(
            config.settings.concurrency)

        async def record_all() -> None:
            while (item := await waiting.get()) is not None:
                result, reading = item
                for source in groups[result.source_id]:
                    report = await _record_off_the_loop(run, source, result, reading)
                    summary.sources.append(report)
                    if progress is not None:
                        progress(report)

        async with Renderer(config.settings) as renderer, \
                Fetcher(config.settings, transport=transport, renderer=renderer) as fetcher:
            with ReadAhead(len(ids)) as read_ahead:
                recorder = asyncio.ensure_future(record_all())
                try:
                    async for result in fetcher.fetch_all(requests):
                        reading = read_ahead.submit(groups[result.source_id], result, stored)
                        await _hand_over(waiting, (result, reading), recorder)
                    await _hand_over(waiting, None, recorder)
                    await recorder
                finally:
                    if not recorder.done():
                        recorder.cancel()
                    # A record being written finishes (or rolls back) before anything else touches the database.
                    await asyncio.gather(recorder, return_exceptions=True)
        summary.flags_raised = sum(s.flags_raised for s in summary.sources) + run.raise_due_reviews()
        status = "finished"
    finally:
        summary.finished_at = clock()
        if status == "interrupted":  # what the recorded sources raised before the stop still counts
            summary.flags_raised = sum(s.flags_raised for s in summary.sources)
        store.finish_run(run.run_id, summary.finished_at, summary.counts(), status=status)
    return summary


async def _hand_over(waiting: asyncio.Queue, item: object, recorder: asyncio.Future) -> None:
    """Queue ``item`` for the recorder; if the recorder failed meanwhile, raise its error instead of waiting."""
    putting = asyncio.ensure_future(waiting.put(item))
    done, _ = await asyncio.wait({putting, recorder}, return_when=asyncio.FIRST_COMPLETED)
    if putting not in done:
        putting.cancel()
        recorder.result()  # the recorder stopped: its error is the run's


async def _record_off_the_loop(run: _Run, source: Source, result: FetchResult,
                               reading: Future[Read] | None = None) -> SourceReport:
    """Record in a worker thread, so that parsing a huge page never stalls the fetches in flight.

    Records are still written one at a time, and a cancelled run waits for the
    write in progress to commit or roll back before anything else touches the
    database.
    """
    writing = asyncio.ensure_future(asyncio.to_thread(run.record, source, result, reading))
    try:
        return await asyncio.shield(writing)
    except asyncio.CancelledError:
        await asyncio.wait([writing])
        raise


def group_by_request(sources: Iterable[Source]) -> list[list[Source]]:
    """Sources that watch different parts of one page, fetched the same way, share one fetch of it."""
    groups: dict[tuple[str, str, str | None], list[Source]] = {}
    for source in sources:
        groups.setdefault((source.url, source.fetch, source.wait_for), []).append(source)
    return list(groups.values())


class _Run:
    """The per-run state and the recording of one fetch result."""

    def __init__(self, config: Config, store: Store, run_id: int, clock: Callable[[], datetime]):
        self.config = config
        self.store = store
        self.run_id = run_id
        self.clock = clock

    def validators(self, sources: list[Source], known: Mapping[str, SourceState]) -> Validators:
        """Conditional-request headers, when every source sharing the URL holds the same stored body."""
        states = [known.get(source.id, SourceState(source.id)) for source in sources]
        first = states[0]
        if first.last_snapshot_sha256 is None or any(
            s.last_snapshot_sha256 != first.last_snapshot_sha256 for s in states
        ):
            return Validators()  # without a stored body, a 304 would leave nothing to compare
        return Validators(first.etag, first.last_modified)

    def record(self, source: Source, result: FetchResult, reading: Future[Read] | None = None) -> SourceReport:
        now = self.clock()
        read = finished(reading)  # waited for before the transaction: other writers need not wait for it
        with self.store.transaction():
            # Read inside the transaction: another process may have written this source a moment ago.
            state = self.store.source_state(source.id)
            latest = self.store.latest_version(source.id)
            verdict = self._classify(state, latest, result, read.page if read is not None else None)
            outcome, error = (verdict.outcome, verdict.reason) if verdict else (result.outcome, result.error)
            fetch_id = self.store.add_fetch(
                {
                    "run_id": self.run_id,
                    "source_id": source.id,
                    "url": result.url,
                    "started_at": timestamp(result.started_at),
                    "duration_ms": result.duration_ms,
                    "attempts": result.attempts,
                    "outcome": outcome,
                    "http_status": result.status,
                    "final_url": result.final_url,
                    "redirects": json.dumps([r.as_dict() for r in result.redirects]) if result.redirects else None,
                    "headers": json.dumps(result.headers, sort_keys=True) if result.headers else None,
                    "error": error,
                    "recovered": int(result.succeeded and verdict is None and state.consecutive_failures > 0),
                    "fetcher": result.fetcher,
                    "tls_verified": int(source.verify_tls),
                    "robots_ignored": int(source.ignore_robots),
                }
            )
            if verdict is not None:
                # Kept as evidence of what stood in the page's place, but never as the page.
                assert result.body is not None
                digest = self.store.save_snapshot(result.body, result.headers.get("content-type"), now)
                self.store.update_fetch(fetch_id, snapshot_sha256=digest)
            if verdict is not None or not result.succeeded:
                return self._failed(source, state, outcome, error, result.status, fetch_id, now)
            return self._succeeded(source, state, result, fetch_id, now, latest, read)

    def _classify(self, state: SourceState, latest: Version | None, result: FetchResult,
                  page: Page | None) -> Verdict | None:
        """What the body is when it is not the page (a wall, a gate, a soft error), before any extraction."""
        if result.body is None or result.status is None:
            return None
        previous_body = None
        if result.outcome == "ok" and state.last_snapshot_sha256:
            digest = state.last_snapshot_sha256

            def previous_body() -> bytes | None:  # read only if the rules need it: a decompression saved
                stored = self.store.snapshot(digest)
                return stored[0] if stored else None

        return classify_response(
            result.status, result.headers, result.body,
            previous_chars=latest.chars if latest is not None else None,
            previous_body=previous_body,
            final_url=result.final_url,
            page=page,
        )

    # ------------------------------------------------------------------ failures

    def _failed(self, source: Source, state: SourceState, outcome: str, error: str | None,
                status: int | None, fetch_id: int, now: datetime) -> SourceReport:
        failures = state.consecutive_failures + 1
        flag_now = (outcome in PERMANENT_FAILURES or failures >= FAILURES_BEFORE_FLAG) and not state.error_flagged
        # A source already flagged that now fails differently (a 503 that became a bot wall)
        # updates its open flag, so that the outcome editors see is the current one.
        refresh = state.error_flagged and outcome != state.last_outcome
        raised = 0
        if flag_now or refresh:
            events = source_events(
                self.config.cites_of(source.id), SOURCE_ERROR, old=source.url, new=None, outcome=outcome,
                detail={"error": error, "http_status": status, "consecutive_failures": failures},
            )
            raised = self._raise(events, now, fetch_id=fetch_id)
        self.store.update_source(
            source.id,
            consecutive_failures=failures,
            failing_since=state.failing_since or timestamp(now),
            error_flagged=int(state.error_flagged or flag_now),
            last_outcome=outcome,
            last_error=error,
            last_checked_at=timestamp(now),
        )
        return SourceReport(source.id, "failed", outcome, flags_raised=raised, error=error)

    # ------------------------------------------------------------------ successes

    def _succeeded(self, source: Source, state: SourceState, result: FetchResult, fetch_id: int,
                   now: datetime, latest: Version | None, read: Read | None) -> SourceReport:
        cites = self.config.cites_of(source.id)
        raised = 0
        updates: dict[str, object] = {
            "consecutive_failures": 0, "failing_since": None, "error_flagged": 0,
            "last_outcome": result.outcome, "last_error": None,
            "last_checked_at": timestamp(now), "last_success_at": timestamp(now),
            "selector_missing_since": None,
        }
        moved_to = result.moved_to
        if moved_to and moved_to != state.moved_to:
            raised += self._raise(
                source_events(cites, SOURCE_MOVED, old=source.url, new=moved_to,
                              detail={"redirects": [r.as_dict() for r in result.redirects]}),
                now, fetch_id=fetch_id,
            )
        updates["moved_to"] = moved_to

        if result.outcome == "not_modified":
            digest = state.last_snapshot_sha256
        else:
            assert result.body is not None
            body, content_type = result.body, result.headers.get("content-type")
            digest = self.store.save_snapshot(body, content_type, now, previous=state.last_snapshot_sha256)
            updates["etag"] = result.headers.get("etag")
            updates["last_modified"] = result.headers.get("last-modified")
        updates["last_snapshot_sha256"] = digest
        self.store.update_fetch(fetch_id, snapshot_sha256=digest)

        rules = rules_of(source)
        if latest is not None and (latest.rules != rules or latest.extractor_version != EXTRACTOR_VERSION):
            latest = self._reextract(source, latest, rules, now)
        if latest is not None and latest.snapshot_sha256 == digest:
            self.store.update_fetch(fetch_id, version_id=latest.id)
            return self._finish(source, updates, "unchanged", result, latest.seq, raised, state)

        if result.outcome == "not_modified":  # the stored page, not yet read: its text must be derived again
            stored = self.store.snapshot(digest) if digest else None
            body, content_type = stored if stored else (b"", None)
        extraction = reading_of(read, body, content_type, source, result.fetcher)
        if isinstance(extraction, Unreadable):
            # A body without watched text (an empty page, an application shell, a scanned PDF) is a failed
            # fetch, never "everything was deleted".
            self.store.update_fetch(fetch_id, outcome=extraction.outcome, error=extraction.error, recovered=0)
            return self._failed(source, state, extraction.outcome, extraction.error, result.status, fetch_id, now)
        consent_wall = bool(source.select) and is_consent_wall(
            extraction.text, latest.chars if latest is not None else None)
        if extraction.selector_missing or consent_wall:
            if not state.selector_missing_since:
                raised += self._raise(
                    source_events(cites, SELECTOR_MISSING, old=", ".join(source.select), new=None,
                                  detail={"select": list(source.select)}),
                    now, fetch_id=fetch_id,
                )
            updates["selector_missing_since"] = state.selector_missing_since or timestamp(now)
            return self._finish(source, updates, "selector_missing", result, None, raised, state)

        text_sha256 = sha256(extraction.text.encode("utf-8"))
        if latest is not None and latest.text_sha256 == text_sha256:  # no need to read the stored text
            if latest.fetcher != result.fetcher:
                # The same text by another fetcher (a source switched to or from the browser): a technical
                # version that records the new fetcher and flags nothing.
                latest = self.store.add_version(source.id, extraction.text, digest, EXTRACTOR_VERSION, rules,
                                                "refetch", now, fetcher=result.fetcher)
            self.store.update_fetch(fetch_id, version_id=latest.id)
            return self._finish(source, updates, "unchanged", result, latest.seq, raised, state)

        returns_to = None
        if latest is not None:
            returns_to = self.store.recent_version_with_text(source.id, text_sha256, REVERT_WINDOW)
        version = self.store.add_version(source.id, extraction.text, digest, EXTRACTOR_VERSION, rules, "fetch", now,
                                         fetcher=result.fetcher)
        self.store.update_fetch(fetch_id, version_id=version.id)
        raised += self._judge(source, latest, version, now, fetch_id, returns_to)
        status = "new" if latest is None else "reverted" if returns_to else "changed"
        return self._finish(source, updates, status, result, version.seq, raised, state)

    def _finish(self, source: Source, updates: dict, status: str, result: FetchResult,
                version: int | None, raised: int, state: SourceState) -> SourceReport:
        self.store.update_source(source.id, **updates)
        return SourceReport(source.id, status, result.outcome, version=version, flags_raised=raised,
                            recovered=state.consecutive_failures > 0)

    def rederive(self, source: Source) -> Reextraction:
        """Bring one source's latest text up to the current rules (``watcher reextract``), in one transaction."""
        latest = self.store.latest_version(source.id)
        if latest is None:
            return Reextraction(source.id, "never_fetched")
        rules = rules_of(source)
        if latest.rules == rules and latest.extractor_version == EXTRACTOR_VERSION:
            return Reextraction(source.id, "current", latest.seq)
        with self.store.transaction():
            version = self._reextract(source, latest, rules, self.clock())
        if version.id == latest.id:
            return Reextraction(source.id, "kept", latest.seq,
                                "no stored page, or the current rules find no text in it")
        return Reextraction(source.id, "changed" if version.text != latest.text else "rederived", version.seq)

    def _reextract(self, source: Source, latest: Version, rules: str, now: datetime) -> Version:
        """Re-derive the latest text with the current rules, so a selector edit flags nothing by itself."""
        stored = self.store.snapshot(latest.snapshot_sha256) if latest.snapshot_sha256 else None
        if stored is None:
            return latest
        body, content_type = stored
        extraction = read_document(body, content_type, source, latest.fetcher)
        if isinstance(extraction, Unreadable) or extraction.selector_missing:
            return latest
        version = self.store.add_version(
            source.id, extraction.text, latest.snapshot_sha256, EXTRACTOR_VERSION, rules, "reextract", now,
            fetcher=latest.fetcher,
        )
        if extraction.text != latest.text:
            self._add_change(source, latest, version, now, kind="technical")
        return version

    def _add_change(self, source: Source, old: Version, new: Version, now: datetime, kind: str,
                    reverts_to: int | None = None) -> tuple[int, Comparison]:
        comparison = Comparison(old.text, new.text)
        added = removed = 0
        for hunk in comparison.hunks:
            hunk_added, hunk_removed = changed_word_counts("\n".join(hunk.old), "\n".join(hunk.new))
            added += hunk_added
            removed += hunk_removed
        change_id = self.store.add_change(
            {
                "run_id": self.run_id,
                "source_id": source.id,
                "from_version_id": old.id,
                "to_version_id": new.id,
                "detected_at": timestamp(now),
                "kind": kind,
                "hunks": json.dumps([h.as_dict() for h in comparison.hunks]),
                "words_added": added,
                "words_removed": removed,
                "reverts_to_version_id": reverts_to,
            }
        )
        return change_id, comparison

    def _judge(self, source: Source, latest: Version | None, version: Version, now: datetime, fetch_id: int,
               returns_to: dict | None = None) -> int:
        """Record the change and raise its flags (for a revert, see :func:`revert_events`)."""
        new_index = TextIndex(version.text)
        old_index = TextIndex(latest.text) if latest is not None else None
        change_id = comparison = None
        if latest is not None:
            kind = "revert" if returns_to is not None else "content"
            change_id, comparison = self._add_change(source, latest, version, now, kind=kind,
                                                     reverts_to=returns_to["id"] if returns_to else None)
        last_reviews = self.store.last_reviews() if returns_to is not None else {}
        events: list[FlagEvent] = []
        for record, cite in self.config.cites_of(source.id):
            judged = judge_version(record, cite, self._baseline(record, cite), new_index, old_index, comparison)
            if returns_to is not None:
                judged = revert_events(judged, last_reviews.get(record.id), parse_timestamp(returns_to["left_at"]))
            events.extend(judged)
        raised = self._raise(events, now, change_id=change_id, fetch_id=fetch_id)
        if change_id is not None:
            self.store.update_change(change_id, records_flagged=len({e.record for e in events}))
        return raised

    def _baseline(self, record: Record, cite) -> Baseline:
        if cite.quote is None:
            return Baseline(None)
        anchor = self.store.anchor(record.id, cite.source, cite.quote)
        if anchor is None:
            return Baseline(cite.quote)
        return Baseline(anchor["wording"], verified_absent=anchor["wording"] is None)

    def _raise(self, events: Iterable[FlagEvent], now: datetime, change_id: int | None = None,
               fetch_id: int | None = None) -> int:
        return sum(
            self.store.raise_flag(event, now, self.run_id, change_id=change_id, fetch_id=fetch_id)
            for event in events
        )

    def raise_due_reviews(self) -> int:
        now = self.clock()
        last_reviews = self.store.last_reviews()
        raised = 0
        with self.store.transaction():
            for record in self.config.records.values():
                event = review_due(record, last_reviews.get(record.id), now)
                if event is not None:
                    raised += self.store.raise_flag(event, now, self.run_id, once_per_subject=True)
        return raised


# --------------------------------------------------------------------------
# Re-deriving stored texts


@dataclass(frozen=True)
class Reextraction:
    """What ``watcher reextract`` did for one source."""

    source_id: str
    status: str  # current | rederived | changed | kept | never_fetched
    version: int | None = None
    detail: str | None = None


def reextract(config: Config, store: Store, source_ids: Iterable[str] | None = None, *,
              clock: Callable[[], datetime] = utc_now) -> list[Reextraction]:
    """Re-derive each source's latest text from its stored snapshot with the current rules, without fetching.

    A text made with other ``select``/``remove`` rules or another extractor
    version gets a new version (origin ``reextract``); when its text differs,
    the change is recorded as ``technical``, flags nothing and shows in
    reports as an extraction upgrade. This is what a check does by itself
    before comparing, done for every source at once.
    """
    ids = list(source_ids) if source_ids else list(config.sources)
    unknown = [i for i in ids if i not in config.sources]
    if unknown:
        raise UsageError(f"unknown source {unknown[0]!r} (sources are the keys under 'sources:' in {config.path})")
    store.sync_sources(config.sources)
    started = clock()
    run = _Run(config, store, store.start_run("reextract", started), clock)
    results: list[Reextraction] = []
    status = "interrupted"
    try:
        for source_id in ids:
            results.append(run.rederive(config.sources[source_id]))
        status = "finished"
    finally:
        counts = {"sources_checked": len(results), "changed": sum(r.status == "changed" for r in results)}
        store.finish_run(run.run_id, clock(), counts, status=status)
    return results
