"""Diffs between two text versions, built on diff-match-patch. Pure functions.

Texts are diffed token by token (lines, or words) by mapping each distinct
token to one character, the technique diff-match-patch itself uses in
``diff_linesToChars``: a long policy page becomes a short string and the diff
stays fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

from diff_match_patch import diff_match_patch

DELETE, EQUAL, INSERT = -1, 0, 1
#: Seconds the word alignment behind a change's word counts may take.
COUNT_TIMEOUT = 0.1
Diff = list[tuple[int, str]]

_WORD_TOKENS = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)
# Characters that may not stand for a token: surrogates cannot be encoded.
_SURROGATES = range(0xD800, 0xE000)


def _engine(timeout: float = 2.0) -> diff_match_patch:
    dmp = diff_match_patch()
    dmp.Diff_Timeout = timeout
    return dmp


def _encode(tokens_a: Sequence[str], tokens_b: Sequence[str]) -> tuple[str, str, list[str]]:
    """Map each distinct token to one character; return both encodings and the table."""
    table: list[str] = [""]
    index: dict[str, int] = {}

    def code(token: str) -> str:
        number = index.get(token)
        if number is None:
            number = len(table)
            if number >= _SURROGATES.start:
                number += len(_SURROGATES)
            index[token] = number
            table.append(token)
        return chr(number)

    encoded_a = "".join(code(t) for t in tokens_a)
    encoded_b = "".join(code(t) for t in tokens_b)
    return encoded_a, encoded_b, table


def _decode(diffs: Diff, table: list[str]) -> Diff:
    def token(char: str) -> str:
        number = ord(char)
        if number >= _SURROGATES.stop:
            number -= len(_SURROGATES)
        return table[number]

    return [(op, "".join(token(c) for c in text)) for op, text in diffs]


def token_diff(tokens_a: Sequence[str], tokens_b: Sequence[str], timeout: float = 2.0) -> Diff:
    """Diff two token sequences; the result's texts are the joined tokens.

    Past ``timeout`` seconds diff-match-patch stops refining and reports the
    rest as replaced: still a correct diff, only a coarser one.
    """
    encoded_a, encoded_b, table = _encode(tokens_a, tokens_b)
    diffs = _engine(timeout).diff_main(encoded_a, encoded_b, False)
    return _decode(diffs, table)


def word_tokens(text: str) -> list[str]:
    return _WORD_TOKENS.findall(text)


def word_diff(old: str, new: str) -> Diff:
    """A readable word-level diff: whole words inserted or deleted, semantically cleaned."""
    diffs = token_diff(word_tokens(old), word_tokens(new))
    dmp = _engine()
    dmp.diff_cleanupSemantic(diffs)
    return _merge(diffs)


def line_diff(old: str, new: str) -> Diff:
    """A line-level diff of ``old + "\\n"`` and ``new + "\\n"``: every line keeps its newline."""
    return token_diff(_lines(old), _lines(new))


def _lines(text: str) -> list[str]:
    return [line + "\n" for line in text.split("\n")] if text else []


def _merge(diffs: Diff) -> Diff:
    """Join neighbouring operations of the same kind and drop empty ones."""
    merged: Diff = []
    for op, text in diffs:
        if not text:
            continue
        if merged and merged[-1][0] == op:
            merged[-1] = (op, merged[-1][1] + text)
        else:
            merged.append((op, text))
    return merged


def source_text(diffs: Iterable[tuple[int, str]]) -> str:
    return "".join(text for op, text in diffs if op != INSERT)


def target_text(diffs: Iterable[tuple[int, str]]) -> str:
    return "".join(text for op, text in diffs if op != DELETE)


def changed_word_counts(old: str, new: str) -> tuple[int, int]:
    """(words inserted, words deleted) from ``old`` to ``new``, for a change's summary.

    A count is worth a quick answer: aligning a rewritten page word by word
    takes seconds in pure Python, so the alignment gets :data:`COUNT_TIMEOUT`
    and a rewrite beyond it counts as replaced wholesale.
    """
    return count_words(token_diff(word_tokens(old), word_tokens(new), timeout=COUNT_TIMEOUT))


def count_words(diffs: Iterable[tuple[int, str]]) -> tuple[int, int]:
    """(words inserted, words deleted)."""
    added = removed = 0
    for op, text in diffs:
        words = len(re.findall(r"\w+", text))
        if op == INSERT:
            added += words
        elif op == DELETE:
            removed += words
    return added, removed


def render_markers(
    diffs: Iterable[tuple[int, str]], deleted: str = "[-{}-]", inserted: str = "{{+{}+}}"
) -> str:
    """Render a diff with markers; by default ``[-deleted-]{+inserted+}``, as ``git diff --word-diff`` does."""
    parts = []
    for op, text in diffs:
        if op == DELETE:
            parts.append(deleted.format(text))
        elif op == INSERT:
            parts.append(inserted.format(text))
        else:
            parts.append(text)
    return "".join(parts)


@dataclass(frozen=True)
class Hunk:
    """A run of changed lines: what stood at ``old_line`` and what replaced it (1-based)."""

    old_line: int
    new_line: int
    old: tuple[str, ...]
    new: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"old_line": self.old_line, "new_line": self.new_line, "old": list(self.old), "new": list(self.new)}


class Comparison:
    """Two versions of a text and the line diff between them, computed once."""

    def __init__(self, old: str, new: str):
        self.old = old
        self.new = new

    @cached_property
    def diffs(self) -> Diff:
        return line_diff(self.old, self.new)

    @cached_property
    def hunks(self) -> list[Hunk]:
        return _hunks_of(self.diffs)

    def map_position(self, position: int) -> int:
        """Where a position in the old text lies in the new text (diff-match-patch's xIndex)."""
        return _engine().diff_xIndex(self.diffs, position)

    def hunk_at(self, position: int) -> Hunk | None:
        """The changed block that covers a position of the old text, if any."""
        line = self.old.count("\n", 0, position) + 1
        for hunk in self.hunks:
            if hunk.old and hunk.old_line <= line < hunk.old_line + len(hunk.old):
                return hunk
        return None


def hunks(old: str, new: str) -> list[Hunk]:
    """The changed blocks between two texts, line by line."""
    return Comparison(old, new).hunks


@dataclass(frozen=True)
class ExcerptPart:
    """Consecutive lines of an excerpt: unchanged context (``old == new``) or a changed block."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    changed: bool


@dataclass(frozen=True)
class Excerpt:
    """A window of the new text around changed blocks, and the unchanged lines left out around it."""

    skipped_before: int
    parts: tuple[ExcerptPart, ...]
    skipped_after: int = 0  # set on the last window of a text only


def excerpts(changed: Sequence[Hunk], new: str, context: int = 2) -> list[Excerpt]:
    """The changed blocks of a long text with ``context`` unchanged lines around each, as windows.

    Windows whose context would touch are merged, as in a unified diff, so a
    reader sees each unchanged line at most once.
    """
    lines = new.split("\n") if new else []
    windows: list[tuple[int, int, list[ExcerptPart]]] = []  # (first line, end, parts), 0-based, end exclusive
    for hunk in changed:
        start = hunk.new_line - 1
        end = start + len(hunk.new)
        changed_part = ExcerptPart(hunk.old, hunk.new, changed=True)
        if windows and start - windows[-1][1] <= 2 * context:
            first, covered, parts = windows.pop()
        else:
            first = covered = max(0, start - context)
            parts = []
        if start > covered:
            same = tuple(lines[covered:start])
            parts.append(ExcerptPart(same, same, changed=False))
        parts.append(changed_part)
        windows.append((first, end, parts))
    result: list[Excerpt] = []
    previous_end = 0
    for index, (first, end, parts) in enumerate(windows):
        following = windows[index + 1][0] if index + 1 < len(windows) else len(lines)
        stop = min(end + context, following, len(lines))
        if stop > end:
            same = tuple(lines[end:stop])
            parts.append(ExcerptPart(same, same, changed=False))
        is_last = index == len(windows) - 1
        result.append(Excerpt(first - previous_end, tuple(parts), len(lines) - stop if is_last else 0))
        previous_end = stop
    return result


def _hunks_of(diffs: Diff) -> list[Hunk]:
    result: list[Hunk] = []
    old_line = new_line = 1
    pending_old: list[str] = []
    pending_new: list[str] = []
    start = (1, 1)

    def flush() -> None:
        if pending_old or pending_new:
            result.append(Hunk(start[0], start[1], tuple(pending_old), tuple(pending_new)))
            pending_old.clear()
            pending_new.clear()

    for op, text in diffs:
        lines = text.split("\n")[:-1]
        if op == EQUAL:
            flush()
            old_line += len(lines)
            new_line += len(lines)
            continue
        if not pending_old and not pending_new:
            start = (old_line, new_line)
        if op == DELETE:
            pending_old.extend(lines)
            old_line += len(lines)
        else:
            pending_new.extend(lines)
            new_line += len(lines)
    flush()
    return result
