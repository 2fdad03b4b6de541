"""Which network addresses a fetch may reach: the guard against server-side request forgery.

A vendor page that redirects to ``http://169.254.169.254/`` or to
``http://localhost:8080/admin`` would make watcher, running inside someone's
network, fetch an internal address and store what it says. A fetch whose
configured address is public may therefore only reach public addresses; a
source configured with a private, loopback or link-local address (an intranet
page, or a test server on 127.0.0.1) may reach such addresses on purpose.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Awaitable, Callable

#: Looks a host name up: (host, port) → the IP addresses it resolves to (empty when it does not).
Resolver = Callable[[str, int], Awaitable[list[str]]]


def is_public(address: str) -> bool:
    """True for a globally routable unicast address; False for private, loopback, link-local and the like."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever the IPv6 rules say
    return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system resolves ``host`` to; an IP literal is returned as is."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []  # the connection attempt will report the failure
    return sorted({str(info[4][0]) for info in infos})


def any_private(addresses: list[str]) -> bool:
    return any(not is_public(address) for address in addresses)
