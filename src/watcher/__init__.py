"""watcher: an evidence-tracking crawler and change monitor.

It fetches every source an evidence registry cites, keeps each version in
SQLite, diffs it against the one before and flags the records whose evidence
changed, so that editors can re-verify them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .check import RunSummary, run_check  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .errors import ConfigError, StoreError, UsageError, WatcherError  # noqa: E402
from .store import Store  # noqa: E402
from .verify import verify_records  # noqa: E402

__all__ = [
    "Config", "ConfigError", "RunSummary", "Store", "StoreError", "UsageError", "WatcherError",
    "load_config", "run_check", "verify_records",
]
