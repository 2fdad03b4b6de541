"""``watcher schedule``: check each source in the background when its ``every`` is due.

Sources are grouped by interval, one APScheduler job per group
(``max_instances=1``, missed runs coalesced). When a group's job fires it
checks the group's sources that are due, through the same check path as
``watcher check``, then sends one digest (see :mod:`watcher.notify`).

Due times come from the database, never from memory: after every run, and
whenever the scheduler starts or reloads its configuration, a group's next time
is the earliest ``last check + every`` of its sources (now, for a source never
checked), plus a random jitter of up to a tenth of the interval (at most
``max_jitter``) so that many sources and many watchers on one host do not all
fire in the same second. A scheduler stopped for a day checks each overdue
source once when it starts again, not once per missed interval.

Runs never overlap: groups that fall due together queue behind one another, so
one run's per-host politeness holds for the whole process. SIGTERM and SIGINT
cancel the run in flight: fetches in the air are abandoned, every source
already recorded stays committed (each is one transaction) and the run is
marked ``interrupted``. SIGHUP, or a change of the config file noticed at the
next tick, reloads the configuration; an invalid file is logged and the
previous configuration kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import signal
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .check import RunSummary, SourceReport, check_async, due_at, due_sources
from .config import Config, Source, load_config
from .errors import ConfigError
from .lock import writer_lock
from .notify import notify_pending
from .store import SourceState, Store, timestamp, utc_now

log = logging.getLogger("watcher.schedule")

#: The default cap on a group's random delay.
DEFAULT_MAX_JITTER = 300.0
#: A group's jitter is at most this share of its interval, so short intervals stay short.
JITTER_FRACTION = 0.1
#: How often the config file is looked at for changes.
CONFIG_POLL_SECONDS = 10.0
_GROUP_JOB = "every-{:g}s"


# --------------------------------------------------------------------------
# Due times: pure functions


def source_groups(config: Config) -> dict[float, list[Source]]:
    """Sources by interval: each interval is one scheduler job."""
    groups: dict[float, list[Source]] = {}
    for source in config.sources.values():
        groups.setdefault(source.every, []).append(source)
    return groups


def group_jitter(every: float, max_jitter: float) -> float:
    """The most a group's start is delayed at random."""
    return max(0.0, min(max_jitter, every * JITTER_FRACTION))


def earliest_due(sources: list[Source], states: dict[str, SourceState], now: datetime) -> datetime:
    """When the first of ``sources`` falls due (``now`` for one never checked)."""
    return min(due_at(source, states.get(source.id, SourceState(source.id))) or now for source in sources)


def next_run_time(due: datetime, now: datetime, jitter: float, rng: random.Random) -> datetime:
    """``due`` (or ``now`` when overdue) plus a random delay of up to ``jitter`` seconds; never before it is due."""
    return max(due, now) + timedelta(seconds=rng.uniform(0, jitter) if jitter > 0 else 0)


def describe_interval(seconds: float) -> str:
    """``43200`` → ``12h``: intervals in log lines read like the config."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------
# The scheduler


class Scheduler:
    """The long-lived process behind ``watcher schedule``; also runs ``--once``.

    ``clock``, ``rng`` and ``transport`` are for tests (time, jitter and the
    network); ``on_run`` hears about every finished run.
    """

    def __init__(
        self,
        config_path: str,
        config: Config,
        store: Store,
        *,
        max_jitter: float = DEFAULT_MAX_JITTER,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_run: Callable[[RunSummary], None] | None = None,
    ):
        self.config_path = config_path
        self.config = config
        self.store = store
        self.max_jitter = max_jitter
        self.clock = clock
        self.rng = rng or random.Random()
        self.transport = transport
        self.on_run = on_run
        self._config_digest = _file_digest(config_path)
        self._one_run_at_a_time = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._scheduler: AsyncIOScheduler | None = None

    # ------------------------------------------------------------------ running

    async def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT (or :meth:`stop`), reloading the config on SIGHUP or when it changes."""
        self.start()
        try:
            with self._signal_handlers():
                await self._stopping.wait()
        finally:
            await self.close()

    async def run_once(self) -> RunSummary | None:
        """Check what is due now in one run, send its digest, and return (None when nothing was due)."""
        task = asyncio.ensure_future(self._run_due_now())
        self._tasks.add(task)
        with self._signal_handlers():
            try:
                return await task
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return None
                raise

    def start(self) -> None:
        """Start the APScheduler jobs on the running event loop."""
        self._scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        )
        self._sync_jobs()
        self._scheduler.add_job(self.check_config_file, IntervalTrigger(seconds=CONFIG_POLL_SECONDS, timezone=UTC),
                                id="config", name="look for changes of the config file")
        self._scheduler.start()
        upcoming = ", ".join(f"every {describe_interval(every)} at {timestamp(at)}"
                             for every, at in sorted(self.next_runs().items()))
        log.info("scheduler started: %d source(s) in %d group(s); next: %s", len(self.config.sources),
                 len(self.next_runs()), upcoming or "nothing to check",
                 extra={"fields": {"event": "started", "sources": len(self.config.sources)}})

    def stop(self, why: str = "stop requested") -> None:
        """Stop: abandon the run in flight (what it recorded stays committed)."""
        if not self._stopping.is_set():
            log.info("stopping (%s)", why, extra={"fields": {"event": "stopping", "reason": why}})
        self._stopping.set()
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Shut the scheduler down and wait until the cancelled run has recorded itself as interrupted."""
        self.stop()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.pause()  # at once: no job may start from here on
            self._scheduler.shutdown(wait=False)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("scheduler stopped", extra={"fields": {"event": "stopped"}})

    def next_runs(self) -> dict[float, datetime]:
        """Each group's next run time, by interval in seconds."""
        if self._scheduler is None:
            return {}
        return {job.args[0]: job.next_run_time for job in self._scheduler.get_jobs()
                if job.id != "config" and job.next_run_time is not None}

    # ------------------------------------------------------------------ configuration

    async def check_config_file(self) -> bool:
        """Reload the configuration when its file changed since it was last read; True when reloaded."""
        if _file_digest(self.config_path) == self._config_digest:
            return False
        return self.reload("the file changed")

    def reload(self, why: str) -> bool:
        """Read the config file again; keep the previous configuration when the new one is invalid."""
        self._config_digest = _file_digest(self.config_path)
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("configuration not reloaded (%s), keeping the previous one: %s", why, exc,
                      extra={"fields": {"event": "reload_failed", "error": str(exc)}})
            return False
        self.config = config
        if self._scheduler is not None:
            self._sync_jobs()
        log.info("configuration reloaded (%s): %d source(s)", why, len(config.sources),
                 extra={"fields": {"event": "reloaded", "sources": len(config.sources)}})
        return True

    # ------------------------------------------------------------------ jobs

    def _sync_jobs(self) -> None:
        """One job per interval group, each due at the time the database says."""
        assert self._scheduler is not None
        groups = source_groups(self.config)
        for job in self._scheduler.get_jobs():
            if job.id != "config" and job.args[0] not in groups:
                job.remove()
        for every in groups:
            job_id = _GROUP_JOB.format(every)
            when = self._next_time(every)
            if self._scheduler.get_job(job_id) is not None:
                self._scheduler.modify_job(job_id, next_run_time=when)
            else:
                jitter = group_jitter(every, self.max_jitter)
                self._scheduler.add_job(
                    self._run_group, IntervalTrigger(seconds=every, jitter=jitter or None, timezone=UTC),
                    args=[every], id=job_id, name=f"sources every {describe_interval(every)}", next_run_time=when,
                )

    def _next_time(self, every: float) -> datetime:
        now = self.clock()
        sources = source_groups(self.config)[every]
        due = earliest_due(sources, self.store.source_states(), now)
        return next_run_time(due, now, group_jitter(every, self.max_jitter), self.rng)

    def _reschedule(self, every: float) -> None:
        """After a run: the group's next time, from what the database now says."""
        if self._scheduler is None or every not in source_groups(self.config):
            return
        job_id = _GROUP_JOB.format(every)
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.modify_job(job_id, next_run_time=self._next_time(every))

    async def _run_group(self, every: float) -> None:
        """A group's job: check its due sources (and those due within its jitter, to keep them together)."""
        if self._stopping.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with self._one_run_at_a_time:
                config = self.config
                horizon = self.clock() + timedelta(seconds=group_jitter(every, self.max_jitter))
                members = {source.id for source in source_groups(config).get(every, [])}
                due = [source_id for source_id in due_sources(config, self.store, horizon) if source_id in members]
                if due:
                    await self._run(config, due, f"every {describe_interval(every)}")
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
            # Stopping on purpose: the run recorded itself as interrupted; end the job quietly.
        except Exception as exc:  # one bad run must not stop the scheduler
            log.exception("run of the sources every %s failed: %s", describe_interval(every), exc,
                          extra={"fields": {"event": "run_failed", "error": str(exc)}})
        finally:
            self._tasks.discard(task)
            if not self._stopping.is_set():
                self._reschedule(every)

    async def _run_due_now(self) -> RunSummary | None:
        config = self.config
        due = due_sources(config, self.store, self.clock())
        if not due:
            log.info("nothing is due", extra={"fields": {"event": "idle"}})
            return None
        return await self._run(config, due, "due now")

    async def _run(self, config: Config, source_ids: list[str], group: str) -> RunSummary:
        summary = await check_async(config, self.store, source_ids, trigger="schedule", clock=self.clock,
                                    transport=self.transport, progress=_log_source)
        _log_run(summary, group)
        await notify_pending(config, self.store, self.clock(), summary.run_id)
        if self.on_run is not None:
            self.on_run(summary)
        return summary

    @contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        handlers = {
            signal.SIGTERM: lambda: self.stop("SIGTERM"),
            signal.SIGINT: lambda: self.stop("SIGINT"),
            signal.SIGHUP: lambda: self.reload("SIGHUP"),
        }
        for number, handler in handlers.items():
            loop.add_signal_handler(number, handler)
        try:
            yield
        finally:
            for number in handlers:
                loop.remove_signal_handler(number)


def serve(config_path: str, db_path: str, *, once: bool = False, max_jitter: float = DEFAULT_MAX_JITTER) -> None:
    """``watcher schedule``: hold the database's scheduler lock and run (forever, or ``once``)."""
    config = load_config(config_path)
    with writer_lock(db_path, "schedule --once" if once else "schedule"):
        store = Store.open(db_path)
        try:
            scheduler = Scheduler(config_path, config, store, max_jitter=max_jitter)
            asyncio.run(scheduler.run_once() if once else scheduler.run_forever())
        finally:
            store.close()


# --------------------------------------------------------------------------
# Log lines: one per run, one per failing source


def _log_source(report: SourceReport) -> None:
    if report.status not in ("failed", "selector_missing"):
        return
    detail = report.error or "the selector matches nothing on the page"
    log.warning("source %s failed: %s: %s", report.source_id, report.outcome, detail,
                extra={"fields": {"event": "source_failed", "source": report.source_id,
                                  "outcome": report.outcome, "error": detail}})


def _log_run(summary: RunSummary, group: str) -> None:
    counts = summary.counts()
    seconds = (summary.finished_at - summary.started_at).total_seconds() if summary.finished_at else 0.0
    log.info(
        "run %d (%s): %d source(s) checked, %d unchanged, %d changed, %d failed, %d flag(s) raised in %.1fs",
        summary.run_id, group, counts["sources_checked"], counts["unchanged"], counts["changed"], counts["failed"],
        counts["flags_raised"], seconds,
        extra={"fields": {"event": "run", "run_id": summary.run_id, "group": group, **counts, "seconds": seconds}},
    )


def _file_digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None
