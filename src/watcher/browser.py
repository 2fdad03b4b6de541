"""Find and describe the launch of the system's Chromium, for Playwright.

watcher never downloads a browser: it drives the Chromium that the system
package manager installed (Debian's ``chromium``), through the Playwright
Python package (the ``watcher[browser]`` extra). This module only knows where
that browser is and how to start it; what a browser does with a page lives
with the code that uses it.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from .errors import WatcherError

#: Set to the path of a Chromium executable to use that one rather than the first found on PATH.
CHROMIUM_ENV = "WATCHER_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
#: Headless, with nothing running in the background that could reach the network on its own
#: (component updates, sync, first-run pages), no proxy from the environment (as watcher's HTTP client),
#: and no GPU or sandbox (neither exists on servers and in CI).
#: Playwright adds a fresh temporary profile (--user-data-dir) to every launch.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-client-side-phishing-detection",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-quic",
    "--mute-audio",
)


class BrowserUnavailable(WatcherError):
    """Playwright or a Chromium executable is missing."""


def find_chromium() -> str | None:
    """The Chromium executable to drive: ``$WATCHER_CHROMIUM``, else the first Chromium on PATH."""
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_options(timeout: float) -> dict[str, Any]:
    """Keyword arguments for Playwright's ``chromium.launch``; raises BrowserUnavailable with the fix.

    ``timeout`` (seconds) bounds the launch: a browser that never comes up is an error, not a wait.
    """
    try:
        import playwright  # noqa: F401
    except ImportError:
        raise BrowserUnavailable(
            "the Playwright package is not installed (pip install 'watcher[browser]')"
        ) from None
    executable = find_chromium()
    if executable is None:
        where = os.environ.get(CHROMIUM_ENV)
        raise BrowserUnavailable(
            f"{CHROMIUM_ENV}={where} is not an executable" if where
            else "no Chromium found on PATH (install Debian's chromium package, or set WATCHER_CHROMIUM)"
        )
    return {
        "executable_path": executable,
        "headless": True,
        "args": list(CHROMIUM_ARGS),
        "timeout": timeout * 1000,
    }
