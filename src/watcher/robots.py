"""robots.txt, read as RFC 9309 says: the rules, or what to assume when there are none.

Pure functions; the fetcher downloads ``/robots.txt`` once per origin and run
and asks :class:`RobotsRules` about every URL it is about to request.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

#: RFC 9309 asks crawlers to parse at least 500 KiB; anything after it is ignored.
ROBOTS_MAX_BYTES = 500 * 1024


def origin_of(url: str) -> str:
    """scheme://host[:port]: robots.txt applies to one origin."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc.lower(), "", "", ""))


def robots_url(url: str) -> str:
    return origin_of(url) + "/robots.txt"


@dataclass(frozen=True)
class RobotsRules:
    """The rules of one origin; no parser means everything is allowed."""

    parser: Protego | None = None

    def allows(self, url: str, user_agent: str) -> bool:
        return self.parser is None or self.parser.can_fetch(url, user_agent)


def rules_from_response(status: int, body: bytes | None) -> RobotsRules | None:
    """The rules a robots.txt response sets, or None when it is unreachable.

    2xx: the file's rules. 4xx (no file, or not for us): everything is
    allowed. 429 and 5xx: unreachable, and RFC 9309 says to assume complete
    disallow, which the caller reports as a failed check.
    """
    if 200 <= status < 300:
        text = (body or b"")[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
        return RobotsRules(Protego.parse(text))
    if 400 <= status < 500 and status != 429:
        return RobotsRules()
    return None
