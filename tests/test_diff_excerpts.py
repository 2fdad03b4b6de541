"""Excerpts of a long page: its changed blocks with a little context, and nothing lost or shown twice."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from watcher.diff import excerpts, hunks

lines = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "epsilon"]), max_size=40)


@given(lines, lines, st.integers(min_value=0, max_value=3))
def test_excerpts_cover_the_new_text_in_order_and_every_change_once(old_lines, new_lines, context):
    old, new = "\n".join(old_lines), "\n".join(new_lines)
    changed = hunks(old, new)
    windows = excerpts(changed, new, context)
    assert bool(windows) == bool(changed)
    if not windows:
        return
    position = 0
    for index, window in enumerate(windows):
        # Separate windows have unchanged lines between them; touching ones are merged.
        assert window.skipped_before > (0 if index else -1)
        assert window.skipped_after == 0 or index == len(windows) - 1
        position += window.skipped_before
        for part in window.parts:
            assert list(part.new) == new_lines[position:position + len(part.new)]
            if not part.changed:
                assert part.old == part.new and 0 < len(part.new) <= 2 * context
            position += len(part.new)
        position += window.skipped_after
    assert position == len(new_lines)
    shown = [(part.old, part.new) for window in windows for part in window.parts if part.changed]
    assert shown == [(hunk.old, hunk.new) for hunk in changed]


def test_a_change_far_down_a_long_page_shows_its_neighbours_only():
    old = "\n".join(f"block {i}" for i in range(1, 101))
    new = old.replace("block 60", "block sixty")
    [window] = excerpts(hunks(old, new), new, context=2)
    assert window.skipped_before == 57 and window.skipped_after == 38
    assert [part.new for part in window.parts] == [("block 58", "block 59"), ("block sixty",), ("block 61", "block 62")]
