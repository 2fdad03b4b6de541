"""The fidelity report: how well watcher tells meaningful changes from noise on real policy-page histories.

    .venv/bin/python -m bench.fidelity               # the table, select_missing pairs, every error
    .venv/bin/python -m bench.fidelity --ablation    # and what each noise rule is worth

It replays the corpus through watcher's check pipeline (see ``bench/replay.py``)
in two configurations, with the corpus's selectors and out of the box, and
scores the changes watcher flags against the corpus labels. The corpus comes
from the Open Terms Archive datasets, by Open Terms Archive and its
contributors, under the Open Data Commons Attribution License (ODC-By 1.0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

from watcher import noise

from .replay import (
    ATTRIBUTION,
    CONFIGURATIONS,
    Corpus,
    Observation,
    corpus_root,
    errors,
    load_corpus,
    reference_words,
    replay,
    score,
    shorten,
)


def table(observations: list[Observation]) -> list[str]:
    lines = [f"{'configuration':<14}{'pairs':<18}{'TP':>5}{'FP':>5}{'FN':>5}{'TN':>5}"
             f"{'precision':>11}{'recall':>8}{'F1':>7}"]
    for configuration in CONFIGURATIONS:
        for words_only, label in ((False, "all"), (True, "words changed > 0")):
            s = score(observations, configuration, words_only)
            lines.append(f"{configuration:<14}{label:<18}{s.true_positives:>5}{s.false_positives:>5}"
                         f"{s.false_negatives:>5}{s.true_negatives:>5}{s.precision:>11.3f}{s.recall:>8.3f}{s.f1:>7.3f}")
    return lines


def drift_lines(observations: list[Observation]) -> list[str]:
    """The pairs left out because the corpus's ``select`` matched nothing, and what watcher did with them."""
    lines = []
    for configuration in CONFIGURATIONS:
        chosen = [o for o in observations if o.configuration == configuration and o.pair.select_missing]
        statuses: dict[str, int] = {}
        for o in chosen:
            statuses[o.status] = statuses.get(o.status, 0) + 1
        flagged = sum(o.flagged for o in chosen)
        counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        lines.append(f"{configuration:<14}{len(chosen)} pair(s): {counts}; {flagged} flagged as a change")
    return lines


def error_lines(corpus: Corpus, observations: list[Observation]) -> list[str]:
    lines = []
    for configuration in CONFIGURATIONS:
        false_positives, false_negatives = errors(observations, configuration)
        lines.append(f"{configuration}: {len(false_positives)} false positive(s), "
                     f"{len(false_negatives)} false negative(s)")
        for o in false_positives:
            removed, added = o.changed_words()
            lines.append(f"  FP {o.pair.doc} {o.pair.before} -> {o.pair.after}: watcher saw "
                         f"-[{shorten(removed)}] +[{shorten(added)}]")
        for o in false_negatives:
            removed, added = reference_words(corpus, o.pair)
            lines.append(f"  FN {o.pair.doc} {o.pair.before} -> {o.pair.after} ({o.pair.words_changed} words, "
                         f"watcher: {o.status}): reference -[{shorten(removed)}] +[{shorten(added)}]")
    return lines


def ablation_lines(corpus: Corpus, baseline: list[Observation]) -> list[str]:
    """What each noise rule is worth: the scored pairs it gets right, switched off alone and switched on alone.

    Rules overlap (a footer can be a landmark, be named *footer* and be made
    of links), so a rule switched off alone may cost nothing while, on its
    own, it fixes pairs.
    """

    def errors_with(rules: tuple[noise.NoiseRule, ...]) -> list[int]:
        with mock.patch.object(noise, "RULES", rules):
            observations = replay(corpus)
        return [_wrong(observations, c) for c in CONFIGURATIONS]

    everything = [_wrong(baseline, c) for c in CONFIGURATIONS]
    nothing = errors_with(())
    lines = [f"{'rule':<24}{'off alone':>12}{'on alone':>12}   (pairs fixed: selectors / out of the box)"]
    for rule in noise.RULES:
        off = errors_with(tuple(r for r in noise.RULES if r is not rule))
        on = errors_with((rule,))
        lines.append(f"{rule.name:<24}{_pair(o - e for o, e in zip(off, everything, strict=True)):>12}"
                     f"{_pair(n - o for n, o in zip(nothing, on, strict=True)):>12}   {rule.handles}")
    lines.append(f"{'all rules':<24}{'':>12}{_pair(n - e for n, e in zip(nothing, everything, strict=True)):>12}"
                 f"   errors without any rule: {_pair(nothing)}")
    return lines


def _wrong(observations: list[Observation], configuration: str) -> int:
    s = score(observations, configuration)
    return s.false_positives + s.false_negatives


def _pair(values) -> str:
    first, second = values
    return f"{first} / {second}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, default=None, help="the corpus folder (default: $WATCHER_CORPUS "
                        "or ../shared/corpus beside the repository)")
    parser.add_argument("--split", default="dev", help="the split to replay (default: dev)")
    parser.add_argument("--ablation", action="store_true", help="also replay once per noise rule switched off")
    args = parser.parse_args(argv)
    root = args.corpus or corpus_root()
    if not (root / args.split / "index.json").exists():
        print(f"no corpus split at {root / args.split}", file=sys.stderr)
        return 2
    corpus = load_corpus(root, args.split)
    started = time.monotonic()
    observations = replay(corpus)
    elapsed = time.monotonic() - started
    left_out = sum(p.select_missing for p in corpus.pairs)
    print(f"watcher fidelity, {args.split} split: {len(corpus.documents)} documents, {len(corpus.pairs)} pairs, "
          f"{left_out} left out (select_missing); replayed in {elapsed:.1f} s")
    print(ATTRIBUTION)
    print()
    print("\n".join(table(observations)))
    print("\nselect_missing pairs (the corpus's select matches nothing; not scored):")
    print("\n".join(drift_lines(observations)))
    print("\nErrors, with the words that differed:")
    print("\n".join(error_lines(corpus, observations)))
    if args.ablation:
        print(f"\nNoise rules, over the {len(corpus.pairs) - left_out} scored pairs:")
        print("\n".join(ablation_lines(corpus, observations)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
