"""The page farm: synthetic pages served on many loopback addresses, in a process of its own.

    python -m bench.farm --pages 1000 --hosts 20      # serves until its standard input closes

Page ``n`` is ``/p/<n>`` on every host (``127.0.0.2`` to ``127.0.0.<hosts + 1>``,
one port); the benchmark spreads pages over hosts by number. Linux routes all
of 127.0.0.0/8 to the loopback interface, so each address is a host of its own
for a client's per-host limits. The farm runs in its own process so that its
CPU time is never charged to the tool under test.

It answers with an optional latency per response, ETag and Last-Modified
validators that can be switched off (and honours If-None-Match, else
If-Modified-Since), and counts what it did: requests, 304s, bytes sent, and
the largest number of requests in flight at once on each host. A control
interface on ``127.0.0.1`` (same port) edits pages and reads the counters;
:class:`FarmClient` speaks it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import subprocess
import sys
import time
import urllib.request
import zlib
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

from .pages import page

CONTROL_HOST = "127.0.0.1"
#: The control interface is on loopback: never through a proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def host_address(index: int) -> str:
    """The address of host ``index`` (0-based): 127.0.0.2, 127.0.0.3, ..."""
    return f"127.0.0.{2 + index}"


@dataclass
class _Served:
    body: bytes
    etag: str
    last_modified: str


@dataclass
class Counters:
    """What the farm saw since the counters were last reset."""

    requests: int = 0
    connections: int = 0
    statuses: Counter = field(default_factory=Counter)
    bytes_sent: int = 0
    in_flight: Counter = field(default_factory=Counter)
    max_in_flight: Counter = field(default_factory=Counter)

    def enter(self, host: str) -> None:
        self.in_flight[host] += 1
        self.max_in_flight[host] = max(self.max_in_flight[host], self.in_flight[host])

    def leave(self, host: str) -> None:
        self.in_flight[host] -= 1

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "connections": self.connections,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "bytes_sent": self.bytes_sent,
            "max_in_flight_per_host": max(self.max_in_flight.values(), default=0),
            "max_in_flight": dict(self.max_in_flight),
        }


class Farm:
    """The pages, their versions and the counters; ``handle`` serves one connection."""

    def __init__(self, pages: int, latency: float = 0.0, validators: bool = True):
        self.pages = pages
        self.latency = latency
        self.validators = validators
        self.versions = [0] * pages
        self.counters = Counters()
        self.served_versions: set[tuple[int, int]] = set()
        self._first = [self._render(number, 0, time.time() - 86400) for number in range(pages)]
        self._current: dict[int, _Served] = {}

    @staticmethod
    def _render(number: int, version: int, modified: float) -> _Served:
        body = page(number, version)
        return _Served(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"', formatdate(modified, usegmt=True))

    def served(self, number: int) -> _Served:
        return self._current.get(number) or self._first[number]

    # ------------------------------------------------------------------ control

    def reset(self) -> None:
        """Every page back to its first version; counters and the record of served pages cleared."""
        self.versions = [0] * self.pages
        self._current.clear()
        self.served_versions.clear()
        self.counters = Counters()

    def edit(self, fraction: float, seed: int) -> list[int]:
        """Give ``fraction`` of the pages (chosen by ``seed``) their next version; returns their numbers."""
        chosen = random.Random(seed).sample(range(self.pages), round(self.pages * fraction))
        # A whole second later than any check so far, so that If-Modified-Since sees the change.
        modified = int(time.time()) + 1
        for number in chosen:
            self.versions[number] += 1
            self._current[number] = self._render(number, self.versions[number], modified)
        return chosen

    def distinct_compressed_bytes(self) -> dict:
        """The distinct page bodies served with a 200 since the last reset, and their size compressed with zlib."""
        total = raw = 0
        for number, version in self.served_versions:
            body = page(number, version)
            raw += len(body)
            total += len(zlib.compress(body))
        return {"pages": len(self.served_versions), "raw_bytes": raw, "zlib_bytes": total}

    # ------------------------------------------------------------------ serving

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        if host != CONTROL_HOST:
            self.counters.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                if host == CONTROL_HOST:
                    status, extra, body = self._control(target)
                else:
                    self.counters.enter(host)
                    try:
                        if self.latency:
                            await asyncio.sleep(self.latency)
                        status, extra, body = self._page(target, headers)
                    finally:
                        self.counters.leave(host)
                response = self._response(status, extra, body)
                writer.write(response)
                await writer.drain()
                if host != CONTROL_HOST:
                    self.counters.requests += 1
                    self.counters.statuses[status] += 1
                    self.counters.bytes_sent += len(response)
                if headers.get("connection", "").lower() == "close":
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    def _page(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        path = urlsplit(target).path
        if not path.startswith("/p/") or not path[3:].isdigit() or int(path[3:]) >= self.pages:
            return 404, {"Content-Type": "text/plain"}, b"not here"
        number = int(path[3:])
        served = self.served(number)
        extra = {"Content-Type": "text/html; charset=utf-8"}
        if self.validators:
            extra["ETag"] = served.etag
            extra["Last-Modified"] = served.last_modified
            if _not_modified(headers, served):
                return 304, extra, b""
        self.served_versions.add((number, self.versions[number]))
        return 200, extra, served.body

    def _control(self, target: str) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/_farm/stats":
            answer: object = self.counters.as_dict()
        elif parts.path == "/_farm/reset":
            self.reset()
            answer = "ok"
        elif parts.path == "/_farm/counters/reset":
            self.counters = Counters()
            answer = "ok"
        elif parts.path == "/_farm/configure":
            self.latency = float(query.get("latency", self.latency))
            self.validators = query.get("validators", "1" if self.validators else "0") == "1"
            answer = "ok"
        elif parts.path == "/_farm/edit":
            answer = self.edit(float(query["fraction"]), int(query["seed"]))
        elif parts.path == "/_farm/distinct":
            answer = self.distinct_compressed_bytes()
        else:
            return 404, {"Content-Type": "text/plain"}, b"unknown control"
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    @staticmethod
    def _response(status: int, extra: dict[str, str], body: bytes) -> bytes:
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "Unknown")
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in extra.items()]
        if status != 304:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _not_modified(headers: dict[str, str], served: _Served) -> bool:
    """If-None-Match wins when present (RFC 9110); If-Modified-Since counts only without it."""
    if "if-none-match" in headers:
        return served.etag in [tag.strip() for tag in headers["if-none-match"].split(",")]
    since = headers.get("if-modified-since")
    if since:
        try:
            return parsedate_to_datetime(served.last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


async def serve(farm: Farm, hosts: int, port: int) -> list[asyncio.Server]:
    """Listen on the control address and ``hosts`` page addresses, all on ``port``."""
    servers = []
    for address in [CONTROL_HOST] + [host_address(i) for i in range(hosts)]:
        servers.append(await asyncio.start_server(farm.handle, address, port, reuse_address=True))
    return servers


def free_port(hosts: int) -> int:
    """A port free on the control address and every page address."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((CONTROL_HOST, 0))
            port = probe.getsockname()[1]
        try:
            for index in range(hosts):
                with socket.socket() as other:
                    other.bind((host_address(index), port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port is free on every loopback address")


async def _main(args: argparse.Namespace) -> None:
    farm = Farm(args.pages, latency=args.latency, validators=not args.no_validators)
    servers = await serve(farm, args.hosts, args.port)
    print(f"ready {args.port}", flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our standard input (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve synthetic policy pages on loopback addresses.")
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--port", type=int, default=0, help="default: a free one")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds before each answer (default 0.1)")
    parser.add_argument("--no-validators", action="store_true", help="send no ETag or Last-Modified")
    args = parser.parse_args(argv)
    args.port = args.port or free_port(args.hosts)
    asyncio.run(_main(args))


class FarmClient:
    """Starts the farm in a child process and drives it through its control interface."""

    def __init__(self, pages: int, hosts: int = 20, latency: float = 0.0, validators: bool = True):
        self.pages = pages
        self.hosts = hosts
        command = [sys.executable, "-m", "bench.farm", "--pages", str(pages), "--hosts", str(hosts),
                   "--latency", str(latency)] + ([] if validators else ["--no-validators"])
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("ready "):
            self.close()
            raise RuntimeError(f"the page farm did not start: {line!r}")
        self.port = int(line.split()[1])

    def url(self, number: int) -> str:
        """Page ``number``, on host ``number % hosts``."""
        return f"http://{host_address(number % self.hosts)}:{self.port}/p/{number}"

    def _call(self, path: str) -> object:
        with _DIRECT.open(f"http://{CONTROL_HOST}:{self.port}{path}", timeout=600) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict:
        return self._call("/_farm/stats")  # type: ignore[return-value]

    def reset_counters(self) -> None:
        self._call("/_farm/counters/reset")

    def reset(self) -> None:
        self._call("/_farm/reset")

    def configure(self, latency: float, validators: bool = True) -> None:
        self._call(f"/_farm/configure?latency={latency}&validators={int(validators)}")

    def edit(self, fraction: float, seed: int) -> list[int]:
        return self._call(f"/_farm/edit?fraction={fraction}&seed={seed}")  # type: ignore[return-value]

    def distinct(self) -> dict:
        return self._call("/_farm/distinct")  # type: ignore[return-value]

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> FarmClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


if __name__ == "__main__":
    main()
