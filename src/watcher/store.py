"""The SQLite store: raw snapshots, text versions, changes, flags and reviews.

Raw bodies and texts are content-addressed (SHA-256) and compressed; a body
seen twice is stored once. Every write of one source's check happens in one
transaction, so a crash leaves either all of it or none of it.

Tables, for people reading the database (``watcher browse``, Datasette):

- ``sources``    each configured source and its fetch state
- ``runs``       one row per check run
- ``fetches``    every fetch attempt, failed or not
- ``snapshots``  raw bodies, by hash
- ``versions``   the extracted text after each content change
- ``changes``    a new version of a source, and how many records it flagged
- ``flags``      records that need re-verification, and why
- ``reviews``    the append-only log of verifications
- ``anchors``    the wording each cite was last verified against
- ``notifications``  every digest delivery, sent or failed
- ``offerings``, ``records``, ``cites``  the registry's entries, mirrored from the config at each run
- ``flag_reasons``  what each flag reason means, in plain words

Views: ``open_flags``, ``record_status``, ``source_health``, ``recent_changes``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import sqlite_utils
from sqlite_utils import Migrations

from . import codec
from .config import Config, Offering
from .errors import StoreError
from .evidence import REASONS, FlagEvent

BUSY_TIMEOUT_SECONDS = 30
migrations = Migrations("watcher")


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z: sorts as text, reads in Datasette."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE sources (
            id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            select_css TEXT,
            remove_css TEXT,
            every_seconds REAL NOT NULL,
            etag TEXT,
            last_modified TEXT,
            last_checked_at TEXT,
            last_success_at TEXT,
            last_outcome TEXT,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            failing_since TEXT,
            error_flagged INTEGER NOT NULL DEFAULT 0,
            moved_to TEXT,
            selector_missing_since TEXT,
            last_snapshot_sha256 TEXT REFERENCES snapshots(sha256)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            trigger TEXT NOT NULL,
            status TEXT NOT NULL,
            pid INTEGER,
            sources_checked INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            flags_raised INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE snapshots (
            sha256 TEXT PRIMARY KEY,
            body BLOB NOT NULL,
            codec TEXT NOT NULL,
            size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            content_type TEXT,
            first_seen_at TEXT NOT NULL
        );
        CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            source_id TEXT NOT NULL REFERENCES sources(id),
            seq INTEGER NOT NULL,
            text_sha256 TEXT NOT NULL,
            text BLOB NOT NULL,
            codec TEXT NOT NULL,
            chars INTEGER NOT NULL,
            snapshot_sha256 TEXT REFERENCES snapshots(sha256),
            extractor_version INTEGER NOT NULL,
            rules TEXT NOT NULL,
            origin TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (source_id, seq)
        );
        CREATE TABLE fetches (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            source_id TEXT NOT NULL REFERENCES sources(id),
            url TEXT NOT NULL,
            started_at TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            http_status INTEGER,
            final_url TEXT,
            redirects TEXT,
            headers TEXT,
            error TEXT,
            snapshot_sha256 TEXT REFERENCES snapshots(sha256),
            version_id INTEGER REFERENCES versions(id),
            recovered INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES runs(id),
            source_id TEXT NOT NULL REFERENCES sources(id),
            from_version_id INTEGER REFERENCES versions(id),
            to_version_id INTEGER NOT NULL REFERENCES versions(id),
            detected_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            hunks TEXT NOT NULL,
            words_added INTEGER NOT NULL,
            words_removed INTEGER NOT NULL,
            records_flagged INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL,
            reviewed_by TEXT NOT NULL,
            note TEXT,
            reviewed_at TEXT NOT NULL,
            flags_closed INTEGER NOT NULL
        );
        CREATE TABLE flags (
            id INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL,
            source_id TEXT REFERENCES sources(id),
            reason TEXT NOT NULL,
            subject TEXT,
            status TEXT NOT NULL,
            detected_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            change_id INTEGER REFERENCES changes(id),
            fetch_id INTEGER REFERENCES fetches(id),
            outcome TEXT,
            old TEXT,
            new TEXT,
            detail TEXT,
            closed_at TEXT,
            review_id INTEGER REFERENCES reviews(id)
        );
        CREATE TABLE anchors (
            record_id TEXT NOT NULL,
            source_id TEXT NOT NULL REFERENCES sources(id),
            quote TEXT NOT NULL,
            wording TEXT,
            version_id INTEGER REFERENCES versions(id),
            anchored_at TEXT NOT NULL,
            review_id INTEGER REFERENCES reviews(id),
            PRIMARY KEY (record_id, source_id, quote)
        );
        CREATE INDEX fetches_source ON fetches(source_id, id);
        CREATE INDEX fetches_run ON fetches(run_id);
        CREATE INDEX versions_source ON versions(source_id, seq);
        CREATE INDEX changes_source ON changes(source_id, id);
        CREATE INDEX changes_run ON changes(run_id);
        CREATE INDEX flags_record ON flags(record_id, status);
        CREATE INDEX flags_status ON flags(status, detected_at);
        CREATE UNIQUE INDEX flags_one_open ON flags(
            record_id, ifnull(source_id, ''), reason, ifnull(subject, '')
        ) WHERE status = 'open';
        CREATE INDEX reviews_record ON reviews(record_id, reviewed_at);
        CREATE TRIGGER reviews_append_only_update BEFORE UPDATE ON reviews
            BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
        CREATE TRIGGER reviews_append_only_delete BEFORE DELETE ON reviews
            BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
        """
    )


@migrations()
def m002_fetcher(db: sqlite_utils.Database) -> None:
    """Which fetcher made each fetch and each text version: ``http`` (all before this) or ``browser``."""
    db.executescript(
        """
        ALTER TABLE fetches ADD COLUMN fetcher TEXT NOT NULL DEFAULT 'http';
        ALTER TABLE versions ADD COLUMN fetcher TEXT NOT NULL DEFAULT 'http';
        """
    )


@migrations()
def m003_notifications(db: sqlite_utils.Database) -> None:
    """Digest bookkeeping: which flags and failing sources editors were told about, and every delivery."""
    db.executescript(
        """
        ALTER TABLE flags ADD COLUMN notified_at TEXT;
        ALTER TABLE sources ADD COLUMN failure_notified_at TEXT;
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES runs(id),
            kind TEXT NOT NULL,
            channel TEXT NOT NULL,
            target TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            error TEXT,
            sent_at TEXT NOT NULL,
            flags INTEGER NOT NULL DEFAULT 0,
            sources_failing INTEGER NOT NULL DEFAULT 0,
            sources_recovered INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX notifications_channel ON notifications(kind, channel, id);
        CREATE INDEX flags_unnotified ON flags(status) WHERE notified_at IS NULL;
        """
    )


@migrations()
def m004_registry_tables_and_views(db: sqlite_utils.Database) -> None:
    """Offerings, records and cites mirrored from the config, and views for the questions editors ask.

    The views read only plain columns (never the compressed blobs), so any
    SQLite tool can show them; Datasette names and describes them through
    the metadata ``watcher browse`` passes it.
    """
    db.executescript(
        """
        CREATE TABLE offerings (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            in_config INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE records (
            id TEXT PRIMARY KEY,
            offering_id TEXT NOT NULL REFERENCES offerings(id),
            question TEXT,
            claimed_status TEXT,
            verified_on TEXT,
            review_every_days REAL,
            in_config INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE cites (
            id INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL REFERENCES records(id),
            position INTEGER NOT NULL,
            source_id TEXT NOT NULL REFERENCES sources(id),
            quote TEXT,
            watch_for TEXT,
            UNIQUE (record_id, position)
        );
        CREATE INDEX records_offering ON records(offering_id);
        CREATE INDEX cites_source ON cites(source_id);
        CREATE TABLE flag_reasons (
            reason TEXT PRIMARY KEY,
            meaning TEXT NOT NULL
        );
        CREATE TABLE database_identity (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL
        );

        CREATE VIEW open_flags AS
        SELECT f.id AS flag_id, f.record_id, r.offering_id, r.question, r.claimed_status,
               f.reason, fr.meaning AS reason_meaning, f.source_id, s.url AS source_url,
               f.subject, f.outcome, f.old AS before, f.new AS after,
               f.detected_at, f.updated_at, f.change_id, f.fetch_id
        FROM flags f
        LEFT JOIN records r ON r.id = f.record_id
        LEFT JOIN flag_reasons fr ON fr.reason = f.reason
        LEFT JOIN sources s ON s.id = f.source_id
        WHERE f.status = 'open'
        ORDER BY f.detected_at DESC, f.id DESC;

        CREATE VIEW record_status AS
        SELECT r.id AS record_id, r.offering_id, o.name AS offering_name, r.question, r.claimed_status,
               CASE WHEN NOT r.in_config THEN 'no longer in the configuration'
                    WHEN counts.open_flags > 0 THEN 'needs re-verification'
                    ELSE 'ok' END AS state,
               counts.open_flags,
               (SELECT group_concat(reason, ', ') FROM
                   (SELECT DISTINCT reason FROM flags WHERE record_id = r.id AND status = 'open' ORDER BY reason)
               ) AS open_reasons,
               (SELECT min(detected_at) FROM flags WHERE record_id = r.id AND status = 'open') AS flagged_since,
               r.verified_on,
               last_review.reviewed_at AS last_reviewed_at,
               last_review.reviewed_by AS last_reviewed_by,
               r.review_every_days,
               (SELECT count(*) FROM cites WHERE record_id = r.id) AS cites,
               r.in_config
        FROM records r
        JOIN offerings o ON o.id = r.offering_id
        JOIN (SELECT r2.id, (SELECT count(*) FROM flags WHERE record_id = r2.id AND status = 'open') AS open_flags
              FROM records r2) counts ON counts.id = r.id
        LEFT JOIN reviews last_review ON last_review.id = (
            SELECT id FROM reviews WHERE record_id = r.id ORDER BY reviewed_at DESC, id DESC LIMIT 1)
        ORDER BY r.in_config DESC, counts.open_flags > 0 DESC, r.id;

        CREATE VIEW source_health AS
        SELECT s.id AS source_id, s.url,
               CASE WHEN s.last_checked_at IS NULL THEN 'never checked'
                    WHEN s.consecutive_failures > 0 THEN 'failing'
                    WHEN s.selector_missing_since IS NOT NULL THEN 'selector missing'
                    WHEN s.moved_to IS NOT NULL THEN 'moved'
                    ELSE 'ok' END AS health,
               s.last_outcome, s.last_error, s.last_checked_at, s.last_success_at,
               s.consecutive_failures, s.failing_since, s.selector_missing_since, s.moved_to,
               round(s.every_seconds / 3600.0, 2) AS every_hours,
               (SELECT count(*) FROM versions WHERE source_id = s.id) AS versions,
               (SELECT count(*) FROM fetches WHERE source_id = s.id) AS fetches,
               (SELECT count(*) FROM fetches WHERE source_id = s.id
                    AND outcome NOT IN ('ok', 'not_modified')) AS failed_fetches,
               (SELECT count(DISTINCT record_id) FROM cites WHERE source_id = s.id) AS cited_by_records
        FROM sources s
        ORDER BY health = 'ok', s.id;

        CREATE VIEW recent_changes AS
        SELECT c.id AS change_id, c.source_id, s.url AS source_url, c.detected_at, c.kind,
               old_version.seq AS from_version, new_version.seq AS to_version,
               c.words_added, c.words_removed, json_array_length(c.hunks) AS blocks_changed,
               c.records_flagged,
               (SELECT group_concat(record_id, ', ') FROM
                   (SELECT DISTINCT record_id FROM flags WHERE change_id = c.id ORDER BY record_id)
               ) AS flagged_records,
               c.hunks AS changed_blocks, c.run_id
        FROM changes c
        JOIN sources s ON s.id = c.source_id
        LEFT JOIN versions old_version ON old_version.id = c.from_version_id
        JOIN versions new_version ON new_version.id = c.to_version_id
        ORDER BY c.detected_at DESC, c.id DESC;
        """
    )
    db.execute("INSERT INTO database_identity (id, created_at) VALUES (?, ?)",
               [str(uuid.uuid4()), timestamp(utc_now())])


@migrations()
def m005_fetch_safety_and_reverts(db: sqlite_utils.Database) -> None:
    """Whether a fetch skipped TLS verification or robots.txt, and which version a revert returns to."""
    for statement in (
        "ALTER TABLE fetches ADD COLUMN tls_verified INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE fetches ADD COLUMN robots_ignored INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE changes ADD COLUMN reverts_to_version_id INTEGER REFERENCES versions(id)",
        "CREATE INDEX versions_text ON versions(source_id, text_sha256)",
    ):
        db.execute(statement)


@migrations()
def m006_delta_storage(db: sqlite_utils.Database) -> None:
    """Snapshots and texts stored as zstd deltas against an earlier one of their source (their key)."""
    for statement in (
        "ALTER TABLE snapshots ADD COLUMN base_sha256 TEXT REFERENCES snapshots(sha256)",
        "ALTER TABLE versions ADD COLUMN base_version_id INTEGER REFERENCES versions(id)",
    ):
        db.execute(statement)


def script_statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, triggers whole (``sqlite3.complete_statement`` knows their END)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending.strip()
            pending = ""


class _AtomicScripts(sqlite_utils.Database):
    """A Database whose ``executescript`` stays inside the open transaction.

    sqlite3's own ``executescript`` commits first, so a migration written as a
    script would be half-applied by a crash in its middle and fail forever
    after. Run statement by statement, a migration and the record of it are
    one transaction.
    """

    def executescript(self, sql: str):  # type: ignore[override]
        for statement in script_statements(sql):
            self.conn.execute(statement)


@dataclass(frozen=True)
class SourceState:
    """What the store remembers about fetching one source."""

    id: str
    etag: str | None = None
    last_modified: str | None = None
    last_checked_at: str | None = None
    last_success_at: str | None = None
    last_outcome: str | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    failing_since: str | None = None
    error_flagged: bool = False
    moved_to: str | None = None
    selector_missing_since: str | None = None
    last_snapshot_sha256: str | None = None


@dataclass(frozen=True)
class Version:
    id: int
    source_id: str
    seq: int
    text_sha256: str
    chars: int
    snapshot_sha256: str | None
    extractor_version: int
    rules: str
    created_at: str
    fetcher: str
    read_text: Callable[[], str] = field(repr=False, compare=False)

    @cached_property
    def text(self) -> str:
        """Read and decompressed on first use: most checks decide by the hash and the length alone."""
        return self.read_text()


@dataclass(frozen=True)
class _Stored:
    """A table of compressed blobs, each whole or a delta against a key row of the same table."""

    name: str
    id: str
    blob: str
    base: str

    def select(self, where: str) -> str:
        return (f"SELECT {self.id} AS id, {self.blob} AS blob, codec, {self.base} AS base FROM {self.name} "
                + where.format(id=self.id))


_SNAPSHOTS = _Stored("snapshots", "sha256", "body", "base_sha256")
_VERSIONS = _Stored("versions", "id", "text", "base_version_id")


class Store:
    """One watcher database. Open it with :meth:`open`."""

    def __init__(self, db: sqlite_utils.Database, path: str):
        self.db = db
        self.path = path

    # ------------------------------------------------------------------ set-up

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Store:
        """Open (and create or migrate) the database at ``path``."""
        name = str(path)
        if not create and not Path(name).exists():
            raise StoreError(f"{name}: no database here yet (run `watcher check` first)")
        try:
            conn = sqlite3.connect(name, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            # In WAL mode NORMAL never corrupts the database: a commit is appended to the log, and the log is
            # synced before every checkpoint. A power cut (not a crash of watcher: the kernel keeps what was
            # written) may lose the last commits, which the next check simply makes again; FULL would sync the
            # log on every commit, one disk flush per source.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
            db = sqlite_utils.Database(conn)
            store = cls(db, name)
            store._prepare()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{name}: cannot use this database: {exc}") from None
        return store

    def _prepare(self) -> None:
        applied = {m.name for m in migrations.applied(self.db)}
        known = {m.name for m in migrations.pending(sqlite_utils.Database(memory=True))}
        unknown = applied - known
        if unknown:
            raise StoreError(
                f"{self.path}: the database was written by a newer watcher "
                f"(unknown migrations: {', '.join(sorted(unknown))}); upgrade watcher to use it"
            )
        if self.db.journal_mode != "wal":
            self.db.enable_wal()
        if migrations.pending(self.db):
            with self.transaction():  # pending again inside: another process may have just migrated
                migrations.apply(_AtomicScripts(self.db.conn))

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of writes; waits for other writers (busy timeout) rather than failing."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise StoreError(
                f"{self.path}: another watcher process kept the database locked for more than "
                f"{BUSY_TIMEOUT_SECONDS}s; nothing was written, try again"
            ) from None
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def rows(self, sql: str, params: Any = ()) -> list[dict]:
        """The rows of a read, as dictionaries.

        Not ``Database.query``: it wraps every statement in a savepoint (in
        case it writes), which tripled the statements of a check, and these
        reads never write.
        """
        cursor = self.db.conn.execute(sql, params)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor]

    def row(self, sql: str, params: Any = ()) -> dict | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def _insert(self, table: str, values: Mapping[str, Any]) -> int:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cursor = self.db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))
        return int(cursor.lastrowid)

    def _update(self, table: str, key: str, key_value: Any, values: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.db.execute(
            f"UPDATE {table} SET {assignments} WHERE {key} = ?", [*values.values(), key_value]
        )

    # ------------------------------------------------------------------ sources

    def sync_sources(self, sources: Mapping[str, Any]) -> None:
        """Mirror the configured sources (url, selectors, interval) into the ``sources`` table."""
        with self.transaction():
            for source in sources.values():
                self.db.execute(
                    """
                    INSERT INTO sources (id, url, select_css, remove_css, every_seconds)
                    VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET url = excluded.url, select_css = excluded.select_css,
                        remove_css = excluded.remove_css, every_seconds = excluded.every_seconds
                    """,
                    [source.id, source.url, json.dumps(list(source.select)) if source.select else None,
                     json.dumps(list(source.remove)) if source.remove else None, source.every],
                )

    def sync_config(self, config: Config) -> None:
        """Mirror the configuration: its sources, and its offerings, records and cites."""
        with self.transaction():
            self.sync_sources(config.sources)
            self.sync_records(config.offerings)

    def sync_records(self, offerings: Mapping[str, Offering]) -> None:
        """Mirror the configured offerings, records and cites, so that the database can answer
        questions about records (the ``record_status`` view) on its own.

        Records that left the configuration keep their row, marked ``in_config = 0``:
        their flags and reviews still name them.
        """
        with self.transaction():
            self.db.execute("UPDATE offerings SET in_config = 0")
            self.db.execute("UPDATE records SET in_config = 0")
            self.db.execute("DELETE FROM cites")
            for offering in offerings.values():
                self.db.execute(
                    """INSERT INTO offerings (id, name, in_config) VALUES (?, ?, 1)
                       ON CONFLICT(id) DO UPDATE SET name = excluded.name, in_config = 1""",
                    [offering.id, offering.name],
                )
                for record in offering.records:
                    self.db.execute(
                        """INSERT INTO records (id, offering_id, question, claimed_status, verified_on,
                                                review_every_days, in_config)
                           VALUES (?, ?, ?, ?, ?, ?, 1)
                           ON CONFLICT(id) DO UPDATE SET offering_id = excluded.offering_id,
                               question = excluded.question, claimed_status = excluded.claimed_status,
                               verified_on = excluded.verified_on,
                               review_every_days = excluded.review_every_days, in_config = 1""",
                        [record.id, offering.id, record.question, record.status,
                         record.verified.isoformat() if record.verified else None,
                         record.review_every / 86400 if record.review_every is not None else None],
                    )
                    for position, cite in enumerate(record.cites, 1):
                        self._insert("cites", {
                            "record_id": record.id, "position": position, "source_id": cite.source,
                            "quote": cite.quote, "watch_for": json.dumps(list(cite.watch_for)) if cite.watch_for else None,
                        })
            for reason, meaning in REASONS.items():
                self.db.execute(
                    """INSERT INTO flag_reasons (reason, meaning) VALUES (?, ?)
                       ON CONFLICT(reason) DO UPDATE SET meaning = excluded.meaning""",
                    [reason, meaning],
                )

    def source_state(self, source_id: str) -> SourceState:
        row = self.row("SELECT * FROM sources WHERE id = ?", [source_id])
        if row is None:
            return SourceState(id=source_id)
        fields = SourceState.__dataclass_fields__
        values = {k: v for k, v in row.items() if k in fields}
        values["error_flagged"] = bool(values.get("error_flagged"))
        return SourceState(**values)

    def update_source(self, source_id: str, **values: Any) -> None:
        self._update("sources", "id", source_id, values)

    def source_states(self) -> dict[str, SourceState]:
        fields = SourceState.__dataclass_fields__
        states = {}
        for row in self.rows("SELECT * FROM sources"):
            values = {k: v for k, v in row.items() if k in fields}
            values["error_flagged"] = bool(values.get("error_flagged"))
            states[row["id"]] = SourceState(**values)
        return states

    # ------------------------------------------------------------------ runs

    def start_run(self, trigger: str, now: datetime) -> int:
        with self.transaction():
            self._close_abandoned_runs(now)
            return self._insert(
                "runs", {"started_at": timestamp(now), "trigger": trigger, "status": "running", "pid": os.getpid()}
            )

    def _close_abandoned_runs(self, now: datetime) -> None:
        """Mark as interrupted the runs whose process is gone (killed, or the machine restarted)."""
        for row in self.rows("SELECT id, pid FROM runs WHERE status = 'running'"):
            if not _process_alive(row["pid"]):
                self._update("runs", "id", row["id"], {"status": "interrupted", "finished_at": timestamp(now)})

    def finish_run(self, run_id: int, now: datetime, counts: Mapping[str, int], status: str = "finished") -> None:
        with self.transaction():
            self._update("runs", "id", run_id, {"finished_at": timestamp(now), "status": status, **counts})

    def last_run(self) -> dict | None:
        return self.row("SELECT * FROM runs WHERE status != 'running' ORDER BY id DESC LIMIT 1")

    # ------------------------------------------------------------------ snapshots and versions

    def save_snapshot(self, body: bytes, content_type: str | None, now: datetime,
                      previous: str | None = None) -> str:
        """Store ``body`` once by its hash; ``previous``, the source's last snapshot, is its delta's key."""
        digest = sha256(body)
        if self.row("SELECT 1 FROM snapshots WHERE sha256 = ?", [digest]) is None:
            stored, name, key = self._encode(_SNAPSHOTS, body, previous)
            self.db.execute(
                """INSERT INTO snapshots (sha256, body, codec, size, stored_size, content_type, first_seen_at,
                                          base_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [digest, stored, name, len(body), len(stored), content_type, timestamp(now), key],
            )
        return digest

    def snapshot(self, digest: str) -> tuple[bytes, str | None] | None:
        row = self.row("SELECT body, codec, base_sha256, content_type FROM snapshots WHERE sha256 = ?", [digest])
        if row is None:
            return None
        return self._decode(_SNAPSHOTS, row["body"], row["codec"], row["base_sha256"]), row["content_type"]

    def _encode(self, table: _Stored, data: bytes, previous: Any) -> tuple[bytes, str, Any]:
        """``data`` compressed as a delta against the key of ``previous`` when that pays, else whole."""
        key = None
        if previous is not None:
            key = self.row(table.select("WHERE {id} = ?"), [previous])
            if key is not None and key["base"] is not None:
                key = self.row(table.select("WHERE {id} = ?"), [key["base"]])
        if key is not None:
            delta, name = codec.compress(data, codec.decompress(key["blob"], key["codec"]))
            if codec.worth_a_delta(len(delta), len(key["blob"])):
                return delta, name, key["id"]
        stored, name = codec.compress(data)
        return stored, name, None

    def _decode(self, table: _Stored, blob: bytes, name: str, base: Any) -> bytes:
        key = None
        if codec.is_delta(name):
            row = self.row(table.select("WHERE {id} = ?"), [base])
            if row is None:
                raise StoreError(f"{self.path}: the key of a stored delta is missing from {table.name}")
            key = codec.decompress(row["blob"], row["codec"])
        return codec.decompress(blob, name, key)

    def add_version(
        self,
        source_id: str,
        text: str,
        snapshot_sha256: str | None,
        extractor_version: int,
        rules: str,
        origin: str,
        now: datetime,
        fetcher: str = "http",
    ) -> Version:
        encoded = text.encode("utf-8")
        previous = self.row("SELECT id, seq FROM versions WHERE source_id = ? ORDER BY seq DESC LIMIT 1", [source_id])
        stored, name, key = self._encode(_VERSIONS, encoded, previous["id"] if previous else None)
        values = {
            "source_id": source_id,
            "seq": previous["seq"] + 1 if previous else 1,
            "text_sha256": sha256(encoded),
            "text": stored,
            "codec": name,
            "base_version_id": key,
            "chars": len(text),
            "snapshot_sha256": snapshot_sha256,
            "extractor_version": extractor_version,
            "rules": rules,
            "origin": origin,
            "created_at": timestamp(now),
            "fetcher": fetcher,
        }
        version_id = self._insert("versions", values)
        return Version(version_id, source_id, values["seq"], values["text_sha256"], len(text), snapshot_sha256,
                       extractor_version, rules, values["created_at"], fetcher, lambda: text)

    def _version(self, row: dict | None) -> Version | None:
        if row is None:
            return None
        blob, name, base = row["text"], row["codec"], row["base_version_id"]
        return Version(row["id"], row["source_id"], row["seq"], row["text_sha256"], row["chars"],
                       row["snapshot_sha256"], row["extractor_version"], row["rules"], row["created_at"],
                       row["fetcher"], lambda: self._decode(_VERSIONS, blob, name, base).decode("utf-8"))

    def latest_version(self, source_id: str) -> Version | None:
        return self._version(
            self.row("SELECT * FROM versions WHERE source_id = ? ORDER BY seq DESC LIMIT 1", [source_id])
        )

    def version(self, source_id: str, seq: int) -> Version | None:
        return self._version(self.row("SELECT * FROM versions WHERE source_id = ? AND seq = ?", [source_id, seq]))

    def version_by_id(self, version_id: int) -> Version | None:
        return self._version(self.row("SELECT * FROM versions WHERE id = ?", [version_id]))

    def version_list(self, source_id: str) -> list[dict]:
        """Versions of a source without their text, oldest first; ``reverts_to_seq`` for a return to an older text."""
        return self.rows(
            """SELECT v.id, v.seq, v.text_sha256, v.chars, v.snapshot_sha256, v.extractor_version, v.origin,
                      v.created_at, v.fetcher, r.seq AS reverts_to_seq
               FROM versions v LEFT JOIN changes c ON c.to_version_id = v.id AND c.kind = 'revert'
               LEFT JOIN versions r ON r.id = c.reverts_to_version_id
               WHERE v.source_id = ? ORDER BY v.seq""",
            [source_id],
        )

    def recent_version_with_text(self, source_id: str, text_sha256: str, window: int) -> dict | None:
        """The latest version with this text, if the text is among the source's ``window`` latest distinct texts.

        Returns its ``id``, ``seq`` and ``left_at``: when the next version replaced it.
        """
        recent = self.rows(
            """SELECT text_sha256, max(seq) AS seq FROM versions WHERE source_id = ?
               GROUP BY text_sha256 ORDER BY seq DESC LIMIT ?""",
            [source_id, window],
        )
        for row in recent:
            if row["text_sha256"] == text_sha256:
                return self.row(
                    """SELECT v.id, v.seq, n.created_at AS left_at FROM versions v
                       JOIN versions n ON n.source_id = v.source_id AND n.seq = v.seq + 1
                       WHERE v.source_id = ? AND v.seq = ?""",
                    [source_id, row["seq"]],
                )
        return None

    # ------------------------------------------------------------------ fetches and changes

    def add_fetch(self, values: Mapping[str, Any]) -> int:
        return self._insert("fetches", values)

    def update_fetch(self, fetch_id: int, **values: Any) -> None:
        self._update("fetches", "id", fetch_id, values)

    def add_change(self, values: Mapping[str, Any]) -> int:
        return self._insert("changes", values)

    def update_change(self, change_id: int, **values: Any) -> None:
        self._update("changes", "id", change_id, values)

    def fetch_history(self, source_id: str, limit: int | None = None) -> list[dict]:
        sql = """SELECT f.*, v.seq AS version_seq FROM fetches f LEFT JOIN versions v ON v.id = f.version_id
                 WHERE f.source_id = ? ORDER BY f.id DESC"""
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.rows(sql, [source_id])

    # ------------------------------------------------------------------ flags

    def raise_flag(
        self,
        event: FlagEvent,
        now: datetime,
        run_id: int | None,
        change_id: int | None = None,
        fetch_id: int | None = None,
        once_per_subject: bool = False,
    ) -> bool:
        """Open a flag for ``event``, or refresh the open one; True when a new flag was opened.

        With ``once_per_subject``, a closed flag for the same subject also counts
        (a review falling due on one date is raised once, whatever the editor did).
        """
        key = [event.record, event.source or "", event.reason, event.subject or ""]
        status_clause = "" if once_per_subject else "AND status = 'open'"
        existing = self.row(
            f"""SELECT id, status FROM flags WHERE record_id = ? AND ifnull(source_id, '') = ?
                AND reason = ? AND ifnull(subject, '') = ? {status_clause}
                ORDER BY status = 'open' DESC, id DESC LIMIT 1""",
            key,
        )
        detail = json.dumps(dict(event.detail), sort_keys=True) if event.detail else None
        if existing is not None:
            if existing["status"] == "open":
                self._update("flags", "id", existing["id"], {
                    "updated_at": timestamp(now), "old": event.old, "new": event.new, "detail": detail,
                    "outcome": event.outcome, "change_id": change_id, "fetch_id": fetch_id,
                })
            return False
        self._insert("flags", {
            "record_id": event.record, "source_id": event.source, "reason": event.reason,
            "subject": event.subject, "status": "open", "detected_at": timestamp(now),
            "updated_at": timestamp(now), "run_id": run_id, "change_id": change_id, "fetch_id": fetch_id,
            "outcome": event.outcome, "old": event.old, "new": event.new, "detail": detail,
        })
        return True

    def open_flags(self, record_ids: list[str] | None = None) -> list[dict]:
        sql = "SELECT * FROM flags WHERE status = 'open'"
        params: list[Any] = []
        if record_ids is not None:
            sql += f" AND record_id IN ({', '.join('?' for _ in record_ids)})"
            params = list(record_ids)
        return self.rows(sql + " ORDER BY record_id, detected_at, id", params)

    def flags_since(self, since: str) -> list[dict]:
        return self.rows("SELECT * FROM flags WHERE detected_at >= ? ORDER BY record_id, detected_at, id", [since])

    # ------------------------------------------------------------------ reviews and anchors

    def last_reviews(self) -> dict[str, datetime]:
        return {
            row["record_id"]: parse_timestamp(row["at"])
            for row in self.rows("SELECT record_id, max(reviewed_at) AS at FROM reviews GROUP BY record_id")
        }

    def add_review(self, record_id: str, by: str, note: str | None, now: datetime) -> tuple[int, int]:
        """Log a review and close the record's open flags; returns (review id, flags closed)."""
        open_ids = [row["id"] for row in self.rows(
            "SELECT id FROM flags WHERE record_id = ? AND status = 'open'", [record_id])]
        review_id = self._insert("reviews", {
            "record_id": record_id, "reviewed_by": by, "note": note,
            "reviewed_at": timestamp(now), "flags_closed": len(open_ids),
        })
        self.db.execute(
            "UPDATE flags SET status = 'closed', closed_at = ?, review_id = ? WHERE record_id = ? AND status = 'open'",
            [timestamp(now), review_id, record_id],
        )
        return review_id, len(open_ids)

    def anchor(self, record_id: str, source_id: str, quote: str) -> dict | None:
        return self.row(
            "SELECT * FROM anchors WHERE record_id = ? AND source_id = ? AND quote = ?", [record_id, source_id, quote]
        )

    def anchors(self) -> list[dict]:
        return self.rows("SELECT * FROM anchors ORDER BY record_id, source_id")

    def set_anchor(self, record_id: str, source_id: str, quote: str, wording: str | None,
                   version_id: int | None, review_id: int | None, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO anchors (record_id, source_id, quote, wording, version_id, anchored_at, review_id)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(record_id, source_id, quote) DO UPDATE SET wording = excluded.wording,
                   version_id = excluded.version_id, anchored_at = excluded.anchored_at,
                   review_id = excluded.review_id""",
            [record_id, source_id, quote, wording, version_id, timestamp(now), review_id],
        )

    # ------------------------------------------------------------------ notifications

    def unnotified_flags(self) -> list[dict]:
        """Open flags no delivered digest has announced yet."""
        return self.rows("SELECT * FROM flags WHERE status = 'open' AND notified_at IS NULL ORDER BY id")

    def failure_notices(self) -> tuple[list[dict], list[dict]]:
        """Sources that started failing and were not announced, and announced ones that recovered."""
        failing = self.rows(
            "SELECT * FROM sources WHERE error_flagged = 1 AND failure_notified_at IS NULL ORDER BY id"
        )
        recovered = self.rows(
            "SELECT * FROM sources WHERE consecutive_failures = 0 AND failure_notified_at IS NOT NULL ORDER BY id"
        )
        return failing, recovered

    def mark_notified(self, flag_ids: list[int], failing_ids: list[str], recovered_ids: list[str],
                      now: datetime) -> None:
        at = timestamp(now)
        for flag_id in flag_ids:
            self._update("flags", "id", flag_id, {"notified_at": at})
        for source_id in failing_ids:
            self._update("sources", "id", source_id, {"failure_notified_at": at})
        for source_id in recovered_ids:
            self._update("sources", "id", source_id, {"failure_notified_at": None})

    def add_notification(self, values: Mapping[str, Any]) -> int:
        return self._insert("notifications", values)

    def last_deliveries(self, kind: str) -> list[dict]:
        """The latest delivery of ``kind`` on each channel."""
        return self.rows(
            """SELECT * FROM notifications WHERE id IN (
                   SELECT max(id) FROM notifications WHERE kind = ? GROUP BY channel) ORDER BY channel""",
            [kind],
        )


def _process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
