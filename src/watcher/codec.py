"""How bodies and texts are stored: compressed whole, or as a delta against an earlier one. Pure functions.

A page rarely changes much between two checks, so a new snapshot (or text)
is compressed with zstd using the source's earlier one as a dictionary: the
stored delta holds only what differs, a few hundred bytes where the page
compressed whole takes tens of kilobytes. The earlier one is always stored
whole (a *key*), so reading anything takes at most two decompressions.

Codecs, as the ``codec`` column names them (rows keep the codec they were
written with, so databases written before stay readable):

- ``identity``    the bytes as they are
- ``zlib``        zlib, whole (what watcher wrote before zstd)
- ``zstd``        zstd, whole: a key
- ``zstd-delta``  zstd with a key's bytes as its dictionary (the row names its key)
"""

from __future__ import annotations

import zlib

import zstandard

from .errors import StoreError

IDENTITY, ZLIB, ZSTD, ZSTD_DELTA = "identity", "zlib", "zstd", "zstd-delta"
#: zstd's own default: about zlib's ratio at a fifth of its time. Dictionaries do the rest.
LEVEL = 3
#: A delta larger than this share of its key is no longer worth it: the page drifted, store a new key.
DELTA_LIMIT = 0.25


def compress(data: bytes, key: bytes | None = None) -> tuple[bytes, str]:
    """``data`` compressed (with ``key`` as its dictionary when given), and the codec used."""
    if key is None:
        return zstandard.ZstdCompressor(level=LEVEL).compress(data), ZSTD
    dictionary = zstandard.ZstdCompressionDict(key, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary).compress(data), ZSTD_DELTA


def decompress(blob: bytes, codec: str, key: bytes | None = None) -> bytes:
    """The bytes stored as ``blob`` with ``codec``; a delta needs the bytes of its key."""
    if codec == ZSTD:
        return zstandard.ZstdDecompressor().decompress(blob)
    if codec == ZSTD_DELTA:
        if key is None:
            raise StoreError("a delta cannot be read without the key it was stored against")
        dictionary = zstandard.ZstdCompressionDict(key, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=dictionary).decompress(blob)
    if codec == ZLIB:
        return zlib.decompress(blob)
    if codec == IDENTITY:
        return blob
    raise StoreError(f"unknown compression {codec!r}; this database was written by a newer watcher")


def is_delta(codec: str) -> bool:
    return codec == ZSTD_DELTA


def worth_a_delta(delta_size: int, key_stored_size: int) -> bool:
    """Keep a delta only while it is small beside its key; past that, the page has drifted."""
    return delta_size <= key_stored_size * DELTA_LIMIT
