"""How watcher stays polite: per-host download slots and the retry policy.

The slots follow scrapy's downloader: every host gets its own small pool of
concurrent requests and a minimum delay between two request starts. The retry
policy is a pure function, so it can be tested without a network.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import AsyncIterator, Callable

#: Outcomes worth another try: the server, the network or a relaunched browser may do better soon.
TRANSIENT_OUTCOMES = frozenset({"timeout", "connection_error", "server_error", "rate_limited", "browser_error"})


class HostSlots:
    """At most ``per_host`` requests in flight per host, starting ``delay`` seconds apart."""

    def __init__(self, per_host: int, delay: float, clock: Callable[[], float] = time.monotonic):
        self.per_host = per_host
        self.delay = delay
        self._clock = clock
        self._semaphores: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.per_host))
        self._start_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._next_start: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        async with self._semaphores[host]:
            async with self._start_locks[host]:
                wait = self._next_start.get(host, 0.0) - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start[host] = self._clock() + self.delay
            yield


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    attempt: int,
    outcome: str,
    retry_after: float | None,
    retries: int,
    backoff: float,
    max_retry_after: float,
) -> float | None:
    """Seconds to wait before trying again after ``attempt`` (1-based), or None to give up.

    Only transient outcomes are retried. A server's Retry-After is honoured;
    one that asks for longer than ``max_retry_after`` ends the check now (it
    is recorded as a failure and the source is tried again at its next run).
    """
    if outcome not in TRANSIENT_OUTCOMES or attempt > retries:
        return None
    if retry_after is not None:
        return retry_after if retry_after <= max_retry_after else None
    return backoff * (2 ** (attempt - 1))
