"""Kyber1024 through ML-KEM-1024 (protocol/kyber1024.py) against the round-3 KAT.

tests/kat/kyber1024_round3.json holds entries 0 and 1 of the Kyber1024
round-3 KAT (PQCkemKAT_3168.rsp), pinned by libcrux's digests of the same
entries. pyca cannot load the KAT's expanded secret keys, so decapsulation
runs through the FIPS 203 internals (protocol.spqr.kpke); the tests below
then check that pyca and those internals agree, which ties the KAT to the
pyca path the library uses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from protocol import kyber1024
from protocol.errors import InvalidPublicKey, MalformedMessage
from protocol.spqr import kpke

_KAT = json.loads((Path(__file__).parent / "kat" / "kyber1024_round3.json").read_text())
_ENTRIES: list[dict[str, Any]] = _KAT["tests"]


def _b(entry: dict[str, Any], name: str) -> bytes:
    return bytes.fromhex(entry[name])


@pytest.mark.parametrize("entry", _ENTRIES, ids=lambda e: f"count{e['count']}")
def test_kat_sources_agree(entry: dict[str, Any]) -> None:
    for field, digest in (("pk", "public_key"), ("sk", "secret_key"), ("ct", "ciphertext")):
        assert hashlib.sha3_256(_b(entry, field)).hexdigest() == entry[f"sha3_256_hash_of_{digest}"]


@pytest.mark.parametrize("entry", _ENTRIES, ids=lambda e: f"count{e['count']}")
def test_published_ciphertext_decapsulates_to_published_secret(entry: dict[str, Any]) -> None:
    k_bar = kpke.decaps_internal(kpke.ML_KEM_1024, _b(entry, "sk"), _b(entry, "ct"))
    assert kyber1024.kyber_shared_secret(k_bar, _b(entry, "ct")) == _b(entry, "ss")


@pytest.mark.parametrize("entry", _ENTRIES, ids=lambda e: f"count{e['count']}")
def test_ml_kem_encapsulation_of_hashed_coins_is_kyber_encapsulation(entry: dict[str, Any]) -> None:
    m = hashlib.sha3_256(_b(entry, "encapsulation_seed")).digest()  # Kyber's m = H(coins)
    k_bar, ciphertext = kpke.encaps_internal(kpke.ML_KEM_1024, _b(entry, "pk"), m)
    assert ciphertext == _b(entry, "ct")
    assert kyber1024.kyber_shared_secret(k_bar, ciphertext) == _b(entry, "ss")


def test_pyca_round_trip_agrees_with_fips203_internals() -> None:
    seed = bytes(range(64))
    public = kyber1024.public_key(seed)
    ciphertext, shared = kyber1024.encapsulate(public)
    assert kyber1024.decapsulate(seed, ciphertext) == shared
    # An encapsulation by the FIPS 203 internals to pyca's key decapsulates, with pyca, to its K̄.
    k_bar, ours = kpke.encaps_internal(kpke.ML_KEM_1024, public, bytes(32))
    assert kyber1024.decapsulate(seed, ours) == kyber1024.kyber_shared_secret(k_bar, ours)


def test_tampered_ciphertext_gives_another_secret() -> None:
    seed = bytes(64)
    ciphertext, shared = kyber1024.encapsulate(kyber1024.public_key(seed))
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    assert kyber1024.decapsulate(seed, tampered) != shared


def test_libsignal_encodings_carry_type_byte_0x08() -> None:
    public = kyber1024.public_key(bytes(64))
    encoded = kyber1024.encode_public(public)
    assert encoded[0] == 0x08 and len(encoded) == 1569
    assert kyber1024.decode_public(encoded) == public
    with pytest.raises(InvalidPublicKey):
        kyber1024.decode_public(b"\x0a" + public)  # ML-KEM-1024's type byte
    with pytest.raises(InvalidPublicKey):
        kyber1024.decode_public(encoded[:-1])
    ciphertext = bytes(1568)
    assert kyber1024.decode_ciphertext(kyber1024.encode_ciphertext(ciphertext)) == ciphertext
    with pytest.raises(MalformedMessage):
        kyber1024.decode_ciphertext(b"\x07" + ciphertext)
    with pytest.raises(MalformedMessage):
        kyber1024.encode_ciphertext(ciphertext + b"\x00")
