"""Render pages that build their content with JavaScript, in headless Chromium.

A :class:`Renderer` belongs to one check run. It starts the system's Chromium
(see :mod:`watcher.browser`) on the first source that needs it, renders each
page in a fresh browser context (no cookies or storage shared between
sources), and always closes the browser when the run ends, however it ends.

Like an HTTP fetch, a render never raises: it returns one attempt of the
fetch (``watcher.fetch._Attempt``, private to the fetching layer this module
belongs to), whose outcome says what happened. A page that does not settle in
time is a ``timeout``; a browser that crashes is ``browser_error`` (the next
render starts a fresh one, so the retry policy can try again); a browser that
cannot be started at all is ``browser_unavailable`` for the rest of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .browser import BrowserUnavailable, launch_options
from .config import Settings
from .fetch import Redirect, _Attempt, classify_status

#: Seconds allowed to close a page or the browser before it is abandoned as hung.
CLOSE_TIMEOUT = 10.0
#: Requests a rendered page does not need for its text: fewer requests to the vendor, faster renders.
SKIPPED_RESOURCES = frozenset({"image", "media", "font"})
RENDERED_CONTENT_TYPE = "text/html; charset=utf-8"


class Renderer:
    """Headless Chromium for one run: at most ``browser_concurrency`` pages at a time."""

    def __init__(self, settings: Settings):
        self.settings = settings
        #: Taken by the fetcher before a host slot, so that a queue for the browser holds no host's slot.
        self.capacity = asyncio.Semaphore(settings.browser_concurrency)
        self._launch_lock = asyncio.Lock()
        self._playwright: Any = None
        self._browser: Any = None
        self._unavailable: str | None = None

    async def __aenter__(self) -> Renderer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def render(self, url: str, wait_for: str | None = None) -> _Attempt:
        """Load ``url``, wait for network idle (or for ``wait_for`` to be visible), return the DOM as HTML."""
        browser = await self._ready_browser()
        if browser is None:
            return _Attempt("browser_unavailable", final_url=url, error=self._unavailable)
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        timeout = self.settings.timeout
        step = "opening a page"
        context = None
        try:
            async with asyncio.timeout(timeout):
                context = await browser.new_context(
                    user_agent=self.settings.user_agent, service_workers="block", accept_downloads=False
                )
                context.set_default_timeout(timeout * 1000)
                await context.route("**/*", _skip_unneeded)
                page = await context.new_page()
                step = "loading the page" if wait_for else "waiting for the page to load and the network to go idle"
                response = await page.goto(url, wait_until="domcontentloaded" if wait_for else "networkidle")
                if response is None:
                    return _Attempt("browser_error", final_url=url, error="the browser loaded no document")
                redirects = await _redirect_chain(response)
                final_url = response.url
                outcome = classify_status(response.status)
                if outcome != "ok":
                    return _Attempt(outcome, status=response.status, final_url=final_url, redirects=redirects,
                                   error=f"HTTP {response.status}")
                declared = response.headers.get("content-type", "")
                if not _is_markup(declared):
                    # Chromium shows a PDF in its viewer, whose DOM is not the document.
                    return _Attempt("not_a_page", status=response.status, final_url=final_url, redirects=redirects,
                                   error=f"the address serves {declared.split(';')[0]}, not a web page: "
                                         "documents are read with the default `fetch: http`")
                if wait_for:
                    step = f"waiting for {wait_for!r} to appear"
                    await page.wait_for_selector(wait_for, state="visible")
                body = (await page.content()).encode("utf-8")
        except (TimeoutError, PlaywrightTimeout) as exc:
            if not browser.is_connected():
                return _crashed(exc, step, url)
            hint = "" if wait_for else "; set `wait_for` to a selector of the content"
            return _Attempt("timeout", final_url=url,
                           error=f"no rendered page within {timeout:g}s ({step}){hint}")
        except PlaywrightError as exc:
            if not browser.is_connected():
                return _crashed(exc, step, url)
            message = _first_line(exc)
            if "net::ERR_" in message:
                return _Attempt("connection_error", final_url=url, error=message)
            return _Attempt("browser_error", final_url=url, error=f"{step}: {message}")
        finally:
            if context is not None:
                await self._close_context(context, browser)
        if len(body) > self.settings.max_size:
            return _Attempt("too_large", status=response.status, final_url=final_url, redirects=redirects,
                           error=f"the rendered page is over the {self.settings.max_size}-byte cap")
        return _Attempt("ok", status=response.status, final_url=final_url, redirects=redirects,
                       headers={"content-type": RENDERED_CONTENT_TYPE}, body=body)

    async def _ready_browser(self) -> Any:
        """The run's browser, started on first use and again after a crash; None when it cannot start."""
        async with self._launch_lock:
            if self._unavailable is not None:
                return None
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            await self._discard_browser()
            try:
                options = launch_options(self.settings.timeout)
                from playwright.async_api import async_playwright

                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(**options)
            except BrowserUnavailable as exc:
                self._unavailable = str(exc)
            except Exception as exc:  # Playwright reports a failed launch with its generic error types
                self._unavailable = f"the browser did not start: {_first_line(exc)}"
                await self.close()
            return self._browser

    async def _close_context(self, context: Any, browser: Any) -> None:
        """Close one page's context; a browser that cannot even do that is hung and is replaced."""
        try:
            await asyncio.wait_for(context.close(), CLOSE_TIMEOUT)
        except Exception:
            if browser is self._browser:
                async with self._launch_lock:
                    if browser is self._browser:
                        await self._discard_browser()

    async def _discard_browser(self) -> None:
        browser, self._browser = self._browser, None
        if browser is None:
            return
        try:
            await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT)
        except Exception:
            # Stopping Playwright's driver takes a hung browser down with it.
            await self._stop_playwright()

    async def _stop_playwright(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is None:
            return
        with contextlib.suppress(Exception):  # the driver is gone already: nothing is left to close
            await asyncio.wait_for(playwright.stop(), CLOSE_TIMEOUT)

    async def close(self) -> None:
        """Close the browser and Playwright's driver; safe to call twice, and after a crash."""
        await self._discard_browser()
        await self._stop_playwright()


def _is_markup(content_type: str) -> bool:
    """Whether the browser renders a DOM from this type (a missing type is sniffed as HTML)."""
    media_type = content_type.split(";")[0].strip().lower()
    return media_type in ("", "text/html", "application/xhtml+xml")


def _first_line(exc: BaseException) -> str:
    """Playwright's messages run to many lines of call log; the first one says what happened."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _crashed(exc: BaseException, step: str, url: str) -> _Attempt:
    return _Attempt("browser_error", final_url=url, error=f"the browser crashed while {step}: {_first_line(exc)}")


async def _skip_unneeded(route: Any) -> None:
    if route.request.resource_type in SKIPPED_RESOURCES:
        await route.abort()
    else:
        await route.continue_()


async def _redirect_chain(response: Any) -> list[Redirect]:
    """The redirects the browser followed to reach ``response``, oldest first."""
    chain: list[Redirect] = []
    request = response.request
    while request.redirected_from is not None:
        previous = request.redirected_from
        hop = await previous.response()
        chain.append(Redirect(hop.status if hop is not None else 0, previous.url, request.url))
        request = previous
    chain.reverse()
    return chain
