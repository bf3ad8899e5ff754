"""The accumulated digest over random transcripts is the committed one (spec/ratchet.md §8.3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.vectors.accumulated import accumulated_digest

DOCUMENT = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "accumulated.json").read_text()
)
GROUP = DOCUMENT["testGroups"][0]
DIGESTS = {test["n"]: test["digest"] for test in GROUP["tests"]}


def test_first_hundred_random_transcripts_give_the_committed_digest() -> None:
    assert accumulated_digest(bytes.fromhex(GROUP["seed"]), 100).hex() == DIGESTS[100]


def test_a_different_seed_gives_a_different_digest() -> None:
    assert accumulated_digest(b"another seed", 100).hex() != DIGESTS[100]


@pytest.mark.slow
def test_ten_thousand_random_transcripts_give_the_committed_digest() -> None:
    assert accumulated_digest(bytes.fromhex(GROUP["seed"]), 10_000).hex() == DIGESTS[10_000]
