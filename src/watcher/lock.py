"""The single-writer rule: one ``watcher schedule`` per database.

The scheduler holds an exclusive ``flock`` on ``<database>.lock`` for as long
as it lives. The kernel releases the lock when the process ends, however it
ends, so a crash never leaves a stale lock behind. The file holds the
holder's pid and start time, for the message a second scheduler prints and
for ``watcher status``.

Manual ``watcher check`` runs do not take this lock: SQLite serializes their
writes with the scheduler's (each source is one short transaction and a writer
waits on the busy timeout), so they wait rather than refuse.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from typing import Iterator

from .errors import LockedError
from .store import timestamp, utc_now

#: How long to retry a held lock before refusing: covers a `watcher status` probing it at that instant.
ACQUIRE_PATIENCE_SECONDS = 1.0


def lock_path(db_path: str) -> str:
    return f"{db_path}.lock"


@contextmanager
def writer_lock(db_path: str, command: str) -> Iterator[None]:
    """Hold the database's scheduler lock, or raise LockedError naming the process that holds it."""
    path = lock_path(db_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _acquire(fd, fcntl.LOCK_EX, ACQUIRE_PATIENCE_SECONDS):
            holder = _describe(_read_holder(fd))
            raise LockedError(
                f"{db_path}: another `watcher schedule` is already running on this database{holder}; "
                "only one may write on a schedule (stop it first)"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command,
                                  "started_at": timestamp(utc_now())}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean stop leaves no holder behind
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def lock_holder(db_path: str) -> dict | None:
    """The running scheduler's pid, command and start time, or None when none holds the lock."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        # A shared probe fails only while a scheduler holds the exclusive lock.
        if _acquire(fd, fcntl.LOCK_SH, 0):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        return _read_holder(fd) or {}
    finally:
        os.close(fd)


def _acquire(fd: int, mode: int, patience: float) -> bool:
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _read_holder(fd: int) -> dict | None:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict | None) -> str:
    if not holder:
        return ""
    return f" (pid {holder.get('pid')}, `watcher {holder.get('command')}` since {holder.get('started_at')})"
