"""SFrame properties (spec/sframe.md §2, §6): headers round-trip and parse strictly,
frames round-trip under every suite, and any one-bit change is rejected."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import AuthFailed, MalformedMessage, UnknownKeyId
from protocol.media.sframe import (
    MAX_CTR,
    MAX_KID,
    CipherSuite,
    FrameKey,
    decode_header,
    derive_frame_key,
    encode_header,
    encrypt_frame,
    open_frame,
)

u64 = st.integers(min_value=0, max_value=MAX_KID)
# Values near every byte-length boundary are where encoders go wrong.
boundary_u64 = st.one_of(
    u64,
    st.integers(min_value=0, max_value=64).map(lambda bits: (1 << bits) - 1),
    st.integers(min_value=0, max_value=63).map(lambda bits: 1 << bits),
)
suites = st.sampled_from(list(CipherSuite))
_KEYS: dict[tuple[CipherSuite, int], FrameKey] = {}


def _key(suite: CipherSuite, kid: int) -> FrameKey:
    if (suite, kid) not in _KEYS:
        _KEYS[(suite, kid)] = derive_frame_key(suite, bytes(range(32)), kid)
    return _KEYS[(suite, kid)]


def _minimal_length(value: int) -> int:
    return 0 if value < 8 else (value.bit_length() + 7) // 8


@given(boundary_u64, boundary_u64, st.binary(max_size=4))
def test_header_round_trips_in_its_minimal_length(kid: int, ctr: int, tail: bytes) -> None:
    header = encode_header(kid, ctr)
    assert len(header) == 1 + _minimal_length(kid) + _minimal_length(ctr)
    assert decode_header(header + tail) == (kid, ctr, len(header))


@given(st.binary(max_size=20))
def test_decoding_arbitrary_bytes_yields_the_one_canonical_header_or_malformed(
    data: bytes,
) -> None:
    try:
        kid, ctr, length = decode_header(data)
    except MalformedMessage:
        return
    assert 0 <= kid <= MAX_KID and 0 <= ctr <= MAX_CTR
    assert encode_header(kid, ctr) == data[:length]


@settings(max_examples=60, deadline=None)
@given(suites, boundary_u64, boundary_u64, st.binary(max_size=64), st.binary(max_size=300))
def test_frames_round_trip_under_every_suite(
    suite: CipherSuite, kid: int, ctr: int, metadata: bytes, plaintext: bytes
) -> None:
    key = _key(suite, kid % 4)
    frame = encrypt_frame(key, ctr, metadata, plaintext)
    assert decode_header(frame)[:2] == (key.kid, ctr)
    assert open_frame(key, frame, metadata) == plaintext


@settings(max_examples=150, deadline=None)
@given(suites, boundary_u64, st.binary(max_size=40), st.binary(max_size=100), st.data())
def test_any_one_bit_flip_in_a_frame_is_rejected(
    suite: CipherSuite,
    ctr: int,
    metadata: bytes,
    plaintext: bytes,
    data: st.DataObject,
) -> None:
    key = _key(suite, 0x1234)
    frame = encrypt_frame(key, ctr, metadata, plaintext)
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(frame) - 1))
    flipped = bytearray(frame)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    try:
        open_frame(key, bytes(flipped), metadata)
    except (MalformedMessage, UnknownKeyId, AuthFailed):
        return
    raise AssertionError(f"bit {bit} flipped and the frame still opened")


@settings(max_examples=60, deadline=None)
@given(suites, st.binary(min_size=1, max_size=40), st.data())
def test_any_one_bit_flip_in_the_metadata_fails_authentication(
    suite: CipherSuite, metadata: bytes, data: st.DataObject
) -> None:
    key = _key(suite, 7)
    frame = encrypt_frame(key, 42, metadata, b"payload")
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(metadata) - 1))
    flipped = bytearray(metadata)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    try:
        open_frame(key, frame, bytes(flipped))
    except AuthFailed:
        return
    raise AssertionError("a metadata bit flipped and the frame still opened")
