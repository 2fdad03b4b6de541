"""What the command line shows on a terminal, and what it writes everywhere else.

On a terminal watcher draws colour-coded tables, a live progress bar and
coloured word diffs with rich. Anywhere else (a pipe, cron mail, a CI log) it
writes plain lines with no control characters at all, so that the output
stays greppable. ``NO_COLOR`` (https://no-color.org) turns colour off on a
terminal too; ``TERM=dumb`` means no terminal features.

Every renderer here takes a :class:`Display`, decided once per command from
the output stream: the same function serves both worlds, and tests can ask
for either without a terminal.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from typing import IO, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from .check import SourceReport
from .diff import DELETE, INSERT, render_markers
from .evidence import CHANGED, GONE, HOUSEKEEPING, WATCH_TERM, reason_tone

#: Colours of flag reasons by tone: evidence gone or unreachable, wording changed, housekeeping.
TONE_STYLES = {GONE: "bold red", CHANGED: "yellow", HOUSEKEEPING: "blue"}
#: Colours of a source's check status in progress lines.
STATUS_STYLES = {
    "unchanged": "dim",
    "new": "green",
    "changed": "yellow",
    "reverted": "cyan",
    "failed": "bold red",
    "selector_missing": "red",
}
#: Deleted words: red and struck through; inserted words: green and
#: underlined. The line style alone tells them apart without colour.
DELETED_STYLE = "red strike"
INSERTED_STYLE = "green underline"
#: Plain output is never wrapped: a line per row, however long.
_UNWRAPPED = 10_000


@dataclass(frozen=True)
class Display:
    """How output may look: terminal features, colour, and the width to wrap at (None: never wrap)."""

    terminal: bool = False
    color: bool = False
    width: int | None = None

    @classmethod
    def of(cls, stream: IO[str]) -> Display:
        """What ``stream`` supports: a terminal that is not ``TERM=dumb``; colour unless ``NO_COLOR`` is set."""
        isatty = getattr(stream, "isatty", None)
        terminal = bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"
        if not terminal:
            return cls()
        return cls(terminal=True, color=not os.environ.get("NO_COLOR"), width=shutil.get_terminal_size().columns)


#: Pipes, files, cron mail, CI logs: plain text, no control characters, no wrapping.
PLAIN = Display()


def make_console(stream: IO[str], display: Display) -> Console:
    """A rich console that does what ``display`` says, whatever rich would sniff from the environment."""
    return Console(
        file=stream,
        force_terminal=display.terminal,
        force_interactive=display.terminal,
        no_color=not display.color,
        color_system="standard" if display.color else None,
        width=display.width or _UNWRAPPED,
        markup=False,
        emoji=False,
        highlight=False,
    )


@dataclass(frozen=True)
class Cell:
    """A table cell with a rich style (``"bold red"``), shown only when colour is on."""

    text: str
    style: str = ""


def styled(text: str, style: str, display: Display) -> str:
    """``text`` in a rich style (``"bold red"``) when colour is on, as it is otherwise."""
    if not display.color:
        return text
    buffer = io.StringIO()
    make_console(buffer, display).print(Text(text, style=style), end="")
    return buffer.getvalue()


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str | Cell]], display: Display) -> str:
    """An aligned table; on a terminal, a rule under the header, colours and rows wrapped to its width.

    The first column names the row (an id to copy into the next command): it is never wrapped.
    Other cells wrap, and fold rather than end in an ellipsis.
    """
    table = Table(
        *(Column(header, overflow="fold", no_wrap=index == 0) for index, header in enumerate(headers)),
        box=box.SIMPLE_HEAD if display.terminal else None,
        header_style="bold",
        show_edge=False,
        pad_edge=False,
    )
    for row in rows:
        table.add_row(*(Text(c.text, style=c.style) if isinstance(c, Cell) else Text(c) for c in row))
    buffer = io.StringIO()
    make_console(buffer, display).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip("\n").split("\n")) + "\n"


def flags_table(views: Iterable[dict], display: Display) -> str:
    """Open flags (``flag_views`` dicts) as a table, reasons coloured by how urgent they are."""
    rows = []
    for view in views:
        reason = view["reason"] + (f" ({view['outcome']})" if view["outcome"] else "")
        if view["reason"] == WATCH_TERM:
            reason += f" \u201c{view['subject']}\u201d"  # one record may watch several terms on one page
        rows.append([view["record"], Cell(reason, TONE_STYLES[reason_tone(view["reason"])]),
                     view["source"] or "", view["detected_at"]])
    return render_table(["record", "reason", "source", "detected"], rows, display)


def render_word_diff(diffs: Iterable[tuple[int, str]], display: Display) -> str:
    """A word diff: coloured and styled with colour on, ``[-old-]{+new+}`` markers otherwise."""
    if not display.color:
        return render_markers(diffs)
    text = Text()
    for op, part in diffs:
        text.append(part, style=DELETED_STYLE if op == DELETE else INSERTED_STYLE if op == INSERT else "")
    buffer = io.StringIO()
    make_console(buffer, Display(terminal=True, color=True)).print(text, soft_wrap=True)
    return buffer.getvalue().rstrip("\n")


def source_line(report: SourceReport) -> str:
    """One source's check result on one line: id, status, outcome, version, error, flags."""
    detail = report.outcome
    if report.version is not None and report.status in ("new", "changed", "reverted"):
        detail += f", version {report.version}"
    if report.error:
        detail += f": {report.error}"
    if report.recovered:
        detail += " (recovered)"
    flags = f"  {report.flags_raised} flag(s)" if report.flags_raised else ""
    return f"{report.source_id:<28} {report.status:<17} {detail}{flags}"


class CheckProgress:
    """Follows a check run source by source; pass :meth:`update` as ``run_check``'s ``progress``.

    On a terminal: a rich progress bar (sources done / total, failures, flags raised)
    with the sources that changed or failed printed above it. Otherwise one
    plain line per source as it finishes, flushed at once, for logs.
    """

    def __init__(self, total: int, stream: IO[str], display: Display):
        self.total = total
        self.stream = stream
        self.display = display
        self.failed = 0
        self.flags = 0
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> CheckProgress:
        if self.display.terminal:
            console = make_console(self.stream, self.display)
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("checking"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("sources, {task.fields[failed]} failed, {task.fields[flags]} flag(s) raised"),
                TimeElapsedColumn(),
                console=console,
            )
            self._progress.start()
            self._task = self._progress.add_task("check", total=self.total, failed=0, flags=0)
        return self

    def update(self, report: SourceReport) -> None:
        self.failed += report.status in ("failed", "selector_missing")
        self.flags += report.flags_raised
        line = source_line(report)
        if self._progress is None:
            self.stream.write(line + "\n")
            self.stream.flush()
            return
        if report.status != "unchanged" or report.flags_raised:
            style = "bold" if report.flags_raised else STATUS_STYLES.get(report.status, "")
            self._progress.console.print(Text(line, style=style))
        self._progress.update(self._task, advance=1, failed=self.failed, flags=self.flags)

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()
