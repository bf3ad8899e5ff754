"""FIPS 203 internals (protocol/spqr/kpke.py) against NIST ACVP ML-KEM known answers.

tests/kat/acvp_mlkem_encapdecap.json: ML-KEM-768 and ML-KEM-1024
encapsulation (ek, m -> c, k) and ML-KEM-1024 decapsulation (dk, c -> k)
from the ACVP-Server sample set. Encapsulation exercises every internal the
incremental ML-KEM uses (SampleNTT, SamplePolyCBD, NTT, NTT⁻¹,
MultiplyNTTs, Compress, ByteEncode); decapsulation adds K-PKE.Decrypt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.spqr import kpke

_KAT = json.loads((Path(__file__).parents[1] / "kat" / "acvp_mlkem_encapdecap.json").read_text())
_PARAMS = {"ML-KEM-768": kpke.ML_KEM_768, "ML-KEM-1024": kpke.ML_KEM_1024}


def _cases(function: str) -> list[tuple[kpke.Params, dict[str, Any]]]:
    return [
        (_PARAMS[group["parameterSet"]], test)
        for group in _KAT["testGroups"]
        if group["function"] == function
        for test in group["tests"]
    ]


def _id(value: object) -> str:
    return getattr(value, "name", "")


@pytest.mark.parametrize(("params", "test"), _cases("encapsulation"), ids=_id)
def test_acvp_encapsulation(params: kpke.Params, test: dict[str, Any]) -> None:
    ek, m = bytes.fromhex(test["ek"]), bytes.fromhex(test["m"])
    shared, ciphertext = kpke.encaps_internal(params, ek, m)
    assert ciphertext.hex() == test["c"]
    assert shared.hex() == test["k"]


@pytest.mark.parametrize(("params", "test"), _cases("decapsulation"), ids=_id)
def test_acvp_decapsulation(params: kpke.Params, test: dict[str, Any]) -> None:
    dk, c = bytes.fromhex(test["dk"]), bytes.fromhex(test["c"])
    assert kpke.decaps_internal(params, dk, c).hex() == test["k"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, kpke.Q - 1), min_size=256, max_size=256))
def test_ntt_inverse_undoes_ntt(f: list[int]) -> None:
    assert kpke.ntt_inverse(kpke.ntt(f)) == f


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 11), st.lists(st.integers(0, kpke.Q - 1), min_size=256, max_size=256))
def test_byte_decode_inverts_byte_encode(d: int, f: list[int]) -> None:
    values = [x % (1 << d) for x in f]
    assert kpke.byte_decode(d, kpke.byte_encode(d, values)) == values


def test_modulus_check_refuses_a_coefficient_of_q() -> None:
    good = kpke.byte_encode(12, [kpke.Q - 1] * 256)
    bad = kpke.byte_encode(12, [kpke.Q] + [0] * 255)
    assert kpke.is_modulus_canonical(good)
    assert not kpke.is_modulus_canonical(bad)
