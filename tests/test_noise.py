"""Noise rules: each general class of noise, on a page written for the test, with and without the rule."""

from __future__ import annotations

import re
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher import noise
from watcher.extract import extract

POLICY = """<h1>Privacy Policy</h1><p>We keep prompts for 30 days and then delete them.</p>
<p>We never sell personal data to third parties or use it for advertising.</p>
<p>Contact the data protection officer for any request about your data.</p>"""


def page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"


def text(html: str, **rules) -> str:
    return extract(html, **rules).text


@contextmanager
def without(name: str):
    """Extraction with one rule switched off, as the fidelity benchmark does."""
    assert name in {r.name for r in noise.RULES}
    with mock.patch.object(noise, "RULES", tuple(r for r in noise.RULES if r.name != name)):
        yield


def assert_rule_removes(rule: str, html: str, noise_text: str, **rules) -> None:
    """The rule removes ``noise_text`` and keeps the policy; without it, the noise shows."""
    cleaned = text(html, **rules)
    assert noise_text not in cleaned
    assert "We keep prompts for 30 days and then delete them." in cleaned
    with without(rule):
        assert noise_text in text(html, **rules)


def test_cdn_obfuscated_addresses_read_the_same_whatever_the_per_response_key():
    # The key lives in an attribute, which is never text: the page reads as it shows without scripts.
    def obfuscated(address: str, key: int) -> str:
        encoded = bytes([key]) + bytes(b ^ key for b in address.encode())
        return f'<a href="/cdn-cgi/l/email-protection" class="__cf_email__" data-cfemail="{encoded.hex()}">[email&#160;protected]</a>'

    first = page(f"<main><p>Write to {obfuscated('dpo@example.org', 0x5A)} today.</p></main>")
    second = page(f"<main><p>Write to {obfuscated('dpo@example.org', 0x13)} today.</p></main>")
    assert text(first) == text(second) == "Write to [email protected] today."
    assert text(second, select=("main",)) == "Write to [email protected] today."


def test_an_address_that_becomes_hidden_is_a_change():
    plain = page("<main><p>Write to <a href='mailto:dpo@example.org'>dpo@example.org</a> today.</p></main>")
    hidden = page('<main><p>Write to <a class="__cf_email__" data-cfemail="5a3e2a35">[email&#160;protected]</a> today.</p></main>')
    assert text(plain) != text(hidden)


def test_dates_relative_to_today_read_as_the_date_they_stand_for():
    monday = page('<main><p>Last updated <time datetime="2026-05-04T10:00:00Z">2 days ago</time>.</p></main>')
    tuesday = page('<main><p>Last updated <time datetime="2026-05-04T10:00:00Z">3 days ago</time>.</p></main>')
    assert text(monday) == text(tuesday) == "Last updated 2026-05-04."
    assert text(tuesday, select=("main",)) == "Last updated 2026-05-04."
    absolute = page('<p>Effective <time datetime="2026-05-04">May 4, 2026</time></p>')
    assert text(absolute) == "Effective May 4, 2026"
    with without("relative-dates"):
        assert text(tuesday) == "Last updated 3 days ago."


def test_blocks_repeated_for_small_and_large_screens_count_once():
    html = page(f"""<main>{POLICY}<p class="hidden md:block">Effective 1 May 2026</p>
        <p class="md:hidden">Effective 1 May 2026</p><div class="d-none d-lg-block">Summary</div>
        <div class="d-lg-none">Summary</div><p class="hidden md:block">Unique wording</p></main>""")
    assert text(html).count("Effective 1 May 2026") == 1
    assert text(html).count("Summary") == 1
    assert "Unique wording" in text(html)
    with without("responsive-duplicates"):
        assert text(html).count("Effective 1 May 2026") == 2


def test_screen_reader_only_text_is_dropped_from_the_whole_page():
    html = page(f'<main>{POLICY}<p><a href="/x">Terms<span class="sr-only"> (opens in a new tab)</span></a></p>'
                f'<span class="u-visually-hidden">Menu</span></main>')
    assert_rule_removes("screen-reader-text", html, "opens in a new tab")
    assert "Menu" not in text(html)


def test_skip_links_go_but_a_heading_linking_to_itself_stays():
    html = page(f'<a href="#content" class="-translate-y-full">Skip to content</a><p>Intro</p>{POLICY}')
    assert_rule_removes("skip-links", html, "Skip to content")
    anchored = page('<h2 id="scope"><a href="#scope">Scope</a></h2><p>We keep prompts for 30 days.</p>')
    assert text(anchored) == "Scope\nWe keep prompts for 30 days."
    named = page(f'<main><p><a class="skip-link" href="#main">Jump to main text</a></p>{POLICY}</main>')
    assert_rule_removes("skip-links", named, "Jump to main text")


SITE = """<div id="app">{before}<div class="layout"><section class="content">{policy}</section>{inside}</div>
{after}</div>"""


def site(before: str = "", after: str = "", inside: str = "") -> str:
    return page(SITE.format(before=before, after=after, inside=inside, policy=POLICY))


def test_footers_and_headers_inside_main_are_dropped_when_they_hold_links():
    html = page(f"""<main><div class="prose">{POLICY}</div><footer><nav><a href="/c">Careers</a></nav>
        <p>Example Inc. is registered in Springfield under number 12345 since the spring.</p></footer></main>""")
    assert_rule_removes("landmarks", html, "registered in Springfield")
    own_footer = page(f"<main><div class='prose'>{POLICY}</div><footer>Last updated 2 May 2026</footer></main>")
    assert "Last updated 2 May 2026" in text(own_footer)


def test_menus_and_footers_named_by_class_are_dropped_even_with_hashed_names():
    menu = '<div class="Header_menuWrap__x8Kq2"><span>Products</span><span>Solutions</span><span>Enterprise</span></div>'
    html = site(before=menu, after='<div class="site-footer_root__Ab12"><div class="footer-nav"><a>Jobs</a></div>'
                                  '<p>Built with care in Lisbon</p></div>')
    assert_rule_removes("named-chrome", html, "Enterprise")
    assert "Built with care in Lisbon" not in text(html)


def test_a_policys_own_footer_is_kept_though_named_footer():
    html = site(inside='<div class="policy-footer"><p>Latest update: 2 May 2026</p></div>')
    assert "Latest update: 2 May 2026" in text(html)


def test_cookie_banners_and_consent_managers_are_dropped():
    banner = ('<div class="cky-consent-container"><p>We value your privacy and use cookies.</p>'
              '<button>Accept all</button></div>')
    panel = ('<div class="cky-modal"><div><h2>Customise consent preferences</h2>'
             '<table><tr><td>Cookie</td><td>_ga</td><td>Duration</td><td>1 year</td></tr></table>'
             '<button>Save my choices</button></div></div>')
    html = site(after=banner + panel)
    assert_rule_removes("consent-banners", html, "We value your privacy")
    assert "_ga" not in text(html)


def test_a_long_consent_panel_never_takes_the_place_of_the_main_text():
    rows = "".join(f"<tr><td>cookie_{i}</td><td>Stores a preference of the visitor for a year.</td></tr>"
                   for i in range(60))
    html = page(f'<div class="cookie-preferences"><table>{rows}</table><a class="btn">Accept</a></div>'
                f'<div class="imprint">{POLICY}</div>')
    assert text(html).startswith("Privacy Policy")
    assert "cookie_7" not in text(html)


def test_a_section_about_cookies_that_asks_for_nothing_is_content():
    sections = "".join(f'<section class="{name}"><h2>{title}</h2><p>{title} apply to every visitor of the site and '
                       f'are reviewed each year by the legal team.</p></section>'
                       for name, title in (("terms", "Terms"), ("cookie-policy", "Cookie rules"), ("dpa", "DPA")))
    assert "Cookie rules apply to every visitor" in text(page(f"<main>{sections}</main>"))


def test_a_cookie_policy_keeps_its_own_cookie_tables():
    html = page("""<main><h1>Cookie Policy</h1><p>We keep prompts for 30 days and then delete them.</p>
        <table class="cookie-table"><tr><td>_session</td><td>Keeps you signed in</td></tr></table></main>""")
    assert "_session | Keeps you signed in" in text(html)


def test_announcement_bars_are_dropped_above_the_header_floating_or_named():
    above = site(before='<div class="bg-brand p-4 text-center"><p>New models are available. <a href="/n">Try them'
                        '</a></p></div><div class="menu"><a>Docs</a><a>Pricing</a></div>')
    assert_rule_removes("announcement-bars", above, "New models are available")
    floating = site(before='<div class="fixed top-0 w-full">Join our live event on Tuesday</div>')
    assert_rule_removes("announcement-bars", floating, "Join our live event")
    named = site(before='<div class="announcement-bar">We are now called Example</div>')
    assert_rule_removes("announcement-bars", named, "We are now called Example")


def test_unnamed_blocks_of_links_beside_the_main_text_are_dropped():
    links = "".join(f'<a href="/{w}">{w}</a> ' for w in ("Grok", "API", "Company", "Careers", "News", "Status"))
    html = site(after=f'<div class="border-t pb-32"><section><div>{links}</div></section></div>')
    assert_rule_removes("link-lists", html, "Careers")


def test_a_list_of_links_inside_the_policy_is_content():
    html = page("""<main><h1>Subprocessors</h1><p>We use these subprocessors to run the service.</p>
        <ul><li><a href="https://a.example">Cloud Provider A</a></li><li><a href="https://b.example">Mailer B</a></li>
        </ul><p>We keep prompts for 30 days and then delete them.</p></main>""")
    assert "Cloud Provider A\nMailer B" in text(html)


def test_a_page_of_equal_sections_keeps_every_section():
    sections = "".join(f'<section class="s{i}"><h2>Part {i}</h2><ul><li><a href="/{i}">Document {i}</a></li>'
                       f"<li><a>Report {i}</a></li></ul></section>" for i in range(4))
    html = page(f"<header><nav><a>Home</a></nav></header><main>{sections}</main>")
    for i in range(4):
        assert f"Document {i}" in text(html)


def test_the_page_title_is_never_taken_for_chrome():
    html = page(f"""<div class="fixed top-0"><a>Home</a></div>
        <div class="page-header"><h1>Terms of Service</h1><p>Effective 2 May 2026</p></div>
        <div class="content">{POLICY}</div>""")
    assert text(html).startswith("Terms of Service\nEffective 2 May 2026")


def test_copyright_years_go_without_a_selector_and_stay_with_one():
    html = page(f"<main>{POLICY}<p>© 2026 Example, Inc. All rights reserved.</p></main>")
    assert_rule_removes("copyright-years", html, "© 2026 Example")
    assert "© 2026 Example" in text(html, select=("main",))
    long_sentence = page("<p>Copyright law of 2019 applies to everything you upload to the service, including "
                         "images, text and audio that you did not create yourself.</p>")
    assert "Copyright law of 2019" in text(long_sentence)


@pytest.mark.parametrize("line, dropped", [
    ("© 2026 Example, Inc. All rights reserved.", True),
    ("(C) 2024 Example Ltd", True),
    ("COPYRIGHT 2025 EXAMPLE GMBH", True),
    ("Copyright © 1999-2026 Example", True),
    ("Copyrighted material, 2026", False),  # a word that only starts like the notice
    ("(c) Example, all rights reserved", False),  # no year to move
    ("Updated 2026: we keep prompts for 30 days", False),
])
def test_copyright_notice_is_told_by_its_sign_or_word_and_a_year(line, dropped):
    assert (noise.drop_copyright_notice(line) is None) is dropped


def test_tracking_parameters_are_stripped_from_addresses_in_the_text():
    html = page("<p>Read https://example.org/terms?utm_source=mail&amp;utm_medium=x&amp;lang=en#s2 first.</p>")
    assert text(html) == "Read https://example.org/terms?lang=en#s2 first."
    only_tracking = page("<p>See https://example.org/dpa?gclid=abc123 now</p>")
    assert text(only_tracking) == "See https://example.org/dpa now"
    with without("tracking-parameters"):
        assert "utm_source=mail" in text(html)


def test_rules_with_a_selector_leave_the_selected_part_alone():
    html = page('<main><nav class="toc"><a href="#a">Scope</a></nav><p class="sr-only">Read aloud</p>'
                '<p>We keep prompts for 30 days.</p></main>')
    assert text(html, select=("main",)) == "Scope\nRead aloud\nWe keep prompts for 30 days."


def test_every_rule_is_named_once_and_says_what_it_handles():
    names = [r.name for r in noise.RULES]
    assert len(names) == len(set(names))
    assert all(r.handles and r.kind in (noise.ELEMENT, noise.REGION, noise.LINE) for r in noise.RULES)


@pytest.mark.parametrize("name, words", [
    ("mega--nav_dd", {"mega", "nav", "dd"}),
    ("cookie-banner_cookieBanner__sW1Pc", {"cookie", "banner", "s", "w"}),
    ("Footer_root__x7Kq2", {"footer", "root", "x", "kq"}),
])
def test_class_names_are_read_as_words(name, words):
    from selectolax.lexbor import LexborHTMLParser

    node = LexborHTMLParser(f'<div class="{name}">x</div>').css_first("div")
    assert words <= noise.name_words(node)


@given(st.lists(st.sampled_from(["<p>Text</p>", "<nav><a>Home</a></nav>", "<footer><a>Jobs</a></footer>",
                                 '<div class="menu"><a>A</a></div>', '<div class="cookie-banner">OK</div>',
                                 "<div><p>Deep text</p></div>", '<a href="#x">Skip</a>', "<h1>Title</h1>"]),
                max_size=8))
def test_whole_page_extraction_is_deterministic_and_keeps_paragraph_text(blocks):
    html = page("".join(blocks))
    result = text(html)
    assert result == text(html)
    if "<p>Text</p>" in blocks:
        assert "Text" in result.split("\n")


def test_a_title_element_written_into_the_body_is_metadata_not_text():
    assert text(page("<title>Acme | Terms</title><main><p>We keep prompts for 30 days.</p></main>")) == (
        "We keep prompts for 30 days."
    )


@given(st.text(alphabet=st.sampled_from("ab1 _-.,\n\t\u00e9\u00a0\u2019\u2014\u4e2d\u200b"), max_size=80))
def test_words_are_counted_as_runs_of_letters_and_digits_whatever_the_text(text):
    assert noise.word_count(text) == len(re.findall(r"\w+", text))
