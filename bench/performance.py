"""The performance benchmark: watcher and urlwatch on the same page farm, in the same run.

    .venv/bin/python -m bench.performance                    # the full table (about 35 minutes on 2 cores)
    .venv/bin/python -m bench.performance --sizes 200 --repeat 1 --passes 5   # a quick look

Each tool runs as a child process, so its CPU time and peak memory are its
own; the farm (:mod:`bench.farm`) runs in a third process. Scenarios, for
each size N:

- ``first``      an empty database, every page fetched (loopback, no latency);
- ``unchanged``  the same pages again: with validators, every request is conditional;
- ``5% changed`` 5% of the pages edited (each page is cited by a record with a quote);
- ``latency``    a first pass with 100 ms per response, 20 hosts (the smallest size only);
- ``growth``     a first pass, then ``--passes`` passes with 5% of the pages edited before each
                 (the smallest size only): the database against the distinct pages compressed with zlib.

Medians of ``--repeat`` runs for the first three scenarios and the latency one
(``--repeat-large`` for sizes over 1,000). Ratios are watcher / urlwatch.

Politeness is set for a fair race: as many requests in flight as urlwatch's
pool of threads (10) and no delay between requests to a host; in the latency
scenario ``per_host: 5`` over 20 hosts. The defaults users get stay polite.
The long-document case (a 1 MB policy with 20 scattered edits, 50 quotes
re-located) is timed in-process.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from watcher.diff import Comparison, changed_word_counts
from watcher.passages import TextIndex

from .farm import FarmClient
from .pages import _VOCABULARY
from .tools import URLWATCH_THREADS, Measurement, Politeness, Urlwatch, Watcher, urlwatch_environment

HOSTS = 20
LATENCY = 0.1
CHANGED = 0.05
NO_LATENCY = Politeness(concurrency=URLWATCH_THREADS, per_host=URLWATCH_THREADS)
WITH_LATENCY = Politeness(concurrency=HOSTS * 5, per_host=5)


@dataclass
class Row:
    """One scenario of one tool: the median measurement and what the farm and the disk saw."""

    scenario: str
    pages: int
    tool: str
    measurement: Measurement
    not_modified: int
    requests: int
    bytes_sent: int
    storage: int
    text_versions: int
    max_in_flight: int = 0

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.measurement.wall

    @property
    def cpu_per_thousand(self) -> float:
        return self.measurement.cpu / self.pages * 1000

    @property
    def bytes_per_version(self) -> float:
        return self.storage / self.text_versions if self.text_versions else 0.0


def _median(measurements: list[Measurement]) -> Measurement:
    return Measurement(statistics.median(m.wall for m in measurements), statistics.median(m.cpu for m in measurements),
                       int(statistics.median(m.max_rss for m in measurements)))


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path):
        self.args = args
        self.scratch = scratch
        self.rows: list[Row] = []
        self.environment = urlwatch_environment(args.urlwatch_env)
        self.notes: list[str] = []

    def tools(self, farm: FarmClient, label: str, politeness: Politeness):
        urls = [farm.url(n) for n in range(farm.pages)]
        folder = self.scratch / f"{label}-{time.monotonic_ns()}"
        return [Watcher(folder / "watcher", urls, politeness),
                Urlwatch(folder / "urlwatch", urls, self.environment, self.args.urlwatch_method)]

    def record(self, scenario: str, tool_name: str, pages: int, runs: list[Measurement], seen: dict) -> Row:
        """A row from the runs' median and ``seen``: the farm's counters and the tool's storage after the run."""
        statuses = seen["statuses"]
        row = Row(scenario, pages, tool_name, _median(runs), statuses.get("304", 0),
                  statuses.get("200", 0) + statuses.get("304", 0), seen["bytes_sent"], seen["storage"],
                  seen["text_versions"], seen["max_in_flight_per_host"])
        self.rows.append(row)
        print(f"  {scenario:<12} {tool_name:<9} {row.measurement.wall:7.2f} s  {row.cpu_per_thousand:6.2f} CPU s/1000",
              flush=True)
        return row

    @staticmethod
    def run(tool, farm: FarmClient) -> tuple[Measurement, dict]:
        """One run of ``tool``, with what the farm counted during it and what the tool stores after it."""
        farm.reset_counters()
        measured = tool.run()
        return measured, {**farm.stats(), "storage": tool.storage_bytes(), "text_versions": tool.text_versions()}

    def passes(self, pages: int, repeat: int) -> None:
        """first, unchanged and 5% changed, ``repeat`` times from an empty database each."""
        with FarmClient(pages, hosts=HOSTS) as farm:
            runs: dict[tuple[str, str], list[Measurement]] = {}
            seen: dict[tuple[str, str], dict] = {}
            for repetition in range(repeat):
                for tool in self.tools(farm, f"passes-{pages}", NO_LATENCY):
                    farm.reset()
                    for scenario in ("first", "unchanged", "5% changed"):
                        if scenario == "5% changed":
                            farm.edit(CHANGED, seed=repetition)
                        measured, seen[scenario, tool.name] = self.run(tool, farm)
                        runs.setdefault((scenario, tool.name), []).append(measured)
            for (scenario, name), measured_runs in runs.items():
                self.record(scenario, name, pages, measured_runs, seen[scenario, name])

    def latency(self, pages: int, repeat: int) -> None:
        """First passes with 100 ms per response over 20 hosts, ``per_host: 5``."""
        with FarmClient(pages, hosts=HOSTS, latency=LATENCY) as farm:
            for tool_index in range(2):
                measured_runs, seen, name = [], {}, ""
                for _ in range(repeat):
                    tool = self.tools(farm, f"latency-{pages}", WITH_LATENCY)[tool_index]
                    farm.reset()
                    measured, seen = self.run(tool, farm)
                    measured_runs.append(measured)
                    name = tool.name
                self.record("latency", name, pages, measured_runs, seen)

    def growth(self, pages: int, passes: int) -> int:
        """A first pass and ``passes`` passes with 5% of the pages edited before each.

        Returns the distinct pages served, compressed with zlib: the yardstick of the storage.
        """
        with FarmClient(pages, hosts=HOSTS) as farm:
            for tool in self.tools(farm, f"growth-{pages}", NO_LATENCY):
                farm.reset()
                measured = [tool.run()]
                for number in range(passes):
                    farm.edit(CHANGED, seed=1000 + number)
                    measured.append(tool.run())
                total = Measurement(sum(m.wall for m in measured), sum(m.cpu for m in measured),
                                    max(m.max_rss for m in measured))
                seen = {"statuses": {}, "bytes_sent": 0, "max_in_flight_per_host": 0,
                        "storage": tool.storage_bytes(), "text_versions": tool.text_versions()}
                self.record(f"growth x{passes}", tool.name, pages, [total], seen)
            return farm.distinct()["zlib_bytes"]


def long_document_case(seed: int = 7) -> dict[str, float]:
    """A 1 MB policy with 20 scattered edits (half of them inside quoted passages): diff it and re-locate
    50 quotes, as a check does (line diff, word counts of the changed blocks, quotes found again)."""
    rng = random.Random(seed)
    lines = []
    while sum(len(line) + 1 for line in lines) < 1_000_000:
        lines.append(" ".join(rng.choices(_VOCABULARY, k=rng.randint(15, 60))).capitalize() + ".")
    quoted = rng.sample(range(len(lines)), 50)
    quotes = [" ".join(lines[i].split()[3:15]) for i in quoted]
    edited = list(lines)
    elsewhere = [i for i in rng.sample(range(len(lines)), 30) if i not in quoted][:10]
    for index in quoted[:10] + elsewhere:
        words = edited[index].split()
        position = rng.randrange(4, 14) if index in quoted else rng.randrange(len(words))
        words[position] = rng.choice(_VOCABULARY) + "d"
        edited[index] = " ".join(words)
    old, new = "\n".join(lines), "\n".join(edited)
    started = time.perf_counter()
    comparison = Comparison(old, new)
    counts = [changed_word_counts("\n".join(h.old), "\n".join(h.new)) for h in comparison.hunks]
    old_index, new_index = TextIndex(old), TextIndex(new)
    exact = approximate = 0
    for quote in quotes:
        before = old_index.locate(quote)
        hint = comparison.map_position(before.start) if before is not None else None
        found = new_index.locate(quote, hint=hint)
        exact += found is not None and found.exact
        approximate += found is not None and not found.exact
    seconds = time.perf_counter() - started
    return {"chars": len(new), "hunks": len(counts), "quotes": len(quotes), "exact": exact,
            "approximate": approximate, "seconds": seconds}


def _size(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def table(rows: list[Row]) -> list[str]:
    header = (f"{'scenario':<13}{'N':>7} {'tool':<9}{'wall s':>8}{'pages/s':>9}{'CPU s/1k':>9}{'peak RSS':>10}"
              f"{'304s':>7}{'downloaded':>12}{'database':>10}{'B/version':>11}{'max/host':>9}")
    lines = [header, "-" * len(header)]
    for row in rows:
        m = row.measurement
        lines.append(f"{row.scenario:<13}{row.pages:>7} {row.tool:<9}{m.wall:>8.2f}{row.pages_per_second:>9.0f}"
                     f"{row.cpu_per_thousand:>9.2f}{_size(m.max_rss):>10}{row.not_modified:>7}"
                     f"{_size(row.bytes_sent):>12}{_size(row.storage):>10}{_size(row.bytes_per_version):>11}"
                     f"{row.max_in_flight:>9}")
    return lines


def _ratio(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.2f}" if theirs else "-"


def ratios(rows: list[Row]) -> list[str]:
    by_key = {(r.scenario, r.pages, r.tool): r for r in rows}
    header = (f"{'scenario':<13}{'N':>7}  {'wall':>7}{'pages/s':>9}{'CPU/page':>9}{'peak RSS':>9}"
              f"{'downloaded':>11}{'database':>9}")
    lines = [header, "-" * len(header)]
    for (scenario, pages, tool), mine in by_key.items():
        theirs = by_key.get((scenario, pages, "urlwatch"))
        if tool != "watcher" or theirs is None:
            continue
        lines.append(
            f"{scenario:<13}{pages:>7}  {mine.measurement.wall / theirs.measurement.wall:>7.3f}"
            f"{mine.pages_per_second / theirs.pages_per_second:>9.2f}"
            f"{mine.cpu_per_thousand / theirs.cpu_per_thousand:>9.3f}"
            f"{mine.measurement.max_rss / theirs.measurement.max_rss:>9.2f}"
            f"{_ratio(mine.bytes_sent, theirs.bytes_sent):>11}{_ratio(mine.storage, theirs.storage):>9}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="watcher against urlwatch on a local page farm.")
    parser.add_argument("--sizes", default="1000,10000", help="page counts, comma-separated (default 1000,10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario, medians reported (default 3)")
    parser.add_argument("--repeat-large", type=int, default=1, help="runs per scenario for sizes over 1,000")
    parser.add_argument("--passes", type=int, default=50, help="passes of the growth scenario (default 50)")
    parser.add_argument("--urlwatch-method", default="pyhtml2text",
                        help="urlwatch's html2text method (default pyhtml2text; 're' strips tags with a regex)")
    parser.add_argument("--urlwatch-env", type=Path, default=None,
                        help="where urlwatch's virtual environment is (created there if missing)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as scratch:
        bench = Bench(args, Path(scratch))
        for pages in sizes:
            print(f"N = {pages}", flush=True)
            bench.passes(pages, args.repeat if pages <= 1000 else args.repeat_large)
        print(f"latency, N = {sizes[0]}", flush=True)
        bench.latency(sizes[0], args.repeat)
        print(f"growth, N = {sizes[0]}, {args.passes} passes", flush=True)
        zlib_bytes = bench.growth(sizes[0], args.passes)
        document = long_document_case()
        print()
        print(f"urlwatch {Urlwatch.version(bench.environment)} with `html2text: {args.urlwatch_method}`; "
              f"medians of {args.repeat} runs (N <= 1000), {args.repeat_large} (larger)")
        print("\n".join(table(bench.rows)))
        print()
        print("watcher / urlwatch")
        print("\n".join(ratios(bench.rows)))
        print()
        grown = [r for r in bench.rows if r.scenario.startswith("growth")]
        print(f"growth: the distinct pages served, compressed with zlib, take {_size(zlib_bytes)}; " + "; ".join(
            f"{r.tool}'s storage {_size(r.storage)} ({r.storage / zlib_bytes:.2f}x)" for r in grown))
        print(f"long document: {document['chars'] / 1e6:.2f} MB, {document['hunks']} changed blocks, "
              f"{document['quotes']} quotes re-located ({document['exact']} exactly, {document['approximate']} "
              f"approximately) in {document['seconds']:.3f} s")
        print(f"benchmark took {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
