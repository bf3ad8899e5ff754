"""Key encodings and varints: disjoint ranges, strict decoding, minimal varints."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.encoding import (
    KEM_TYPE,
    decode_ec,
    decode_kem,
    decode_varint,
    encode_ec,
    encode_kem,
    encode_varint,
    unpack_msgpack,
)
from protocol.errors import InvalidPublicKey, MalformedMessage, ProtocolError, StateCorrupt
from protocol.primitives import KEM_PUBLIC_LEN, X25519KeyPair

PUBLIC = X25519KeyPair.from_private(bytes(range(32))).public


def test_ec_encoding_round_trips_and_is_33_bytes() -> None:
    encoded = encode_ec(PUBLIC)
    assert len(encoded) == 33 and encoded[0] == 0x05
    assert decode_ec(encoded) == PUBLIC


def test_ec_and_kem_encodings_have_disjoint_ranges() -> None:
    type_bytes = set(KEM_TYPE.values())
    assert 0x05 not in type_bytes and len(type_bytes) == len(KEM_TYPE)
    lengths = {1 + n for n in KEM_PUBLIC_LEN.values()}
    assert 33 not in lengths


@pytest.mark.parametrize("kem", ["ML-KEM-768", "ML-KEM-1024"])
def test_kem_encoding_refuses_the_other_kems_type_byte(kem: str) -> None:
    key = bytes(KEM_PUBLIC_LEN[kem])
    encoded = encode_kem(kem, key)  # type: ignore[arg-type]
    assert decode_kem(kem, encoded) == key  # type: ignore[arg-type]
    with pytest.raises(InvalidPublicKey):
        decode_kem(kem, bytes([0x05]) + key)  # type: ignore[arg-type]


def test_decode_ec_refuses_wrong_type_byte_and_length() -> None:
    with pytest.raises(InvalidPublicKey):
        decode_ec(b"\x06" + PUBLIC)
    with pytest.raises(InvalidPublicKey):
        decode_ec(b"\x05" + PUBLIC[:31])


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trips_for_every_u64(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(encoded, 0) == (value, len(encoded))


def test_varint_refuses_non_minimal_truncated_and_overlong() -> None:
    for bad in (b"\x80\x00", b"\x80", b"\xff" * 10 + b"\x01", b"\xff" * 9 + b"\x7f"):
        with pytest.raises(MalformedMessage):
            decode_varint(bad, 0)


@given(st.binary(max_size=12))
def test_varint_decoder_accepts_only_minimal_encodings_and_raises_only_protocol_errors(
    data: bytes,
) -> None:
    try:
        value, end = decode_varint(data, 0)
    except ProtocolError:
        return
    assert encode_varint(value) == data[:end]


def test_strict_msgpack_refuses_trailing_bytes_extension_types_and_bad_utf8() -> None:
    assert unpack_msgpack(msgpack.packb([1, b"x", "y"]), "m") == [1, b"x", "y"]
    bad = [
        msgpack.packb(1) + b"\x00",  # trailing bytes
        msgpack.packb(msgpack.ExtType(1, b"x")),  # extension type
        b"\xa1\xff",  # a str that is not UTF-8
        b"\x81\x01\x02",  # a map with an int key
        b"",
    ]
    for data in bad:
        with pytest.raises(MalformedMessage):
            unpack_msgpack(data, "m")
    with pytest.raises(StateCorrupt):
        unpack_msgpack(b"\xc1", "state", error=StateCorrupt)


@given(st.binary(max_size=64))
def test_strict_msgpack_raises_only_the_given_error(data: bytes) -> None:
    try:
        value = unpack_msgpack(data, "m")
    except MalformedMessage:
        return
    assert msgpack.unpackb(data, raw=False, strict_map_key=True) == value
