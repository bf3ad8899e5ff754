"""Labelled randomness: scripted replay fails loudly, the DRBG is deterministic."""

import pytest

from protocol.errors import InvalidArgument
from protocol.randomness import DrbgRandom, RecordingRandom, ScriptedRandom, SystemRandom


def test_scripted_random_replays_labelled_draws_in_order() -> None:
    rng = ScriptedRandom([("a", b"\x01" * 4), ("b", b"\x02" * 2)])
    assert rng.draw("a", 4) == b"\x01" * 4
    assert rng.remaining == 1
    assert rng.draw("b", 2) == b"\x02" * 2
    rng.assert_exhausted()


@pytest.mark.parametrize(("label", "length"), [("b", 4), ("a", 3)])
def test_scripted_random_refuses_label_or_length_mismatch(label: str, length: int) -> None:
    rng = ScriptedRandom([("a", b"\x01" * 4)])
    with pytest.raises(InvalidArgument):
        rng.draw(label, length)


def test_scripted_random_refuses_when_exhausted_and_reports_unused() -> None:
    rng = ScriptedRandom([("a", b"\x01")])
    with pytest.raises(InvalidArgument):
        rng.assert_exhausted()
    rng.draw("a", 1)
    with pytest.raises(InvalidArgument):
        rng.draw("a", 1)


def test_drbg_is_deterministic_and_label_separated() -> None:
    first, second = DrbgRandom(b"seed"), DrbgRandom(b"seed")
    assert first.draw("x", 32) == second.draw("x", 32)
    assert DrbgRandom(b"seed").draw("x", 32) != DrbgRandom(b"seed").draw("y", 32)
    assert DrbgRandom(b"seed").draw("x", 32) != DrbgRandom(b"other").draw("x", 32)
    assert first.draw("x", 32) != DrbgRandom(b"seed").draw("x", 32)  # counter advances


def test_recording_random_records_exactly_what_it_returned() -> None:
    rng = RecordingRandom(DrbgRandom(b"s"))
    value = rng.draw("k", 8)
    assert rng.draws == [("k", value)]
    replay = ScriptedRandom(rng.draws)
    assert replay.draw("k", 8) == value


def test_random_sources_do_not_reveal_seeds_in_repr() -> None:
    assert "seed" not in repr(DrbgRandom(b"seed-secret")).replace("<seed redacted>", "")
    assert len(SystemRandom().draw("x", 16)) == 16
