"""A web server on 127.0.0.1 that misbehaves on purpose, written on raw asyncio streams.

HTTP libraries cannot send a Content-Length that lies, stop mid-body, reset
the connection, answer one header byte at a time or never answer at all: this
server writes the bytes itself. Each path is served by a behaviour (an async
function given the request and the stream writer) that a test can swap
between checks. Every loop here is bounded in time, so nothing outlives a test.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Awaitable, Callable

import brotli

#: No behaviour runs longer than this, whatever the client does.
MAX_BEHAVIOUR_SECONDS = 20.0


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def head(status: int, headers: dict[str, str] | None = None, reason: str = "X") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(body: bytes | str = b"", status: int = 200, content_type: str = "text/html; charset=utf-8",
            headers: dict[str, str] | None = None, content_length: int | None = None) -> Behaviour:
    """A plain response; ``content_length`` overrides (and may contradict) the real length."""
    data = body.encode("utf-8") if isinstance(body, str) else body

    async def behaviour(request: Request, writer: asyncio.StreamWriter) -> None:
        fields = {"Content-Type": content_type, **(headers or {})}
        fields["Content-Length"] = str(len(data) if content_length is None else content_length)
        writer.write(head(status, fields) + data)
        await writer.drain()

    return behaviour


def redirect(location: str, status: int = 302) -> Behaviour:
    return respond(b"", status=status, headers={"Location": location})


def _bounded(deadline_from: float) -> bool:
    return time.monotonic() - deadline_from < MAX_BEHAVIOUR_SECONDS


def slow_headers(interval: float = 0.2) -> Behaviour:
    """The status line, then one byte of headers per ``interval``, forever."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter) -> None:
        start = time.monotonic()
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while _bounded(start):
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(interval)

    return behaviour


def trickle(interval: float = 0.1) -> Behaviour:
    """Valid headers, then one byte of body per ``interval``: each read is quick, the whole never ends."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter) -> None:
        start = time.monotonic()
        writer.write(head(200, {"Content-Type": "text/html", "Content-Length": "1000000"}) + b"<html><body><p>")
        while _bounded(start):
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(interval)

    return behaviour


def silent() -> Behaviour:
    """Accept the connection, read the request, never answer."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(MAX_BEHAVIOUR_SECONDS)

    return behaviour


def reset_mid_body(sent: bytes) -> Behaviour:
    """Headers announcing more than ``sent``, then ``sent``, then a TCP reset."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head(200, {"Content-Type": "text/html", "Content-Length": str(len(sent) * 10)}) + sent)
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    return behaviour


def endless_body(chunk: bytes = b"<p>" + b"x" * 65530 + b"</p>") -> Behaviour:
    """A chunked body that never ends (until the client leaves or the time bound)."""

    async def behaviour(request: Request, writer: asyncio.StreamWriter) -> None:
        start = time.monotonic()
        writer.write(head(200, {"Content-Type": "text/html", "Transfer-Encoding": "chunked"}))
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while _bounded(start):
            writer.write(frame)
            await writer.drain()

    return behaviour


def gzip_bomb() -> Behaviour:
    """gzip whose every 4.6 KB inflates to 1 MiB of zeros, sent without end: an infinite decompression bomb."""
    engine = zlib.compressobj(1, zlib.DEFLATED, 31)
    header = engine.compress(b"")
    # After a full flush the next block references nothing before it, so it can repeat forever.
    block = engine.compress(b"\0" * (1 << 20)) + engine.flush(zlib.Z_FULL_FLUSH)

    async def behaviour(request: Request, writer: asyncio.StreamWriter) -> None:
        start = time.monotonic()
        writer.write(head(200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}) + header)
        while _bounded(start):
            writer.write(block * 16)
            await writer.drain()

    return behaviour


def brotli_bomb(mebibytes: int = 2048) -> Behaviour:
    """About 0.4 MB of brotli that decodes to ``mebibytes`` MiB of zeros."""
    engine = brotli.Compressor(quality=1)
    zeros = b"\0" * (1 << 20)
    data = b"".join(engine.process(zeros) for _ in range(mebibytes)) + engine.finish()
    return respond(data, headers={"Content-Encoding": "br"})


def retry_after_date(seconds: float) -> str:
    return formatdate(time.time() + seconds, usegmt=True)


class HostileServer:
    """Serves behaviours by path on 127.0.0.1 from a thread with its own event loop."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.routes: dict[str, Behaviour] = {"/robots.txt": respond("no robots here", status=404)}
        self.requests: list[Request] = []
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-server", daemon=True)
        self._connections: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    def __enter__(self) -> HostileServer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls), self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url(self, path: str) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def route(self, path: str, behaviour: Behaviour) -> None:
        self.routes[path] = behaviour

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1").split()
            if len(request_line) < 2:
                return
            request = Request(request_line[0], request_line[1].split("?", 1)[0])
            while True:
                line = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1").strip()
                if not line:
                    break
                name, _, value = line.partition(":")
                request.headers[name.strip().lower()] = value.strip()
            self.requests.append(request)
            behaviour = self.routes.get(request.path, respond("not here", status=404))
            await asyncio.wait_for(behaviour(request, writer), MAX_BEHAVIOUR_SECONDS + 5)
            writer.close()  # graceful: what was written is delivered, then FIN
            await asyncio.wait_for(writer.wait_closed(), 5)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            writer.transport.abort()
        finally:
            writer.close()  # idempotent; after an abort it only marks the writer closed
            self._connections.discard(task)
