"""Extract the watched text of a page: pure functions from bytes to normalized text.

The text keeps the page's block structure (one heading, paragraph, list item
or table row per line) and drops everything that changes from one request to
the next without the page's content changing: markup, attributes, comments,
scripts, styles, asset URLs and whitespace.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from selectolax.lexbor import LexborHTMLParser, LexborNode

from . import noise

#: Bumped whenever a change here (or in the noise rules) can change the text
#: extracted from the same bytes; stored with every text version so old
#: versions can be re-derived.
EXTRACTOR_VERSION = 3

NEVER_CONTENT = [
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object",
    "embed", "canvas", "audio", "video", "map", "head", "title", "link", "meta",
    "select", "input", "textarea",
]

#: Page chrome dropped when no ``select`` is given. ``header`` and ``footer``
#: are page chrome only outside sectioning content (their ARIA banner and
#: contentinfo roles); inside an article they carry its title and dates.
DEFAULT_CHROME = [
    "nav", "aside", "dialog",
    "[role=navigation]", "[role=banner]", "[role=contentinfo]",
    "[role=complementary]", "[role=search]", "[role=dialog]", "[role=alertdialog]",
    "[hidden]", "[aria-hidden=true]",
]
_SECTIONING = {"article", "aside", "main", "nav", "section"}
_FORM_KEEPS = "main, article, h1, h2"

BLOCK_TAGS = frozenset(
    ["address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "listing", "main", "menu", "nav", "ol", "p", "plaintext", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul", "br", "option", "optgroup"]
)
CELL_TAGS = frozenset({"td", "th"})
CELL_SEPARATOR = " | "

#: Characters that take no room: dropped from texts (``normalize_line``).
ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_NO_SPACE_BEFORE = set(".,;:!?)]}»%’”")
_NO_SPACE_AFTER = set("([{«“‘/$€£")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_WINDOWS_1252_LABELS = frozenset({"latin-1", "iso8859-1", "ascii"})


@dataclass(frozen=True)
class Extraction:
    """The watched text of one page, or the news that ``select`` matched nothing."""

    text: str
    selector_missing: bool = False


# --------------------------------------------------------------------------
# Decoding


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Read the bytes UTF-8 cannot as Windows-1252: what a page mixing the two meant."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start:error.end]
    return bad.decode("cp1252", errors="replace"), error.end


codecs.register_error("watcher-cp1252", _cp1252_fallback)


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Decode a response body into text, trusting the bytes over labels that contradict them.

    In order: a BOM; a UTF-16/32 label (its text is not UTF-8 by design);
    valid UTF-8 (a body with non-ASCII bytes that happens to be valid UTF-8
    is practically never in another charset, so a wrong header or
    ``<meta charset>`` cannot garble it); the declared charset (header, then
    ``<meta charset>``); finally UTF-8 with each invalid byte read as
    Windows-1252, which recovers both a Windows-1252 page labelled UTF-8 and
    a UTF-8 page with a few stray Windows-1252 bytes. Undecodable bytes become
    U+FFFD: a page with one bad byte is still a page.
    """
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace")
    header = _HEADER_CHARSET.search(content_type or "")
    meta = _META_CHARSET.search(body[:4096])
    declared = _codec(header.group(1) if header else None) or _codec(
        meta.group(1).decode("ascii", "replace") if meta else None
    )
    if declared and declared.startswith(("utf-16", "utf-32")):
        return body.decode(declared, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared in _WINDOWS_1252_LABELS:
        # Browsers read ISO-8859-1 and ASCII as Windows-1252, and so do servers' authors.
        declared = "cp1252"
    if declared not in (None, "utf-8"):
        return body.decode(declared, errors="replace")
    return body.decode("utf-8", errors="watcher-cp1252")


# --------------------------------------------------------------------------
# Normalization of a line of text


def normalize_line(text: str) -> str:
    """NFC, no zero-width characters, single spaces, no leading or trailing space."""
    if not text.isascii():  # ASCII is NFC and has no zero-width characters; most lines are ASCII
        # A regular expression, not str.translate: translating a non-ASCII string looks up every character.
        text = ZERO_WIDTH.sub("", unicodedata.normalize("NFC", text))
    return " ".join(text.split())


def normalize_text(text: str) -> str:
    """Normalize every line of an extracted text and drop empty lines."""
    lines = (normalize_line(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# --------------------------------------------------------------------------
# Tree walking


class _Lines:
    """Collects text pieces into lines; element boundaries never glue words together."""

    SOFT = object()
    CELL = object()

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.pieces: list[object] = []

    def soft(self) -> None:
        if self.pieces and self.pieces[-1] is not self.SOFT:
            self.pieces.append(self.SOFT)

    def cell(self) -> None:
        if any(isinstance(p, str) and p.strip() for p in self.pieces):
            self.pieces.append(self.CELL)

    def text(self, value: str) -> None:
        self.pieces.append(value)

    def newline(self) -> None:
        if not self.pieces:
            return
        cells: list[str] = []
        current = ""
        pending_soft = False
        for piece in self.pieces:
            if piece is self.SOFT:
                pending_soft = True
            elif piece is self.CELL:
                cells.append(current)
                current = ""
                pending_soft = False
            else:
                assert isinstance(piece, str)
                if pending_soft and current and piece:
                    left, right = current[-1], piece[0]
                    if not (left.isspace() or right.isspace() or right in _NO_SPACE_BEFORE or left in _NO_SPACE_AFTER):
                        current += " "
                pending_soft = False
                current += piece
        cells.append(current)
        normalized = [normalize_line(cell) for cell in cells]
        line = CELL_SEPARATOR.join(cell for cell in normalized if cell)
        if line:
            self.lines.append(line)
        self.pieces = []


def _walk(root: LexborNode, out: _Lines) -> None:
    """Depth-first walk without recursion (pages can nest thousands of levels deep)."""
    cell_depth = 0
    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        tag = node.tag
        if tag == "-text":
            out.text(node.text_content or "")
            continue
        if tag is None or tag.startswith("-"):
            continue  # comments and doctype
        if leaving:
            if tag in CELL_TAGS:
                cell_depth -= 1
                out.soft()
            elif tag in BLOCK_TAGS and not cell_depth:
                out.newline()
            else:
                out.soft()
            continue
        if tag in CELL_TAGS:
            if not cell_depth:
                out.cell()
            cell_depth += 1
        elif tag in BLOCK_TAGS and not cell_depth:
            out.newline()
        else:
            out.soft()
        stack.append((node, True))
        children = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, False) for c in reversed(children))


def _document_order(tree: LexborHTMLParser) -> dict[int, int]:
    return {node.mem_id: i for i, node in enumerate(tree.root.traverse())}


def _is_page_chrome(node: LexborNode) -> bool:
    """A header or footer is page chrome unless it sits in sectioning content."""
    ancestor = node.parent
    while ancestor is not None:
        if ancestor.tag in _SECTIONING:
            return False
        ancestor = ancestor.parent
    return True


def _remove_default_chrome(root: LexborNode) -> None:
    for node in root.css(", ".join(DEFAULT_CHROME)):
        node.decompose()
    for node in root.css("header, footer"):
        if _is_page_chrome(node):
            node.decompose()
    for node in root.css("form"):
        # A form that wraps the document (as some site builders do) is layout.
        if not node.css_first(_FORM_KEEPS):
            node.decompose()


def _decompose_all(root: LexborNode, selectors: Iterable[str]) -> None:
    for selector in selectors:
        for node in root.css(selector):
            node.decompose()


def lines_of(nodes: Iterable[LexborNode]) -> list[str]:
    out = _Lines()
    for node in nodes:
        _walk(node, out)
        out.newline()
    return out.lines


def extract(
    html: str,
    select: tuple[str, ...] = (),
    remove: tuple[str, ...] = (),
) -> Extraction:
    """The watched text of ``html``: the ``select`` part (the body by default), minus ``remove`` and noise."""
    tree = LexborHTMLParser(html)
    tree.strip_tags(NEVER_CONTENT, recursive=True)
    if select:
        order = _document_order(tree)
        roots = noise.outermost((node for selector in select for node in tree.css(selector)), order)
        if not roots:
            return Extraction("", selector_missing=True)
    else:
        body = tree.body or tree.root
        if body is None:
            return Extraction("")
        roots = [body]
    whole_page = not select
    for root in roots:
        _decompose_all(root, remove)
        noise.clean_elements(root, whole_page)
    if whole_page:
        # The walk to the main text reads the landmarks, so it runs before they go.
        noise.drop_page_chrome(roots[0])
        _remove_default_chrome(roots[0])
    text = "\n".join(noise.clean_lines(lines_of(roots), whole_page))
    if select and not text:
        # A selector that matches only an empty element (or one the page
        # emptied) is the same configuration drift as one that matches nothing.
        return Extraction("", selector_missing=True)
    return Extraction(text)
