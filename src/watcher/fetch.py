"""Fetch sources over HTTP: one async client, polite slots, conditional requests, retries.

A fetch never raises: every outcome, failed or not, comes back as a
:class:`FetchResult` value, so a run always finishes and every attempt can be
recorded.

Outcomes:

- ``ok``             a body was received (2xx)
- ``not_modified``   304 to a conditional request: the source is unchanged
- ``not_found``      404          ``gone``          410
- ``denied``         401, 403     ``rate_limited``  429
- ``server_error``   5xx          ``http_error``    any other 4xx
- ``timeout``        no complete answer in time
- ``connection_error``  DNS, refused, reset, TLS, protocol errors
- ``too_large``      the body is larger than ``max_size``
- ``redirect_loop``, ``too_many_redirects``, ``bad_redirect`` (a Location that is not http(s))

Sources with ``fetch: browser`` are rendered by :mod:`watcher.render` inside
the same politeness limits, with three more outcomes: ``browser_error`` (the
browser crashed mid-render), ``browser_unavailable`` (no browser this run) and
``not_a_page`` (the address serves a document, such as a PDF, not a web page).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Iterable
from urllib.parse import urljoin, urlsplit

import httpx

from .config import Settings, Source
from .politeness import HostSlots, parse_retry_after, retry_delay

if TYPE_CHECKING:
    from .render import Renderer

MAX_REDIRECTS = 10
SUCCESS_OUTCOMES = frozenset({"ok", "not_modified"})
PERMANENT_REDIRECTS = frozenset({301, 308})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
KEPT_HEADERS = ("content-type", "content-length", "etag", "last-modified", "retry-after", "location", "date")
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,application/pdf;q=0.8,*/*;q=0.5"


@dataclass(frozen=True)
class Redirect:
    status: int
    url: str
    location: str

    def as_dict(self) -> dict:
        return {"status": self.status, "url": self.url, "location": self.location}


@dataclass(frozen=True)
class Validators:
    """What the server said last time, for a conditional request."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class FetchResult:
    source_id: str
    url: str
    outcome: str
    started_at: datetime
    duration_ms: int
    attempts: int = 1
    status: int | None = None
    final_url: str | None = None
    redirects: tuple[Redirect, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    error: str | None = None
    fetcher: str = "http"

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESS_OUTCOMES

    @property
    def moved_to(self) -> str | None:
        """Where a permanent redirect in the chain led (the end of the chain), if there was one."""
        if any(r.status in PERMANENT_REDIRECTS for r in self.redirects):
            return self.final_url
        return None


def classify_status(status: int) -> str:
    if status == 304:
        return "not_modified"
    if 200 <= status < 300:
        return "ok"
    if status == 404:
        return "not_found"
    if status == 410:
        return "gone"
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "http_error"


class _Failure(Exception):
    def __init__(self, outcome: str, message: str):
        super().__init__(message)
        self.outcome = outcome


@dataclass
class _Attempt:
    """One try at a URL, by HTTP or in the browser; the last one becomes the FetchResult."""

    outcome: str
    status: int | None = None
    final_url: str | None = None
    redirects: list[Redirect] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    error: str | None = None


class Fetcher:
    """An async context manager holding one HTTP client for a run.

    ``transport`` replaces the network (tests use ``httpx.MockTransport`` for
    faults a real server cannot produce); ``renderer`` renders the sources
    that need a browser (without one, they fail as ``browser_unavailable``).
    """

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None,
                 renderer: Renderer | None = None):
        self.settings = settings
        self._transport = transport
        self._renderer = renderer
        self._client: httpx.AsyncClient | None = None
        self._slots = HostSlots(settings.per_host, settings.host_delay)
        self._in_flight = asyncio.Semaphore(settings.concurrency)

    async def __aenter__(self) -> Fetcher:
        limits = httpx.Limits(max_connections=self.settings.concurrency, max_keepalive_connections=self.settings.concurrency)
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self.settings.timeout),
            limits=limits,
            follow_redirects=False,
            headers={"User-Agent": self.settings.user_agent, "Accept": ACCEPT},
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._client is not None
        await self._client.aclose()

    async def fetch(self, source: Source, validators: Validators = Validators()) -> FetchResult:
        """Fetch one source, with retries; never raises (but can be cancelled)."""
        started = datetime.now(UTC)
        clock = time.monotonic()
        attempt_number = 0
        while True:
            attempt_number += 1
            if source.fetch == "browser":
                attempt = await self._render(source)
            else:
                attempt = await self._attempt(source.url, validators)
            delay = retry_delay(
                attempt_number,
                attempt.outcome,
                parse_retry_after(attempt.headers.get("retry-after")),
                self.settings.retries,
                self.settings.backoff,
                self.settings.max_retry_after,
            )
            if delay is None:
                break
            await asyncio.sleep(delay)
        return FetchResult(
            source_id=source.id,
            url=source.url,
            outcome=attempt.outcome,
            started_at=started,
            duration_ms=int((time.monotonic() - clock) * 1000),
            attempts=attempt_number,
            status=attempt.status,
            final_url=attempt.final_url,
            redirects=tuple(attempt.redirects),
            headers=attempt.headers,
            body=attempt.body,
            error=attempt.error,
            fetcher=source.fetch,
        )

    async def fetch_all(self, sources: Iterable[tuple[Source, Validators]]):
        """Fetch many sources concurrently, yielding results as they complete."""
        tasks = [asyncio.ensure_future(self.fetch(source, validators)) for source, validators in sources]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _attempt(self, url: str, validators: Validators) -> _Attempt:
        """One try: follow redirects by hand, each hop inside its host's slot and a deadline."""
        redirects: list[Redirect] = []
        seen = {url}
        current = url
        try:
            while True:
                host = urlsplit(current).hostname or ""
                async with self._slots.slot(host), self._in_flight:
                    async with asyncio.timeout(self.settings.timeout):
                        attempt = await self._request(current, validators)
                location = attempt.headers.get("location")
                if attempt.status not in REDIRECT_STATUSES or not location:
                    attempt.redirects = redirects
                    attempt.final_url = current
                    return attempt
                target = urljoin(current, location)
                redirects.append(Redirect(attempt.status, current, target))
                if urlsplit(target).scheme not in ("http", "https"):
                    raise _Failure("bad_redirect", f"redirect to a non-HTTP address: {target}")
                if target in seen:
                    raise _Failure("redirect_loop", f"redirect loop back to {target}")
                if len(redirects) > MAX_REDIRECTS:
                    raise _Failure("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")
                seen.add(target)
                current = target
        except _Failure as failure:
            return _Attempt(failure.outcome, redirects=redirects, final_url=current, error=str(failure))
        except (TimeoutError, httpx.TimeoutException) as exc:
            return _Attempt("timeout", redirects=redirects, final_url=current,
                            error=f"no complete answer within {self.settings.timeout:g}s ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return _Attempt("connection_error", redirects=redirects, final_url=current,
                            error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    async def _render(self, source: Source) -> _Attempt:
        """One try in the browser: a browser slot, then the same host slot and global limit as HTTP."""
        if self._renderer is None:
            return _Attempt("browser_unavailable", error="this fetcher was started without a browser")
        host = urlsplit(source.url).hostname or ""
        async with self._renderer.capacity, self._slots.slot(host), self._in_flight:
            return await self._renderer.render(source.url, source.wait_for)

    async def _request(self, url: str, validators: Validators) -> _Attempt:
        assert self._client is not None
        async with self._client.stream("GET", url, headers=validators.headers()) as response:
            headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
            outcome = classify_status(response.status_code)
            if outcome != "ok":
                return _Attempt(outcome, status=response.status_code, headers=headers,
                                error=None if outcome == "not_modified" else f"HTTP {response.status_code}")
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.settings.max_size:
                raise _Failure("too_large", f"Content-Length {declared} is over the {self.settings.max_size}-byte cap")
            chunks = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > self.settings.max_size:
                    raise _Failure("too_large", f"body is over the {self.settings.max_size}-byte cap")
                chunks.append(chunk)
            return _Attempt("ok", status=response.status_code, headers=headers, body=b"".join(chunks))
