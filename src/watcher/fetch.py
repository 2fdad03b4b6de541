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
- ``timeout``        no complete answer within the deadline (the whole request, redirects included)
- ``connection_error``  DNS, refused, reset
- ``tls_error``      the certificate could not be verified (``verify_tls: false`` opts out)
- ``protocol_error`` the server's answer is not valid HTTP
- ``truncated``      the connection closed before the body's announced end
- ``too_large``      the body, decoded, is larger than ``max_size`` (a decompression bomb included)
- ``bad_encoding``   a Content-Encoding watcher did not ask for, or a body that does not decode
- ``redirect_loop``, ``too_many_redirects``, ``bad_redirect`` (a Location that is not http(s))
- ``unsafe_redirect`` a redirect from a public address to a private, loopback or link-local one
- ``robots_disallowed``  robots.txt forbids the URL (``ignore_robots: true`` opts out)
- ``missing_credentials``  an environment variable named under ``credentials`` is not set
- ``fetch_error``    anything else that went wrong (the error names it); the run goes on

The check classifies the bodies of ``ok`` answers further (see :mod:`watcher.classify`).

Sources with ``fetch: browser`` are rendered by :mod:`watcher.render` inside
the same politeness limits, with three more outcomes: ``browser_error`` (the
browser crashed mid-render), ``browser_unavailable`` (no browser this run) and
``not_a_page`` (the address serves a document, such as a PDF, not a web page).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx

from .addresses import Resolver, any_private, is_public, system_resolver
from .config import Settings, Source
from .content_coding import ACCEPT_ENCODING, BodyTooLarge, BoundedDecoder, DecodingError
from .credentials import MissingCredential, credential_headers
from .politeness import HostSlots, parse_retry_after, retry_delay
from .robots import ROBOTS_MAX_BYTES, RobotsRules, origin_of, robots_url, rules_from_response

if TYPE_CHECKING:
    from .render import Renderer

MAX_REDIRECTS = 10
#: Idle connections an origin keeps beyond its requests in flight (every idle one is polled at each request).
IDLE_CONNECTIONS = 2
SUCCESS_OUTCOMES = frozenset({"ok", "not_modified"})
PERMANENT_REDIRECTS = frozenset({301, 308})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
KEPT_HEADERS = ("content-type", "content-length", "content-encoding", "etag", "last-modified", "retry-after",
                "location", "date", "cf-mitigated")
UNFOLLOWABLE_REDIRECTS = frozenset({"redirect_loop", "too_many_redirects", "bad_redirect", "unsafe_redirect"})
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,application/pdf;q=0.8,*/*;q=0.5"
#: How much of an error page is kept: enough to tell a challenge wall from a plain error.
ERROR_BODY_BYTES = 256 * 1024


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
    body: bytes | None = None  # the page, or the start of an error page
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
    retry: bool = True  # False: trying again within this run cannot help


@dataclass(frozen=True)
class _Plan:
    """How to request one URL: which client, which extra headers for which origin, which checks."""

    url: str
    verify_tls: bool = True
    obey_robots: bool = True
    credentials: dict[str, str] = field(default_factory=dict)
    validators: Validators = Validators()
    max_size: int = 0
    cut_at_cap: bool = False  # keep the first max_size bytes instead of failing (robots.txt)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Fetcher:
    """An async context manager holding the HTTP clients and per-run caches of a run.

    ``transport`` replaces the network (tests use ``httpx.MockTransport`` for
    faults a real server cannot produce); ``resolver`` replaces DNS for the
    redirect guard; ``renderer`` renders the sources that need a browser
    (without one, they fail as ``browser_unavailable``).
    """

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None,
                 resolver: Resolver = system_resolver, renderer: Renderer | None = None):
        self.settings = settings
        self._transport = transport
        self._resolve = resolver
        self._renderer = renderer
        self._clients: dict[tuple[bool, str], httpx.AsyncClient] = {}
        self._tls: dict[bool, ssl.SSLContext] = {}
        self._slots = HostSlots(settings.per_host, settings.host_delay)
        self._in_flight = asyncio.Semaphore(settings.concurrency)
        self._robots: dict[tuple[str, bool], asyncio.Task[RobotsRules | _Attempt]] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._robots.values():
            task.cancel()
        await asyncio.gather(*self._robots.values(), return_exceptions=True)
        for client in self._clients.values():
            await client.aclose()

    def _client(self, url: str, verify_tls: bool) -> httpx.AsyncClient:
        """The client of ``url``'s origin: one connection pool per origin and TLS mode.

        httpcore looks at every connection of a pool each time a request
        starts or ends (a system call per idle connection, to see whether the
        server closed it); a pool per origin holds only that origin's few
        connections, where one shared pool made each request pay for every
        host's. TLS settings are built once per mode and shared.
        """
        key = (verify_tls, origin_of(url))
        client = self._clients.get(key)
        if client is None:
            if verify_tls not in self._tls:
                self._tls[verify_tls] = httpx.create_ssl_context(verify=verify_tls)
            # The semaphores bound the requests in flight; the pool keeps connections for reuse (a new one costs
            # more than its request). httpcore closes idle connections once the pool holds more than the keep-alive
            # limit, busy ones included, so the limit leaves room for the busy ones and some idle ones.
            limits = httpx.Limits(max_connections=None,
                                  max_keepalive_connections=self.settings.per_host + IDLE_CONNECTIONS)
            client = self._clients[key] = httpx.AsyncClient(
                transport=self._transport,
                verify=self._tls[verify_tls],
                timeout=httpx.Timeout(self.settings.timeout),
                limits=limits,
                follow_redirects=False,
                headers={"User-Agent": self.settings.user_agent, "Accept": ACCEPT,
                         "Accept-Encoding": ACCEPT_ENCODING},
                trust_env=False,
            )
        return client

    async def fetch(self, source: Source, validators: Validators = Validators()) -> FetchResult:
        """Fetch one source, with retries; never raises (but can be cancelled)."""
        started = datetime.now(UTC)
        clock = time.monotonic()
        try:
            credentials = credential_headers(source.credentials)
        except MissingCredential as missing:
            attempt, attempts = _Attempt("missing_credentials", error=str(missing)), 0  # nothing was sent
        else:
            if source.fetch == "browser":
                attempt, attempts = await self._with_retries(lambda: self._render(source))
            else:
                plan = _Plan(source.url, source.verify_tls, not source.ignore_robots, credentials, validators,
                             self.settings.max_size)
                attempt, attempts = await self._with_retries(lambda: self._attempt(plan))
        return FetchResult(
            source_id=source.id,
            url=source.url,
            outcome=attempt.outcome,
            started_at=started,
            duration_ms=int((time.monotonic() - clock) * 1000),
            attempts=attempts,
            status=attempt.status,
            final_url=attempt.final_url,
            redirects=tuple(attempt.redirects),
            headers=attempt.headers,
            body=attempt.body,
            error=attempt.error,
            fetcher=source.fetch,
        )

    async def fetch_all(self, sources: Iterable[tuple[Source, Validators]]):
        """Fetch many sources concurrently, yielding results as they complete.

        At most ``concurrency`` results are alive at once, fetching or waiting
        for the consumer: a fetch starts only when an earlier result has been
        consumed, so bodies that arrive faster than they are recorded never
        pile up in memory. Fetches start in the order of ``sources``, and a
        result is let go once consumed (a run of thousands of pages holds a
        few of them, never all).
        """
        waiting = iter(sources)
        running: set[asyncio.Task[FetchResult]] = set()

        def start_next() -> None:
            for source, validators in itertools.islice(waiting, 1):
                running.add(asyncio.ensure_future(self.fetch(source, validators)))

        for _ in range(self.settings.concurrency):
            start_next()
        try:
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    running.discard(task)
                    yield task.result()
                    start_next()
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _with_retries(self, try_once: Callable[[], Awaitable[_Attempt]]) -> tuple[_Attempt, int]:
        attempt_number = 0
        while True:
            attempt_number += 1
            attempt = await try_once()
            delay = None if not attempt.retry else retry_delay(
                attempt_number,
                attempt.outcome,
                parse_retry_after(attempt.headers.get("retry-after")),
                self.settings.retries,
                self.settings.backoff,
                self.settings.max_retry_after,
            )
            if delay is None:
                return attempt, attempt_number
            await asyncio.sleep(delay)

    async def _attempt(self, plan: _Plan) -> _Attempt:
        """One try: follow redirects by hand, each hop checked, all hops within one deadline."""
        redirects: list[Redirect] = []
        seen = {plan.url}
        current = plan.url
        budget = self.settings.timeout
        origin = origin_of(plan.url)
        try:
            configured = urlsplit(plan.url)
            private_allowed = any_private(await self._resolve(configured.hostname or "", configured.port or 0))
            while True:
                parts = urlsplit(current)
                if redirects and not private_allowed and any_private(
                        await self._resolve(parts.hostname or "", parts.port or 0)):
                    raise _Failure("unsafe_redirect", f"refused a redirect to a private address: {current}")
                if plan.obey_robots:
                    await self._check_robots(current, plan.verify_tls)
                headers = dict(plan.validators.headers())
                if origin_of(current) == origin:
                    headers.update(plan.credentials)  # credentials never follow a redirect to another origin
                async with self._slots.slot(parts.hostname or ""), self._in_flight:
                    started = time.monotonic()
                    try:
                        async with asyncio.timeout(budget):
                            attempt = await self._request(plan, current, headers, private_allowed)
                    finally:
                        budget -= time.monotonic() - started
                location = attempt.headers.get("location")
                if attempt.status not in REDIRECT_STATUSES or not location:
                    attempt.redirects = redirects
                    attempt.final_url = current
                    return attempt
                target = urljoin(current, location)
                redirects.append(Redirect(attempt.status, current, target))
                if urlsplit(target).scheme not in ("http", "https"):
                    raise _Failure("bad_redirect", f"redirect to a non-HTTP address: {target[:200]}")
                if target in seen:
                    raise _Failure("redirect_loop", f"redirect loop back to {target}")
                if len(redirects) > MAX_REDIRECTS:
                    raise _Failure("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")
                seen.add(target)
                current = target
        except _RobotsFailure as failure:
            failed = failure.attempt
            return _Attempt(failed.outcome, status=failed.status, redirects=redirects, final_url=current,
                            headers=failed.headers, error=failed.error, retry=False)
        except _Failure as failure:
            return _Attempt(failure.outcome, redirects=redirects, final_url=current, error=str(failure))
        except (TimeoutError, httpx.TimeoutException) as exc:
            return _Attempt("timeout", redirects=redirects, final_url=current,
                            error=f"no complete answer within {self.settings.timeout:g}s ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            outcome = "connection_error"
            if isinstance(exc, httpx.ConnectError) and _tls_failure(exc):
                outcome = "tls_error"
            elif isinstance(exc, httpx.ProtocolError):
                outcome = "protocol_error"
            return _Attempt(outcome, redirects=redirects, final_url=current, error=_describe(exc))
        except httpx.InvalidURL as exc:
            # Configured URLs are validated, so an unusable address came from a server's Location header.
            return _Attempt("bad_redirect", redirects=redirects, final_url=current,
                            error=f"the server redirected to an unusable address ({exc})")
        except Exception as exc:  # noqa: BLE001 (the contract: one odd page never ends a run)
            return _Attempt("fetch_error", redirects=redirects, final_url=current, error=_describe(exc))

    async def _render(self, source: Source) -> _Attempt:
        """One try in the browser: robots.txt as for HTTP, then a browser slot, the host slot and the global limit."""
        if self._renderer is None:
            return _Attempt("browser_unavailable", error="this fetcher was started without a browser")
        if not source.ignore_robots:
            try:
                await self._check_robots(source.url, source.verify_tls)
            except _RobotsFailure as failure:
                failed = failure.attempt
                return _Attempt(failed.outcome, status=failed.status, final_url=source.url,
                                headers=failed.headers, error=failed.error, retry=False)
        host = urlsplit(source.url).hostname or ""
        async with self._renderer.capacity, self._slots.slot(host), self._in_flight:
            return await self._renderer.render(source.url, source.wait_for)

    async def _request(self, plan: _Plan, url: str, headers: dict[str, str], private_allowed: bool) -> _Attempt:
        client = self._client(url, plan.verify_tls)
        async with client.stream("GET", url, headers=headers) as response:
            stream = response.extensions.get("network_stream")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            if peer and not private_allowed and not is_public(str(peer[0])):
                # The name resolved to a public address a moment ago, but the connection went elsewhere.
                raise _Failure("unsafe_redirect", f"refused to read from the private address {peer[0]} ({url})")
            kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
            outcome = classify_status(response.status_code)
            if outcome != "ok":
                body = None
                if outcome == "not_modified":
                    # A 304 has no body; reading its end is what lets the connection serve the next request.
                    with contextlib.suppress(httpx.HTTPError):
                        await response.aread()
                elif response.status_code not in REDIRECT_STATUSES:
                    # The status says what happened; the page is only a hint (a challenge wall?).
                    with contextlib.suppress(_Failure, httpx.HTTPError):
                        body = await self._read_body(response, ERROR_BODY_BYTES, cut_at_cap=True)
                return _Attempt(outcome, status=response.status_code, headers=kept, body=body,
                                error=None if outcome == "not_modified" else f"HTTP {response.status_code}")
            declared = kept.get("content-length", "")
            if not plan.cut_at_cap and declared.isdigit() and int(declared) > plan.max_size:
                raise _Failure("too_large", f"Content-Length {declared} is over the {plan.max_size}-byte cap")
            body = await self._read_body(response, plan.max_size, plan.cut_at_cap)
            return _Attempt("ok", status=response.status_code, headers=kept, body=body)

    @staticmethod
    async def _read_body(response: httpx.Response, cap: int, cut_at_cap: bool) -> bytes | None:
        """Stream the body through a bounded decoder: never more than ``cap`` bytes in memory, raw or decoded.

        With ``cut_at_cap`` the body is cut at the cap (and None when it does not decode).
        """
        chunks: list[bytes] = []
        received = 0
        try:
            decoder = BoundedDecoder(response.headers.get("content-encoding"), cap)
            async for raw in response.aiter_raw():
                received += len(raw)
                if received > cap:
                    raise BodyTooLarge
                chunks.append(decoder.feed(raw))
            chunks.append(decoder.flush())
        except BodyTooLarge:
            if cut_at_cap:
                return b"".join(chunks)[:cap]
            raise _Failure("too_large", f"body is over the {cap}-byte cap") from None
        except DecodingError as exc:
            if cut_at_cap:
                return None
            raise _Failure("bad_encoding", str(exc)) from None
        except httpx.RemoteProtocolError as exc:
            # The headers were fine; the body did not arrive whole (closed early, or a broken chunk).
            declared = response.headers.get("content-length", "")
            expected = f" of {declared}" if declared.isdigit() else ""
            raise _Failure("truncated", f"the body broke off after {received}{expected} bytes ({exc})") from None
        return b"".join(chunks)

    # ------------------------------------------------------------------ robots.txt

    async def _check_robots(self, url: str, verify_tls: bool) -> None:
        """Raise unless robots.txt of the URL's origin allows it (fetched once per origin and run)."""
        origin = origin_of(url)
        key = (origin, verify_tls)
        if key not in self._robots:
            self._robots[key] = asyncio.ensure_future(self._fetch_robots(origin, verify_tls))
        found = await asyncio.shield(self._robots[key])
        if isinstance(found, _Attempt):
            raise _RobotsFailure(found)
        if not found.allows(url, self.settings.user_agent):
            raise _RobotsFailure(_Attempt("robots_disallowed", error=f"robots.txt of {origin} disallows {url}"))

    async def _fetch_robots(self, origin: str, verify_tls: bool) -> RobotsRules | _Attempt:
        """The origin's rules, or the failed attempt when robots.txt is unreachable (RFC 9309: assume disallow)."""
        plan = _Plan(robots_url(origin), verify_tls=verify_tls, obey_robots=False, max_size=ROBOTS_MAX_BYTES,
                     cut_at_cap=True)
        attempt, _ = await self._with_retries(lambda: self._attempt(plan))
        if attempt.outcome in UNFOLLOWABLE_REDIRECTS:
            return RobotsRules()  # a robots.txt that cannot be reached by following its redirects is absent
        rules = rules_from_response(attempt.status, attempt.body) if attempt.status is not None else None
        if rules is not None:
            return rules
        attempt.error = f"robots.txt unreachable: {attempt.error or attempt.outcome}"
        return attempt


class _RobotsFailure(Exception):
    """robots.txt forbids the URL, or could not be read: the attempt to report instead."""

    def __init__(self, attempt: _Attempt):
        super().__init__(attempt.error)
        self.attempt = attempt
