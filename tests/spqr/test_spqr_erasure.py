"""SPQR's erasure code (protocol/spqr/erasure.py): any N chunks decode, bad chunks are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import DuplicateMessage, InvalidArgument, LimitExceeded, MalformedMessage
from protocol.spqr import erasure

# The four payloads SPQR sends: header ‖ MAC, key vector, ct1, ct2 ‖ MAC.
SPQR_LENGTHS = (96, 1152, 960, 160)


def test_field_is_gf_2_16_modulo_0x1100b() -> None:
    # x^15 · x = x^16 ≡ x^12 + x^3 + x + 1 (mod POLY)
    assert erasure.gf_mul(0x8000, 2) == 0x100B
    for a in (1, 2, 0x1234, 0xFFFF):
        assert erasure.gf_mul(a, erasure.gf_div(1, a)) == 1
        assert erasure.gf_div(erasure.gf_mul(a, 0xBEEF), 0xBEEF) == a


def test_code_is_systematic() -> None:
    message = bytes(range(256)) * 4 + bytes(range(128))  # 1152 bytes
    chunks = [erasure.encode_chunk(message, i) for i in range(erasure.chunks_needed(1152))]
    assert b"".join(chunks) == message


@pytest.mark.parametrize("length", SPQR_LENGTHS)
@pytest.mark.parametrize(
    "pick",
    [
        lambda n: list(range(n)),  # the systematic chunks
        lambda n: list(range(n, 2 * n)),  # none of them
        lambda n: list(range(0, 4 * n, 4)),  # every fourth
        lambda n: [65535 - i for i in range(n)],  # the last indexes
        lambda n: list(range(n // 2)) + list(range(3 * n, 3 * n + n - n // 2)),  # half and half
    ],
    ids=["systematic", "parity", "stride4", "top", "mixed"],
)
def test_any_n_chunks_decode(length: int, pick: object) -> None:
    message = bytes((7 * i + length) % 256 for i in range(length))
    indexes = pick(erasure.chunks_needed(length))  # type: ignore[operator]
    chunks = [(i, erasure.encode_chunk(message, i)) for i in reversed(indexes)]
    assert erasure.decode(length, chunks) == message


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 80).map(lambda n: 2 * n),
    st.data(),
)
def test_random_subsets_of_random_messages_decode(length: int, data: st.DataObject) -> None:
    message = data.draw(st.binary(min_size=length, max_size=length))
    n = erasure.chunks_needed(length)
    indexes = data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n, unique=True))
    chunks = [(i, erasure.encode_chunk(message, i)) for i in indexes]
    assert erasure.decode(length, chunks) == message
    assert erasure.decode(length, chunks[:-1]) is None


def test_decoder_accumulates_and_leaves_itself_unchanged_on_refusal() -> None:
    message = bytes(range(160))
    decoder = erasure.Decoder(160)
    for i in (9, 2, 40, 7):
        decoder = decoder.add_chunk(i, erasure.encode_chunk(message, i))
        assert decoder.message() is None
    before = decoder
    with pytest.raises(DuplicateMessage):
        decoder.add_chunk(2, erasure.encode_chunk(message, 2))
    with pytest.raises(MalformedMessage):
        decoder.add_chunk(3, erasure.encode_chunk(message, 3)[:31])
    assert decoder == before
    decoder = decoder.add_chunk(11, erasure.encode_chunk(message, 11))
    assert decoder.message() == message
    with pytest.raises(LimitExceeded):
        decoder.add_chunk(12, erasure.encode_chunk(message, 12))


@pytest.mark.parametrize(
    ("chunks", "error"),
    [
        ([(0, bytes(31))], MalformedMessage),
        ([(0, bytes(33))], MalformedMessage),
        ([(65536, bytes(32))], MalformedMessage),
        ([(-1, bytes(32))], MalformedMessage),
        ([(1, bytes(32)), (1, bytes(32))], DuplicateMessage),
        ([(1, bytes(32)), (2, bytes(32)), (3, bytes(32)), (4, bytes(32))], LimitExceeded),
    ],
    ids=["short", "long", "index-too-big", "negative-index", "duplicate", "too-many"],
)
def test_bad_chunks_get_stable_codes(
    chunks: list[tuple[int, bytes]], error: type[Exception]
) -> None:
    with pytest.raises(error):
        erasure.decode(96, chunks)


@pytest.mark.parametrize("length", [0, 3, 2**21 + 2])
def test_bad_lengths_are_refused(length: int) -> None:
    with pytest.raises(InvalidArgument):
        erasure.decode(length, [])
    with pytest.raises(InvalidArgument):
        erasure.encode_chunk(bytes(length), 0)
