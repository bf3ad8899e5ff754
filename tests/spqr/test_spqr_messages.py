"""SPQR field 5 (protocol/spqr/messages.py) and the authenticator (authenticator.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import AuthFailed, MalformedMessage, UnsupportedVersion
from protocol.spqr import authenticator as au
from protocol.spqr.messages import (
    Chunk,
    Message,
    MessageType,
    decode_message,
    encode_message,
    negotiate,
)


def test_layouts_seen_from_libsignal() -> None:
    # reference: a type-None message of epoch 1, index 1 is 01 01 01 00; the first prekey
    # message's field 5 starts 01 01 01 01 00 (epoch 1, index 1, Hdr, chunk 0), 37 bytes.
    assert encode_message(Message(1, 1, MessageType.NONE)).hex() == "01010100"
    first = encode_message(Message(1, 1, MessageType.HDR, Chunk(0, bytes(range(32)))))
    assert first[:5].hex() == "0101010100" and len(first) == 37
    assert encode_message(Message(1, 3, MessageType.CT1_ACK)).hex() == "01010304"


_messages = st.builds(
    lambda epoch, index, kind, ci, data: Message(
        epoch,
        index,
        kind,
        Chunk(ci, data) if kind not in (MessageType.NONE, MessageType.CT1_ACK) else None,
    ),
    st.integers(1, 2**64 - 1),
    st.integers(0, 2**32 - 1),
    st.sampled_from(list(MessageType)),
    st.integers(0, 65535),
    st.binary(min_size=32, max_size=32),
)


@given(_messages)
def test_decode_inverts_encode(message: Message) -> None:
    assert decode_message(encode_message(message)) == message


@given(_messages, st.data())
def test_every_truncation_or_extension_is_malformed(message: Message, data: st.DataObject) -> None:
    encoded = encode_message(message)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(MalformedMessage):
        decode_message(encoded[:cut])
    with pytest.raises(MalformedMessage):
        decode_message(encoded + b"\x00")


@pytest.mark.parametrize(
    "hex_message",
    [
        "00010100",  # version 0 byte
        "02010100",  # version 2
        "01000100",  # epoch 0
        "0181000100",  # non-minimal varint epoch
        "0101808080801000",  # index 2^32
        "01010107",  # type 7
        "0101010184800400" + "00" * 32,  # chunk index 65536
        "010101",  # no type
    ],
)
def test_malformed_messages_are_refused(hex_message: str) -> None:
    with pytest.raises(MalformedMessage):
        decode_message(bytes.fromhex(hex_message))


def test_type_and_chunk_must_agree() -> None:
    with pytest.raises(MalformedMessage):
        Message(1, 1, MessageType.NONE, Chunk(0, bytes(32)))
    with pytest.raises(MalformedMessage):
        Message(1, 1, MessageType.CT1)


def test_negotiation_never_goes_below_v1() -> None:
    assert negotiate(bytes.fromhex("01010100")) is True
    assert negotiate(bytes.fromhex("02")) is False  # newer: ignored, as spqr does
    for v0 in (b"", b"\x00"):
        with pytest.raises(UnsupportedVersion):
            negotiate(v0)


def test_authenticator_macs_bind_key_epoch_and_data() -> None:
    auth = au.authenticator_start(bytes(range(32)))
    hdr = bytes(64)
    mac = au.mac_hdr(auth, 1, hdr)
    au.verify_hdr(auth, 1, hdr, mac)
    for bad in (
        lambda: au.verify_hdr(auth, 2, hdr, mac),
        lambda: au.verify_hdr(auth, 1, b"\x01" + hdr[1:], mac),
        lambda: au.verify_ct(auth, 1, hdr, mac),  # the other label
        lambda: au.verify_hdr(au.authenticator_update(auth, 1, b"ss"), 1, hdr, mac),
    ):
        with pytest.raises(AuthFailed):
            bad()
    ct = bytes(1088)
    au.verify_ct(auth, 3, ct, au.mac_ct(auth, 3, ct))
    assert auth.mac_key.hex() not in repr(auth)
