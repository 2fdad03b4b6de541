"""The extraction step: a stored response body → the source's watched text, or why there is none.

A body is a PDF (by Content-Type or magic bytes) or a web page. A body with
no text to watch is not a version of the source: it is reported as an
outcome of the fetch, so that it can never look like deleted content:

- ``empty``          a web page with no text at all
- ``needs_browser``  a plain fetch got an application shell that only JavaScript fills
- ``no_text``        a PDF without a text layer (a scan)
- ``unreadable``     a broken or password-protected PDF

Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .appshell import NEEDS_BROWSER, SHELL_MAX_WORDS, detect_app_shell
from .config import Source
from .extract import Extraction, decode_html, extract, has_more_words_than
from .pdf import UnreadablePdf, is_pdf, pdf_text


@dataclass(frozen=True)
class Unreadable:
    """A body that yields no watched text: the fetch's outcome and a one-line reason."""

    outcome: str
    error: str


def read_document(body: bytes, content_type: str | None, source: Source, fetcher: str) -> Extraction | Unreadable:
    """The watched text of ``body``, fetched by ``fetcher`` (``http`` or ``browser``) for ``source``.

    ``select`` and ``remove`` apply to web pages; a PDF is watched whole.
    """
    if is_pdf(body, content_type):
        try:
            document = pdf_text(body)
        except UnreadablePdf as exc:
            return Unreadable("unreadable", str(exc))
        if not document.text:
            return Unreadable("no_text", f"the PDF has {document.pages} page(s) and no text layer "
                                         "(a scanned document needs OCR before it can be watched)")
        return Extraction(document.text)
    html = decode_html(body, content_type)
    extraction = extract(html, source.select, source.remove)
    # Only a plain fetch can get a shell; a rendered page that is still empty is simply empty.
    if fetcher == "http" and (extraction.selector_missing or not has_more_words_than(extraction.text, SHELL_MAX_WORDS)):
        shell = detect_app_shell(html)
        if shell is not None:
            return Unreadable(NEEDS_BROWSER, f"{shell}; set `fetch: browser` for this source")
    if not extraction.text and not extraction.selector_missing:
        return Unreadable("empty", "the page has no text")
    return extraction
