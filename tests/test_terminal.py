"""What editors see in a terminal, and what lands in pipes, cron mail and CI logs."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from click.testing import CliRunner

from conftest import html
from watcher.check import SourceReport
from watcher.cli import cli
from watcher.diff import word_diff
from watcher.terminal import PLAIN, Cell, CheckProgress, Display, flags_table, render_table, render_word_diff

COLOR = Display(terminal=True, color=True, width=100)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but tab and newline
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colours(text: str) -> set[int]:
    """The colour parameters (30-49, 90-107) of the SGR sequences in ``text``."""
    found = set()
    for params in SGR.findall(text):
        found |= {int(p) for p in params.split(";") if p and (30 <= int(p) <= 49 or 90 <= int(p) <= 107)}
    return found


def _view(record: str, reason: str, source: str | None = "trust", outcome: str | None = None,
          subject: str | None = None) -> dict:
    return {"record": record, "reason": reason, "source": source, "outcome": outcome, "subject": subject,
            "detected_at": "2026-11-30T16:14:32Z"}


FLAGS = [_view("acme/retention", "quote_changed"), _view("acme/a-rather-long-record-id", "source_error", outcome="not_found"),
         _view("acme/soc2", "review_due", source=None), _view("acme/baa", "watch_term", subject="BAA")]


def test_plain_tables_are_aligned_unwrapped_and_free_of_control_characters():
    long_cell = "x" * 300
    text = render_table(["record", "reason", "note"], [["a/b", Cell("quote_changed", "red"), long_cell],
                                                       ["a/longer-id", "watch_term", "short"]], PLAIN)
    lines = text.splitlines()
    assert not CONTROL.search(text)
    assert len(lines) == 3 and long_cell in lines[1]
    assert {line.index("quote_changed" if i == 1 else "watch_term" if i == 2 else "reason")
            for i, line in enumerate(lines)} == {len("a/longer-id  ")}
    assert all(line == line.rstrip() for line in lines)


def test_flag_tables_on_a_terminal_colour_reasons_by_urgency_and_never_truncate_ids():
    text = flags_table(FLAGS, Display(terminal=True, color=True, width=70))
    assert colours(text) >= {31, 33, 34}  # red: the source is gone; yellow: wording; blue: housekeeping
    assert "…" not in text and "\u201cBAA\u201d" in text
    assert all(re.search(rf"^{re.escape(v['record'])} ", SGR.sub("", text), re.MULTILINE) for v in FLAGS)
    uncoloured = flags_table(FLAGS, Display(terminal=True, color=False, width=100))
    assert colours(uncoloured) == set()


def test_word_diffs_are_marked_in_plain_text_and_styled_with_colour():
    diffs = word_diff("We delete prompts after 30 days.", "We delete prompts after 14 days.")
    assert render_word_diff(diffs, PLAIN) == "We delete prompts after [-30-]{+14+} days."
    coloured = render_word_diff(diffs, COLOR)
    assert SGR.sub("", coloured) == "We delete prompts after 3014 days."
    assert re.search(r"\x1b\[[0-9;]*9[0-9;]*m30", coloured)  # struck through
    assert re.search(r"\x1b\[[0-9;]*4[0-9;]*m14", coloured)  # underlined


def test_a_plain_check_writes_one_line_per_source_as_each_finishes(tmp_path):
    log = tmp_path / "log"
    reports = [SourceReport("trust", "changed", "ok", version=2, flags_raised=1),
               SourceReport("status", "failed", "not_found", error="HTTP 404")]
    with log.open("w") as out, CheckProgress(2, out, PLAIN) as progress:
        progress.update(reports[0])
        assert log.read_text().startswith("trust ")  # written at once, not at the end of the run
        progress.update(reports[1])
    lines = log.read_text().splitlines()
    assert re.match(r"trust\s+changed\s+ok, version 2  1 flag\(s\)$", lines[0])
    assert re.match(r"status\s+failed\s+not_found: HTTP 404$", lines[1])
    assert (progress.failed, progress.flags) == (1, 1)


@pytest.mark.parametrize("term", ["dumb", "xterm"])
def test_display_follows_the_stream_term_and_no_color(monkeypatch, term):
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("TERM", term)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Display.of(Tty()).color is (term != "dumb")
    monkeypatch.setenv("NO_COLOR", "1")
    assert Display.of(Tty()).color is False and Display.of(Tty()).terminal is (term != "dumb")
    with open(os.devnull, "w") as devnull:
        assert Display.of(devnull) == PLAIN


# --------------------------------------------------------------------------
# The commands, through a pipe and on a real pseudo-terminal


@pytest.fixture
def registry(site, write_config, db_path):
    site.page("/a", html("<p>We delete prompts after 30 days.</p>"))
    site.page("/b", html("<p>Status: fine.</p>"))
    config = write_config(f"""
        sources:
          a:
            url: {site.url("/a")}
          b:
            url: {site.url("/b")}
        offerings:
          acme:
            name: Acme
            records:
              retention:
                cites:
                  - source: a
                    quote: We delete prompts after 30 days.
              status:
                cites: [b]
        """)
    return ["--config", str(config), "--db", str(db_path)]


def _on_a_terminal(args: list[str], **env: str) -> str:
    """Run watcher on a pseudo-terminal 120 columns wide and return what it drew."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    environment.update(TERM="xterm-256color", **env)
    process = subprocess.Popen([sys.executable, "-m", "watcher", *args], stdin=terminal, stdout=terminal,
                               stderr=terminal, env=environment, close_fds=True)
    os.close(terminal)
    chunks, deadline = [], time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the terminal closes when watcher exits
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        assert process.wait(timeout=30) == 0, b"".join(chunks).decode("utf-8", "replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace")


def test_check_draws_a_progress_bar_on_a_terminal(registry, site):
    drawn = _on_a_terminal([*registry, "check"])
    assert re.search(r"2/2 sources, 0 failed, 0 flag\(s\) raised", SGR.sub("", drawn))
    assert colours(drawn)
    assert "checked 2 source(s)" in drawn
    site.page("/a", html("<p>We delete prompts after 14 days.</p>"))
    site.page("/b", "down", status=503)
    plain_colours = _on_a_terminal([*registry, "check", "--all"], NO_COLOR="1")
    assert re.search(r"2/2 sources, 1 failed, 1 flag\(s\) raised", SGR.sub("", plain_colours))
    assert colours(plain_colours) == set()


def test_diff_is_coloured_on_a_terminal_and_marked_elsewhere(registry, site):
    runner = CliRunner()
    assert runner.invoke(cli, [*registry, "check"]).exit_code == 0
    site.page("/a", html("<p>We delete prompts after 14 days.</p>"))
    assert runner.invoke(cli, [*registry, "check", "--all"]).exit_code == 0
    piped = runner.invoke(cli, [*registry, "diff", "a"]).output
    assert "We delete prompts after [-30-]{+14+} days." in piped and not CONTROL.search(piped)
    drawn = _on_a_terminal([*registry, "diff", "a"])
    assert "We delete prompts after 3014 days." in SGR.sub("", drawn) and {31, 32} <= colours(drawn)
    assert "[-30-]{+14+}" in _on_a_terminal([*registry, "diff", "a"], NO_COLOR="1")


def test_piped_check_and_flags_output_is_plain_aligned_text(registry, site):
    runner = CliRunner()
    first = runner.invoke(cli, [*registry, "check"]).output
    site.page("/a", html("<p>We delete prompts after 14 days.</p>"))
    site.page("/b", "gone", status=404)
    second = runner.invoke(cli, [*registry, "check", "--all"]).output
    assert not CONTROL.search(first + second)
    assert re.search(r"^a\s+changed\s+ok, version 2  1 flag\(s\)$", second, re.MULTILINE)
    table = runner.invoke(cli, [*registry, "flags"]).output
    assert not CONTROL.search(table)
    header, *rows = table.splitlines()
    assert header.split() == ["record", "reason", "source", "detected"]
    assert [row.split()[:2] for row in rows] == [["acme/retention", "quote_changed"],
                                                 ["acme/status", "source_error"]]
    assert len({line.index("detected" if i == 0 else "20") for i, line in enumerate(table.splitlines())}) == 1
