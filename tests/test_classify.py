"""Each rule of the page classifier, and the pages it must leave alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import html
from watcher.classify import (
    classify_response,
    is_challenge,
    is_consent_wall,
    is_gate,
    is_soft_not_found,
    is_truncated,
    is_unavailable,
    looks_binary,
    read_page,
)
from watcher.extract import decode_html, extract

LONG = 4000  # characters of text the source had before
HTML = {"content-type": "text/html; charset=utf-8"}
ARTICLE = "".join(f"<p>Paragraph {i} of the policy explains how customer data is handled.</p>" for i in range(60))


def page(body: str, title: str = "Policy"):
    return read_page(html(body, title=title))


def test_a_page_is_short_below_250_words_and_zero_width_characters_are_no_words():
    def bare(text: str):
        return read_page(f"<html><body><p>{text}</p></body></html>")

    assert bare("word " * 249).short
    assert not bare("word " * 250).short
    assert bare("word " * 200 + "\u200b " * 100).short
    assert not bare("wo\u200brd " * 250).short


def test_binary_signatures_nul_bytes_and_control_characters_are_binary():
    assert looks_binary(b"\x89PNG\r\n\x1a\n....")
    assert looks_binary(b"\x1f\x8b\x08\x00compressed")
    assert looks_binary(b"<html>\x00\x00\x00</html>")
    assert looks_binary(bytes(range(1, 32)) * 10)
    assert not looks_binary(html("<p>Caf\u00e9 \u2013 na\u00efve</p>").encode("utf-8"))
    assert not looks_binary(b"<p>\tTabs\r\nand newlines</p>")


def test_a_document_that_stops_before_its_end_is_truncated_only_if_it_used_to_end():
    whole = html("<p>x</p>").encode()
    assert is_truncated(whole[:40], previous_body=whole)
    assert not is_truncated(whole, previous_body=whole)
    assert not is_truncated(b"<p>no closing tags, ever</p>", previous_body=b"<p>no closing tags</p>")
    assert not is_truncated(whole[:40], previous_body=None)


@pytest.mark.parametrize(
    ("body", "title", "headers", "status"),
    [
        ("<h1>Checking your browser</h1><p>Please wait.</p>", "Just a moment...", {}, 503),
        ("<p>Please verify you are human by completing the action below.</p>", "example.com", {}, 200),
        ("<h1>Are you a robot?</h1>", "Robot check", {}, 200),
        ("<p>Our systems have detected unusual traffic from your computer network.</p>", "Sorry", {}, 200),
        ("<p>x</p>", "Error", {"cf-mitigated": "challenge"}, 403),
        ("<div class='g-recaptcha'></div><p>Access denied.</p>", "Denied", {}, 403),
        ("<script>window._cf_chl_opt={}</script><p>One moment.</p>", "Please wait", {}, 200),
    ],
    ids=["challenge title", "verify you are human", "are you a robot", "unusual traffic",
         "challenge header", "captcha on a 403", "challenge script marker"],
)
def test_challenge_pages_are_recognised(body, title, headers, status):
    assert is_challenge(read_page(html(body, title=title)), status, headers)


def test_a_long_page_with_a_captcha_form_is_no_challenge():
    form = "<form><div class='g-recaptcha'></div><button>Send</button></form>"
    assert not is_challenge(page(ARTICLE + form), 200, {})
    assert not is_challenge(page("<p>We use reCAPTCHA on our contact form.</p>" + ARTICLE), 200, {})


def test_soft_404_needs_the_title_or_heading_and_a_short_page():
    assert is_soft_not_found(page("<h1>Page not found</h1><p>Go home.</p>"), LONG)
    assert is_soft_not_found(page("<p>Sorry.</p>", title="404 - Example"), None)
    assert not is_soft_not_found(page("<h1>Errors</h1><p>The API answers 404 not found for unknown ids.</p>"), None)
    assert not is_soft_not_found(page("<h1>HTTP 404 errors</h1>" + ARTICLE), None)


def test_a_soft_404_that_is_not_shorter_than_the_text_it_replaces_is_the_page():
    short = page("<h1>Not found</h1><p>Status codes.</p>")
    assert not is_soft_not_found(short, previous_chars=len(short.text))


def test_unavailable_pages_say_so_and_are_short():
    assert is_unavailable(page("<h1>Down for maintenance</h1><p>Back soon.</p>"), LONG)
    assert is_unavailable(page("<p>The service is temporarily unavailable. Try again later.</p>"), LONG)
    assert not is_unavailable(page("<p>Status: operational. Yesterday the API was temporarily unavailable.</p>"), None)
    assert not is_unavailable(page("<p>Our SLA covers periods when the service is temporarily unavailable.</p>"
                                   + ARTICLE), None)


def test_a_gate_needs_content_that_used_to_be_there():
    login = read_page("<html><head><title>Log in</title></head><body><form><input type=password></form></body></html>")
    assert is_gate(login, LONG, None)
    assert not is_gate(login, None, None)  # a page that was a gate from the start is what the source is


def test_gate_phrases_password_fields_and_login_redirects():
    assert is_gate(page("<h1>Request access</h1><p>Sign the NDA to view this report.</p>"), LONG, None)
    assert is_gate(page("<p>You don't have permission to view this document.</p>"), LONG, None)
    assert is_gate(page("<p>Sign in</p>" + ARTICLE), LONG, "https://trust.example.org/login?next=/soc2")
    assert not is_gate(page("<p>Welcome back</p>" + ARTICLE), LONG, "https://trust.example.org/soc2")


def test_a_trust_center_offering_request_access_is_not_a_gate():
    trust_center = page("<h1>Trust center</h1><p>SOC 2 Type II report <button>Request access</button></p>" + ARTICLE)
    assert not is_gate(trust_center, len(trust_center.text), None)


def test_words_inside_other_words_are_not_gate_phrases():
    assert not is_gate(page("<p>Standard agenda for Monday</p>"), LONG, None)


def test_consent_walls_are_short_about_cookies_and_offer_a_choice_where_content_used_to_be():
    wall = "We use cookies to improve your experience.\nAccept all\nReject all"
    assert is_consent_wall(wall, LONG)
    assert not is_consent_wall(wall, None)  # a short cookie policy is a page
    assert not is_consent_wall("Cookie policy\n" + "We set these cookies.\n" * 30, LONG)
    assert not is_consent_wall("Accept all terms of service", LONG)


def test_classify_response_leaves_pdfs_and_other_types_alone():
    assert classify_response(200, {"content-type": "application/pdf"}, b"%PDF-1.7 \x00\x01") is None
    assert classify_response(200, HTML, b"%PDF-1.7\n\x00\x00") is None
    assert classify_response(200, {"content-type": "image/png"}, b"\x89PNG....") is None


def test_classify_response_keeps_plain_errors_and_upgrades_challenge_walls():
    error = html("<h1>Forbidden</h1>").encode()
    assert classify_response(403, HTML, error) is None
    wall = html("<p>Verify you are human</p>", title="Just a moment...").encode()
    assert classify_response(403, HTML, wall).outcome == "blocked"


def test_utf16_pages_are_not_binary():
    body = html("<p>Bonjour</p>").encode("utf-16-le")
    assert classify_response(200, {"content-type": "text/html; charset=utf-16le"}, body) is None


def test_an_ordinary_page_is_the_page():
    body = html("<h1>Privacy</h1>" + ARTICLE).encode()
    assert classify_response(200, HTML, body, previous_chars=LONG, previous_body=body) is None


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dev"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus of real policy pages is not beside the checkout")
def test_no_real_policy_page_is_taken_for_a_wall_a_gate_or_an_error():
    """Every snapshot of the corpus is a real page (each passed a content check): none may be classified."""
    wrong = []
    for doc in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        meta = json.loads((doc / "meta.json").read_text())
        previous_body = previous_chars = None
        for snapshot in meta["snapshots"]:
            body = (doc / snapshot["file"]).read_bytes()
            verdict = classify_response(200, HTML, body, previous_chars=previous_chars,
                                        previous_body=previous_body, final_url=meta["url"])
            if verdict:
                wrong.append((doc.name, snapshot["file"], verdict))
            previous_body, previous_chars = body, len(extract(decode_html(body, HTML["content-type"])).text)
    assert wrong == []
