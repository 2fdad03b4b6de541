"""Replay real policy-page histories through watcher's check pipeline and score the changes it reports.

The corpus (``../shared/corpus`` beside the repository, or ``$WATCHER_CORPUS``)
holds raw snapshots of legal pages, oldest first, and for each pair of
consecutive snapshots a label: did the meaningful text change? The data comes
from the Open Terms Archive datasets, by Open Terms Archive and its
contributors, under the Open Data Commons Attribution License (ODC-By 1.0).

A local HTTP server on 127.0.0.1 serves every document's snapshots in order.
After each step watcher's real check (:func:`watcher.check.run_check`) runs
over every document twice, as two sources sharing one fetch: one with the
corpus's own ``select`` / ``remove``, one out of the box (no selectors). A
record cites each source bare, so any change of its text flags it; a pair is
a detected change when the check of its ``after`` snapshot flagged the record.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from watcher.check import run_check
from watcher.config import load_config
from watcher.demo import LocalServer, QuietHandler
from watcher.diff import DELETE, INSERT, word_diff
from watcher.store import Store

#: The corpus sits beside the repository (as in CI) unless WATCHER_CORPUS names it.
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
ATTRIBUTION = (
    "Corpus: Open Terms Archive datasets (GenAI collection), by Open Terms Archive and its contributors, "
    "ODC-By 1.0."
)
SELECTORS, DEFAULT = "selectors", "default"
CONFIGURATIONS = (SELECTORS, DEFAULT)
_WORDS_SHOWN = 30


def corpus_root() -> Path:
    return Path(os.environ.get("WATCHER_CORPUS") or DEFAULT_CORPUS)


@dataclass(frozen=True)
class Document:
    id: str
    folder: Path
    select: tuple[str, ...]
    remove: tuple[str, ...]
    snapshots: tuple[str, ...]

    def version_text(self, snapshot: str) -> str:
        """The reference text current after ``snapshot``, as the corpus gives it (Markdown)."""
        index = self.snapshots.index(snapshot) + 1
        return (self.folder / "versions" / f"{index:04d}.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Pair:
    doc: str
    before: str
    after: str
    meaningful: bool
    words_changed: int
    select_missing: bool


@dataclass(frozen=True)
class Observation:
    """What watcher did with one labelled pair in one configuration."""

    configuration: str
    pair: Pair
    status: str  # the check's status for the after snapshot: changed, unchanged, selector_missing, failed
    flagged: bool
    hunks: str | None = None  # the changed blocks watcher recorded, as stored (JSON)

    def changed_words(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The words watcher saw deleted and inserted."""
        return _changed_words(json.loads(self.hunks)) if self.hunks else ((), ())


@dataclass(frozen=True)
class Corpus:
    documents: dict[str, Document]
    pairs: tuple[Pair, ...]


def _selectors(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def load_corpus(root: Path, split: str = "dev") -> Corpus:
    folder = root / split
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    documents = {}
    for entry in index["docs"]:
        meta = json.loads((folder / entry["doc"] / "meta.json").read_text(encoding="utf-8"))
        documents[entry["doc"]] = Document(
            entry["doc"], folder / entry["doc"], _selectors(meta["select"]), _selectors(meta["remove"]),
            tuple(s["file"] for s in meta["snapshots"]),
        )
    pairs = tuple(
        Pair(p["doc"], p["before"], p["after"], p["meaningful_change"], p["version_words_changed"],
             p["select_missing"])
        for p in index["pairs"]
    )
    return Corpus(documents, pairs)


class SnapshotServer(LocalServer):
    """Serves ``/<doc-id>`` as the document's current snapshot, on 127.0.0.1."""

    def __init__(self) -> None:
        self.current: dict[str, bytes] = {}
        pages = self.current

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = pages.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler, "corpus-replay")

    def url(self, doc: str) -> str:
        return f"{self.base_url}/{doc}"


def source_id(doc: str, configuration: str) -> str:
    return f"{doc}.{configuration}"


def _config_text(corpus: Corpus, server: SnapshotServer) -> str:
    sources: dict[str, dict] = {}
    for doc in corpus.documents.values():
        sources[source_id(doc.id, DEFAULT)] = {"url": server.url(doc.id)}
        with_selectors: dict[str, object] = {"url": server.url(doc.id)}
        if doc.select:
            with_selectors["select"] = list(doc.select)
        if doc.remove:
            with_selectors["remove"] = list(doc.remove)
        sources[source_id(doc.id, SELECTORS)] = with_selectors
    records = {name: {"cites": [name]} for name in sources}
    return yaml.safe_dump({
        "settings": {"host_delay": "0s", "per_host": 8, "concurrency": 8, "retries": 0, "timeout": "60s"},
        "sources": sources,
        "offerings": {"corpus": {"records": records}},
    }, sort_keys=False)


def _changed_words(hunks: list[dict]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    removed: list[str] = []
    added: list[str] = []
    for hunk in hunks:
        for op, text in word_diff("\n".join(hunk["old"]), "\n".join(hunk["new"])):
            if op == DELETE:
                removed.extend(text.split())
            elif op == INSERT:
                added.extend(text.split())
    return tuple(removed), tuple(added)


def replay(corpus: Corpus, workdir: Path | None = None) -> list[Observation]:
    """Check every document snapshot after snapshot, in both configurations; one observation per pair."""
    by_after = {(p.doc, p.after): p for p in corpus.pairs}
    observations: list[Observation] = []
    with tempfile.TemporaryDirectory(prefix="watcher-replay-") as scratch, SnapshotServer().running() as server:
        folder = workdir or Path(scratch)
        config_path = folder / "sources.yaml"
        config_path.write_text(_config_text(corpus, server), encoding="utf-8")
        config = load_config(config_path)
        store = Store.open(folder / "replay.db")
        try:
            steps = max(len(d.snapshots) for d in corpus.documents.values())
            for step in range(steps):
                docs = [d for d in corpus.documents.values() if step < len(d.snapshots)]
                for doc in docs:
                    server.current[doc.id] = (doc.folder / doc.snapshots[step]).read_bytes()
                ids = [source_id(d.id, c) for d in docs for c in CONFIGURATIONS]
                summary = run_check(config, store, ids, trigger="replay")
                changes = {
                    row["source_id"]: row
                    for row in store.rows("SELECT * FROM changes WHERE run_id = ? AND kind = 'content'",
                                          [summary.run_id])
                }
                for report in summary.sources:
                    doc_id, configuration = report.source_id.rsplit(".", 1)
                    pair = by_after.get((doc_id, corpus.documents[doc_id].snapshots[step]))
                    if pair is None:
                        continue
                    change = changes.get(report.source_id)
                    observations.append(Observation(
                        configuration, pair, report.status,
                        flagged=bool(change and change["records_flagged"]), hunks=change["hunks"] if change else None,
                    ))
        finally:
            store.close()
    return observations


# --------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class Score:
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        meaningful = self.true_positives + self.false_negatives
        return self.true_positives / meaningful if meaningful else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def scored(observations: list[Observation], configuration: str) -> list[Observation]:
    """The observations of one configuration that count: pairs whose selector matched on both sides."""
    return [o for o in observations if o.configuration == configuration and not o.pair.select_missing]


def score(observations: list[Observation], configuration: str, words_only: bool = False) -> Score:
    """Precision and recall of one configuration; ``words_only``: pairs without words changed count as noise."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for o in scored(observations, configuration):
        meaningful = o.pair.meaningful and (o.pair.words_changed > 0 or not words_only)
        if words_only and o.pair.meaningful and not meaningful:
            continue  # a punctuation-only change: neither a miss nor a false alarm
        key = ("t" if o.flagged == meaningful else "f") + ("p" if o.flagged else "n")
        counts[key] += 1
    return Score(counts["tp"], counts["fp"], counts["fn"], counts["tn"])


def errors(observations: list[Observation], configuration: str) -> tuple[list[Observation], list[Observation]]:
    """(false positives, false negatives) of one configuration, over every scored pair."""
    chosen = scored(observations, configuration)
    return ([o for o in chosen if o.flagged and not o.pair.meaningful],
            [o for o in chosen if o.pair.meaningful and not o.flagged])


def reference_words(corpus: Corpus, pair: Pair) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words deleted and inserted between the reference texts of a pair."""
    doc = corpus.documents[pair.doc]
    hunk = {"old": [doc.version_text(pair.before)], "new": [doc.version_text(pair.after)]}
    return _changed_words([hunk])


def shorten(words: tuple[str, ...]) -> str:
    text = " ".join(words[:_WORDS_SHOWN])
    return text + (f" … (+{len(words) - _WORDS_SHOWN} words)" if len(words) > _WORDS_SHOWN else "")
