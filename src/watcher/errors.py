"""The exceptions watcher raises.

    WatcherError                  anything watcher reports to its user
    ├── ConfigError               sources.yaml is unreadable or invalid (exit status 2)
    ├── UsageError                a command was given an id or value it cannot use (exit status 2)
    ├── StoreError                the database cannot be opened or is of an unknown schema
    └── LockedError               another ``watcher schedule`` already runs on the database

Fetch failures are not exceptions: they are recorded as outcomes of a fetch
(see ``watcher.fetch.FetchResult``) so that a run always finishes.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base class of every error watcher reports to its user."""


class ConfigError(WatcherError):
    """A configuration file that cannot be used.

    The message always names the file, the line and the key path, so that
    ``str(error)`` is a complete one-line explanation.
    """

    def __init__(self, path: str, line: int | None, key: str, message: str):
        self.path = path
        self.line = line
        self.key = key
        self.message = message
        where = f"{path}:{line}" if line else path
        key_part = f" {key}:" if key else ""
        super().__init__(f"{where}:{key_part} {message}")


class UsageError(WatcherError):
    """A command was given an id or an option value it cannot use."""


class StoreError(WatcherError):
    """The database cannot be used (a newer schema, or a file that is not SQLite)."""


class LockedError(WatcherError):
    """Another ``watcher schedule`` already writes to this database."""
