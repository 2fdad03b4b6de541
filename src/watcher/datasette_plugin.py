"""A Datasette plugin that lets SQL read watcher's compressed texts and snapshots.

Registered through the ``datasette`` entry point, so any Datasette that runs
where watcher is installed (``watcher browse`` among them) can run::

    select watcher_text(text, codec) from versions where source_id = 'trust-center'
    select watcher_text(body, codec, content_type) from snapshots

Only this module imports Datasette; watcher itself never needs it.
"""

from __future__ import annotations

import sqlite3

from datasette import hookimpl

from .extract import decode_html
from .store import decompress


def watcher_text(blob: bytes | None, codec: str | None, content_type: str | None = None) -> str | None:
    """A stored text or raw body as text: decompressed, then decoded as a browser would."""
    if blob is None or codec is None:
        return None
    return decode_html(decompress(blob, codec), content_type)


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    conn.create_function("watcher_text", 2, watcher_text, deterministic=True)
    conn.create_function("watcher_text", 3, watcher_text, deterministic=True)
