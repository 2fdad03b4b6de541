"""The ``watcher`` command: a thin layer over the library, one library call per command."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

# The daemon, the notifier, the HTML report and the trials are imported by their commands: a check started
# by cron need not pay for their start-up.
from . import __version__
from .appshell import browser_suggestions
from .browse import browse as serve_database
from .check import due_sources, resolve_targets, run_check
from .check import reextract as reextract_sources
from .config import Config, load_config, parse_duration
from .diff import word_diff
from .errors import ConfigError, UsageError, WatcherError
from .feed import DEFAULT_ENTRIES, build_feed
from .logs import LOG_FORMATS, configure_logging
from .report import REPORT_FORMATS, build_report, flag_views, render
from .store import Store, utc_now
from .terminal import CheckProgress, Display, flags_table, render_word_diff
from .verify import anchor_warnings, verify_records


class _Failure(click.ClickException):
    """A one-line error with the exit status the user contract gives it."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"watcher: error: {self.format_message()}", err=True)


class _Group(click.Group):
    """Turns library errors into one-line messages (2: usage or config; 1: anything else)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (ConfigError, UsageError) as exc:
            raise _Failure(str(exc), 2) from None
        except WatcherError as exc:
            raise _Failure(str(exc), 1) from None
        except KeyboardInterrupt:
            raise _Failure("interrupted", 130) from None
        except BrokenPipeError:
            # The reader went away (`watcher flags | head`): stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise _Failure(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1) from None


class _Context:
    def __init__(self, config_path: str, db_path: str):
        self.config_path = config_path
        self.db_path = db_path

    def config(self) -> Config:
        return load_config(self.config_path)

    def store(self, create: bool = True) -> Store:
        opened = Store.open(self.db_path, create=create)
        # Closed when the command ends: the last connection to close folds the write-ahead log into the file.
        click.get_current_context().call_on_close(opened.close)
        return opened


pass_context = click.make_pass_decorator(_Context)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="WATCHER_CONFIG", default="sources.yaml", show_default=True,
              help="The sources file (env WATCHER_CONFIG).")
@click.option("--db", "db_path", envvar="WATCHER_DB", default="watcher.db", show_default=True,
              help="The SQLite database (env WATCHER_DB).")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.version_option(__version__, prog_name="watcher")
@click.pass_context
def cli(ctx: click.Context, config_path: str, db_path: str, debug: bool) -> None:
    """Watch the sources that evidence records cite, and flag the records whose evidence changed.

    \b
    Example:
        watcher check && watcher report
    """
    ctx.obj = _Context(config_path, db_path)


def _check_and_print(config: Config, store: Store, targets: list[str], trigger: str) -> None:
    """Run a check with a progress bar on a terminal (plain lines otherwise), then its summary."""
    with CheckProgress(len(targets), sys.stdout, Display.of(sys.stdout)) as progress:
        summary = run_check(config, store, targets, trigger=trigger, progress=progress.update)
    counts = summary.counts()
    click.echo(
        f"checked {counts['sources_checked']} source(s): {counts['unchanged']} unchanged, "
        f"{counts['changed']} new or changed, {counts['failed']} failed; {counts['flags_raised']} flag(s) raised"
    )
    if counts["flags_raised"]:
        click.echo("see `watcher report` for what changed and which records it touches")


@cli.command()
@click.option("--all", "check_all", is_flag=True, help="Check every source, due or not.")
@pass_context
def check(obj: _Context, check_all: bool) -> None:
    """Check the sources that are due (never checked, or their `every` has elapsed).

    \b
    Example:
        watcher check          # what is due
        watcher check --all    # everything, now
    """
    config = obj.config()
    store = obj.store()
    targets = list(config.sources) if check_all else due_sources(config, store, utc_now())
    _check_and_print(config, store, targets, "check")


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@pass_context
def recheck(obj: _Context, ids: tuple[str, ...]) -> None:
    """Re-check now the sources behind source ids, record ids (offering/record) or offering ids.

    \b
    Example:
        watcher recheck cohere-api/soc2-type2 trust-center
    """
    config = obj.config()
    _check_and_print(config, obj.store(), resolve_targets(config, ids), "recheck")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per open flag.")
@pass_context
def flags(obj: _Context, as_json: bool) -> None:
    """List the open flags: records that need re-verification, and why.

    \b
    Example:
        watcher flags --json | jq '.[] | .record'
    """
    config = obj.config()
    store = obj.store()
    views = flag_views(store.open_flags(), config, store)
    if as_json:
        click.echo(json.dumps(views, indent=2, ensure_ascii=False))
        return
    if not views:
        click.echo("no open flags")
        return
    click.echo(flags_table(views, Display.of(sys.stdout)), nl=False)


@cli.command()
@click.argument("record_ids", nargs=-1, required=True)
@click.option("--by", required=True, help="Who verified the record.")
@click.option("--note", help="What was checked, for the review log.")
@pass_context
def verify(obj: _Context, record_ids: tuple[str, ...], by: str, note: str | None) -> None:
    """Mark records re-verified: close their open flags, log the review, re-anchor their quotes.

    \b
    Example:
        watcher verify cohere-api/retention --by alice --note "30 days confirmed on the page"
    """
    config = obj.config()
    reviews = verify_records(config, obj.store(), list(record_ids), by, note, utc_now())
    for review in reviews:
        click.echo(f"{review.record}: verified by {by}, {review.flags_closed} flag(s) closed")
        for anchor in review.anchors:
            wording = repr(anchor.wording) if anchor.wording is not None else "absent from the page"
            click.echo(f"  anchored {anchor.source}: {wording}")


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {value!r}: expected a date (YYYY-MM-DD) or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


_REEXTRACTED = {
    "current": "already extracted with the current rules",
    "rederived": "re-derived, same text",
    "changed": "re-derived, text changed (recorded as a technical change; no flags)",
    "kept": "kept",
    "never_fetched": "never fetched: nothing to re-derive",
}


@cli.command()
@click.argument("source_ids", nargs=-1)
@pass_context
def reextract(obj: _Context, source_ids: tuple[str, ...]) -> None:
    """Re-derive stored texts from stored pages with the current selectors and extractor, without fetching.

    Every source by default. A changed text is recorded as a technical change
    that flags no record.

    \b
    Example:
        watcher reextract                 # after editing select/remove or upgrading watcher
        watcher reextract trust-center
    """
    config = obj.config()
    results = reextract_sources(config, obj.store(), list(source_ids))
    for result in results:
        version = f" v{result.version}" if result.version is not None else ""
        detail = f": {result.detail}" if result.detail else ""
        click.echo(f"{result.source_id:<28}{version:<6} {_REEXTRACTED[result.status]}{detail}")
    changed = sum(r.status == "changed" for r in results)
    click.echo(f"re-derived {sum(r.status in ('changed', 'rederived') for r in results)} source(s); "
               f"{changed} text(s) changed")


@cli.command()
@click.option("--since", help="Flags and changes detected since this date (YYYY-MM-DD or ISO time).")
@click.option("--format", "fmt", type=click.Choice((*REPORT_FORMATS, "html")), default="text", show_default=True,
              help="html: one self-contained page, with the changes in context and the archived snapshots.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
@pass_context
def report(obj: _Context, since: str | None, fmt: str, output: str | None) -> None:
    """The change report: flagged records with before/after wording, changes, failing sources.

    Without --since: every open flag, and the changes and failures of the last run.

    \b
    Example:
        watcher report --since 2026-11-01 --format markdown --output changes.md
        watcher report --format html --output report.html
    """
    config = obj.config()
    if fmt == "html":
        from .report_html import render_html_report
        text = render_html_report(config, obj.store(), _parse_since(since), utc_now())
    else:
        text = render(build_report(config, obj.store(), _parse_since(since), utc_now()), fmt)
    _write_or_print(text, output)


@cli.command()
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
@click.option("--limit", default=DEFAULT_ENTRIES, show_default=True, type=click.IntRange(min=1),
              help="How many flags: the most recently raised, seen again or closed.")
@pass_context
def feed(obj: _Context, output: str | None, limit: int) -> None:
    """An Atom feed of flags, one entry per flag, for any feed reader.

    \b
    Example:
        watcher check && watcher feed --output /var/www/watcher/flags.atom
    """
    _write_or_print(build_feed(obj.config(), obj.store(), limit), output)


def _write_or_print(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def _known_source(config: Config, store: Store, source_id: str) -> None:
    if source_id not in config.sources and store.row("SELECT 1 FROM sources WHERE id = ?", [source_id]) is None:
        raise UsageError(f"unknown source {source_id!r}")


@cli.command()
@click.argument("source_id")
@click.option("--limit", default=50, show_default=True, help="How many fetches to show.")
@pass_context
def history(obj: _Context, source_id: str, limit: int) -> None:
    """Text versions and fetch outcomes of a source, newest first.

    \b
    Example:
        watcher history trust-center
    """
    config = obj.config()
    store = obj.store()
    _known_source(config, store, source_id)
    versions = store.version_list(source_id)
    click.echo(f"{source_id}: {len(versions)} text version(s)")
    for version in reversed(versions):
        origin = "" if version["origin"] == "fetch" else f" ({version['origin']})"
        if version["fetcher"] != "http":
            origin += f" via {version['fetcher']}"
        if version["reverts_to_seq"]:
            origin += f" (back to the text of v{version['reverts_to_seq']})"
        click.echo(f"  v{version['seq']:<4} {version['created_at']}  {version['chars']} chars  "
                   f"text {version['text_sha256'][:12]}{origin}")
    click.echo("fetches:")
    for fetch in store.fetch_history(source_id, limit):
        status = f"HTTP {fetch['http_status']}" if fetch["http_status"] else "-"
        note = ""
        if fetch["version_seq"]:
            note = f" -> v{fetch['version_seq']}"
        if fetch["fetcher"] != "http":
            note += f" via {fetch['fetcher']}"
        if fetch["recovered"]:
            note += " (recovered)"
        if not fetch["tls_verified"]:
            note += " (TLS not verified)"
        if fetch["robots_ignored"]:
            note += " (robots.txt ignored)"
        if fetch["error"] and fetch["outcome"] not in ("ok", "not_modified"):
            note += f"  {fetch['error']}"
        click.echo(f"  {fetch['started_at']}  {fetch['outcome']:<16} {status:<9} {fetch['duration_ms']:>6} ms"
                   f"  x{fetch['attempts']}{note}")


@cli.command()
@click.argument("source_id")
@click.option("--from", "from_seq", type=int, help="Old version number (default: the one before --to).")
@click.option("--to", "to_seq", type=int, help="New version number (default: the latest).")
@pass_context
def diff(obj: _Context, source_id: str, from_seq: int | None, to_seq: int | None) -> None:
    """Word-level diff between two text versions of a source: [-deleted-]{+inserted+}.

    \b
    Example:
        watcher diff trust-center --from 1 --to 3
    """
    config = obj.config()
    store = obj.store()
    _known_source(config, store, source_id)
    latest = store.latest_version(source_id)
    if latest is None:
        raise UsageError(f"{source_id} has no text versions yet")
    to_seq = to_seq or latest.seq
    from_seq = from_seq or to_seq - 1
    old, new = store.version(source_id, from_seq), store.version(source_id, to_seq)
    if old is None or new is None:
        missing = to_seq if new is None else from_seq
        raise UsageError(f"{source_id} has versions 1 to {latest.seq}; there is no version {missing}")
    display = Display.of(sys.stdout)
    # click.echo strips the styles again when colour is off.
    click.echo(click.style(f"--- {source_id} v{old.seq} ({old.created_at})", fg="red", bold=True), color=display.color)
    click.echo(click.style(f"+++ {source_id} v{new.seq} ({new.created_at})", fg="green", bold=True), color=display.color)
    click.echo(render_word_diff(word_diff(old.text, new.text), display), color=display.color)


def _pause(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--pause: {exc}") from None


_pause_option = click.option("--pause", default="3s", show_default=True,
                             help="Time between the two fetches (s, m): long enough for per-request noise to change.")


@cli.command(name="try")
@click.argument("target")
@click.option("--select", multiple=True, help="CSS selector of the part to watch (repeatable).")
@click.option("--remove", multiple=True, help="CSS selector of a part to ignore (repeatable).")
@_pause_option
@pass_context
def try_command(obj: _Context, target: str, select: tuple[str, ...], remove: tuple[str, ...], pause: str) -> None:
    """Fetch a URL or a configured source twice, print its text and say whether it is stable.

    Nothing is stored. When the two texts differ, the differing words are shown
    with `remove` selectors for the elements that hold them.

    \b
    Example:
        watcher try https://example.com/privacy --select main --remove .cookie-banner
        watcher try trust-center --pause 10s
    """
    config = obj.config() if Path(obj.config_path).exists() else None
    from .trial import try_source
    trial = try_source(config, target, select, remove, _pause(pause))
    source = trial.source
    rules = "".join(f" --{name} {value!r}" for name, values in (("select", source.select), ("remove", source.remove))
                    for value in values)
    click.echo(f"{source.url}{rules}")
    if trial.selector_missing:
        click.echo(f"select {', '.join(source.select)} matches nothing on the page (or only empty elements)")
        return
    click.echo(trial.second.text)
    words = len(trial.second.text.split())
    if trial.stable:
        click.echo(f"\nstable: both fetches, {pause} apart, gave the same text ({words} words)")
        return
    click.echo(f"\nunstable: the two fetches, {pause} apart, differ in {len(trial.changes)} block(s):")
    for marked in trial.marked_changes():
        click.echo(f"  {marked}")
    if trial.suggestions:
        click.echo("suggested remove selectors (the first ones make both texts identical):")
        for selector in trial.suggestions:
            click.echo(f"  {selector}")


@cli.command()
@click.option("--fetch", "fetch_pages", is_flag=True,
              help="Also fetch every source twice: selectors that match nothing, unstable texts, quotes not found.")
@_pause_option
@pass_context
def validate(obj: _Context, fetch_pages: bool, pause: str) -> None:
    """Check the config; warn about quotes re-anchored to other wording; with --fetch, try every source.

    With a database, also suggest `fetch: browser` for sources whose last check got an application shell.

    \b
    Example:
        watcher --config sources.yaml validate
        watcher validate --fetch --pause 5s
    """
    config = obj.config()
    records = config.records
    cites = sum(len(r.cites) for r in records.values())
    click.echo(
        f"{config.path}: ok ({len(config.sources)} source(s), {len(config.offerings)} offering(s), "
        f"{len(records)} record(s), {cites} cite(s))"
    )
    if Path(obj.db_path).exists():
        store = obj.store(create=False)
        for warning in anchor_warnings(config, store) + browser_suggestions(config, store.source_states()):
            click.echo(f"warning: {warning}")
    if fetch_pages:
        from .trial import validate_sources
        findings = validate_sources(config, _pause(pause))
        for finding in findings:
            click.echo(f"{finding.source:<28} {finding.kind:<17} {finding.message}")
        problems = [f for f in findings if f.kind != "ok"]
        click.echo(f"fetched {len(config.sources)} source(s) twice, {pause} apart: {len(problems)} problem(s)")


@cli.command()
@click.option("--once", is_flag=True, help="Check what is due now, send the digest, and exit (for cron).")
@click.option("--jitter", default="5m", show_default=True,
              help="The most a group of sources is delayed at random (never more than a tenth of its interval).")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True,
              help="Log lines on stderr for people (text) or machines (json: one object per line).")
@pass_context
def schedule(obj: _Context, once: bool, jitter: str, log_format: str) -> None:
    """Run in the foreground and check each source when its `every` is due; one digest per run.

    Stops cleanly on SIGTERM or Ctrl-C; reloads sources.yaml on SIGHUP or when it changes.
    Only one may run per database.

    \b
    Example:
        watcher schedule --log-format json     # under systemd, in a container, with nohup
        watcher schedule --once                # from cron
    """
    try:
        max_jitter = parse_duration(jitter)
    except ValueError as exc:
        raise UsageError(f"--jitter: {exc}") from None
    configure_logging(log_format)
    from .schedule import serve
    serve(obj.config_path, obj.db_path, once=once, max_jitter=max_jitter)


@cli.command()
@click.option("--test", "test", is_flag=True, help="Send a sample digest (the open flags) on every channel.")
@pass_context
def notify(obj: _Context, test: bool) -> None:
    """Send a sample digest to check the notify: settings (runs send theirs by themselves).

    \b
    Example:
        WATCHER_SMTP_PASSWORD=... watcher notify --test
    """
    if not test:
        raise UsageError("watcher notify sends only a sample digest: use --test (runs of `watcher schedule` "
                         "send their digests themselves)")
    from .notify import send_test_digest
    deliveries = send_test_digest(obj.config(), obj.store(), utc_now())
    for delivery in deliveries:
        result = "sent" if delivery.sent else f"FAILED after {delivery.attempts} attempt(s): {delivery.error}"
        click.echo(f"{delivery.channel} to {delivery.target}: {result}")
    if not all(delivery.sent for delivery in deliveries):
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
@pass_context
def status(obj: _Context, as_json: bool) -> None:
    """Run health: last and next run, failing sources, open flags, reviews due.

    Exit status 3 when something needs attention (a source failing for over a day, no
    successful run within twice the shortest interval, an undelivered digest).

    \b
    Example:
        watcher status || alert-someone
    """
    from .health import build_status, render_status
    health = build_status(obj.config(), obj.store(create=False), utc_now())
    if as_json:
        click.echo(json.dumps(health, indent=2, ensure_ascii=False))
    else:
        click.echo(render_status(health, Display.of(sys.stdout)), nl=False)
    if health["needs_attention"]:
        raise click.exceptions.Exit(3)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to serve on.")
@click.option("--port", default=8001, show_default=True, help="The port to serve on (0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@pass_context
def browse(obj: _Context, host: str, port: int, open_browser: bool) -> None:
    """Browse the database in Datasette: open flags, record status, source health, recent changes.

    Needs the optional extra: pip install 'watcher[browse]'. Stop it with Ctrl-C.

    \b
    Example:
        watcher browse --open
    """
    serve_database(obj.config(), obj.store(create=False), host, port, open_browser)


@cli.command()
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the demo's files (config, database) in this folder.")
def demo(keep: str | None) -> None:
    """A tour offline: serve pages on 127.0.0.1, check them, edit them, check again, report.

    \b
    Example:
        watcher demo
    """
    from .demo import run_demo

    run_demo(click.echo, keep)


def main() -> None:
    cli(prog_name="watcher")


if __name__ == "__main__":
    main()
