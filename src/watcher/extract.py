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
ZERO_WIDTH_CHARACTERS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
ZERO_WIDTH = re.compile(f"[{ZERO_WIDTH_CHARACTERS}]")
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


def has_more_words_than(text: str, limit: int) -> bool:
    """More than ``limit`` words (runs of non-space); counting stops there, however long the text."""
    return len(text.split(maxsplit=limit)) > limit


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
    """The text lines of ``nodes``, one block per line, table cells joined by `` | ``.

    The nodes are consumed: marker text is inserted into them (see :func:`_marked_lines`).
    """
    lines: list[str] = []
    for node in nodes:
        marked = _marked_lines(node)
        if marked is None:
            out = _Lines()
            _walk(node, out)
            out.newline()
            marked = out.lines
        lines.extend(marked)
    return lines


# --------------------------------------------------------------------------
# The same lines, read by lexbor in one pass.
#
# Walking every node in Python is the costliest part of reading a page. The
# walk's decisions depend on element boundaries only: a block starts or ends
# a line (outside table cells), a top-level cell starts a cell, and any other
# boundary between two pieces of text is a soft break (a space unless one
# side already is one, or is punctuation that takes none). So marker text is
# inserted around the blocks and before the cells, lexbor joins all the text
# with a soft-break marker between text nodes (of which there is one exactly
# where elements separate them, once comments are gone and neighbouring text
# nodes are merged), and regular expressions resolve the markers.

#: Control characters no page shows (one that holds them is read by the walk); Latin-1 ones, so that an
#: English page's text stays one byte per character for the regular expressions.
_NEWLINE_MARK, _CELL_MARK, _SOFT_MARK = "\x01", "\x02", "\x03"
_MARKS = frozenset((_NEWLINE_MARK, _CELL_MARK, _SOFT_MARK))
#: A soft break adds nothing after these (or a space), nor before those (or a space).
_SILENT_AFTER = frozenset(_NO_SPACE_AFTER | {_NEWLINE_MARK, _CELL_MARK})
_SILENT_BEFORE = frozenset(_NO_SPACE_BEFORE | {_NEWLINE_MARK, _CELL_MARK})
_NOT_SPACE = re.compile(f"[^\\s{_CELL_MARK}]")


def _marked_lines(root: LexborNode) -> list[str] | None:
    """:func:`_walk`'s lines, read in one pass by lexbor; None when the page holds a marker character."""
    if any(mark in (root.text(deep=True) or "") for mark in _MARKS):
        return None
    blocks, cells, comments = [], [], []
    for node in root.traverse(include_text=True):  # one pass in C; a CSS query for 55 tags costs ten
        tag = node.tag
        if tag in BLOCK_TAGS:
            blocks.append(node)
        elif tag in CELL_TAGS:
            cells.append(node)
        elif tag == "-comment":
            comments.append(node)
    for comment in comments:
        comment.decompose()  # a comment between two texts glues them, as if it were not there
    root.merge_text_nodes()  # text nodes side by side (a script stood between them) are one text
    if root.tag in CELL_TAGS:
        return _joined_lines(root.text(deep=True, separator=_SOFT_MARK) or "")  # all of it is one cell's
    in_cells = set()
    for cell in cells:
        in_cells.update(node.mem_id for node in cell.traverse() if node.mem_id != cell.mem_id)
    root_id = root.mem_id
    for block in blocks:
        if block.mem_id not in in_cells and block.mem_id != root_id:
            block.insert_before(_NEWLINE_MARK)
            block.insert_after(_NEWLINE_MARK)
    for cell in cells:
        if cell.mem_id not in in_cells:
            cell.insert_before(_CELL_MARK)
    return _joined_lines(root.text(deep=True, separator=_SOFT_MARK) or "")


def _joined_lines(text: str) -> list[str]:
    """Lines from text with markers: soft breaks resolved as :class:`_Lines` does, then lines and cells."""
    pieces = text.split(_SOFT_MARK)
    joined = [pieces[0]]
    last = pieces[0][-1:]
    for piece in pieces[1:]:
        if not piece:
            continue  # soft breaks in a row are one; an empty text changes nothing
        if last and not (last in _SILENT_AFTER or last.isspace() or piece[0] in _SILENT_BEFORE
                         or piece[0].isspace()):
            joined.append(" ")
        joined.append(piece)
        last = piece[-1]
    text = "".join(joined)
    lines = []
    for chunk in text.split(_NEWLINE_MARK):
        if _CELL_MARK not in chunk:
            line = normalize_line(chunk)
        else:
            first_text = _NOT_SPACE.search(chunk)
            if first_text is None:
                continue
            # A cell counts once the line holds text; the cells before that are only where the line starts.
            start = first_text.start()
            cells_of_line = (chunk[:start].replace(_CELL_MARK, "") + chunk[start:]).split(_CELL_MARK)
            line = CELL_SEPARATOR.join(cell for cell in map(normalize_line, cells_of_line) if cell)
        if line:
            lines.append(line)
    return lines


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
