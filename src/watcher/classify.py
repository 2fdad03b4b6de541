"""Tell a page from what stands in its place: challenge walls, login gates, soft errors. Pure.

A server can answer 200 with something that is not the page: a bot challenge,
a login or NDA gate, a "page not found" or "temporarily unavailable" page, a
document cut off mid-way, or binary bytes labelled HTML. Diffing that against
the real text would tell editors that every claim vanished. The check asks
:func:`classify_response` first, and a verdict turns the fetch into a failure
with its own outcome.

Every rule rests on general signals (the status, the title and top heading,
how short the page is and how much shorter than the text it replaces, a
password field, markers that challenge pages carry in their structure) and
never on a particular site. A rule that needs a page to be short does so
because the real page around a phrase ("request access" next to a report on a
trust center, "page not found" in an API's list of errors) is long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Mapping
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from .extract import NEVER_CONTENT, ZERO_WIDTH, ZERO_WIDTH_CHARACTERS, decode_html, has_more_words_than, normalize_line

#: A page with fewer words than this can be a wall or an error page; a real page rarely is.
SHORT_PAGE_WORDS = 250
#: A page that keeps less than this share of the text it replaces has lost its content.
SHRUNK_BELOW = 0.5
#: Bytes sniffed for binary content.
SNIFF_BYTES = 2048

#: Markers found only on challenge interstitials (scripts and forms the walls inject).
CHALLENGE_MARKERS = (
    "_cf_chl_opt", "cf-challenge-running", "challenge-error-text", "/cdn-cgi/challenge-platform/h/g/orchestrate",
    "captcha-delivery.com", "_incapsula_resource", "px-captcha", "awswafintegration.forcerefreshtoken",
)
#: CAPTCHA widgets: on a contact form they are nothing, in place of the content they are a wall.
CAPTCHA_WIDGETS = ("g-recaptcha", "h-captcha", "cf-turnstile", "frc-captcha", "captcha")

_APOSTROPHES = (("\u2019", "'"), ("\u2018", "'"), ("\u00a0", " "))


def _phrases(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


CHALLENGE_PHRASES = _phrases(
    r"verify(?:ing)? (?:that )?you are (?:a )?human", r"confirm (?:that )?you are (?:a )?human",
    r"are you a robot", r"i'?m not a robot", r"i am not a robot", r"checking your browser",
    r"checking if the site connection is secure", r"enable javascript and cookies to continue",
    r"unusual traffic from your", r"press (?:&|and) hold", r"pardon our interruption",
    r"access to this page has been denied", r"incapsula incident", r"complete the security check",
    r"bot (?:check|protection|verification)", r"human verification", r"you (?:have been|are|were) blocked",
    r"(?:request|access) (?:has been |was )?blocked", r"(?:solve|complete|enter) (?:the |this )?captcha",
    r"ddos protection",
)
#: Titles of challenge interstitials, too plain to count anywhere else on a page.
CHALLENGE_TITLES = _phrases(r"just a moment", r"attention required", r"security check", r"one more step")
NOT_FOUND_PHRASES = _phrases(
    r"404", r"not found", r"page (?:does not|doesn't|did not|cannot|can't|could not|couldn't) (?:exist|be found)",
    r"(?:can't|cannot|couldn't|could not) find (?:that|this|the|what you)", r"no longer (?:exists|available)",
    r"page (?:is )?missing", r"nothing (?:here|to see here)", r"page isn't available",
)
UNAVAILABLE_PHRASES = _phrases(
    r"temporarily unavailable", r"service unavailable", r"(?:under|down for|scheduled) maintenance",
    r"be (?:right )?back soon", r"we'll be back", r"be right back", r"bad gateway", r"gateway time-?out",
    r"internal server error", r"technical difficulties", r"something went wrong", r"try again (?:later|shortly)",
)
GATE_PHRASES = _phrases(
    r"sign in", r"signin", r"log ?in", r"request access", r"access request", r"nda", r"non-?disclosure",
    r"authentication required", r"members only", r"(?:you )?(?:do not|don't) have (?:access|permission)",
    r"need (?:access|permission)", r"access (?:restricted|denied)", r"restricted access", r"private document",
    r"(?:this|the) (?:document|page|file) is private", r"permission to view", r"single sign-on", r"sso",
)
CONSENT_TOPIC = _phrases(r"cookies?", r"consent")
CONSENT_ACTIONS = _phrases(
    r"accept(?: all)?", r"agree", r"allow(?: all)?", r"reject(?: all)?", r"decline", r"(?:manage|customi[sz]e) "
    r"(?:cookies|preferences|settings|choices)", r"cookie (?:settings|preferences)",
)
LOGIN_PATH = re.compile(r"/(?:log-?in|sign-?in|signon|sso|auth(?:enticate|orize)?|session/new|oauth2?)(?:/|$|\?)", re.I)
#: Control characters no text holds (tab, line feeds and the like excepted).
_CONTROL_BYTES = bytes(b for b in range(32) if b < 9 or b > 13)
_CLOSING_HTML = re.compile(rb"</html\s*>", re.IGNORECASE)
_BINARY_MAGIC = (b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"\x00\x00\x01\x00",
                 b"7z\xbc\xaf", b"Rar!", b"BZh", b"\xfd7zXZ", b"\x7fELF")


@dataclass(frozen=True)
class Verdict:
    """A fetch that brought something other than the page: its outcome and why."""

    outcome: str  # blocked | gated | not_found | unavailable | truncated | binary
    reason: str


@dataclass(frozen=True)
class Page:
    """What the rules look at in an HTML page.

    Most pages are long, and most rules look no further than a long page's
    length: the lower-cased text is made only when a rule reads it, and the
    markup is kept for short pages only (the structural markers of a
    challenge are looked for in short pages alone). A page read ahead in
    another process travels back without a long page's HTML.
    """

    title: str
    heading: str
    body_text: str  # as the page has it
    has_password_field: bool
    short: bool  # fewer than SHORT_PAGE_WORDS words
    markup: str  # the lower-cased HTML of a short page, empty for a long one

    @cached_property
    def text(self) -> str:
        """The body's text, lower-cased, with plain apostrophes and single spaces."""
        return _lower(self.body_text)

    def says(self, phrases: re.Pattern[str], anywhere: bool) -> str | None:
        """The first phrase found in the title or top heading (or, with ``anywhere``, the text)."""
        places = [self.title, self.heading] + ([self.text] if anywhere else [])
        for place in places:
            found = phrases.search(place)
            if found:
                return found.group(0)
        return None


def read_page(html: str) -> Page:
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    heading_node = tree.css_first("h1")
    title = title_node.text() if title_node else ""  # read before the head is stripped
    heading = heading_node.text() if heading_node else ""
    password = tree.css_first("input[type=password], input[autocomplete=current-password]") is not None
    tree.strip_tags(NEVER_CONTENT, recursive=True)
    root = tree.body or tree.root
    # One C-level pass: block structure does not matter for these rules, and pages can be megabytes long.
    text = root.text(separator=" ") if root is not None else ""
    short = _is_short(text)
    return Page(title=_lower(title), heading=_lower(heading), body_text=text, has_password_field=password,
                short=short, markup=html.lower() if short else "")


def _is_short(text: str) -> bool:
    """Fewer than SHORT_PAGE_WORDS words, zero-width characters not counted."""
    if not has_more_words_than(text, SHORT_PAGE_WORDS - 1):
        return True  # dropping zero-width characters never adds a word
    if not any(character in text for character in ZERO_WIDTH_CHARACTERS):
        return False
    return not has_more_words_than(ZERO_WIDTH.sub("", text), SHORT_PAGE_WORDS - 1)


def _lower(text: str) -> str:
    """Lower case, typographic apostrophes made plain, whitespace collapsed to single spaces."""
    if not text.isascii():
        for typographic, plain in _APOSTROPHES:  # str.replace runs in C; translate looks up every character
            text = text.replace(typographic, plain)
    return normalize_line(text).lower()


# --------------------------------------------------------------------------
# The rules, each a small function with its own unit test.


def looks_binary(body: bytes) -> bool:
    """Bytes no HTML page is made of: a known binary signature, NUL bytes, or mostly control characters."""
    head = body[:SNIFF_BYTES]
    if head.startswith(_BINARY_MAGIC):
        return True
    if b"\x00" in head:
        return True
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    return bool(head) and controls / len(head) > 0.05


#: The source's last stored body, or a function that reads it (only when a rule needs it: reading costs a
#: decompression, and most bodies end as they should).
PreviousBody = bytes | Callable[[], bytes | None] | None


def is_truncated(body: bytes, previous_body: PreviousBody) -> bool:
    """The document stops before its end although the same source used to send complete documents."""
    if previous_body is None or _CLOSING_HTML.search(body):
        return False
    previous = previous_body() if callable(previous_body) else previous_body
    return previous is not None and bool(_CLOSING_HTML.search(previous))


def is_challenge(page: Page, status: int, headers: Mapping[str, str]) -> str | None:
    """A bot wall: a challenge header or interstitial marker, or a short page that asks to prove humanity."""
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return "the server answered with a challenge (cf-mitigated: challenge)"
    if page.short:
        marker = next((m for m in CHALLENGE_MARKERS if m in page.markup), None)
        if marker:
            return f"a challenge page (marker {marker!r})"
        title = CHALLENGE_TITLES.search(page.title)
        phrase = page.says(CHALLENGE_PHRASES, anywhere=True) or (title.group(0) if title else None)
        if phrase:
            return f"a challenge page ({phrase!r})"
        widget = next((w for w in CAPTCHA_WIDGETS if w in page.markup), None)
        if widget and status in (403, 429, 503):
            return f"a CAPTCHA in place of the page (HTTP {status})"
    return None


def _replaces_content(page: Page, previous_chars: int | None) -> bool:
    """True when the page is new to this source, or is much shorter than the text it replaces."""
    return previous_chars is None or len(page.text) < previous_chars * SHRUNK_BELOW


def is_soft_not_found(page: Page, previous_chars: int | None) -> str | None:
    """A short 200 page whose title or top heading says the page is not there."""
    if not page.short or not _replaces_content(page, previous_chars):
        return None
    phrase = page.says(NOT_FOUND_PHRASES, anywhere=False)
    return f"the page says {phrase!r}" if phrase else None


def is_unavailable(page: Page, previous_chars: int | None) -> str | None:
    """A short 200 page that says the site is down for now: a transient failure, like a 503.

    On a first check only the title or top heading counts: a short page that
    mentions an outage in passing (a status page) is a page.
    """
    if not page.short or not _replaces_content(page, previous_chars):
        return None
    phrase = page.says(UNAVAILABLE_PHRASES, anywhere=previous_chars is not None)
    return f"the page says {phrase!r}" if phrase else None


def is_gate(page: Page, previous_chars: int | None, final_url: str | None) -> str | None:
    """A login, "request access" or NDA gate where content used to be.

    Only where content used to be: a page that was a gate from the start is
    what the source is, and a trust center that offers "request access" next
    to its reports is long and has not shrunk.
    """
    if previous_chars is None:
        return None
    login_redirect = bool(final_url and LOGIN_PATH.search(urlsplit(final_url).path + "/"))
    if not (login_redirect or (page.short and len(page.text) < previous_chars * SHRUNK_BELOW)):
        return None
    if page.has_password_field:
        return "a login form where the content used to be"
    phrase = page.says(GATE_PHRASES, anywhere=True)
    if phrase:
        return f"a gate ({phrase!r}) where the content used to be"
    return None


def is_consent_wall(text: str, previous_chars: int | None) -> bool:
    """A cookie consent notice where content used to be: short, about cookies, offering to accept or refuse them.

    Only where content used to be, so that a short cookie policy is never taken for a wall.
    """
    lowered = _lower(text)
    if previous_chars is None or len(lowered) >= previous_chars * SHRUNK_BELOW:
        return False
    if len(lowered.split()) >= SHORT_PAGE_WORDS // 2:
        return False
    return bool(CONSENT_TOPIC.search(lowered) and CONSENT_ACTIONS.search(lowered))


def _is_html(content_type: str | None, body: bytes) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if body.lstrip()[:5] == b"%PDF-":
        return False  # a PDF is a document of its own, whatever its label
    return kind in ("", "text/html", "application/xhtml+xml", "text/plain", "application/octet-stream")


def page_facts(body: bytes, content_type: str | None) -> Page | None:
    """What the rules read in ``body``, or None when they would read nothing (not a web page)."""
    if not body or not _is_html(content_type, body):
        return None
    return read_page(decode_html(body, content_type))


def classify_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    previous_chars: int | None = None,
    previous_body: PreviousBody = None,
    final_url: str | None = None,
    page: Page | None = None,
) -> Verdict | None:
    """What a response is when it is not the page, or None when it is (or may be) the page.

    ``previous_chars`` is the length of the source's last text version and
    ``previous_body`` its last stored body (both None on a first check);
    ``page`` is :func:`page_facts` of the body when they were read already.
    Statuses other than 2xx keep their own outcome unless their body is a
    challenge (a 403 or 503 bot wall is ``blocked``, not ``denied``).
    """
    if not body:
        return None
    content_type = headers.get("content-type")
    if not _is_html(content_type, body):
        return None
    success = 200 <= status < 300
    if looks_binary(body) and not re.search(r"charset\s*=\s*[\"']?utf-?(16|32)", content_type or "", re.I):
        return Verdict("binary", "binary data served as a web page") if success else None
    page = page or read_page(decode_html(body, content_type))
    challenge = is_challenge(page, status, headers)
    if challenge:
        return Verdict("blocked", challenge)
    if not success:
        return None
    if is_truncated(body, previous_body):
        return Verdict("truncated", "the document stops before its end (</html> missing)")
    if page.short and is_consent_wall(page.text, previous_chars):  # a long page is never a consent wall
        return Verdict("blocked", "a cookie consent wall in place of the page")
    for outcome, reason in (
        ("not_found", is_soft_not_found(page, previous_chars)),
        ("unavailable", is_unavailable(page, previous_chars)),
        ("gated", is_gate(page, previous_chars, final_url)),
    ):
        if reason:
            return Verdict(outcome, reason)
    return None
