"""Reading pages ahead, in a second process, while the run fetches and records the others.

Extracting a page's text is the costliest step of a check and a pure
function of the body and the source's rules, so a large run hands it to a
worker process as soon as a page arrives: the page is read on the second CPU
while the first one fetches, classifies and stores. The check uses the text
read ahead when it gets to the page, and reads the page itself when nothing
was read ahead (a small run, one CPU, a page it already has, a worker that
died). Either way the text is the same: :func:`read_document` decides it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterable, Mapping

from .config import Source
from .documents import Unreadable, read_document
from .extract import Extraction
from .fetch import FetchResult
from .store import sha256

#: Runs with fewer sources read their pages themselves: a worker process costs a Python start-up.
READ_AHEAD_FROM = 100

Reading = Extraction | Unreadable


class ReadAhead:
    """A context manager holding the worker process of one run, or none when the run is small."""

    def __init__(self, sources: int, cpus: int | None = None):
        cpus = cpus if cpus is not None else _usable_cpus()
        self._pool: ProcessPoolExecutor | None = None
        if sources >= READ_AHEAD_FROM and cpus > 1:
            # spawn: a fresh interpreter, never a fork of this multi-threaded process; and the worker is this
            # process's own child, so its CPU time is counted with the run's.
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_exit_with, initargs=(os.getpid(),))

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, sources: Iterable[Source], result: FetchResult,
               stored: Mapping[str, str | None]) -> dict[str, Future[Reading]]:
        """Start reading ``result``'s body for each source whose stored snapshot is another body.

        ``stored`` maps source ids to the hash of their last snapshot: a body
        already stored will most likely not be read at all.
        """
        if self._pool is None or result.outcome != "ok" or not result.body:
            return {}
        digest = sha256(result.body)
        content_type = result.headers.get("content-type")
        readings = {}
        for source in sources:
            if stored.get(source.id) == digest:
                continue
            try:
                readings[source.id] = self._pool.submit(read_document, result.body, content_type, source,
                                                        result.fetcher)
            except BrokenProcessPool:
                self._pool = None  # the worker died: the check reads the pages itself from now on
                return readings
        return readings


def _exit_with(parent: int) -> None:
    """In the worker: leave as soon as the run's process is gone (killed, say), never outlive it.

    A worker waiting for its next page holds both ends of its task queue, so
    the end of its parent need not wake it: it looks every half second.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="watcher-parent-watch", daemon=True).start()


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container or ``taskset`` may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def reading_of(reading: Future[Reading] | None, body: bytes, content_type: str | None, source: Source,
               fetcher: str) -> Reading:
    """The text read ahead, or read now when there is none (or the worker died)."""
    if reading is not None:
        try:
            return reading.result()
        except BrokenProcessPool:
            pass
    return read_document(body, content_type, source, fetcher)
