"""The benchmark's page farm: the counters its claims rest on count what really happened."""

from __future__ import annotations

import asyncio

import httpx
from bench.farm import Farm, free_port, host_address, serve
from bench.pages import page, quote


async def _fetch_all(farm: Farm, port: int, hosts: list[int], headers: dict | None = None) -> list[httpx.Response]:
    servers = await serve(farm, 2, port)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            return await asyncio.gather(*(
                client.get(f"http://{host_address(h)}:{port}/p/{n}", headers=headers or {})
                for n, h in enumerate(hosts)))
    finally:
        for server in servers:
            server.close()


def test_the_farm_counts_the_most_requests_in_flight_on_each_host():
    farm = Farm(pages=8, latency=0.2)
    port = free_port(2)
    responses = asyncio.run(_fetch_all(farm, port, [0, 0, 0, 0, 0, 1]))
    assert [r.status_code for r in responses] == [200] * 6
    seen = farm.counters.as_dict()
    assert seen["max_in_flight"] == {host_address(0): 5, host_address(1): 1}
    assert seen["max_in_flight_per_host"] == 5 and seen["requests"] == 6


def test_validators_answer_304_and_an_edit_is_a_new_page():
    farm = Farm(pages=3)
    port = free_port(2)
    first = asyncio.run(_fetch_all(farm, port, [0]))[0]
    assert first.content == page(0, 0) and quote(0) in first.text
    again = asyncio.run(_fetch_all(farm, port, [0], {"If-None-Match": first.headers["etag"]}))[0]
    assert again.status_code == 304 and again.content == b""
    farm.edit(1.0, seed=1)
    edited = asyncio.run(_fetch_all(farm, port, [0], {"If-None-Match": first.headers["etag"]}))[0]
    assert edited.status_code == 200 and edited.content == page(0, 1) != page(0, 0)
    assert farm.counters.statuses == {200: 2, 304: 1}
    assert farm.distinct_compressed_bytes()["pages"] == 2
