"""Extraction: the watched text keeps the page's blocks and loses per-request noise."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watcher.extract import decode_html, extract, normalize_text


def text_of(html: str, **rules) -> str:
    return extract(html, **rules).text


def test_blocks_are_lines_and_inline_markup_is_not():
    html = """<body><main><h1>Data  Policy</h1><p>We keep <b>logs</b> for
    <a href="/x">30 days</a>.</p><ul><li>One</li><li>Two</li></ul></main></body>"""
    assert text_of(html) == "Data Policy\nWe keep logs for 30 days.\nOne\nTwo"


def test_words_never_glue_across_element_boundaries():
    html = '<body><p><a href="/p">Privacy</a><a href="/t">Terms</a><span>Cookies</span>Settings</p></body>'
    assert text_of(html) == "Privacy Terms Cookies Settings"


def test_punctuation_after_an_inline_element_stays_attached():
    assert text_of("<body><p>See <a>our policy</a>. It (<i>briefly</i>) explains.</p></body>") == (
        "See our policy. It (briefly) explains."
    )


def test_table_rows_are_lines_with_separated_cells():
    html = """<body><table><tr><th>Data</th><th>Retention</th></tr>
    <tr><td><p>Prompts</p></td><td>30&nbsp;days</td></tr></table></body>"""
    assert text_of(html) == "Data | Retention\nPrompts | 30 days"


def test_never_content_is_dropped():
    html = """<html><head><title>T</title><style>p{}</style></head><body>
    <script>var csrf = "abc";</script><noscript>Enable JS</noscript><template><p>later</p></template>
    <svg><text>logo</text></svg><p>Real text</p><iframe src="/ad"></iframe></body></html>"""
    assert text_of(html) == "Real text"


def test_page_chrome_is_dropped_without_a_selector():
    html = """<body><header><a>Logo</a></header><nav>Menu</nav>
    <main><article><header><h1>Terms</h1></header><p>Body text</p><footer>Article note</footer></article>
    <aside>Teaser 42</aside></main>
    <div role="navigation">Crumbs</div><form><label>Newsletter</label></form>
    <footer>Generated 12:00:01</footer></body>"""
    assert text_of(html) == "Terms\nBody text\nArticle note"


def test_a_form_that_wraps_the_whole_page_is_kept():
    html = "<body><form id='aspnetForm'><main><h1>Policy</h1><p>Text</p></main></form></body>"
    assert text_of(html) == "Policy\nText"


def test_select_watches_every_match_in_document_order_without_nesting_twice():
    html = """<body><div id="b"><p>second</p></div><div id="a"><p>first</p><div id="b2">inner</div></div></body>"""
    assert text_of(html, select=("#a", "#b", "#b2")) == "second\nfirst\ninner"


def test_remove_applies_inside_the_selected_part():
    html = """<body><main><p>Keep</p><div class="cookie-banner">Accept cookies</div></main>
    <div class="cookie-banner">Outside</div></body>"""
    assert text_of(html, select=("main",), remove=(".cookie-banner",)) == "Keep"


def test_a_selector_that_matches_nothing_is_reported_as_missing():
    result = extract("<body><p>Text</p></body>", select=("#terms",))
    assert result.selector_missing and result.text == ""


def test_a_selector_that_matches_an_empty_element_is_reported_as_missing():
    result = extract("<body><div id='terms'>  <img src='x.png'> </div><p>Text</p></body>", select=("#terms",))
    assert result.selector_missing


def test_attribute_comment_whitespace_and_image_churn_change_nothing():
    first = '<body><main class="a1" data-x="1"><!-- t=1 --><p>Text   here<img src="/i.png?v=1"></p></main></body>'
    second = '<body><main class="b2" data-x="2"><!-- t=2 --><p>Text\n here<img src="/i.png?v=2"></p></main></body>'
    assert text_of(first) == text_of(second) == "Text here"


def test_zero_width_characters_and_soft_hyphens_are_dropped():
    assert text_of("<body><p>data\u00adbase\u200b retention</p></body>") == "database retention"


def test_decoding_follows_bom_header_meta_then_utf8():
    assert decode_html("café".encode()) == "café"
    assert decode_html(b"\xef\xbb\xbfcaf\xc3\xa9") == "café"
    assert decode_html("café".encode("latin-1"), "text/html; charset=ISO-8859-1") == "café"
    assert decode_html(b'<meta charset="windows-1252"><p>caf\xe9</p>').endswith("café</p>")
    # Declared UTF-8 but Windows-1252 sent: no crash, the rest of the page survives.
    assert "retention" in decode_html(b"caf\xe9 retention", "text/html; charset=utf-8")
    # Nothing declared and not UTF-8: read as Windows-1252, as browsers do.
    assert decode_html(b"\x93quoted\x94") == "\u201cquoted\u201d"


@given(st.text())
def test_normalization_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1), max_size=6))
def test_extraction_is_deterministic_and_its_output_is_normalized(paragraphs):
    from html import escape

    page = "<body>" + "".join(f"<p>{escape(p)}</p>" for p in paragraphs) + "</body>"
    text = text_of(page)
    assert text == text_of(page)
    assert normalize_text(text) == text


_FRAGMENTS = st.recursive(
    st.sampled_from(["Data", "kept", " ", "  30 days", "(EU)", ".", ",", "»", "\u00a0", "\u2003", "x\u200by", "\n",
                     "<br>", "<!-- note -->", "<script>var a;</script>", "\x01", "<img alt=logo>"]),
    lambda inner: st.builds(
        lambda tag, parts: f"<{tag}>{''.join(parts)}</{tag}>",
        st.sampled_from(["p", "div", "span", "b", "a", "li", "h2", "td", "th", "section", "em"]),
        st.lists(inner, max_size=4),
    ) | st.builds(
        lambda rows: "<table>" + "".join(f"<tr>{''.join(f'<td>{c}</td>' for c in row)}</tr>" for row in rows)
        + "</table>",
        st.lists(st.lists(inner, max_size=3), max_size=3),
    ),
    max_leaves=25,
)


@given(st.lists(_FRAGMENTS, max_size=6))
def test_lexbor_reads_the_lines_the_walk_reads(fragments):
    from selectolax.lexbor import LexborHTMLParser

    from watcher.extract import NEVER_CONTENT, _Lines, _marked_lines, _walk

    page = "<body>" + "".join(fragments) + "</body>"
    trees = []
    for _ in range(2):
        tree = LexborHTMLParser(page)
        tree.strip_tags(NEVER_CONTENT, recursive=True)
        trees.append(tree)
    walked = _Lines()
    _walk(trees[0].body, walked)
    walked.newline()
    marked = _marked_lines(trees[1].body)
    assert marked is None if "\x01" in page else marked == walked.lines, page
