"""RFC 9605 Appendix C known answers: every header, AEAD and SFrame vector matches.

The vectors are tests/kat/rfc9605_sframe.json, copied from sframe-wg/sframe
``test-vectors/test-vectors.json`` (the JSON the RFC's appendix is rendered
from); its ``source`` block names the commit. The ``post_rfc_aes256_ctr_hmac``
section covers suites 6-8 of draft-barnes-sframe-iana-256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol.media.sframe import (
    aead_decrypt,
    aead_encrypt,
    ctr_hmac_subkeys,
    decode_header,
    derive_frame_key,
    encode_header,
    encrypt_frame,
    open_frame,
    sframe_key_label,
    sframe_salt_label,
    sframe_secret,
    suite_params,
)

KAT: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "kat" / "rfc9605_sframe.json").read_text()
)
POST_RFC = KAT["post_rfc_aes256_ctr_hmac"]
AEAD_VECTORS = KAT["aes_ctr_hmac"] + POST_RFC["aes_256_ctr_hmac"]
SFRAME_VECTORS = KAT["sframe"] + POST_RFC["sframe_aes_256_ctr_hmac"]


def _b(text: str) -> bytes:
    return bytes.fromhex(text)


def test_kat_file_holds_every_rfc_vector() -> None:
    assert (len(KAT["header"]), len(KAT["aes_ctr_hmac"]), len(KAT["sframe"])) == (289, 3, 5)
    assert sorted(v["cipher_suite"] for v in SFRAME_VECTORS) == list(range(1, 9))


@pytest.mark.parametrize("suite", KAT["cipher_suites"], ids=lambda s: s["name"])
def test_suite_constants_match_the_registry(suite: dict[str, Any]) -> None:
    params = suite_params(suite["value"])
    assert params.suite.name == suite["name"]
    assert params.hash_name == suite["hash"]
    got = (params.nh, params.nka, params.nk, params.nn, params.nt)
    assert got == (suite["Nh"], suite["Nka"], suite["Nk"], suite["Nn"], suite["Nt"])


def test_every_rfc_header_vector_encodes_and_decodes_exactly() -> None:
    for vector in KAT["header"]:
        encoded = _b(vector["encoded"])
        assert encode_header(vector["kid"], vector["ctr"]) == encoded
        assert decode_header(encoded) == (vector["kid"], vector["ctr"], len(encoded))


def test_header_decoding_ignores_the_bytes_after_the_header() -> None:
    for vector in KAT["header"]:
        encoded = _b(vector["encoded"])
        assert decode_header(encoded + b"\x00\xff")[2] == len(encoded)


@pytest.mark.parametrize("vector", AEAD_VECTORS, ids=lambda v: f"suite{v['cipher_suite']}")
def test_ctr_hmac_aead_matches_rfc_vector(vector: dict[str, Any]) -> None:
    suite, key, nonce, aad = (
        vector["cipher_suite"],
        _b(vector["key"]),
        _b(vector["nonce"]),
        _b(vector["aad"]),
    )
    assert ctr_hmac_subkeys(suite, key) == (_b(vector["enc_key"]), _b(vector["auth_key"]))
    assert aead_encrypt(suite, key, nonce, aad, _b(vector["pt"])) == _b(vector["ct"])
    assert aead_decrypt(suite, key, nonce, aad, _b(vector["ct"])) == _b(vector["pt"])


@pytest.mark.parametrize("vector", SFRAME_VECTORS, ids=lambda v: f"suite{v['cipher_suite']}")
def test_sframe_key_schedule_matches_rfc_intermediates(vector: dict[str, Any]) -> None:
    suite, kid, base_key = vector["cipher_suite"], vector["kid"], _b(vector["base_key"])
    assert sframe_key_label(suite, kid) == _b(vector["sframe_key_label"])
    assert sframe_salt_label(suite, kid) == _b(vector["sframe_salt_label"])
    assert sframe_secret(suite, base_key) == _b(vector["sframe_secret"])
    key = derive_frame_key(suite, base_key, kid)
    assert (key.key, key.salt) == (_b(vector["sframe_key"]), _b(vector["sframe_salt"]))
    assert key.nonce(vector["ctr"]) == _b(vector["nonce"])


@pytest.mark.parametrize("vector", SFRAME_VECTORS, ids=lambda v: f"suite{v['cipher_suite']}")
def test_sframe_frame_matches_rfc_vector_both_ways(vector: dict[str, Any]) -> None:
    key = derive_frame_key(vector["cipher_suite"], _b(vector["base_key"]), vector["kid"])
    metadata, pt, ct = _b(vector["metadata"]), _b(vector["pt"]), _b(vector["ct"])
    assert encrypt_frame(key, vector["ctr"], metadata, pt) == ct
    header = decode_header(ct)
    assert header[:2] == (vector["kid"], vector["ctr"])
    assert ct[: header[2]] + metadata == _b(vector["aad"])
    assert open_frame(key, ct, metadata) == pt
