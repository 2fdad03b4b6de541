"""Load and validate ``sources.yaml`` into frozen dataclasses.

The file is read with PyYAML's composer, not its constructor, so that every
value keeps the line it came from: each error names the file, the line and the
key path (``sources.trust-center.every``), and validation is complete before
anything touches the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import yaml
from selectolax.lexbor import LexborHTMLParser

from .errors import ConfigError

MAX_CONFIG_BYTES = 5 * 1024 * 1024
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Environment variable names: upper case, so that a pasted secret is refused rather than stored.
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: RFC 9110 token: header and cookie names.
TOKEN_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Deeper YAML than this is no configuration but an attempt to exhaust the parser.
MAX_YAML_DEPTH = 32
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}
DEFAULT_EVERY = 86400.0
#: How a source is fetched: a plain HTTP request, or rendered in headless Chromium.
FETCHERS = ("http", "browser")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The SMTP port each ``tls`` mode uses unless ``port`` says otherwise.
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class Settings:
    """How politely and how patiently sources are fetched."""

    user_agent: str = "watcher/0.1 (+https://example.org/contact)"
    concurrency: int = 16
    per_host: int = 2
    host_delay: float = 1.0
    timeout: float = 30.0
    retries: int = 2
    backoff: float = 1.0
    max_size: int = 5 * 1000 * 1000  # a page is parsed whole: the cap bounds memory too
    max_retry_after: float = 120.0
    browser_concurrency: int = 2


@dataclass(frozen=True)
class Credentials:
    """Request headers and cookies a source needs, as (name, environment variable) pairs."""

    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Source:
    """One cited page and the part of it that is watched."""

    id: str
    url: str
    select: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    every: float = DEFAULT_EVERY
    fetch: str = "http"
    wait_for: str | None = None  # browser only: render until this CSS selector is visible
    verify_tls: bool = True  # False: accept any certificate (reports say so)
    ignore_robots: bool = False  # True: fetch even where robots.txt disallows it (reports say so)
    credentials: Credentials = Credentials()

    @property
    def fetch_options(self) -> tuple[object, ...]:
        """What shapes the request; sources sharing a URL share one fetch, so they must agree on it."""
        return (self.verify_tls, self.ignore_robots, self.credentials)


@dataclass(frozen=True)
class Cite:
    """A record's reliance on one source: a passage, terms to watch, or the whole text."""

    source: str
    quote: str | None = None
    watch_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Record:
    """One evidence record, identified on the command line as ``offering/record``."""

    id: str
    offering: str
    question: str | None
    status: str | None
    verified: date | None
    review_every: float | None
    cites: tuple[Cite, ...]


@dataclass(frozen=True)
class Offering:
    id: str
    name: str
    records: tuple[Record, ...]


@dataclass(frozen=True)
class EmailChannel:
    """Digests by SMTP. Credentials are the names of environment variables, never their values."""

    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    tls: str = "starttls"  # starttls | ssl | none
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 30.0
    retries: int = 2
    backoff: float = 1.0


@dataclass(frozen=True)
class WebhookChannel:
    """Digests as a JSON POST. The URL may itself be a secret (Slack's are), so it can come from the environment."""

    url: str | None = None
    url_env: str | None = None
    token_env: str | None = None
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0


@dataclass(frozen=True)
class Notify:
    """Where digests go; no channel means no notifications."""

    email: EmailChannel | None = None
    webhook: WebhookChannel | None = None

    @property
    def configured(self) -> bool:
        return self.email is not None or self.webhook is not None


@dataclass(frozen=True)
class Config:
    path: str
    settings: Settings
    sources: dict[str, Source] = field(hash=False)
    offerings: dict[str, Offering] = field(hash=False)
    notify: Notify = field(default_factory=Notify)

    @cached_property
    def records(self) -> dict[str, Record]:
        return {r.id: r for o in self.offerings.values() for r in o.records}

    @cached_property
    def _cites_by_source(self) -> dict[str, list[tuple[Record, Cite]]]:
        # Built once: a run asks for every source's cites, and a scan per source would be quadratic.
        index: dict[str, list[tuple[Record, Cite]]] = {}
        for record in self.records.values():
            for cite in record.cites:
                index.setdefault(cite.source, []).append((record, cite))
        return index

    def cites_of(self, source_id: str) -> list[tuple[Record, Cite]]:
        """Every (record, cite) pair that relies on ``source_id``."""
        return list(self._cites_by_source.get(source_id, ()))


# --------------------------------------------------------------------------
# Value parsers: pure functions from text to value, raising ValueError.


def parse_duration(text: str) -> float:
    """``"12h"``, ``"1d"``, ``"1h30m"``, ``"0s"`` → seconds."""
    compact = text.strip().lower()
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(compact):
        if compact[pos:match.start()].strip():
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or compact[pos:].strip():
        raise ValueError(
            f"bad duration {text!r}: expected a number and a unit (s, m, h, d, w), e.g. 12h or 1d"
        )
    return total


def parse_size(text: str) -> int:
    """``"10MB"``, ``"512KiB"``, ``"1000000"`` → bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"bad size {text!r}: expected a number of bytes, e.g. 10MB")
    unit = (match.group(2) or "B").lower()
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def check_selector(selector: str) -> None:
    """Raise ValueError when selectolax rejects the CSS selector.

    selectolax only reports a bad selector when it is used, so it is tried on
    an empty document while the config loads rather than in the middle of a run.
    """
    try:
        LexborHTMLParser("<html></html>").css(selector)
    except Exception as exc:  # selectolax raises a generic error type
        raise ValueError(f"invalid CSS selector {selector!r}") from exc


def check_url(text: str) -> str:
    url = text.strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError(f"url contains spaces or control characters: {text!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"url must start with http:// or https://, got {text!r}")
    if not parts.hostname:
        raise ValueError(f"url has no host: {text!r}")
    if "@" in parts.netloc:
        raise ValueError("url must not carry a user name or password; name environment variables under credentials")
    try:
        parts.port  # noqa: B018 (a bad port raises only when read)
    except ValueError:
        raise ValueError(f"url has a bad port: {text!r}") from None
    return url


# --------------------------------------------------------------------------
# Walking the composed YAML tree.


class _Refused(yaml.MarkedYAMLError):
    """A construct refused where it stands: an alias (``*name``), so that no file can expand
    into a billion nodes, or nesting so deep that it could only exhaust the parser."""


class _Guarded:
    """Refuses aliases and deep nesting while the document is composed, whichever parser reads it."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        event = self.peek_event()
        if self.check_event(yaml.AliasEvent):
            raise _Refused(None, None, "YAML aliases (*name) are not supported in sources.yaml", event.start_mark)
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1


class _Loader(_Guarded, yaml.SafeLoader):
    """The pure-Python parser: the one whose error messages users see."""


if yaml.__with_libyaml__:
    from yaml.cyaml import CParser

    class _FastLoader(_Guarded, yaml.composer.Composer, CParser, yaml.resolver.Resolver):  # type: ignore[misc]
        """libyaml's parser under the same composer: a registry of thousands of sources loads in a blink."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def _compose(text: str) -> yaml.Node | None:
    """The YAML tree of ``text``: parsed by libyaml when the file is valid, else by PyYAML for its error.

    libyaml accepts tabs where PyYAML refuses them (``key\t:``), so a file with a tab, or with a character
    PyYAML's reader refuses, is left to PyYAML: both parsers then accept exactly the same files.
    """
    if yaml.__with_libyaml__ and "\t" not in text and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        try:
            return yaml.compose(text, Loader=_FastLoader)
        except yaml.YAMLError:
            pass  # parsed again below, so that the message and its line are PyYAML's, as documented
    return yaml.compose(text, Loader=_Loader)


@dataclass
class _Reader:
    """Turns YAML nodes into values, raising ConfigError with file, line and key."""

    path: str

    def fail(self, node: yaml.Node | None, key: str, message: str) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(self.path, line, key, message)

    def mapping(self, node: yaml.Node, key: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, f"expected a mapping, got {_kind(node)}")
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, key, "keys must be plain names")
            name = str(key_node.value)
            if name in seen:
                raise self.fail(
                    key_node, _join(key, name), f"duplicate key (first defined on line {seen[name]})"
                )
            seen[name] = key_node.start_mark.line + 1
            yield name, key_node, value_node

    def fields(
        self,
        node: yaml.Node,
        key: str,
        allowed: dict[str, Callable[[yaml.Node, str], object]],
        required: tuple[str, ...] = (),
    ) -> dict[str, object]:
        values: dict[str, object] = {}
        for name, key_node, value_node in self.mapping(node, key):
            if name not in allowed:
                expected = ", ".join(allowed)
                raise self.fail(
                    key_node, _join(key, name), f"unknown key (expected one of: {expected})"
                )
            values[name] = allowed[name](value_node, _join(key, name))
        for name in required:
            if name not in values:
                raise self.fail(node, _join(key, name), "missing required key")
        return values

    def string(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, key, f"expected a string, got {_kind(node)}")
        value = str(node.value)
        if not value.strip():
            raise self.fail(node, key, "must not be empty")
        return value

    def strings(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        """A string or a list of strings."""
        if isinstance(node, yaml.SequenceNode):
            items = tuple(self.string(item, f"{key}[{i}]") for i, item in enumerate(node.value))
            if not items:
                raise self.fail(node, key, "must not be an empty list")
            return items
        return (self.string(node, key),)

    def integer(self, node: yaml.Node, key: str, minimum: int) -> int:
        text = self.string(node, key)
        try:
            value = int(text)
        except ValueError:
            raise self.fail(node, key, f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise self.fail(node, key, f"must be at least {minimum}, got {value}")
        return value

    def converted(self, node: yaml.Node, key: str, convert: Callable[[str], object]) -> object:
        text = self.string(node, key)
        try:
            return convert(text)
        except ValueError as exc:
            raise self.fail(node, key, str(exc)) from None

    def duration(self, node: yaml.Node, key: str, positive: bool = True) -> float:
        seconds = self.converted(node, key, parse_duration)
        assert isinstance(seconds, float)
        if positive and seconds <= 0:
            raise self.fail(node, key, "must be longer than 0s")
        return seconds

    def size(self, node: yaml.Node, key: str) -> int:
        value = self.converted(node, key, parse_size)
        assert isinstance(value, int)
        if value <= 0:
            raise self.fail(node, key, "must be more than 0 bytes")
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        text = self.string(node, key).strip().lower()
        if text in ("true", "yes"):
            return True
        if text in ("false", "no"):
            return False
        raise self.fail(node, key, f"expected true or false, got {text!r}")

    def names(self, node: yaml.Node, key: str, what: str) -> tuple[tuple[str, str], ...]:
        """A mapping of header or cookie names to the environment variables holding their values."""
        pairs = []
        for name, key_node, value_node in self.mapping(node, key):
            if not TOKEN_PATTERN.match(name):
                raise self.fail(key_node, _join(key, name), f"bad {what} name {name!r}")
            variable = self.string(value_node, _join(key, name)).strip()
            if not ENV_NAME_PATTERN.match(variable):
                raise self.fail(
                    value_node, _join(key, name),
                    "expected the name of an environment variable (e.g. VENDOR_TOKEN), never the secret itself",
                )
            pairs.append((name, variable))
        if not pairs:
            raise self.fail(node, key, "must not be empty")
        return tuple(pairs)

    def date(self, node: yaml.Node, key: str) -> date:
        def to_date(text: str) -> date:
            try:
                return date.fromisoformat(text.strip())
            except ValueError:
                raise ValueError(f"bad date {text!r}: expected YYYY-MM-DD") from None

        value = self.converted(node, key, to_date)
        assert isinstance(value, date)
        return value

    def identifier(self, node: yaml.Node, key: str, name: str, what: str) -> str:
        if not ID_PATTERN.match(name):
            raise self.fail(
                node,
                key,
                f"bad {what} id {name!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit",
            )
        return name

    def choice(self, node: yaml.Node, key: str, options: tuple[str, ...]) -> str:
        value = self.string(node, key)
        if value not in options:
            raise self.fail(node, key, f"expected one of: {', '.join(options)}; got {value!r}")
        return value

    def env_name(self, node: yaml.Node, key: str) -> str:
        """The name of an environment variable that holds a secret (the value is read when it is used)."""
        name = self.string(node, key)
        if not _ENV_NAME.match(name):
            raise self.fail(node, key, f"bad environment variable name {name!r}: use letters, digits and '_'")
        return name

    def address(self, node: yaml.Node, key: str) -> str:
        text = self.string(node, key).strip()
        _, address = parseaddr(text)
        if "@" not in address or " " in address:
            raise self.fail(node, key, f"bad email address {text!r}: expected name@example.org")
        return text

    def selectors(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        items = self.strings(node, key)
        for item in items:
            try:
                check_selector(item)
            except ValueError as exc:
                raise self.fail(node, key, str(exc)) from None
        return items

    def selector(self, node: yaml.Node, key: str) -> str:
        if isinstance(node, yaml.SequenceNode):
            raise self.fail(node, key, "expected one CSS selector, got a list")
        return self.selectors(node, key)[0]


def _kind(node: yaml.Node | None) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node is None or node.tag == "tag:yaml.org,2002:null":
        return "nothing"
    return f"{node.value!r}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# --------------------------------------------------------------------------
# The schema.


def _settings(r: _Reader, node: yaml.Node, key: str) -> Settings:
    values = r.fields(
        node,
        key,
        {
            "user_agent": r.string,
            "concurrency": lambda n, k: r.integer(n, k, 1),
            "per_host": lambda n, k: r.integer(n, k, 1),
            "host_delay": lambda n, k: r.duration(n, k, positive=False),
            "timeout": r.duration,
            "retries": lambda n, k: r.integer(n, k, 0),
            "backoff": lambda n, k: r.duration(n, k, positive=False),
            "max_size": lambda n, k: r.size(n, k),
            "max_retry_after": lambda n, k: r.duration(n, k, positive=False),
            "browser_concurrency": lambda n, k: r.integer(n, k, 1),
        },
    )
    user_agent = values.get("user_agent")
    if isinstance(user_agent, str) and not re.search(r"https?://\S", user_agent):
        node_of = next(v for k, v in node.value if k.value == "user_agent")
        raise r.fail(node_of, "settings.user_agent",
                     "must name a contact URL for site owners, e.g. \"watcher/0.1 (+https://example.org/contact)\"")
    return Settings(**values)  # type: ignore[arg-type]


def _credentials(r: _Reader, node: yaml.Node, key: str) -> Credentials:
    values = r.fields(
        node,
        key,
        {
            "headers": lambda n, k: r.names(n, k, "header"),
            "cookies": lambda n, k: r.names(n, k, "cookie"),
        },
    )
    if not values:
        raise r.fail(node, key, "must name headers or cookies")
    return Credentials(**values)  # type: ignore[arg-type]


def _sources(r: _Reader, node: yaml.Node, key: str) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    lines: dict[str, int] = {}
    same_request: dict[tuple[str, str, str | None], list[Source]] = {}  # sources fetched by one request
    for name, key_node, value_node in r.mapping(node, key):
        path = _join(key, name)
        r.identifier(key_node, path, name, "source")
        values = r.fields(
            value_node,
            path,
            {
                "url": lambda n, k: r.converted(n, k, check_url),
                "select": r.selectors,
                "remove": r.selectors,
                "every": r.duration,
                "fetch": lambda n, k: r.choice(n, k, FETCHERS),
                "wait_for": r.selector,
                "verify_tls": r.boolean,
                "ignore_robots": r.boolean,
                "credentials": lambda n, k: _credentials(r, n, k),
            },
            required=("url",),
        )
        if "wait_for" in values and values.get("fetch") != "browser":
            wait_node = next(v for k, v in value_node.value if k.value == "wait_for")
            raise r.fail(wait_node, _join(path, "wait_for"),
                         "needs `fetch: browser` (a plain HTTP fetch runs no scripts to wait for)")
        source = Source(id=name, **values)  # type: ignore[arg-type]
        sharing = same_request.setdefault((source.url, source.fetch, source.wait_for), [])
        for other in sharing:
            if (other.select, other.remove) == (source.select, source.remove):
                raise r.fail(key_node, path, f"watches the same part of the same page as {key}.{other.id} "
                                             f"(line {lines[other.id]})")
            if other.fetch_options != source.fetch_options:
                raise r.fail(key_node, path, f"shares its url with {key}.{other.id} (line {lines[other.id]}) but not "
                                             "its verify_tls, ignore_robots and credentials; one page is fetched once")
        sharing.append(source)
        sources[name] = source
        lines[name] = key_node.start_mark.line + 1
    if not sources:
        raise r.fail(node, key, "must define at least one source")
    return sources


def _cite(r: _Reader, node: yaml.Node, key: str, sources: dict[str, Source]) -> Cite:
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        values: dict[str, object] = {"source": r.string(node, key)}
        source_node = node
    else:
        values = r.fields(
            node,
            key,
            {"source": r.string, "quote": r.string, "watch_for": r.strings},
            required=("source",),
        )
        source_node = next(v for k, v in node.value if k.value == "source")
    if values["source"] not in sources:
        raise r.fail(source_node, _join(key, "source"), f"unknown source {values['source']!r}")
    return Cite(**values)  # type: ignore[arg-type]


def _cites(r: _Reader, node: yaml.Node, key: str, sources: dict[str, Source]) -> tuple[Cite, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.fail(node, key, "expected a non-empty list of cites")
    cites: list[Cite] = []
    for i, item in enumerate(node.value):
        cite = _cite(r, item, f"{key}[{i}]", sources)
        if cite in cites:
            raise r.fail(item, f"{key}[{i}]", f"duplicate cite (the same as {key}[{cites.index(cite)}])")
        cites.append(cite)
    return tuple(cites)


def _records(
    r: _Reader, node: yaml.Node, key: str, offering_id: str, sources: dict[str, Source]
) -> tuple[Record, ...]:
    records = []
    for name, key_node, value_node in r.mapping(node, key):
        path = _join(key, name)
        r.identifier(key_node, path, name, "record")
        values = r.fields(
            value_node,
            path,
            {
                "question": r.string,
                "status": r.string,
                "verified": r.date,
                "review_every": r.duration,
                "cites": lambda n, k: _cites(r, n, k, sources),
            },
            required=("cites",),
        )
        records.append(
            Record(
                id=f"{offering_id}/{name}",
                offering=offering_id,
                question=values.get("question"),  # type: ignore[arg-type]
                status=values.get("status"),  # type: ignore[arg-type]
                verified=values.get("verified"),  # type: ignore[arg-type]
                review_every=values.get("review_every"),  # type: ignore[arg-type]
                cites=values["cites"],  # type: ignore[arg-type]
            )
        )
    if not records:
        raise r.fail(node, key, "must define at least one record")
    return tuple(records)


def _offerings(r: _Reader, node: yaml.Node, key: str, sources: dict[str, Source]) -> dict[str, Offering]:
    offerings: dict[str, Offering] = {}
    for name, key_node, value_node in r.mapping(node, key):
        path = _join(key, name)
        r.identifier(key_node, path, name, "offering")
        values = r.fields(
            value_node,
            path,
            {
                "name": r.string,
                "records": lambda n, k, oid=name: _records(r, n, k, oid, sources),
            },
            required=("records",),
        )
        offerings[name] = Offering(
            id=name,
            name=values.get("name", name),  # type: ignore[arg-type]
            records=values["records"],  # type: ignore[arg-type]
        )
    return offerings


#: Keys that would put a secret into sources.yaml, and the key to use instead.
_SECRET_KEYS = {"password": "password_env", "username": "username_env", "token": "token_env"}


def _refuse_secrets(r: _Reader, node: yaml.Node, key: str) -> None:
    """Fail early and clearly when a secret is written into the file itself."""
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            name = str(key_node.value)
            if name in _SECRET_KEYS:
                raise r.fail(key_node, _join(key, name), f"secrets are not read from {r.path}: put the value in "
                             f"an environment variable and name it with {_SECRET_KEYS[name]}")


def _key_node(node: yaml.Node, name: str) -> yaml.Node:
    """The node of key ``name`` in a mapping (for errors about it), or the mapping itself."""
    return next((k for k, _ in node.value if k.value == name), node) if isinstance(node, yaml.MappingNode) else node


def _retry_fields(r: _Reader) -> dict[str, Callable[[yaml.Node, str], object]]:
    return {
        "timeout": r.duration,
        "retries": lambda n, k: r.integer(n, k, 0),
        "backoff": lambda n, k: r.duration(n, k, positive=False),
    }


def _email(r: _Reader, node: yaml.Node, key: str) -> EmailChannel:
    _refuse_secrets(r, node, key)

    def tls(n: yaml.Node, k: str) -> str:
        mode = r.string(n, k)
        if mode not in SMTP_DEFAULT_PORTS:
            raise r.fail(n, k, f"expected one of: {', '.join(SMTP_DEFAULT_PORTS)}, got {mode!r}")
        return mode

    def recipients(n: yaml.Node, k: str) -> tuple[str, ...]:
        r.strings(n, k)  # a string or a non-empty list of strings
        if not isinstance(n, yaml.SequenceNode):
            return (r.address(n, k),)
        return tuple(r.address(item, f"{k}[{i}]") for i, item in enumerate(n.value))

    values = r.fields(
        node,
        key,
        {
            "host": r.string,
            "port": lambda n, k: r.integer(n, k, 1),
            "tls": tls,
            "username_env": r.env_name,
            "password_env": r.env_name,
            "from": r.address,
            "to": recipients,
            **_retry_fields(r),
        },
        required=("host", "from", "to"),
    )
    if ("username_env" in values) != ("password_env" in values):
        given, missing = ("username_env", "password_env") if "username_env" in values else ("password_env", "username_env")
        raise r.fail(_key_node(node, given), _join(key, missing), f"{given} needs {missing}: they go together")
    values["sender"] = values.pop("from")
    values.setdefault("port", SMTP_DEFAULT_PORTS[str(values.get("tls", "starttls"))])
    return EmailChannel(**values)  # type: ignore[arg-type]


def _webhook(r: _Reader, node: yaml.Node, key: str) -> WebhookChannel:
    _refuse_secrets(r, node, key)
    values = r.fields(
        node,
        key,
        {
            "url": lambda n, k: r.converted(n, k, check_url),
            "url_env": r.env_name,
            "token_env": r.env_name,
            **_retry_fields(r),
        },
    )
    if ("url" in values) == ("url_env" in values):
        raise r.fail(_key_node(node, "url_env"), _join(key, "url"), "give exactly one of url and url_env")
    return WebhookChannel(**values)  # type: ignore[arg-type]


def _notify(r: _Reader, node: yaml.Node, key: str) -> Notify:
    values = r.fields(
        node,
        key,
        {"email": lambda n, k: _email(r, n, k), "webhook": lambda n, k: _webhook(r, n, k)},
    )
    return Notify(**values)  # type: ignore[arg-type]


def parse_config(text: str, path: str = "sources.yaml") -> Config:
    """Validate the text of a sources.yaml file; raise ConfigError on the first problem."""
    reader = _Reader(path)
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        # An alias is refused on its own line; a syntax error is usually caused by the lines before it.
        key = key_path_at(text, line, include_line=isinstance(exc, _Refused))
        raise ConfigError(path, line, key, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(path, line, key_path_at(text, line, include_line=True),
                          f"invalid YAML: character {exc.character!r} is not allowed") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, "", f"invalid YAML: {exc}") from None
    if root is None:
        raise ConfigError(path, 1, "sources", "the file is empty; it needs at least a 'sources:' section")
    if not isinstance(root, yaml.MappingNode):
        raise reader.fail(root, "sources", f"the file must be a mapping with a 'sources:' section, got {_kind(root)}")
    sections = {name: (key_node, value_node) for name, key_node, value_node in reader.mapping(root, "")}
    for name, (key_node, _) in sections.items():
        if name not in ("settings", "sources", "offerings", "notify"):
            raise reader.fail(key_node, name, "unknown key (expected one of: settings, sources, offerings, notify)")
    if "sources" not in sections:
        raise reader.fail(root, "sources", "missing required key")
    settings = _settings(reader, sections["settings"][1], "settings") if "settings" in sections else Settings()
    sources = _sources(reader, sections["sources"][1], "sources")
    offerings = (
        _offerings(reader, sections["offerings"][1], "offerings", sources) if "offerings" in sections else {}
    )
    notify = _notify(reader, sections["notify"][1], "notify") if "notify" in sections else Notify()
    return Config(path=path, settings=settings, sources=sources, offerings=offerings, notify=notify)


def load_config(path: str | Path) -> Config:
    """Read and validate a sources.yaml file."""
    name = str(path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(name, None, "", "no such file (set --config or WATCHER_CONFIG)") from None
    except IsADirectoryError:
        raise ConfigError(name, None, "", "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(name, None, "", "permission denied") from None
    if len(raw) > MAX_CONFIG_BYTES:
        head = raw[:MAX_CONFIG_BYTES]
        line = head.count(b"\n") + 1
        key = key_path_at(head.decode("utf-8", errors="replace"), line, include_line=True)
        raise ConfigError(name, line, key, f"the file is over the {MAX_CONFIG_BYTES}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        key = key_path_at(raw[: exc.start].decode("utf-8"), line, include_line=True)
        raise ConfigError(name, line, key, "the file is not valid UTF-8") from None
    return parse_config(text, name)


_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([^\s#:'\"][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s|$)")


def key_path_at(text: str, line: int | None, include_line: bool = False) -> str:
    """Best-effort key path of the mapping keys that enclose ``line`` (1-based).

    Used only for YAML syntax errors, where no node tree exists to ask.
    """
    if not line:
        return ""
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines()[: line if include_line else max(line - 1, 0)]:
        match = _KEY_LINE.match(raw)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2).strip("'\"")))
    return ".".join(name for _, name in stack)
