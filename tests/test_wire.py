"""Wire formats: libsignal's bytes round-trip exactly, and decoding is strict (spec/wire.md).

Fuzzing: arbitrary bytes and one-byte mutations of valid messages make the
decoders raise only ``ProtocolError``, never another exception.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import encode_ec
from protocol.errors import InvalidPublicKey, MalformedMessage, ProtocolError, UnsupportedVersion
from protocol.primitives import KEM_CIPHERTEXT_LEN, x25519_public_key
from protocol.profiles import CLASSIC, PQ_DEFAULT, PROFILES, SIGNAL_V3, Profile
from protocol.protobuf import write_field
from protocol.wire import (
    ENCRYPTED_HEADER_LEN,
    HEADER_LEN,
    Header,
    PrekeyMessage,
    decode_message,
    decode_prekey_message,
    encode_header,
    encode_message,
    encode_prekey_message,
    encode_signal_message,
)
from protocol.x3dh import InitialData

TRANSCRIPT = json.loads(
    (Path(__file__).parent / "kat" / "libsignal_v3_ratchet_transcript.json").read_text()
)
LIBSIGNAL = {m["id"]: bytes.fromhex(m["bytes"]) for m in TRANSCRIPT["messages"]}
KEY_A = x25519_public_key(b"\x11" * 32)
KEY_B = x25519_public_key(b"\x22" * 32)
ALL = list(PROFILES.values())


def _ratchet_message(profile: Profile) -> bytes:
    header = Header(KEY_A, 3, 7)
    if profile.framing.name == "signal-v3":
        return encode_signal_message(header, b"\x00" * 32) + b"\x01" * 8
    header_len = ENCRYPTED_HEADER_LEN if profile.headers.encrypted else HEADER_LEN
    header_bytes = encode_header(header) if header_len == HEADER_LEN else b"\x05" * header_len
    return encode_message(header_bytes, b"\x00" * 32)


def _prekey(profile: Profile, one_time: int | None = 9) -> PrekeyMessage:
    kem = profile.kem
    initial = InitialData(
        identity_key=KEY_A,
        ephemeral_key=KEY_B,
        signed_prekey_id=1,
        one_time_prekey_id=one_time,
        kem_prekey_id=None if kem is None else 2,
        kem_ciphertext=None if kem is None else b"\x07" * KEM_CIPHERTEXT_LEN[kem],
    )
    registration_id = 10290 if profile.framing.name == "signal-v3" else None
    return PrekeyMessage(initial, registration_id, _ratchet_message(profile))


@pytest.mark.parametrize("name", ["A", "B"])
def test_libsignal_prekey_messages_decode_and_reencode_byte_for_byte(name: str) -> None:
    message = decode_prekey_message(SIGNAL_V3, LIBSIGNAL[name])
    responder = TRANSCRIPT["responder"]
    assert message.registration_id == TRANSCRIPT["initiator"]["registration_id"]
    assert message.initial.signed_prekey_id == responder["signed_prekey_id"]
    assert message.initial.one_time_prekey_id == responder["one_time_prekey_id"]
    assert encode_prekey_message(SIGNAL_V3, message) == LIBSIGNAL[name]


@pytest.mark.parametrize("name", ["C", "D", "E"])
def test_libsignal_messages_decode_and_reencode_byte_for_byte(name: str) -> None:
    message = decode_message(SIGNAL_V3, LIBSIGNAL[name])
    assert message.header is not None
    assert (
        encode_signal_message(message.header, message.ciphertext) + message.mac == LIBSIGNAL[name]
    )


def test_libsignal_pn_field_carries_the_last_index() -> None:
    header = decode_message(SIGNAL_V3, LIBSIGNAL["E"]).header
    assert header is not None and (header.n, header.pn) == (0, 1)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
@pytest.mark.parametrize("one_time", [None, 9])
def test_prekey_messages_round_trip(profile: Profile, one_time: int | None) -> None:
    message = _prekey(profile, one_time)
    assert decode_prekey_message(profile, encode_prekey_message(profile, message)) == message


@settings(max_examples=100, deadline=None)
@given(
    profile=st.sampled_from(ALL),
    ids=st.tuples(*(st.integers(0, 2**32 - 1) for _ in range(4))),
    with_one_time=st.booleans(),
)
def test_any_prekey_message_round_trips(
    profile: Profile, ids: tuple[int, int, int, int], with_one_time: bool
) -> None:
    signed, one_time, kem, registration = ids
    base = _prekey(profile, one_time if with_one_time else None)
    initial = dataclasses.replace(
        base.initial,
        signed_prekey_id=signed,
        kem_prekey_id=None if base.initial.kem_prekey_id is None else kem,
    )
    message = dataclasses.replace(
        base,
        initial=initial,
        registration_id=None if base.registration_id is None else registration,
    )
    assert decode_prekey_message(profile, encode_prekey_message(profile, message)) == message


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_ratchet_messages_round_trip(profile: Profile) -> None:
    data = _ratchet_message(profile)
    decoded = decode_message(profile, data)
    assert decoded.ciphertext == b"\x00" * 32
    if not profile.headers.encrypted:
        assert decoded.header == Header(KEY_A, 3, 7)


def _msgpack(kind: int, fields: dict[str, object]) -> bytes:
    return bytes([1, kind]) + msgpack.packb(fields, use_bin_type=True)


def _classic_fields() -> dict[str, object]:
    return {"h": encode_header(Header(KEY_A, 0, 0)), "c": b"x" * 17}


@pytest.mark.parametrize(
    "fields",
    [
        {"c": b"x" * 17},  # missing h
        {**_classic_fields(), "z": 1},  # unknown field
        {"c": b"x" * 17, "h": encode_header(Header(KEY_A, 0, 0))},  # field order
        {"h": "text", "c": b"x"},  # wrong type
        {"h": b"\x00" * 39, "c": b"x"},  # wrong header length
    ],
)
def test_msgpack_message_with_bad_fields_is_malformed(fields: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(CLASSIC, _msgpack(1, fields))


@settings(max_examples=50, deadline=None)
@given(length=st.sampled_from([0, 1, 255, 256, 65_535, 65_536, 70_000]))
def test_ratchet_message_framing_is_exactly_what_msgpack_writes(length: int) -> None:
    header, ciphertext = encode_header(Header(KEY_A, 0, 1)), bytes(length)
    data = encode_message(header, ciphertext)
    assert data[2:] == msgpack.packb({"h": header, "c": ciphertext}, use_bin_type=True)
    assert decode_message(CLASSIC, data).ciphertext == ciphertext


def test_non_minimal_bin_length_in_a_ratchet_message_is_malformed() -> None:
    header = encode_header(Header(KEY_A, 0, 1))
    data = encode_message(header, b"c" * 20)
    wide = data.replace(b"\xc4\x28" + header, b"\xc5\x00\x28" + header)
    assert wide != data
    with pytest.raises(MalformedMessage):
        decode_message(CLASSIC, wide)


def test_msgpack_noncanonical_integer_and_trailing_bytes_are_malformed() -> None:
    valid = encode_prekey_message(CLASSIC, _prekey(CLASSIC))
    with pytest.raises(MalformedMessage):
        decode_prekey_message(CLASSIC, valid + b"\x00")
    body = msgpack.unpackb(valid[2:])
    wide = bytes([1, 2]) + msgpack.packb(body, use_bin_type=True).replace(
        b"\xa3spk\x01", b"\xa3spk\xcd\x00\x01"
    )
    assert wide != valid
    with pytest.raises(MalformedMessage):
        decode_prekey_message(CLASSIC, wide)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_other_version_bytes_are_unsupported(profile: Profile) -> None:
    data = _ratchet_message(profile)
    with pytest.raises(UnsupportedVersion):
        decode_message(profile, bytes([data[0] ^ 0x70]) + data[1:])


def test_message_kind_confusion_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        decode_prekey_message(CLASSIC, _ratchet_message(CLASSIC))


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_messages_over_the_size_limit_are_malformed(profile: Profile) -> None:
    big = dataclasses.replace(profile, max_message_size=len(_ratchet_message(profile)) - 1)
    with pytest.raises(MalformedMessage):
        decode_message(big, _ratchet_message(profile))


def test_prekey_message_kem_fields_follow_the_profile() -> None:
    with pytest.raises(MalformedMessage):
        encode_prekey_message(CLASSIC, _prekey(PQ_DEFAULT))
    with pytest.raises(MalformedMessage):
        encode_prekey_message(
            PQ_DEFAULT,
            dataclasses.replace(
                _prekey(PQ_DEFAULT),
                initial=dataclasses.replace(
                    _prekey(PQ_DEFAULT).initial, kem_prekey_id=None, kem_ciphertext=None
                ),
            ),
        )


@pytest.mark.parametrize(
    "fields",
    [
        [(1, encode_ec(KEY_A)), (2, 0), (3, 0)],  # ciphertext missing
        [(1, encode_ec(KEY_A)), (2, 0), (3, 0), (4, b"c"), (4, b"c")],  # repeated field
        [(1, encode_ec(KEY_A)), (2, 0), (3, 0), (4, b"c"), (5, b"pq")],  # unknown field (v4)
        [(1, encode_ec(KEY_A)), (2, b"0"), (3, 0), (4, b"c")],  # wrong wire type
        [(1, encode_ec(KEY_A)), (2, 2**32), (3, 0), (4, b"c")],  # counter beyond uint32
        [(1, encode_ec(KEY_A)[:32]), (2, 0), (3, 0), (4, b"c")],  # short ratchet key
    ],
)
def test_strict_protobuf_reader_refuses_what_libsignal_never_writes(
    fields: list[tuple[int, int | bytes]],
) -> None:
    with pytest.raises(MalformedMessage):
        body = b"".join(write_field(number, value) for number, value in fields)
        decode_message(SIGNAL_V3, bytes([0x33]) + body + b"\x00" * 8)


@pytest.mark.parametrize("profile", [CLASSIC, SIGNAL_V3], ids=lambda p: p.name)
def test_low_order_ratchet_key_in_a_header_is_invalid_public_key(profile: Profile) -> None:
    data = _ratchet_message(profile)
    data = data.replace(KEY_A, bytes(32))
    with pytest.raises(InvalidPublicKey):
        decode_message(profile, data)


def _decoders(profile: Profile, data: bytes) -> None:
    for decode in (decode_message, decode_prekey_message):
        with contextlib.suppress(ProtocolError):
            decode(profile, data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), profile=st.sampled_from(ALL))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, profile: Profile) -> None:
    _decoders(profile, data)
    _decoders(profile, bytes([1, 1]) + data)
    _decoders(profile, bytes([1, 2]) + data)
    _decoders(profile, bytes([0x33]) + data)


@settings(max_examples=300, deadline=None)
@given(
    profile=st.sampled_from(ALL),
    prekey=st.booleans(),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
    cut=st.integers(min_value=0, max_value=3),
)
def test_mutated_valid_messages_raise_only_protocol_errors(
    profile: Profile, prekey: bool, position: int, value: int, cut: int
) -> None:
    valid = (
        encode_prekey_message(profile, _prekey(profile)) if prekey else _ratchet_message(profile)
    )
    offset = position % len(valid)
    mutated = valid[:offset] + bytes([value]) + valid[offset + 1 : len(valid) - cut]
    _decoders(profile, mutated)
