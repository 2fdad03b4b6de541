"""Finding quoted passages, and diffs that can be trusted."""

from __future__ import annotations

from diff_match_patch import diff_match_patch
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.diff import Comparison, count_words, render_markers, source_text, target_text, word_diff
from watcher.extract import normalize_line, normalize_text
from watcher.passages import TextIndex, best_similarity_within, fold, term_lines

TEXT = """Security at Acme
Acme undergoes an annual SOC 2 Type II audit. Request access to see our report.
We automatically delete logged prompts and generations after 30 days, unless required by law.
Subprocessor | Purpose | Location
Google Cloud | Hosting | United States"""


def test_an_exact_quote_is_found_with_the_pages_wording():
    match = TextIndex(TEXT).locate("acme undergoes an ANNUAL soc 2 type ii audit")
    assert match.exact
    assert match.wording == "Acme undergoes an annual SOC 2 Type II audit"


def test_a_quote_with_an_edited_word_is_found_approximately():
    match = TextIndex(TEXT).locate("We automatically delete logged prompts and generations after 60 days")
    assert not match.exact and match.similarity >= 0.8
    assert match.wording == "We automatically delete logged prompts and generations after 30 days"


def test_an_edited_first_word_is_part_of_the_new_wording():
    match = TextIndex(TEXT).locate("They automatically delete logged prompts and generations after 30 days")
    assert match.wording == "We automatically delete logged prompts and generations after 30 days"


def test_a_rewritten_quote_is_not_found():
    assert TextIndex(TEXT).locate("Prompts are never logged and never retained by Acme") is None
    assert TextIndex(TEXT).locate("SOC 3") is None


def test_a_quote_is_found_wherever_it_moved_in_a_long_text():
    filler = "\n".join(f"Clause {i}: the parties agree to term number {i}." for i in range(5000))
    text = filler + "\nWe automatically delete logged prompts after 30 days.\n" + filler
    match = TextIndex(text).locate("We automatically delete logged prompts after 31 days.")
    assert match is not None and match.wording == "We automatically delete logged prompts after 30 days."


def test_folding_keeps_length_and_maps_typography():
    text = "Cohere\u2019s \u201cAPI\u201d \u2014 ZDR\u00a0İ"
    assert len(fold(text)) == len(text)
    assert fold("Cohere\u2019s \u201cAPI\u201d \u2014 ZDR\u00a0") == "cohere's \"api\" - zdr "


def test_terms_match_whole_words_only():
    index = TextIndex("We sign a BAA.\nBAAS providers are excluded.\nHIPAA applies")
    assert term_lines(index, "baa") == ["We sign a BAA."]
    assert term_lines(index, "HIPAA") == ["HIPAA applies"]
    assert term_lines(index, "business associate") == []


def test_a_word_diff_marks_whole_words():
    diffs = word_diff("Retention is 30 days for logs.", "Retention is 60 days for all logs.")
    assert render_markers(diffs) == "Retention is [-30-]{+60+} days for {+all +}logs."
    assert count_words(diffs) == (2, 1)


def test_hunks_are_the_changed_blocks():
    old = "Intro\nRetention is 30 days.\nContact us."
    new = "Intro\nRetention is 60 days.\nNew paragraph.\nContact us."
    [hunk] = Comparison(old, new).hunks
    assert (hunk.old_line, hunk.new_line) == (2, 2)
    assert hunk.old == ("Retention is 30 days.",)
    assert hunk.new == ("Retention is 60 days.", "New paragraph.")


def test_positions_map_through_a_diff():
    comparison = Comparison("a\nquote here\nz", "a\nnew line\nquote here\nz")
    assert comparison.map_position(2) == len("a\nnew line\n")


lines = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30), max_size=12)


@settings(max_examples=200)
@given(st.text(), st.text())
def test_a_word_diff_rebuilds_both_texts(old, new):
    diffs = word_diff(old, new)
    assert source_text(diffs) == old
    assert target_text(diffs) == new


@settings(max_examples=200)
@given(lines, lines)
def test_a_line_diff_rebuilds_both_texts(old_lines, new_lines):
    old, new = "\n".join(old_lines), "\n".join(new_lines)
    comparison = Comparison(old, new)
    assert source_text(comparison.diffs) == (old + "\n" if old else "")
    assert target_text(comparison.diffs) == (new + "\n" if new else "")


@given(st.text())
def test_identical_texts_have_no_change(text):
    assert Comparison(text, text).hunks == []
    assert all(op == 0 for op, _ in word_diff(text, text))


# A quote made only of invisible characters is no quote once normalized.
@given(st.text(min_size=1, max_size=60).filter(normalize_line), st.text(max_size=200), st.text(max_size=200))
def test_a_quote_present_in_a_text_is_always_found_exactly(quote, before, after):
    text = normalize_text(f"{before}\n{quote}\n{after}")  # as every stored version is
    match = TextIndex(text).locate(quote)
    assert match is not None and match.exact


@settings(max_examples=300)
@given(st.text(alphabet="abcde ", min_size=1, max_size=40).map(lambda t: " ".join(t.split())).filter(bool),
       st.text(alphabet="abcdef \n", max_size=120), st.data())
def test_no_passage_is_closer_than_the_q_gram_bound_allows(needle, text, data):
    """The bound that sets windows aside never sets aside a passage the alignment would have scored higher."""
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    passage = " ".join(text[start:end].split())
    dmp = diff_match_patch()
    scored = 1.0 - dmp.diff_levenshtein(dmp.diff_main(needle, passage, False)) / len(needle)
    assert best_similarity_within(needle, text) >= scored
