"""PDF sources: text extraction, quotes and diffs on PDFs, scans and metadata-only edits.

Every PDF is generated here with reportlab, served by the local test server.
"""

from __future__ import annotations

import io
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

from watcher.extract import normalize_line
from watcher.pdf import is_pdf, pdf_text

STYLES = getSampleStyleSheet()
RETENTION = "The processor deletes customer data within 30 days of the end of the agreement, including backups."
AUDIT = "The processor is audited every year against SOC 2 Type II by an independent firm."


def make_pdf(blocks: list[tuple[str, str]], **metadata: str) -> bytes:
    """A PDF of (style, text) blocks; ("page", "") starts a new page. ``metadata``: title, author, ..."""
    out = io.BytesIO()
    story = [PageBreak() if style == "page" else Paragraph(text, STYLES[style]) for style, text in blocks]
    SimpleDocTemplate(out, pagesize=A4, **metadata).build(story)
    return out.getvalue()


DPA = [
    ("Title", "Data Processing Addendum"),
    ("BodyText", RETENTION + " Deletion is confirmed in writing on request, within ten business days."),
    ("BodyText", AUDIT),
    ("page", ""),
    ("Heading2", "Annex 3: Subprocessors"),
    ("BodyText", "Google Cloud, hosting in the European Union."),
]

CONFIG = """
sources:
  dpa:
    url: {url}
offerings:
  acme:
    records:
      retention:
        cites:
          - source: dpa
            quote: "{retention}"
      soc2:
        cites:
          - source: dpa
            quote: "{audit}"
"""


def serve_pdf(site, body: bytes, content_type: str = "application/pdf") -> str:
    site.page("/dpa.pdf", body, content_type=content_type)
    return site.url("/dpa.pdf")


def test_a_pdf_is_extracted_page_by_page_one_paragraph_per_line():
    text = pdf_text(make_pdf(DPA))
    assert text.pages == 2
    assert text.text.split("\n") == [
        "Data Processing Addendum",
        RETENTION + " Deletion is confirmed in writing on request, within ten business days.",
        AUDIT,
        "Annex 3: Subprocessors",
        "Google Cloud, hosting in the European Union.",
    ]


def test_a_changed_clause_in_a_pdf_flags_the_record_quoting_it(site, make_config, check, store):
    url = serve_pdf(site, make_pdf(DPA))
    config = make_config(CONFIG.format(url=url, retention=RETENTION, audit=AUDIT))
    summary = check(config)
    assert (summary.sources[0].status, store.open_flags()) == ("new", [])

    edited = [(style, text.replace("within 30 days", "within 90 days")) for style, text in DPA]
    serve_pdf(site, make_pdf(edited))
    summary = check(config)
    assert summary.sources[0].status == "changed"
    flags = store.open_flags()
    assert [(f["record_id"], f["reason"]) for f in flags] == [("acme/retention", "quote_changed")]
    assert flags[0]["new"] == RETENTION.replace("30 days", "90 days")
    change = store.rows("SELECT words_added, words_removed FROM changes")[0]
    assert (change["words_added"], change["words_removed"]) == (1, 1)


def test_a_pdf_that_changes_only_its_metadata_is_not_a_change(site, make_config, check, store):
    first = make_pdf(DPA, title="DPA", author="Legal", creator="Word", producer="Acrobat 9", subject="v1")
    second = make_pdf(DPA, title="DPA (final)", author="Ops", creator="LibreOffice", producer="Quartz", subject="v2")
    assert first != second
    config = make_config(CONFIG.format(url=serve_pdf(site, first), retention=RETENTION, audit=AUDIT))
    check(config)
    serve_pdf(site, second)
    summary = check(config)
    assert summary.sources[0].status == "unchanged"
    assert store.rows("SELECT count(*) AS n FROM snapshots")[0]["n"] == 2
    assert store.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0
    assert store.open_flags() == []


def test_a_pdf_served_with_a_generic_type_is_recognised_by_its_magic_bytes(site, make_config, check, store):
    url = serve_pdf(site, make_pdf(DPA), content_type="application/octet-stream")
    check(make_config(CONFIG.format(url=url, retention=RETENTION, audit=AUDIT)))
    assert store.latest_version("dpa").text.startswith("Data Processing Addendum\n")
    assert store.open_flags() == []


def scanned_pdf() -> bytes:
    """A page that is only a picture of text: no text layer."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    picture = Image.new("L", (400, 120), 255)
    for x in range(40, 360, 12):
        for y in range(40, 80):
            picture.putpixel((x, y), 0)
    page.drawImage(ImageReader(picture), 80, 600, width=400, height=120)
    page.showPage()
    page.save()
    return out.getvalue()


def test_a_scanned_pdf_is_its_own_outcome_not_an_empty_document(site, make_config, check, store):
    config = make_config(CONFIG.format(url=serve_pdf(site, make_pdf(DPA)), retention=RETENTION, audit=AUDIT))
    check(config)
    serve_pdf(site, scanned_pdf())
    summary = check(config)
    report = summary.sources[0]
    assert (report.status, report.outcome) == ("failed", "no_text")
    assert "no text layer" in report.error
    assert store.fetch_history("dpa")[0]["outcome"] == "no_text"
    assert store.latest_version("dpa").seq == 1
    assert store.rows("SELECT count(*) AS n FROM changes")[0]["n"] == 0
    assert store.open_flags() == []


def test_a_broken_pdf_is_unreadable(site, make_config, check):
    url = serve_pdf(site, b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntruncated")
    summary = check(make_config(CONFIG.format(url=url, retention=RETENTION, audit=AUDIT)))
    assert (summary.sources[0].status, summary.sources[0].outcome) == ("failed", "unreadable")


def test_pdfs_are_recognised_by_type_or_header_and_pages_are_not():
    assert is_pdf(b"anything", "application/pdf; qs=0.9")
    assert is_pdf(b"\r\n%PDF-1.4 ...", "application/octet-stream")
    assert is_pdf(b"%PDF-1.4 ...", None)
    assert not is_pdf(b"<html><body>Our %PDF- guide</body></html>", "text/html")
    assert not is_pdf(b"plain words", "text/plain")


WORDS = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=12)
PARAGRAPHS = st.lists(st.lists(WORDS, min_size=1, max_size=60).map(" ".join), min_size=1, max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PARAGRAPHS)
def test_paragraphs_written_to_a_pdf_come_back_one_per_line(paragraphs):
    body = make_pdf([("BodyText", paragraph) for paragraph in paragraphs])
    assert pdf_text(body).text.split("\n") == [normalize_line(p) for p in paragraphs]
