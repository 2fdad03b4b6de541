"""Reading pages ahead, in a second process, while the run fetches and records the others.

Parsing a page (for what classification reads, and for each source's text)
is the costliest step of a check and a pure function of the body and the
source's rules, so a large run hands it to a worker process as soon as a
page arrives: the page is read on the second CPU while the first one
fetches, stores and judges. The check uses what was read ahead when it gets
to the page, and reads the page itself when nothing was (a small run, one
CPU, a page it already has, a worker that died). Either way the result is
the same: :func:`page_facts` and :func:`read_document` decide it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Mapping

from .classify import Page, page_facts
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

    def submit(self, sources: list[Source], result: FetchResult,
               stored: Mapping[str, str | None]) -> Future[Read] | None:
        """Start reading ``result``'s body: what classification reads, and each source's text.

        ``stored`` maps source ids to the hash of their last snapshot: a body
        the sources already have will most likely not be read at all.
        """
        if self._pool is None or result.outcome != "ok" or not result.body:
            return None
        digest = sha256(result.body)
        if all(stored.get(source.id) == digest for source in sources):
            return None
        try:
            return self._pool.submit(read_ahead, result.body, result.headers.get("content-type"), sources,
                                     result.fetcher)
        except BrokenProcessPool:
            self._pool = None  # the worker died: the check reads the pages itself from now on
            return None


@dataclass(frozen=True)
class Read:
    """A body read ahead: classification's facts, and the text of each source that fetched it."""

    page: Page | None
    texts: dict[str, Reading]


def read_ahead(body: bytes, content_type: str | None, sources: list[Source], fetcher: str) -> Read:
    """In the worker: everything a check reads in a body, for each source."""
    return Read(page_facts(body, content_type),
                {source.id: read_document(body, content_type, source, fetcher) for source in sources})


def finished(future: Future[Read] | None) -> Read | None:
    """What was read ahead, or None (nothing was, or the worker died: the check reads the body itself)."""
    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None


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


def reading_of(read: Read | None, body: bytes, content_type: str | None, source: Source, fetcher: str) -> Reading:
    """The source's text read ahead, or read now when it was not."""
    if read is not None and source.id in read.texts:
        return read.texts[source.id]
    return read_document(body, content_type, source, fetcher)
