"""The fidelity gate: watcher's check pipeline replayed over real policy-page histories, scored against labels.

The corpus (Open Terms Archive datasets, by Open Terms Archive and its
contributors, ODC-By 1.0) sits beside the repository; the floors below are the
figures measured on its dev split (``python -m bench.fidelity`` prints them
with every error). A change that makes any of them worse fails here.
"""

from __future__ import annotations

import pytest
from bench.replay import DEFAULT, SELECTORS, Observation, Score, corpus_root, errors, load_corpus, replay, score

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(
    not (CORPUS / "dev" / "index.json").exists(),
    reason=f"the policy-page corpus is not at {CORPUS} (set WATCHER_CORPUS to its folder)",
)

#: (configuration, only pairs with words changed) -> (precision, recall) floors, as measured on the dev split.
FLOORS = {
    (SELECTORS, False): (1.0, 0.974),
    (SELECTORS, True): (1.0, 1.0),
    (DEFAULT, False): (1.0, 0.974),
    (DEFAULT, True): (1.0, 1.0),
}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(CORPUS, "dev")


@pytest.fixture(scope="module")
def observations(corpus) -> list[Observation]:
    return replay(corpus)


@pytest.mark.parametrize("configuration, words_only", sorted(FLOORS))
def test_precision_and_recall_stay_above_their_floors(observations, configuration, words_only):
    measured = score(observations, configuration, words_only)
    precision, recall = FLOORS[configuration, words_only]
    assert measured.precision >= precision and measured.recall >= recall, (
        f"{configuration}, words_only={words_only}: precision {measured.precision:.3f}, "
        f"recall {measured.recall:.3f} ({measured})"
    )


def test_every_change_of_wording_is_reported(observations):
    for configuration in (SELECTORS, DEFAULT):
        _, misses = errors(observations, configuration)
        assert [(o.pair.doc, o.pair.after) for o in misses if o.pair.words_changed > 0] == [], configuration


def test_a_selector_that_stops_matching_raises_selector_missing_and_never_a_deletion(observations):
    drifted = [o for o in observations if o.configuration == SELECTORS and o.pair.select_missing]
    assert drifted, "the dev split has select_missing pairs"
    assert all(o.status == "selector_missing" and not o.flagged for o in drifted)


def test_no_scored_pair_is_taken_for_a_failed_fetch(observations):
    assert not [o for o in observations if not o.pair.select_missing and o.status == "failed"]


def test_scores_count_what_they_say():
    assert Score(3, 1, 1, 5).precision == 0.75 and Score(3, 1, 1, 5).recall == 0.75
    assert Score(0, 0, 0, 4).precision == 1.0 and Score(0, 0, 2, 4).f1 == 0.0
