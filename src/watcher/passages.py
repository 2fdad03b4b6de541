"""Find a record's quoted passage in a text, exactly or approximately. Pure functions.

Matching ignores case, whitespace and typographic variants (curly quotes,
dashes, non-breaking spaces). Folding keeps the text's length, so a position
in the folded text is the same position in the original, and the page's own
wording can be returned.

An approximate match is searched the way sequence aligners do: words of the
quote vote for where it could start, and the best few candidate windows are
aligned with diff-match-patch. The passage is found wherever it moved to, at a
cost that does not depend on the length of the page. A window that cannot hold
a close enough match is set aside before it is aligned, by the q-gram lemma
(an edit changes at most q of a string's q-grams), so most of the character
diffs, the costly part, are spent on windows that can hold the passage.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from diff_match_patch import diff_match_patch

from .diff import DELETE, EQUAL
from .extract import normalize_line

#: A quote counts as found approximately when at most this share of it was edited.
APPROXIMATE_THRESHOLD = 0.8
_CANDIDATES = 5
_COMMON_WORD_OCCURRENCES = 64
_PUNCTUATION_MARGIN = 8
#: The q of the q-grams that set windows aside: triples of characters (pairs are too common to tell).
_Q = 3

_FOLDS = {
    **dict.fromkeys("‘’‚‛′‵ʼ`´", "'"),
    **dict.fromkeys("“”„‟″‶«»", '"'),
    **dict.fromkeys("‐‑‒–—―−⁃﹘﹣－", "-"),
    # Everything str.split() treats as a space, so texts and quotes fold alike.
    **dict.fromkeys((chr(c) for c in range(0x3001) if chr(c).isspace() and c != 0x20), " "),
}
_FOLD = str.maketrans(_FOLDS)
_FOLD_PATTERN = re.compile("[" + "".join(map(re.escape, _FOLDS)) + "]")
_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Lower-case, straight quotes, plain dashes, plain spaces; same length as ``text``."""
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    if lowered.isascii():
        return lowered.translate(_FOLD)  # the ASCII fast path of str.translate
    # str.translate looks up every character of a non-ASCII string; a regular expression visits only those
    # that fold, after line breaks (by far the commonest) are replaced in C.
    return _FOLD_PATTERN.sub(lambda found: _FOLDS[found.group()], lowered.replace("\n", " "))


def fold_quote(quote: str) -> str:
    """A quote normalized as extracted texts are, then folded."""
    return " ".join(fold(normalize_line(quote)).split())


@dataclass(frozen=True)
class Match:
    """Where a passage stands in a text, and how closely it matches."""

    start: int
    end: int
    wording: str
    similarity: float

    @property
    def exact(self) -> bool:
        return self.similarity >= 1.0


class TextIndex:
    """A text prepared for repeated passage searches (one per text version)."""

    def __init__(self, text: str):
        self.text = text
        self.folded = fold(text)

    @cached_property
    def _word_spans(self) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(self.folded)]

    @cached_property
    def _word_positions(self) -> dict[str, list[int]]:
        positions: dict[str, list[int]] = {}
        for i, (start, end) in enumerate(self._word_spans):
            positions.setdefault(self.folded[start:end], []).append(i)
        return positions

    def locate(self, quote: str, hint: int | None = None, threshold: float = APPROXIMATE_THRESHOLD) -> Match | None:
        """The exact place of ``quote``, else its best approximate place, else None.

        ``hint`` is where the passage is expected (its old position mapped
        through a diff); it breaks ties between equally good places.
        """
        needle = fold_quote(quote)
        if not needle:
            return None
        exact = self._exact(needle, hint)
        if exact is not None:
            return exact
        best: Match | None = None
        for candidate in self._approximate_candidates(needle, threshold):
            if best is None or _better(candidate, best, hint):
                best = candidate
        if best is not None and best.similarity >= threshold:
            return best
        return None

    def _exact(self, needle: str, hint: int | None) -> Match | None:
        starts = []
        position = self.folded.find(needle)
        while position != -1:
            starts.append(position)
            if hint is None:
                break
            position = self.folded.find(needle, position + 1)
        if not starts:
            return None
        start = min(starts, key=lambda s: abs(s - hint)) if hint is not None else starts[0]
        end = start + len(needle)
        return Match(start, end, self.text[start:end], 1.0)

    def _approximate_candidates(self, needle: str, threshold: float) -> list[Match]:
        words = _WORD.findall(needle)
        spans = self._word_spans
        if not words or not spans:
            return []
        positions = self._word_positions
        votes: Counter[int] = Counter()
        for common_allowed in (False, True):
            for i, word in enumerate(words):
                found = positions.get(word, ())
                if not common_allowed and len(found) > _COMMON_WORD_OCCURRENCES:
                    continue
                for j in found:
                    votes[j - i] += 1
            if votes:
                break
        chosen: list[int] = []
        for start, _ in votes.most_common():
            if all(abs(start - other) > len(words) // 2 for other in chosen):
                chosen.append(start)
            if len(chosen) == _CANDIDATES:
                break
        slack = max(3, len(words) // 3)
        matches = []
        for start in chosen:
            low = max(0, start - slack)
            high = min(len(spans), start + len(words) + slack)
            if low >= high:
                continue
            # Widen past the outer words: a quote may begin or end with punctuation.
            window_start = max(0, spans[low][0] - _PUNCTUATION_MARGIN)
            window_end = min(len(self.folded), spans[high - 1][1] + _PUNCTUATION_MARGIN)
            # Every span the alignment can return lies within a word of the window.
            reach = self.folded[max(0, spans[max(0, low - 1)][0] - _PUNCTUATION_MARGIN):
                                spans[min(len(spans), high + 1) - 1][1] + _PUNCTUATION_MARGIN]
            if best_similarity_within(needle, reach) < threshold:
                continue
            match = self._align(needle, window_start, window_end)
            if match is not None:
                matches.append(match)
        return matches

    def _align(self, needle: str, window_start: int, window_end: int) -> Match | None:
        """Align the needle inside a window of the text; both ends of the window are free."""
        window = self.folded[window_start:window_end]
        dmp = diff_match_patch()
        dmp.Diff_Timeout = 0.2
        diffs = dmp.diff_main(needle, window, False)
        dmp.diff_cleanupSemantic(diffs)
        first = next((i for i, (op, _) in enumerate(diffs) if op == EQUAL), None)
        if first is None:
            return None
        last = max(i for i, (op, _) in enumerate(diffs) if op == EQUAL)
        before = sum(len(t) for op, t in diffs[:first] if op != DELETE)
        inside = sum(len(t) for op, t in diffs[first:last + 1] if op != DELETE)
        unmatched_head = sum(len(t) for op, t in diffs[:first] if op == DELETE)
        unmatched_tail = sum(len(t) for op, t in diffs[last + 1:] if op == DELETE)
        start = window_start + before
        end = start + inside
        # Edited words at either end of the quote stand just outside the
        # aligned core: try including them, a word at a time.
        starts = {start, self._word_before(start), max(window_start, start - unmatched_head)}
        ends = {end, self._word_after(end), min(window_end, end + unmatched_tail)}
        best = None
        scored: dict[tuple[int, int], Match] = {}  # most options snap to the same span: score each span once
        for option_start in starts:
            for option_end in ends:
                if option_start >= option_end:
                    continue
                span = self._snap(needle, option_start, option_end)
                if span in scored:
                    continue  # the same match again: it cannot beat itself
                match = scored[span] = self._score(needle, *span)
                if best is None or match.similarity > best.similarity:
                    best = match
        return best

    def _word_before(self, position: int) -> int:
        """The start of the word before ``position``."""
        spans = self._word_spans
        i = bisect.bisect_left(spans, (position, position)) - 1
        return spans[i][0] if i >= 0 else position

    def _word_after(self, position: int) -> int:
        """The end of the word after ``position``."""
        spans = self._word_spans
        i = bisect.bisect_left(spans, (position, position))
        while i < len(spans) and spans[i][1] <= position:
            i += 1
        return spans[i][1] if i < len(spans) else position

    def _snap(self, needle: str, start: int, end: int) -> tuple[int, int]:
        """Widen a span to whole words; drop punctuation the quote does not start or end with."""
        text = self.folded
        while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
            start -= 1
        while end < len(text) and end > 0 and text[end - 1].isalnum() and text[end].isalnum():
            end += 1
        keep_head = not needle[0].isalnum()
        keep_tail = not needle[-1].isalnum()
        while start < end and (text[start] == " " or (not keep_head and not text[start].isalnum())):
            start += 1
        while end > start and (text[end - 1] == " " or (not keep_tail and not text[end - 1].isalnum())):
            end -= 1
        return start, end

    def _score(self, needle: str, start: int, end: int) -> Match:
        candidate = " ".join(self.folded[start:end].split())
        dmp = diff_match_patch()
        dmp.Diff_Timeout = 0.2
        distance = dmp.diff_levenshtein(dmp.diff_main(needle, candidate, False))
        similarity = max(0.0, 1.0 - distance / len(needle))
        if similarity >= 1.0 and candidate != needle:
            similarity = 0.999
        return Match(start, end, self.text[start:end], similarity)


def _qgrams(text: str) -> Counter[str]:
    return Counter(text[i:i + _Q] for i in range(len(text) - _Q + 1))


def best_similarity_within(needle: str, text: str) -> float:
    """An upper bound of the similarity of ``needle`` to any passage of ``text``.

    Each of the needle's q-grams missing from ``text`` must be undone by an
    edit, and one edit undoes at most q of them; a passage of ``text`` holds
    no q-gram that ``text`` lacks. So at least ``missing / q`` edits separate
    the needle from every passage, and the similarity the alignment scores
    (from an edit script, never shorter than the fewest edits) is no higher.
    """
    missing = sum((_qgrams(needle) - _qgrams(" ".join(text.split()))).values())
    return 1.0 - math.ceil(missing / _Q) / len(needle)


def _better(candidate: Match, best: Match, hint: int | None) -> bool:
    if candidate.similarity != best.similarity:
        return candidate.similarity > best.similarity
    if hint is None:
        return candidate.start < best.start
    return abs(candidate.start - hint) < abs(best.start - hint)


def block_around(text: str, start: int, end: int) -> str:
    """The whole lines (paragraphs, list items, table rows) that a span touches."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return text[line_start:] if line_end == -1 else text[line_start:line_end]


def term_pattern(term: str) -> re.Pattern[str]:
    """A term matched as a whole word or phrase, ignoring case and typography."""
    folded = re.escape(fold_quote(term)).replace(r"\ ", r"\s+")
    left = r"(?<!\w)" if term[:1].isalnum() else ""
    right = r"(?!\w)" if term[-1:].isalnum() else ""
    return re.compile(left + folded + right)


def term_lines(index: TextIndex, term: str) -> list[str]:
    """The lines of the text where ``term`` appears."""
    pattern = term_pattern(term)
    return [
        block_around(index.text, match.start(), match.end())
        for match in pattern.finditer(index.folded)
    ]
