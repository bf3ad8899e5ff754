"""Live v3 sessions between our signal-v3 profile and libsignal 0.28.0 (spec/interop-libsignal.md).

Every scenario runs in both directions where it applies: we initiate and
libsignal responds, and the reverse. libsignal is @signalapp/libsignal-client
0.28.0 from npm, driven by tests/interop/driver.js; nothing of ours runs on
its side.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from libsignal_peer import Driver, LibsignalDevice, LibsignalError

from protocol import wire
from protocol.encoding import encode_varint
from protocol.errors import AuthFailed, DuplicateMessage, MalformedMessage, ProtocolError
from protocol.profiles import SIGNAL_V3
from protocol.protobuf import read_fields, write_field, write_fields
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

V3 = "v3"
REFUSED = (ProtocolError, LibsignalError)


@dataclass(frozen=True)
class Wire:
    """A message as Signal's envelope carries it: its type beside its bytes."""

    kind: wire.MessageKind
    data: bytes


class Ours:
    """Our signal-v3 device talking to one peer."""

    def __init__(self, driver: Driver, one_time_prekeys: int) -> None:
        address = Address(driver.fresh_name("ours"), 1)
        self.manager = SessionManager.create(MemoryStore(), address, SIGNAL_V3, now=0)
        if one_time_prekeys:
            self.manager.generate_one_time_prekeys(one_time_prekeys)
        self.address = address
        self.peer = Address("unset", 1)

    def send(self, plaintext: bytes) -> Wire:
        data = self.manager.encrypt(self.peer, plaintext)
        return Wire(wire.message_kind(SIGNAL_V3, data), data)

    def receive(self, message: Wire) -> bytes:
        return self.manager.decrypt(self.peer, message.data, kind=message.kind)

    def peer_identity(self) -> bytes | None:
        return self.manager.trusted_identity(self.peer)

    @property
    def identity_key(self) -> bytes:
        return self.manager.identity_key


class Theirs:
    """A libsignal 0.28.0 device talking to one peer."""

    def __init__(self, driver: Driver) -> None:
        self.device = LibsignalDevice.create(driver, V3)
        self.address = self.device.address
        self.peer = Address("unset", 1)

    def send(self, plaintext: bytes) -> Wire:
        return Wire(*self.device.encrypt(self.peer, plaintext))

    def receive(self, message: Wire) -> bytes:
        return self.device.decrypt(self.peer, message.kind, message.data)

    def peer_identity(self) -> bytes | None:
        return self.device.peer_identity(self.peer)

    @property
    def identity_key(self) -> bytes:
        return self.device.identity_key


Endpoint = Ours | Theirs


def connect(driver: Driver, we_initiate: bool, one_time: bool) -> tuple[Endpoint, Endpoint]:
    """(initiator, responder): the initiator has processed the responder's bundle."""
    ours, theirs = Ours(driver, 3 if one_time else 0), Theirs(driver)
    ours.peer, theirs.peer = theirs.address, ours.address
    if we_initiate:
        bundle = theirs.device.bundle(signed_prekey_id=1, prekey_id=7 if one_time else None)
        ours.manager.initiate(theirs.address, bundle)
        return ours, theirs
    bundles = ours.manager.prekey_bundles()
    theirs.device.process_bundle(ours.manager, bundles[0] if one_time else bundles[-1])
    return theirs, ours


def exchange(sender: Endpoint, receiver: Endpoint, text: bytes) -> None:
    assert receiver.receive(sender.send(text)) == text


def established(driver: Driver, we_initiate: bool) -> tuple[Endpoint, Endpoint]:
    """A session both sides have used: the first message and its answer."""
    initiator, responder = connect(driver, we_initiate, one_time=True)
    exchange(initiator, responder, b"first")
    exchange(responder, initiator, b"answer")
    return initiator, responder


DIRECTIONS = pytest.mark.parametrize(
    "we_initiate", [True, False], ids=["we-initiate", "libsignal-initiates"]
)


@DIRECTIONS
@pytest.mark.parametrize("one_time", [True, False], ids=["one-time-prekey", "no-one-time-prekey"])
def test_session_set_up_both_ways_with_and_without_a_one_time_prekey(
    libsignal: Driver, we_initiate: bool, one_time: bool
) -> None:
    initiator, responder = connect(libsignal, we_initiate, one_time)
    first = initiator.send(b"hello")
    second = initiator.send(b"again, before an answer")
    assert (first.kind, second.kind) == ("prekey", "prekey")
    assert responder.receive(second) == b"again, before an answer"
    assert responder.receive(first) == b"hello"
    answer = responder.send(b"hi")
    assert answer.kind == "message"
    assert initiator.receive(answer) == b"hi"
    assert initiator.send(b"now a normal message").kind == "message"


@DIRECTIONS
def test_identity_keys_are_the_same_on_both_sides(libsignal: Driver, we_initiate: bool) -> None:
    initiator, responder = established(libsignal, we_initiate)
    assert initiator.peer_identity() == responder.identity_key
    assert responder.peer_identity() == initiator.identity_key


@DIRECTIONS
def test_registration_ids_reach_libsignal_as_drawn(libsignal: Driver, we_initiate: bool) -> None:
    initiator, responder = established(libsignal, we_initiate)
    ours, theirs = (initiator, responder) if we_initiate else (responder, initiator)
    assert isinstance(ours, Ours) and isinstance(theirs, Theirs)
    local, remote = theirs.device.registration_ids(ours.address)
    assert local == theirs.device.registration_id
    if we_initiate:  # only a prekey message carries the initiator's registration id
        assert remote == ours.manager.registration_id


def test_libsignal_0_28_writes_version_byte_0x34_and_reads_our_0x33(libsignal: Driver) -> None:
    ours, theirs = connect(libsignal, we_initiate=True, one_time=True)
    first = ours.send(b"from us")
    assert first.data[0] == 0x33
    assert theirs.receive(first) == b"from us"
    reply = theirs.send(b"from libsignal")
    assert reply.data[0] == 0x34
    assert ours.receive(reply) == b"from libsignal"


@DIRECTIONS
def test_twenty_four_alternating_messages(libsignal: Driver, we_initiate: bool) -> None:
    initiator, responder = connect(libsignal, we_initiate, one_time=True)
    for turn in range(24):
        sender, receiver = (initiator, responder) if turn % 2 == 0 else (responder, initiator)
        exchange(sender, receiver, f"turn {turn}".encode())


@DIRECTIONS
@pytest.mark.parametrize("order", ["in-order", "reversed", "shuffled"])
@pytest.mark.parametrize("libsignal_sends", [True, False], ids=["libsignal-sends", "we-send"])
def test_bursts_of_ten_in_any_order(
    libsignal: Driver, we_initiate: bool, order: str, libsignal_sends: bool
) -> None:
    initiator, responder = established(libsignal, we_initiate)
    sender, receiver = (
        (initiator, responder)
        if isinstance(initiator, Theirs) == libsignal_sends
        else (responder, initiator)
    )
    for burst in range(2):  # the second burst follows a DH step
        sent = [(i, sender.send(f"burst {burst} message {i}".encode())) for i in range(10)]
        if order == "reversed":
            sent.reverse()
        elif order == "shuffled":
            random.Random(burst).shuffle(sent)
        for i, message in sent:
            assert receiver.receive(message) == f"burst {burst} message {i}".encode()
        exchange(receiver, sender, b"ack")


@DIRECTIONS
@pytest.mark.parametrize("newer_chains", [1, 4, 5])
def test_late_message_across_dh_steps_follows_libsignals_chain_count(
    libsignal: Driver, we_initiate: bool, newer_chains: int
) -> None:
    """A held message opens while its receiver has at most 4 newer chains of its sender.

    libsignal keeps 5 receiver chains in all, the current one included
    (state/session.rs add_receiver_chain); so do we (profile signal-v3).
    """
    initiator, responder = established(libsignal, we_initiate)
    for sender, receiver in ((initiator, responder), (responder, initiator)):
        held = sender.send(b"late")
        exchange(sender, receiver, b"on time")
        for turn in range(newer_chains):
            exchange(receiver, sender, f"reply {turn}".encode())
            exchange(sender, receiver, f"new chain {turn}".encode())
        if newer_chains <= 4:
            assert receiver.receive(held) == b"late"
        else:
            with pytest.raises(AuthFailed if isinstance(receiver, Ours) else LibsignalError):
                receiver.receive(held)
        exchange(sender, receiver, b"still in step")
        exchange(receiver, sender, b"both ways")


def _flipped(data: bytes) -> list[bytes]:
    return [data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :] for i in range(len(data))]


@DIRECTIONS
@pytest.mark.parametrize("libsignal_sends", [True, False], ids=["libsignal-sends", "we-send"])
def test_every_tampered_byte_of_a_message_is_refused_and_changes_nothing(
    libsignal: Driver, we_initiate: bool, libsignal_sends: bool
) -> None:
    """Each byte of a normal message (version, tags, ratchet key, counters, body, MAC) flipped."""
    initiator, responder = established(libsignal, we_initiate)
    sender, receiver = (
        (initiator, responder)
        if isinstance(initiator, Theirs) == libsignal_sends
        else (responder, initiator)
    )
    genuine = sender.send(b"genuine")
    for data in _flipped(genuine.data):
        with pytest.raises(REFUSED):
            receiver.receive(Wire("message", data))
    assert receiver.receive(genuine) == b"genuine"
    exchange(receiver, sender, b"and back")


def _unauthenticated(message: bytes) -> set[int]:
    """Offsets of a PreKeySignalMessage that nothing authenticates.

    The outer version byte (only its high nibble, the session version, is
    checked) and the registration id's value (not an X3DH input, not MACed).
    """
    parsed = read_fields(message[1:], wire.PREKEY_SIGNAL_MESSAGE)
    registration = write_field(5, parsed[5])
    start = message.index(registration)
    return {0, *range(start + 1, start + len(registration))}


@DIRECTIONS
def test_every_tampered_authenticated_byte_of_a_prekey_message_is_refused(
    libsignal: Driver, we_initiate: bool
) -> None:
    """Prekey ids, base key, identity key and the inner message are bound by X3DH and the MAC."""
    initiator, responder = connect(libsignal, we_initiate, one_time=True)
    genuine = initiator.send(b"genuine first")
    skipped = _unauthenticated(genuine.data)
    for index, data in enumerate(_flipped(genuine.data)):
        if index not in skipped:
            with pytest.raises(REFUSED):
                responder.receive(Wire("prekey", data))
    assert responder.receive(genuine) == b"genuine first"
    exchange(responder, initiator, b"answer")


@DIRECTIONS
def test_the_unauthenticated_bytes_of_a_prekey_message_go_unnoticed_by_both(
    libsignal: Driver, we_initiate: bool
) -> None:
    """A changed registration id and outer low version nibble are accepted, by libsignal too."""
    initiator, responder = connect(libsignal, we_initiate, one_time=True)
    genuine = initiator.send(b"first")
    parsed = read_fields(genuine.data[1:], wire.PREKEY_SIGNAL_MESSAGE)
    parsed[5] = int(parsed[5]) ^ 1
    changed = bytes([genuine.data[0] ^ 0x06]) + write_fields(parsed)
    assert responder.receive(Wire("prekey", changed)) == b"first"
    exchange(responder, initiator, b"answer")


@DIRECTIONS
def test_replays_are_refused_on_both_sides(libsignal: Driver, we_initiate: bool) -> None:
    initiator, responder = connect(libsignal, we_initiate, one_time=True)
    for sender, receiver in ((initiator, responder), (responder, initiator)):
        message = sender.send(b"once")
        assert receiver.receive(message) == b"once"
        with pytest.raises(DuplicateMessage if isinstance(receiver, Ours) else LibsignalError):
            receiver.receive(message)
        exchange(sender, receiver, b"after the replay")


@DIRECTIONS
def test_arbitrary_plaintexts_and_arbitrary_messages(libsignal: Driver, we_initiate: bool) -> None:
    initiator, responder = established(libsignal, we_initiate)
    rng = random.Random(12)
    for size in (0, 1, 15, 16, 17, 159, 160, 1000, 4097):
        text = rng.randbytes(size)
        exchange(initiator, responder, text)
        exchange(responder, initiator, text)
    for receiver, sender in ((initiator, responder), (responder, initiator)):
        for size in (0, 1, 9, 40, 200):
            for kind in ("message", "prekey"):
                with pytest.raises(REFUSED):
                    receiver.receive(Wire(kind, rng.randbytes(size)))
        exchange(sender, receiver, b"unharmed")


def test_we_read_a_message_without_its_envelope_type(libsignal: Driver) -> None:
    """Without the envelope's type, the framing tells a prekey message from a normal one."""
    theirs, ours = connect(libsignal, we_initiate=False, one_time=True)
    assert isinstance(ours, Ours)
    first, second = theirs.send(b"one"), theirs.send(b"two")
    assert ours.manager.decrypt(theirs.address, first.data) == b"one"
    assert ours.manager.decrypt(theirs.address, second.data) == b"two"
    exchange(ours, theirs, b"answer")
    assert ours.manager.decrypt(theirs.address, theirs.send(b"three").data) == b"three"


def test_libsignal_reads_a_prekey_message_in_javascript_field_order(libsignal: Driver) -> None:
    """libsignal-protocol-javascript's order 5, 1, 6, 2, 3, 4: libsignal and we both accept it."""
    for we_initiate in (True, False):
        initiator, responder = connect(libsignal, we_initiate, one_time=True)
        genuine = initiator.send(b"reordered")
        parsed = read_fields(genuine.data[1:], wire.PREKEY_SIGNAL_MESSAGE)
        data = genuine.data[:1] + b"".join(write_field(n, parsed[n]) for n in (5, 1, 6, 2, 3, 4))
        assert data[1] == 0x28
        assert responder.receive(Wire("prekey", data)) == b"reordered"
        exchange(responder, initiator, b"answer")


def _with(fields: dict[int, int | bytes], number: int, encoded: bytes) -> bytes:
    """The fields in ascending order, field ``number`` replaced by ``encoded`` at the end."""
    return b"".join(write_field(n, fields[n]) for n in sorted(fields) if n != number) + encoded


def test_libsignal_reader_is_lenient_where_ours_is_strict(libsignal: Driver) -> None:
    """What libsignal's (prost) reader does with what no honest writer sends, and what we do.

    libsignal keeps the last of a repeated field, skips unknown fields of
    any wire type, accepts non-minimal varints and truncates a uint32 to 32
    bits; it refuses a known field with another wire type and truncation.
    Our reader refuses all of them (spec/wire.md §3.4).
    """
    ours, _ = connect(libsignal, we_initiate=True, one_time=True)
    genuine = ours.send(b"x").data
    fields = read_fields(genuine[1:], wire.PREKEY_SIGNAL_MESSAGE)
    registration = int(fields[5])
    minimal = encode_varint(registration)
    padded = minimal[:-1] + bytes([minimal[-1] | 0x80, 0x00])
    canonical = genuine[1:]
    lenient = {
        "repeated field, last kept": (canonical + write_field(5, 777), 777),
        "unknown varint field": (canonical + write_field(9, 1), registration),
        "unknown bytes field": (canonical + write_field(9, b"zz"), registration),
        "unknown fixed32 field": (canonical + bytes([0x4D, 1, 2, 3, 4]), registration),
        "non-minimal varint": (_with(fields, 5, b"\x28" + padded), registration),
        "uint32 beyond 2^32, truncated": (_with(fields, 5, write_field(5, 2**32 + 5)), 5),
    }
    for name, (body, expected) in lenient.items():
        data = genuine[:1] + body
        parsed = libsignal.call("parse", lib=V3, type=3, body=data.hex())
        assert parsed["registration_id"] == expected, name
        with pytest.raises(MalformedMessage):
            wire.decode_prekey_message(SIGNAL_V3, data)
    refused = {
        "known field with another wire type": _with(fields, 5, write_field(5, b"\x01")),
        "truncated": canonical[:-1],
    }
    for body in refused.values():
        data = genuine[:1] + body
        with pytest.raises(LibsignalError, match="protobuf encoding was invalid"):
            libsignal.call("parse", lib=V3, type=3, body=data.hex())
        with pytest.raises(MalformedMessage):
            wire.decode_prekey_message(SIGNAL_V3, data)


def test_current_libsignal_refuses_a_v3_session(libsignal: Driver) -> None:
    """0.103.0 speaks only v4: our v3 (X3DH) prekey message is refused."""
    ours = Ours(libsignal, 0)
    current = LibsignalDevice.create(libsignal, "current")
    ours.peer = current.address
    ours.manager.initiate(current.address, current.bundle(signed_prekey_id=1, prekey_id=3))
    first = ours.send(b"v3 hello")
    with pytest.raises(LibsignalError, match="X3DH no longer supported"):
        current.decrypt(ours.address, "prekey", first.data)


@DIRECTIONS
def test_a_new_session_replaces_the_old_and_its_late_messages_still_open(
    libsignal: Driver, we_initiate: bool
) -> None:
    """The initiator starts over from a fresh bundle; the old session's held message still opens.

    Both keep the replaced session archived (libsignal: up to 40 previous
    states; ours: spec/session.md §4.2) and try it for a message the new
    one does not know.
    """
    initiator, responder = established(libsignal, we_initiate)
    held = initiator.send(b"sent on the old session")
    if isinstance(initiator, Ours):
        assert isinstance(responder, Theirs)
        bundle = responder.device.bundle(signed_prekey_id=2, prekey_id=8)
        initiator.manager.initiate(responder.address, bundle)
    else:
        assert isinstance(responder, Ours) and isinstance(initiator, Theirs)
        responder.manager.generate_one_time_prekeys(1)
        initiator.device.process_bundle(responder.manager, responder.manager.prekey_bundles()[0])
    fresh = initiator.send(b"a new session")
    assert fresh.kind == "prekey"
    assert responder.receive(fresh) == b"a new session"
    assert responder.receive(held) == b"sent on the old session"
    exchange(responder, initiator, b"answer on the new session")
    exchange(initiator, responder, b"and on")
