"""Fingerprints against libsignal's published values; strict scanned codes (spec/session.md §6).

Known answers: libsignal ``rust/protocol/src/fingerprint.rs`` tests
``fingerprint_test_v1``, ``fingerprint_test_v2`` and ``fingerprint_encodings``,
copied with their source into ``tests/kat/libsignal_fingerprint.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import InvalidArgument, MalformedMessage, ProtocolError, UnsupportedVersion
from protocol.fingerprint import (
    SCANNABLE_FINGERPRINT_LEN,
    FingerprintVersionMismatch,
    ScannableFingerprint,
    fingerprint,
    safety_number,
)
from protocol.primitives import x25519_public_key

KAT = json.loads((Path(__file__).parent / "kat" / "libsignal_fingerprint.json").read_text())
ALICE_ID, BOB_ID = KAT["alice_stable_id"], KAT["bob_stable_id"]
ALICE_KEY, BOB_KEY = bytes.fromhex(KAT["alice_identity"]), bytes.fromhex(KAT["bob_identity"])


def _key(seed: int) -> bytes:
    return x25519_public_key(bytes([seed]) * 32)


def test_safety_number_matches_libsignal_displayable_fingerprint() -> None:
    assert ALICE_KEY[0] == BOB_KEY[0] == 0x05
    number = safety_number(ALICE_ID, ALICE_KEY[1:], BOB_ID, BOB_KEY[1:])
    mirrored = safety_number(BOB_ID, BOB_KEY[1:], ALICE_ID, ALICE_KEY[1:])
    assert number == mirrored == KAT["displayable_fingerprint"]


@pytest.mark.parametrize("version", [1, 2])
def test_scannable_fingerprints_match_libsignal(version: int) -> None:
    alice = fingerprint(version, ALICE_ID, ALICE_KEY[1:], BOB_ID, BOB_KEY[1:])
    bob = fingerprint(version, BOB_ID, BOB_KEY[1:], ALICE_ID, ALICE_KEY[1:])
    assert alice.scannable.serialize().hex() == KAT[f"alice_scannable_v{version}"]
    assert bob.scannable.serialize().hex() == KAT[f"bob_scannable_v{version}"]
    assert len(alice.scannable.serialize()) == SCANNABLE_FINGERPRINT_LEN
    assert alice.display == bob.display == KAT["displayable_fingerprint"]
    assert alice.scannable.compare(bob.scannable.serialize())
    assert bob.scannable.compare(alice.scannable.serialize())
    assert ScannableFingerprint.deserialize(alice.scannable.serialize()) == alice.scannable


def test_scannable_encoding_matches_libsignal() -> None:
    case = KAT["encoding_test"]
    scannable = ScannableFingerprint(
        case["version"], bytes.fromhex(case["local"]), bytes.fromhex(case["remote"])
    )
    assert scannable.serialize().hex() == case["serialized"]


def test_text_identifiers_hash_as_their_utf8_bytes() -> None:
    as_text = fingerprint(1, ALICE_ID, ALICE_KEY[1:], BOB_ID, BOB_KEY[1:])
    as_bytes = fingerprint(1, ALICE_ID.encode(), ALICE_KEY[1:], BOB_ID.encode(), BOB_KEY[1:])
    assert as_text == as_bytes


def test_version_2_takes_sixteen_byte_service_ids_and_both_sides_agree() -> None:
    alice_aci, bob_aci = bytes(range(16)), bytes(range(16, 32))
    alice = fingerprint(2, alice_aci, _key(1), bob_aci, _key(2))
    bob = fingerprint(2, bob_aci, _key(2), alice_aci, _key(1))
    assert alice.display == bob.display
    assert alice.scannable.compare(bob.scannable.serialize())
    assert alice.display != fingerprint(2, ALICE_ID, _key(1), bob_aci, _key(2)).display


def test_compare_refuses_our_own_code_a_substituted_key_and_another_identifier() -> None:
    alice = fingerprint(1, ALICE_ID, _key(1), BOB_ID, _key(2)).scannable
    assert not alice.compare(alice.serialize())  # libsignal: "Java is missing this test"
    mitm = fingerprint(1, BOB_ID, _key(2), ALICE_ID, _key(3)).scannable
    assert not alice.compare(mitm.serialize())
    other_id = fingerprint(1, BOB_ID, _key(2), "+141512222222", _key(1)).scannable
    assert not alice.compare(other_id.serialize())


def test_compare_refuses_a_version_mismatch_with_a_stable_code() -> None:
    v1 = fingerprint(1, ALICE_ID, ALICE_KEY[1:], BOB_ID, BOB_KEY[1:])
    v2 = fingerprint(2, BOB_ID, BOB_KEY[1:], ALICE_ID, ALICE_KEY[1:])
    assert v1.display == v2.display  # the digits do not depend on the version
    with pytest.raises(FingerprintVersionMismatch) as raised:
        v1.scannable.compare(v2.scannable.serialize())
    assert raised.value.code == "UNSUPPORTED_VERSION"
    assert (raised.value.theirs, raised.value.ours) == (2, 1)
    other = bytes([0x08, 0x03]) + v2.scannable.serialize()[2:]
    with pytest.raises(FingerprintVersionMismatch):
        v1.scannable.compare(other)
    with pytest.raises(UnsupportedVersion):
        ScannableFingerprint.deserialize(other)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1],  # truncated content
        lambda b: b[2:],  # no version
        lambda b: b + b[2:38],  # local fingerprint twice
        lambda b: b[:4] + b"\x21" + b[5:],  # 33-byte length: runs past its field
        lambda b: b + b"\x20\x01",  # unknown field 4
        lambda b: b[:2] + b"\x12\x21\x0a\x1f" + b[6:37] + b[38:],  # 31-byte content
        lambda b: b"\x08\x81\x00" + b[2:],  # non-minimal varint
    ],
)
def test_malformed_scannable_fingerprints_are_refused(mutate: object) -> None:
    valid = fingerprint(2, ALICE_ID, _key(1), BOB_ID, _key(2)).scannable
    assert callable(mutate)
    data = mutate(valid.serialize())
    with pytest.raises(MalformedMessage):
        ScannableFingerprint.deserialize(data)
    with pytest.raises(MalformedMessage):
        valid.compare(data)


def test_bad_arguments_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        fingerprint(3, ALICE_ID, _key(1), BOB_ID, _key(2))
    with pytest.raises(InvalidArgument):
        fingerprint(1, 5, _key(1), BOB_ID, _key(2))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        ScannableFingerprint(1, bytes(31), bytes(32))


_VALID = fingerprint(2, ALICE_ID, _key(1), BOB_ID, _key(2)).scannable.serialize()


def _mutated(at: int, value: int, cut: int) -> bytes:
    return (_VALID[:at] + bytes([value]) + _VALID[at + 1 :])[: len(_VALID) - cut]


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=120),
        st.builds(
            _mutated, st.integers(0, len(_VALID) - 1), st.integers(0, 255), st.integers(0, 3)
        ),
    )
)
def test_scanned_bytes_raise_only_protocol_errors(data: bytes) -> None:
    ours = ScannableFingerprint.deserialize(_VALID)
    for read in (ScannableFingerprint.deserialize, ours.compare):
        try:
            read(data)
        except ProtocolError as error:
            assert error.code in ("MALFORMED_MESSAGE", "UNSUPPORTED_VERSION")
