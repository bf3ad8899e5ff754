"""MediaKey, CallOffer and CallAnswer encodings are exact and decoded strictly."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from protocol.errors import MalformedMessage, ProtocolError, UnsupportedVersion
from protocol.media.messages import (
    MAX_MESSAGE_LEN,
    CallAnswer,
    CallOffer,
    MediaKey,
    decode_call_answer,
    decode_call_offer,
    decode_media_key,
    encode_call_answer,
    encode_call_offer,
    encode_media_key,
)
from protocol.media.sframe import CipherSuite

CALL_ID = bytes(range(16))
BASE_KEY = bytes(range(32))
KEY = MediaKey(CALL_ID, "alice.1", CipherSuite.AES_128_GCM_SHA256_128, 8, 3, 5, BASE_KEY)
FIELDS: list[Any] = [1, 1, CALL_ID, "alice.1", 4, 8, 3, 5, BASE_KEY]


def _pack(fields: Any) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def test_media_key_encodes_as_the_documented_msgpack_array_and_round_trips() -> None:
    # spec/media.md §3.1: [version, type, call_id, sender_device, suite, R, generation, step, key]
    assert encode_media_key(KEY) == _pack(FIELDS)
    assert encode_media_key(KEY)[:4] == bytes([0x99, 0x01, 0x01, 0xC4])
    assert decode_media_key(encode_media_key(KEY)) == KEY


def test_kid_packs_generation_above_r_bits_of_step() -> None:
    # RFC 9605 §5.1: KID = (key_generation << R) + ratchet_step; 3 << 8 | 5 = 0x305.
    assert KEY.kid == 0x305


def _with(index: int, value: Any) -> bytes:
    fields = list(FIELDS)
    fields[index] = value
    return _pack(fields)


NON_CANONICAL = {
    "wide integer for the step": _pack(FIELDS)[:-35] + b"\xcd\x00\x05" + _pack(FIELDS)[-34:],
    "str where bin is expected": _with(2, CALL_ID.decode("latin-1")),
    "bool where an integer is expected": _with(6, True),
    "unknown type tag": _with(1, 9),
    "missing field": _pack(FIELDS[:-1]),
    "extra field": _pack([*FIELDS, 0]),
    "trailing byte": _pack(FIELDS) + b"\x00",
    "truncated": _pack(FIELDS)[:-1],
    "not an array": _pack({"v": 1}),
    "short call id": _with(2, CALL_ID[:15]),
    "empty sender device": _with(3, ""),
    "unknown cipher suite": _with(4, 9),
    "R of zero": _with(5, 0),
    "step at 2^R": _with(7, 256),
    "generation above 64 - R bits": _with(6, 1 << 56),
    "base key shorter than Nh": _with(8, BASE_KEY[:16]),
    "empty input": b"",
}


@pytest.mark.parametrize("data", NON_CANONICAL.values(), ids=NON_CANONICAL.keys())
def test_media_key_decoder_rejects_every_deviation_as_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_media_key(data)


def test_wide_integer_mutation_really_is_a_valid_msgpack_of_the_same_value() -> None:
    # Guards the case above: it must differ only in encoding, not in value.
    data = NON_CANONICAL["wide integer for the step"]
    assert msgpack.unpackb(data, raw=False) == FIELDS


def test_other_version_is_unsupported_not_malformed() -> None:
    with pytest.raises(UnsupportedVersion):
        decode_media_key(_with(0, 2))


def test_media_key_repr_never_shows_the_base_key() -> None:
    assert BASE_KEY.hex() not in repr(KEY)
    assert "redacted" in repr(KEY)


def test_offer_and_answer_round_trip_with_and_without_kem() -> None:
    suite = CipherSuite.AES_256_GCM_SHA512_128
    for kem_pub in (None, b"\x01" * 1184):
        offer = CallOffer(CALL_ID, suite, b"\x09" * 32, kem_pub)
        assert decode_call_offer(encode_call_offer(offer)) == offer
    for kem_ct in (None, b"\x02" * 1088):
        answer = CallAnswer(CALL_ID, b"\x09" * 32, kem_ct)
        assert decode_call_answer(encode_call_answer(answer)) == answer


def test_a_message_of_one_type_never_decodes_as_another() -> None:
    offer = encode_call_offer(CallOffer(CALL_ID, CipherSuite(4), b"\x09" * 32, None))
    answer = encode_call_answer(CallAnswer(CALL_ID, b"\x09" * 32, None))
    for decode, data in (
        (decode_media_key, offer),
        (decode_call_offer, answer),
        (decode_call_answer, encode_media_key(KEY)),
    ):
        with pytest.raises(MalformedMessage):
            decode(data)


@pytest.mark.parametrize("length", [31, 33])
def test_offer_with_a_wrong_length_x25519_key_is_malformed(length: int) -> None:
    data = _pack([1, 2, CALL_ID, 4, b"\x09" * length, None])
    with pytest.raises(ProtocolError) as info:
        decode_call_offer(data)
    assert info.value.code == "MALFORMED_MESSAGE"


def test_a_message_longer_than_the_cap_is_refused_before_parsing() -> None:
    oversized = _pack([*FIELDS[:-1], bytes(4096)])
    assert len(oversized) > MAX_MESSAGE_LEN
    with pytest.raises(MalformedMessage, match="longer than"):
        decode_media_key(oversized)
