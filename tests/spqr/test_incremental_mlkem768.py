"""Incremental ML-KEM-768 (protocol/spqr/incremental_mlkem768.py).

Known answers: the NIST ACVP ML-KEM-768 encapsulation tests
(tests/kat/acvp_mlkem_encapdecap.json), run through the split: the header
ρ ‖ H(ek) alone gives ct1 and the secret, the key vector then gives ct2, and
ct1 ‖ ct2 must be ACVP's ciphertext. Against pyca: keys from pyca, the split
encapsulation by hand, decapsulation by pyca, same secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import InvalidArgument, InvalidPublicKey, MalformedMessage
from protocol.primitives import kem_public_key
from protocol.randomness import DrbgRandom, ScriptedRandom
from protocol.spqr import incremental_mlkem768 as im
from protocol.spqr import kpke

_KAT = json.loads((Path(__file__).parents[1] / "kat" / "acvp_mlkem_encapdecap.json").read_text())
_ENCAPS_768 = [
    test
    for group in _KAT["testGroups"]
    if (group["parameterSet"], group["function"]) == ("ML-KEM-768", "encapsulation")
    for test in group["tests"]
]


@pytest.mark.parametrize("test", _ENCAPS_768, ids=lambda t: f"tc{t['tcId']}")
def test_split_encapsulation_reproduces_acvp(test: dict[str, Any]) -> None:
    ek = bytes.fromhex(test["ek"])
    hdr = ek[1152:] + kpke.h(ek)
    ct1, state, shared = im.encaps1_derand(hdr, bytes.fromhex(test["m"]))
    assert shared.hex() == test["k"]
    assert im.ek_matches_header(ek[:1152], hdr)
    ct2 = im.encaps2(ek[:1152], state)
    assert (ct1 + ct2).hex() == test["c"]
    assert (len(ct1), len(ct2)) == (im.CIPHERTEXT1_LEN, im.CIPHERTEXT2_LEN)


@settings(max_examples=10, deadline=None)
@given(st.binary(min_size=64, max_size=64), st.binary(min_size=32, max_size=32))
def test_pyca_decapsulates_the_split_encapsulation(seed: bytes, m: bytes) -> None:
    keys = im.keys_from_seed(seed)
    assert keys.ek + keys.hdr[:32] == kem_public_key("ML-KEM-768", seed)
    ct1, state, shared = im.encaps1_derand(keys.hdr, m)
    assert im.decaps(seed, ct1, im.encaps2(keys.ek, state)) == shared


def test_every_draw_is_labelled_and_replayable() -> None:
    rng = ScriptedRandom([("spqr_kem_seed", bytes(64)), ("spqr_encaps_m", bytes(range(32)))])
    keys = im.generate(rng)
    ct1, state, shared = im.encaps1(keys.hdr, rng)
    rng.assert_exhausted()
    assert im.encaps1_derand(keys.hdr, bytes(range(32))) == (ct1, state, shared)


def test_key_vector_from_another_key_does_not_match_the_header() -> None:
    a, b = im.keys_from_seed(bytes(64)), im.keys_from_seed(bytes([1]) * 64)
    assert im.ek_matches_header(a.ek, a.hdr)
    assert not im.ek_matches_header(b.ek, a.hdr)
    assert not im.ek_matches_header(a.ek[:-1], a.hdr)


def test_non_canonical_key_vector_is_refused() -> None:
    keys = im.keys_from_seed(bytes(64))
    bad = kpke.byte_encode(12, [kpke.Q] + [0] * 255) + keys.ek[384:]
    _, state, _ = im.encaps1_derand(keys.hdr, bytes(32))
    assert not im.ek_matches_header(bad, keys.hdr[:32] + kpke.h(bad + keys.hdr[:32]))
    with pytest.raises(InvalidPublicKey):
        im.encaps2(bad, state)


def test_wrong_lengths_raise_stable_codes() -> None:
    keys = im.keys_from_seed(bytes(64))
    with pytest.raises(MalformedMessage):
        im.encaps1_derand(keys.hdr[:-1], bytes(32))
    with pytest.raises(InvalidArgument):
        im.encaps1_derand(keys.hdr, bytes(31))
    ct1, state, _ = im.encaps1_derand(keys.hdr, bytes(32))
    with pytest.raises(InvalidPublicKey):
        im.encaps2(keys.ek + b"\x00", state)
    with pytest.raises(MalformedMessage):
        im.decaps(keys.seed, ct1[:-1], bytes(128))
    with pytest.raises(MalformedMessage):
        im.decaps(keys.seed, ct1, bytes(127))


def test_reprs_hold_no_secret() -> None:
    keys = im.keys_from_seed(bytes(range(64)))
    _, state, _ = im.encaps1_derand(keys.hdr, bytes(range(100, 132)))
    assert keys.seed.hex() not in repr(keys) and "redacted" in repr(keys)
    assert state.m.hex() not in repr(state) and state.r.hex() not in repr(state)


@pytest.mark.slow
def test_thousand_split_encapsulations_agree_with_pyca_and_fips203() -> None:
    """ct1 ‖ ct2 is K-PKE.Encrypt's ciphertext and pyca decapsulates it, for 1000 random runs."""
    rng = DrbgRandom(b"incremental ML-KEM-768 cross-check")
    for _ in range(1000):
        seed, m = rng.draw("seed", 64), rng.draw("m", 32)
        keys = im.keys_from_seed(seed)
        ct1, state, shared = im.encaps1_derand(keys.hdr, m)
        ct2 = im.encaps2(keys.ek, state)
        ek = keys.ek + keys.hdr[:32]
        assert kpke.encaps_internal(kpke.ML_KEM_768, ek, m) == (shared, ct1 + ct2)
        assert im.decaps(seed, ct1, ct2) == shared
