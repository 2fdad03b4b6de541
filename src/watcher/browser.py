"""The system's Chromium, for Playwright: found on the machine, never downloaded.

watcher drives the Chromium the operating system provides (Debian's
``chromium`` package: ``/usr/bin/chromium``) rather than a browser build that
``playwright install`` would fetch. Pass :func:`chromium_launch_options` to
Playwright's ``chromium.launch`` (sync or async API alike).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from .errors import WatcherError

#: Where to look, in order: an explicit path, then the names distributions give the browser.
CHROMIUM_ENV = "WATCHER_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
#: Headless, with no sandbox (containers and CI run as root), no GPU, and none of
#: the browser's own traffic (updates, sync, field trials): only the pages asked for.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)


class BrowserUnavailable(WatcherError):
    """No Chromium on this machine."""


def find_chromium() -> str | None:
    """The path of the system's Chromium: ``$WATCHER_CHROMIUM``, else the first browser on the PATH."""
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_launch_options() -> dict[str, Any]:
    """Keyword arguments for Playwright's ``chromium.launch`` that start the system's Chromium headless."""
    path = find_chromium()
    if path is None:
        raise BrowserUnavailable(
            f"no Chromium found (looked for ${CHROMIUM_ENV}, then {', '.join(CHROMIUM_NAMES)} on the PATH); "
            "install the system's package, e.g. apt-get install chromium"
        )
    return {"executable_path": path, "headless": True, "args": list(CHROMIUM_ARGS)}
