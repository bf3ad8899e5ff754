"""libsignal's protobuf framing: any field order, libsignal's version rule, the message kind.

spec/wire.md §3.1, §3.4 and §3.5. The reader (protocol.protobuf) is fuzzed like the
other decoders: arbitrary bytes and mutations give only MALFORMED_MESSAGE,
and a session handed them keeps its state byte for byte.
"""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import wire
from protocol.encoding import encode_ec
from protocol.errors import (
    InvalidArgument,
    MalformedMessage,
    NoSession,
    ProtocolError,
    UnsupportedVersion,
)
from protocol.primitives import x25519_public_key
from protocol.profiles import PROFILES, SIGNAL_V3, Profile
from protocol.protobuf import first_wire_type, read_fields, write_field, write_fields
from protocol.randomness import ScriptedRandom
from protocol.session import Address, SessionManager, prekey_lifecycle, records
from protocol.store import MemoryStore
from protocol.x3dh import InitialData

KEY_A = x25519_public_key(b"\x11" * 32)
KEY_B = x25519_public_key(b"\x22" * 32)
MAC = b"\x01" * 8


def _signal_fields() -> dict[int, int | bytes]:
    return {1: encode_ec(KEY_A), 2: 7, 3: 3, 4: b"\x00" * 32}


def _prekey_fields(inner: bytes, one_time: bool = True) -> dict[int, int | bytes]:
    fields: dict[int, int | bytes] = {
        2: encode_ec(KEY_B),
        3: encode_ec(KEY_A),
        4: inner,
        5: 10290,
        6: 1,
    }
    if one_time:
        fields[1] = 9
    return fields


def _ordered(fields: dict[int, int | bytes], order: tuple[int, ...]) -> bytes:
    return b"".join(write_field(n, fields[n]) for n in order if n in fields)


INNER = bytes([0x33]) + write_fields(_signal_fields()) + MAC


@pytest.mark.parametrize("order", list(itertools.permutations((1, 2, 3, 4))))
def test_signal_message_reads_the_same_in_every_field_order(order: tuple[int, ...]) -> None:
    body = bytes([0x33]) + _ordered(_signal_fields(), order)
    message = wire.decode_message(SIGNAL_V3, body + MAC)
    assert message.header == wire.Header(KEY_A, 3, 7)
    assert message.authenticated == body  # the MAC covers the bytes as received
    assert wire.message_kind(SIGNAL_V3, body + MAC) == "message"


@settings(max_examples=200, deadline=None)
@given(order=st.permutations((1, 2, 3, 4, 5, 6)), one_time=st.booleans())
def test_prekey_message_reads_the_same_in_every_field_order(
    order: list[int], one_time: bool
) -> None:
    fields = _prekey_fields(INNER, one_time)
    data = bytes([0x33]) + _ordered(fields, tuple(order))
    message = wire.decode_prekey_message(SIGNAL_V3, data)
    assert message.initial == InitialData(KEY_A, KEY_B, 1, 9 if one_time else None)
    assert (message.registration_id, message.message) == (10290, INNER)
    assert wire.message_kind(SIGNAL_V3, data) == "prekey"
    # Output is canonical: ascending field numbers, whatever order came in.
    assert wire.encode_prekey_message(SIGNAL_V3, message) == bytes([0x33]) + write_fields(fields)


def test_libsignal_javascript_declaration_order_begins_33_28() -> None:
    data = bytes([0x33]) + _ordered(_prekey_fields(INNER), (5, 1, 6, 2, 3, 4))
    assert data[:2] == b"\x33\x28"
    assert wire.message_kind(SIGNAL_V3, data) == "prekey"
    assert wire.decode_prekey_message(SIGNAL_V3, data).registration_id == 10290


@pytest.mark.parametrize("low", range(16))
def test_version_byte_high_nibble_is_the_session_version(low: int) -> None:
    body = bytes([0x30 | low]) + write_fields(_signal_fields())
    assert wire.decode_message(SIGNAL_V3, body + MAC).authenticated[0] == 0x30 | low
    prekey = bytes([0x30 | low]) + write_fields(_prekey_fields(INNER))
    assert wire.decode_prekey_message(SIGNAL_V3, prekey).message == INNER


@pytest.mark.parametrize("version", [0x23, 0x24, 0x43, 0x44, 0x03, 0xF3])
def test_other_session_versions_are_unsupported(version: int) -> None:
    with pytest.raises(UnsupportedVersion):
        wire.decode_message(SIGNAL_V3, bytes([version]) + write_fields(_signal_fields()) + MAC)
    prekey = bytes([version]) + write_fields(_prekey_fields(INNER))
    assert wire.message_kind(SIGNAL_V3, prekey) == "prekey"  # so the error names the version
    with pytest.raises(UnsupportedVersion):
        wire.decode_prekey_message(SIGNAL_V3, prekey)


def test_a_damaged_prekey_message_is_still_classified_as_one() -> None:
    data = bytes([0x33]) + write_fields(_prekey_fields(INNER))
    assert wire.message_kind(SIGNAL_V3, data[:-1]) == "prekey"
    assert wire.message_kind(SIGNAL_V3, data[:5]) == "prekey"
    with pytest.raises(MalformedMessage):
        wire.decode_prekey_message(SIGNAL_V3, data[:-1])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x08\x01\x12\x00", "bytes"),
        (b"\x28\x05\x0a\x01\x00\x10\x07", "varint"),
        (b"\x08\x01", None),  # absent
        (b"\x0d\x00\x00\x00\x00\x12\x00", None),  # a 32-bit field before it: not libsignal's
        (b"\x0a\x05\x00", None),  # truncated before it
    ],
)
def test_first_wire_type_reads_only_up_to_the_field(data: bytes, expected: str | None) -> None:
    assert first_wire_type(data, 2) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"\x08",  # truncated varint
        b"\x08\x80\x00",  # non-minimal varint
        b"\x0a\x05abc",  # length past the end
        b"\x08\x01\x08\x01",  # a field twice
        b"\x38\x01",  # unknown field 7
        b"\x0d\x00\x00\x00\x00",  # wire type 5 (fixed32)
        b"\x08\x80\x80\x80\x80\x10",  # 2^32 in a uint32
    ],
)
def test_reader_refuses_what_no_honest_writer_sends(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        read_fields(data, {1: "varint", 2: "bytes"})


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
def test_reader_raises_only_malformed_message(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        read_fields(data, wire.PREKEY_SIGNAL_MESSAGE)
    first_wire_type(data, 2)  # never raises


TABLES = (
    records.DEVICE,
    records.SIGNED_PREKEYS,
    records.ONE_TIME_PREKEYS,
    records.SESSIONS,
    records.IDENTITIES,
)


def _snapshot(store: MemoryStore) -> dict[tuple[str, str], bytes | None]:
    return {(table, key): store.get(table, key) for table in TABLES for key in store.keys(table)}


def _responder() -> tuple[SessionManager, MemoryStore]:
    store = MemoryStore()
    manager = SessionManager.create(store, Address("responder", 1), SIGNAL_V3, now=0)
    manager.generate_one_time_prekeys(2)
    return manager, store


@settings(max_examples=100, deadline=None)
@given(
    order=st.permutations((1, 2, 3, 4, 5, 6)),
    position=st.integers(min_value=0),
    value=st.integers(min_value=0, max_value=255),
    kind=st.sampled_from([None, "prekey", "message"]),
)
def test_reordered_and_mutated_prekey_messages_change_no_state(
    order: list[int], position: int, value: int, kind: wire.MessageKind | None
) -> None:
    responder, store = _responder()
    initiator = SessionManager.create(MemoryStore(), Address("initiator", 1), SIGNAL_V3, now=0)
    initiator.initiate(responder.address, responder.prekey_bundles()[0])
    genuine = initiator.encrypt(responder.address, b"hello")
    fields = read_fields(genuine[1:], wire.PREKEY_SIGNAL_MESSAGE)
    reordered = genuine[:1] + _ordered(fields, tuple(order))
    offset = position % len(reordered)
    mutated = reordered[:offset] + bytes([value]) + reordered[offset + 1 :]
    before = _snapshot(store)
    try:
        responder.decrypt(initiator.address, mutated, kind=kind)
    except ProtocolError as error:
        assert error.code
        assert _snapshot(store) == before
        assert responder.decrypt(initiator.address, reordered, kind="prekey") == b"hello"


@pytest.mark.parametrize(
    ("draws", "expected"),
    [
        ([0], 1),
        ([16379], 16380),
        ([16380], 1),
        ([65519], 16380),
        ([65520, 5], 6),  # rejected, drawn again
        ([65535, 65520, 16380 * 2 + 41], 42),
    ],
)
def test_registration_id_is_a_uniform_draw_by_rejection(draws: list[int], expected: int) -> None:
    rng = ScriptedRandom([("registration_id", d.to_bytes(2, "big")) for d in draws])
    assert prekey_lifecycle.draw_registration_id(rng) == expected
    rng.assert_exhausted()


def test_registration_id_draw_maps_the_accepted_range_evenly() -> None:
    counts = [0] * prekey_lifecycle.REGISTRATION_ID_LIMIT
    for value in range(65520):
        counts[value % prekey_lifecycle.REGISTRATION_ID_LIMIT] += 1
    assert set(counts) == {4}


def test_the_envelope_type_decides_and_a_wrong_one_changes_nothing() -> None:
    responder, store = _responder()
    initiator = SessionManager.create(MemoryStore(), Address("initiator", 1), SIGNAL_V3, now=0)
    initiator.initiate(responder.address, responder.prekey_bundles()[0])
    first = initiator.encrypt(responder.address, b"first")
    before = _snapshot(store)
    with pytest.raises(InvalidArgument):
        responder.decrypt(initiator.address, first, kind="whisper")  # type: ignore[arg-type]
    with pytest.raises(NoSession):
        responder.decrypt(initiator.address, first, kind="message")
    assert _snapshot(store) == before
    assert responder.decrypt(initiator.address, first, kind="prekey") == b"first"
    answer = responder.encrypt(initiator.address, b"answer")
    with pytest.raises(MalformedMessage):
        initiator.decrypt(responder.address, answer, kind="prekey")
    assert initiator.decrypt(responder.address, answer, kind="message") == b"answer"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120), profile=st.sampled_from(list(PROFILES.values())))
def test_message_kind_classifies_any_bytes_without_raising(data: bytes, profile: Profile) -> None:
    assert wire.message_kind(profile, data) in ("prekey", "message")
