"""Extract the text of a PDF in watcher's line-per-block form, with pdfminer.six.

pdfminer's layout analysis groups the characters of each page into text boxes;
a box is split further where the font size changes (a heading above its first
paragraph), and each resulting paragraph becomes one line, like a ``<p>`` of
an HTML page. Quotes, diffs and flags then work on PDFs as on web pages.

Only the page content is read, never the document's metadata (creation date,
producer, document id): a PDF re-exported with new metadata has the same text
and so no change.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from statistics import median
from typing import Iterable, Iterator

from .extract import normalize_line

PDF_MAGIC = b"%PDF-"
#: The PDF header may follow some junk bytes; readers look for it in the first kilobyte.
_HEADER_WINDOW = 1024
PDF_CONTENT_TYPES = frozenset({"application/pdf", "application/x-pdf", "application/acrobat"})
#: Two lines whose font sizes differ more than this (relative) belong to different blocks.
_FONT_SIZE_STEP = 0.15
#: pdfminer writes "(cid:N)" for glyphs without a Unicode mapping (often bullets): not text.
_UNMAPPED_GLYPH = re.compile(r"\(cid:\d+\)")


class UnreadablePdf(Exception):
    """The body claims to be a PDF but cannot be read (broken, or password-protected)."""


@dataclass(frozen=True)
class PdfText:
    text: str
    pages: int


def is_pdf(body: bytes, content_type: str | None) -> bool:
    """By Content-Type, or by the ``%PDF-`` header when the server labels it as something else."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in PDF_CONTENT_TYPES:
        return True
    head = body[:_HEADER_WINDOW]
    return PDF_MAGIC in head and not head.lstrip().startswith(b"<")


def pdf_text(body: bytes) -> PdfText:
    """The PDF's text, one paragraph per line, pages in order; raises UnreadablePdf."""
    # Imported here: pdfminer takes a twentieth of a second to import, and most runs read no PDF.
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams
    from pdfminer.pdfdocument import PDFPasswordIncorrect

    lines: list[str] = []
    pages = 0
    try:
        for page in extract_pages(io.BytesIO(body), laparams=LAParams(all_texts=True)):
            pages += 1
            lines.extend(_paragraphs(page))
    except PDFPasswordIncorrect:
        raise UnreadablePdf("the PDF is password-protected") from None
    except Exception as exc:  # pdfminer raises many unrelated types for malformed files
        raise UnreadablePdf(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    if pages == 0:
        raise UnreadablePdf("the PDF has no pages")
    return PdfText("\n".join(lines), pages)


def _paragraphs(container: Iterable) -> Iterator[str]:
    """Paragraphs of a page or figure, in pdfminer's reading order."""
    from pdfminer.layout import LTFigure, LTTextBox

    for element in container:
        if isinstance(element, LTTextBox):
            yield from _split_box(element)
        elif isinstance(element, LTFigure):
            yield from _paragraphs(element)


def _split_box(box: Iterable) -> Iterator[str]:
    paragraph: list[str] = []
    previous_size = None
    for line in box:
        text = _UNMAPPED_GLYPH.sub("", line.get_text()).strip()
        if not text:
            continue
        size = _font_size(line)
        if paragraph and previous_size and size and abs(size - previous_size) > _FONT_SIZE_STEP * previous_size:
            yield from _joined(paragraph)
            paragraph = []
        paragraph.append(text)
        previous_size = size
    yield from _joined(paragraph)


def _joined(lines: list[str]) -> Iterator[str]:
    """One paragraph from its lines; a line ending in a hyphen joins the next without a space."""
    text = ""
    for line in lines:
        if text.endswith("-") and len(text) > 1 and text[-2].isalpha():
            text += line
        else:
            text = f"{text} {line}" if text else line
    normalized = normalize_line(text)
    if normalized:
        yield normalized


def _font_size(line: Iterable) -> float | None:
    sizes = [char.size for char in line if hasattr(char, "size")]
    return median(sizes) if sizes else None
