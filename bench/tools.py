"""The tools under test, each run as a child process whose time and memory are measured alone.

watcher runs as ``python -m watcher check --all``; urlwatch runs from a virtual
environment of its own that :func:`urlwatch_environment` creates with pip
(urlwatch from PyPI and the ``html2text`` package its ``pyhtml2text`` filter
method uses). Each gets an equivalent configuration: the same URLs, the same
number of requests in flight, its state in a scratch folder.
"""

from __future__ import annotations

import compileall
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import yaml

import watcher

from .pages import quote

URLWATCH_REQUIREMENTS = ("urlwatch==2.29", "html2text==2025.4.15")
#: urlwatch checks jobs on a fixed pool of this many threads (``MAX_WORKERS`` in urlwatch/worker.py).
URLWATCH_THREADS = 10
#: Pages per offering in the generated registry: each page is cited by one record, with a quote.
RECORDS_PER_OFFERING = 50


@dataclass(frozen=True)
class Measurement:
    """One run of a tool: wall-clock seconds, CPU seconds (user + system) and peak resident memory."""

    wall: float
    cpu: float
    max_rss: int  # bytes


def run_measured(command: list[str], env: dict[str, str], log: Path) -> Measurement:
    """Run ``command`` to its end; its own CPU time and peak RSS come from ``wait4``, not from ours."""
    started = time.perf_counter()
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=output)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{tail}")
    return Measurement(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)


def _clean_environment(home: Path) -> dict[str, str]:
    """No proxies, and every per-user folder inside the scratch folder."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_DATA_HOME=str(home / "data"), NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return env


@dataclass(frozen=True)
class Politeness:
    """Requests in flight overall and per host (no delay between requests to one host: a fair race)."""

    concurrency: int
    per_host: int


class _Tool:
    """What both tools share: where they keep their state, and how many text versions it holds."""

    name = ""
    folder: Path
    storage: Path  # the SQLite file
    versions_table = ""

    def storage_bytes(self) -> int:
        """The database on disk, a write-ahead log or journal included."""
        return sum(p.stat().st_size for p in self.folder.glob(self.storage.name + "*"))

    def text_versions(self) -> int:
        with sqlite3.connect(self.storage) as db:
            return db.execute(f"SELECT count(*) FROM {self.versions_table}").fetchone()[0]


class Watcher(_Tool):
    name = "watcher"
    versions_table = "versions"

    def __init__(self, folder: Path, urls: list[str], politeness: Politeness):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "sources.yaml"
        self.database = self.storage = folder / "watcher.db"
        self.log = folder / "watcher.log"
        self.env = _clean_environment(folder)
        self.write_config(urls, politeness)
        # As installed: pip compiles a package's modules when it installs them (urlwatch's were), while an
        # editable install leaves that to imports, which this environment (PYTHONDONTWRITEBYTECODE) would
        # repeat at every run.
        compileall.compile_dir(Path(watcher.__file__).parent, quiet=1)

    def write_config(self, urls: list[str], politeness: Politeness) -> None:
        sources = {f"p{n}": {"url": url} for n, url in enumerate(urls)}
        offerings: dict[str, dict] = {}
        for n in range(len(urls)):
            offering = offerings.setdefault(f"vendor-{n // RECORDS_PER_OFFERING}", {"records": {}})
            offering["records"][f"claim-{n}"] = {"cites": [{"source": f"p{n}", "quote": quote(n)}]}
        settings = {"concurrency": politeness.concurrency, "per_host": politeness.per_host, "host_delay": "0s",
                    "timeout": "60s"}
        self.config.write_text(yaml.safe_dump({"settings": settings, "sources": sources, "offerings": offerings},
                                              sort_keys=False), encoding="utf-8")

    def run(self) -> Measurement:
        command = [sys.executable, "-m", "watcher", "--config", str(self.config), "--db", str(self.database),
                   "check", "--all"]
        return run_measured(command, self.env, self.log)


class Urlwatch(_Tool):
    name = "urlwatch"
    versions_table = "CacheEntry"

    def __init__(self, folder: Path, urls: list[str], environment: Path, method: str = "pyhtml2text"):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.executable = environment / "bin" / "urlwatch"
        self.urls = folder / "urls.yaml"
        self.config = folder / "urlwatch.yaml"
        self.cache = self.storage = folder / "cache.db"
        self.log = folder / "urlwatch.log"
        self.env = _clean_environment(folder)
        jobs = [{"name": f"p{n}", "url": url, "filter": [{"html2text": method}]} for n, url in enumerate(urls)]
        self.urls.write_text(yaml.safe_dump_all(jobs, sort_keys=False), encoding="utf-8")
        # The default configuration, with the report on standard output (as watcher's) and no colour.
        self.config.write_text(yaml.safe_dump({"report": {"stdout": {"enabled": True, "color": False}}}),
                               encoding="utf-8")

    @staticmethod
    def version(environment: Path) -> str:
        found = subprocess.run([str(environment / "bin" / "urlwatch"), "--version"], capture_output=True, text=True)
        return found.stdout.strip().split()[-1] if found.stdout.strip() else "?"

    def run(self) -> Measurement:
        command = [str(self.executable), "--urls", str(self.urls), "--config", str(self.config),
                   "--cache", str(self.cache), "--hooks", str(self.folder / "hooks.py")]
        return run_measured(command, self.env, self.log)


def urlwatch_environment(folder: Path | None = None) -> Path:
    """A virtual environment with urlwatch installed from PyPI, created once and reused."""
    folder = folder or Path(tempfile.gettempdir()) / "watcher-bench-urlwatch"
    if not (folder / "bin" / "urlwatch").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(folder)
        subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", *URLWATCH_REQUIREMENTS],
                       check=True)
    return folder
