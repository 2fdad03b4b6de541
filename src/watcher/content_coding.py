"""Decode gzip, deflate and brotli response bodies without ever holding more than a cap.

httpx decodes a compressed chunk in one call, so a 64 KB chunk of a
decompression bomb can become gigabytes before anyone counts them. These
decoders produce at most ``limit + 1`` bytes in total whatever they are fed:
one byte more than the cap is enough to know that the body is too large.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli

#: The codings watcher asks for (Accept-Encoding) and can decode.
SUPPORTED_CODINGS = ("gzip", "deflate", "br")
ACCEPT_ENCODING = ", ".join(SUPPORTED_CODINGS)


class DecodingError(Exception):
    """A body in a coding watcher does not support, or one that does not decode."""


class BodyTooLarge(Exception):
    """The decoded body passed the cap."""


class _Stage(Protocol):
    def feed(self, data: bytes, room: int) -> bytes: ...

    def flush(self, room: int) -> bytes: ...


class _Zlib:
    """gzip (with its header) or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, coding: str):
        self._raw_fallback = coding == "deflate"
        self._engine = zlib.decompressobj(zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        try:
            out = self._engine.decompress(data, room + 1)
        except zlib.error:
            if not (self._raw_fallback and not self._started):
                raise
            self._engine = zlib.decompressobj(-zlib.MAX_WBITS)
            self._raw_fallback = False
            out = self._engine.decompress(data, room + 1)
        self._started = True
        if self._engine.unconsumed_tail:
            # Output stopped at the room left: the body is over the cap.
            raise BodyTooLarge
        return out

    def flush(self, room: int) -> bytes:
        if not self._started:
            return b""
        out = self._engine.flush(room + 1)
        if not self._engine.eof:
            raise DecodingError("the compressed body ends before its end marker")
        return out


class _Brotli:
    def __init__(self) -> None:
        self._engine = brotli.Decompressor()
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        self._started = self._started or bool(data)
        out = self._engine.process(data, output_buffer_limit=room + 1)
        if not self._engine.can_accept_more_data():
            # The decoder holds more output than the room left.
            raise BodyTooLarge
        return out

    def flush(self, room: int) -> bytes:
        if self._started and not self._engine.is_finished():
            raise DecodingError("the compressed body ends before its end marker")
        return b""


def _stage(coding: str) -> _Stage:
    if coding in ("gzip", "x-gzip"):
        return _Zlib("gzip")
    if coding == "deflate":
        return _Zlib("deflate")
    if coding == "br":
        return _Brotli()
    raise DecodingError(f"unsupported Content-Encoding {coding!r}")


class BoundedDecoder:
    """Undo the codings of a Content-Encoding header, chunk by chunk, within ``limit`` bytes.

    Raises :class:`BodyTooLarge` as soon as the decoded body passes ``limit``
    and :class:`DecodingError` for an unknown coding or corrupt data.
    """

    def __init__(self, content_encoding: str | None, limit: int):
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        # Codings are listed in the order they were applied: undo the last first.
        self._stages = [_stage(c) for c in reversed(codings) if c and c != "identity"]
        self.limit = limit
        self.produced = 0

    def feed(self, data: bytes) -> bytes:
        return self._run(data, final=False)

    def flush(self) -> bytes:
        return self._run(b"", final=True)

    def _run(self, data: bytes, final: bool) -> bytes:
        try:
            for stage in self._stages:
                room = self.limit - self.produced
                data = stage.feed(data, room) if data or not final else b""
                if final:
                    data += stage.flush(room - len(data))
        except (zlib.error, brotli.error) as exc:
            raise DecodingError(f"the body does not decode: {exc}") from None
        self.produced += len(data)
        if self.produced > self.limit:
            raise BodyTooLarge
        return data
