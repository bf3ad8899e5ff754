"""Signal's content padding: current clients' lengths, the legacy block, strict unpadding.

spec/interop-libsignal.md §4. The lengths are Signal-Android's own test
(``tests/kat/signal_padding.json``); the 160-byte block is checked against
libsignal-protocol-javascript's transcripts in ``tests/test_interop_libsignal.py``,
whose ciphertexts are upstream bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import InvalidArgument, MalformedMessage, ProtocolError
from protocol.padding import (
    LEGACY_PADDING_BLOCK,
    PADDING_BLOCK,
    pad_content,
    unpad_content,
)

KAT = json.loads((Path(__file__).parent / "kat" / "signal_padding.json").read_text())


def test_padded_lengths_are_signal_androids() -> None:
    assert KAT["block"] == PADDING_BLOCK
    for entry in KAT["ranges"]:
        for length in range(entry["first"], entry["last"] + 1):
            padded = pad_content(bytes(length))
            assert len(padded) == entry["padded_length"]
            assert padded[length] == 0x80
            assert padded[length + 1 :] == bytes(len(padded) - length - 1)


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=500), legacy=st.booleans())
def test_padding_round_trips_for_both_blocks(content: bytes, legacy: bool) -> None:
    block = LEGACY_PADDING_BLOCK if legacy else PADDING_BLOCK
    padded = pad_content(content, block)
    assert (len(padded) + 1) % block == 0
    assert len(content) < len(padded) <= len(content) + block
    assert unpad_content(padded) == content


@pytest.mark.parametrize(
    ("padded", "why"),
    [
        (b"", "empty"),
        (bytes(79), "only zeros"),
        (b"abc" + bytes(76), "no boundary byte"),
        (b"abc\x80" + bytes(75) + b"\x01", "not zero after the boundary"),
        (b"abc\x80" + bytes(76), "length 80"),
        (b"abc\x80" + bytes(74), "length 78"),
        (b"abc\x81" + bytes(75), "a boundary byte that is not 0x80"),
        (b"abc\x80" + bytes(315), "more zeros than either block writes"),
        (b"abc\x80" + bytes(155) + bytes(80), "an 80-byte block too many"),
    ],
)
def test_unpad_refuses_malformed_padding(padded: bytes, why: str) -> None:
    with pytest.raises(MalformedMessage):
        unpad_content(padded)


def test_content_ending_in_the_boundary_byte_or_zeros_survives() -> None:
    for content in (b"\x80", b"x\x00\x00", b"\x80\x00\x80", bytes(200)):
        assert unpad_content(pad_content(content)) == content


def test_pad_refuses_other_blocks_and_non_bytes() -> None:
    with pytest.raises(InvalidArgument):
        pad_content(b"x", 16)
    with pytest.raises(InvalidArgument):
        pad_content("x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        unpad_content(bytearray(79))  # type: ignore[arg-type]


_NEAR_PADDED = st.builds(
    lambda n, z: b"x" * n + b"\x80" + bytes(z), st.integers(0, 200), st.integers(0, 400)
)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), _NEAR_PADDED))
def test_arbitrary_bytes_unpad_or_raise_only_malformed(data: bytes) -> None:
    try:
        content = unpad_content(data)
    except ProtocolError as error:
        assert error.code == "MALFORMED_MESSAGE"
    else:
        assert pad_content(content) == data or pad_content(content, LEGACY_PADDING_BLOCK) == data
