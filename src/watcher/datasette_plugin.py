"""A Datasette plugin that lets SQL read watcher's compressed texts and snapshots.

Registered through the ``datasette`` entry point, so any Datasette that runs
where watcher is installed (``watcher browse`` among them) can run::

    select watcher_text(text, codec) from versions where source_id = 'trust-center'
    select watcher_text(body, codec, content_type) from snapshots

A row stored as a delta (codec ``zstd-delta``) is read with its key row's
blob and codec as two more arguments::

    select watcher_text(v.text, v.codec, null, k.text, k.codec)
    from versions v left join versions k on k.id = v.base_version_id

Only this module imports Datasette; watcher itself never needs it.
"""

from __future__ import annotations

import sqlite3

from datasette import hookimpl

from .codec import decompress
from .extract import decode_html


def watcher_text(blob: bytes | None, codec: str | None, content_type: str | None = None,
                 key_blob: bytes | None = None, key_codec: str | None = None) -> str | None:
    """A stored text or raw body as text: decompressed (a delta with its key), then decoded as a browser would."""
    if blob is None or codec is None:
        return None
    key = decompress(key_blob, key_codec) if key_blob is not None and key_codec is not None else None
    return decode_html(decompress(blob, codec, key), content_type)


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    conn.create_function("watcher_text", 2, watcher_text, deterministic=True)
    conn.create_function("watcher_text", 3, watcher_text, deterministic=True)
    conn.create_function("watcher_text", 5, watcher_text, deterministic=True)
