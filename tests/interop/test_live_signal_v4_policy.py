"""Live: libsignal 0.103.0 and we apply one session policy in signal-v4 (spec/session.md §7.1).

Promotion of an archived session on a (version, base key) match: a session
A is answered once, then the side that answered starts a newer session B;
a late prekey message of A (the initiator repeats its initial message until
it is answered, so every message of A is one) then arrives. libsignal (``promote_matching_session``)
and we (``sessions.find_handshake``) both make A current again instead of
setting up a new session: the answer goes out on A as a normal message,
not as B's prekey message, and the other side decrypts it. Each direction
checks one library's choice with the other library as the peer.

Expiry of an unanswered session: libsignal and we, at the same clock
readings (libsignal's ``now`` argument, our injected clock), both still send
at 30 days and both refuse at 30 days and one second, libsignal with
``SessionNotFound`` ("session with <address> not found: message_encrypt")
and we with NO_SESSION; an answer makes both send again.
"""

from __future__ import annotations

import pytest
from libsignal_peer import Driver, LibsignalDevice, LibsignalError, bundle_for_libsignal

from protocol import wire
from protocol.errors import NoSession
from protocol.profiles import SIGNAL_V4
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

T0 = 1_750_000_000
THIRTY_DAYS = 30 * 24 * 60 * 60


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _ours(libsignal: Driver, clock: Clock | None = None) -> SessionManager:
    address = Address(libsignal.fresh_name("v4-policy-ours"), 1)
    return SessionManager.create(MemoryStore(), address, SIGNAL_V4, now=0, clock=clock or Clock(T0))


def _base_key(data: bytes) -> bytes:
    return wire.decode_prekey_message(SIGNAL_V4, data).initial.ephemeral_key


def test_libsignal_promotes_our_archived_session_when_its_late_prekey_message_arrives(
    libsignal: Driver,
) -> None:
    ours = _ours(libsignal)
    theirs = LibsignalDevice.create(libsignal, "current", prefix="v4-policy-theirs")
    ours.initiate(theirs.address, theirs.bundle(3, 4, 5))
    first, late = ours.encrypt(theirs.address, b"first"), ours.encrypt(theirs.address, b"late")
    assert wire.message_kind(SIGNAL_V4, late) == "prekey"
    assert theirs.decrypt(ours.address, "prekey", first) == b"first"
    theirs.process_bundle(ours, ours.prekey_bundles()[0])  # libsignal's newer session B
    kind, _unsent = theirs.encrypt(ours.address, b"on B")
    assert kind == "prekey"
    assert theirs.decrypt(ours.address, "prekey", late) == b"late"
    # libsignal answers on A again: a normal message, which our A (still current) decrypts.
    kind, answer = theirs.encrypt(ours.address, b"answer on A")
    assert kind == "message"
    assert ours.decrypt(theirs.address, answer, kind=kind) == b"answer on A"
    data = ours.encrypt(theirs.address, b"and on")
    assert wire.message_kind(SIGNAL_V4, data) == "message"
    assert theirs.decrypt(ours.address, "message", data) == b"and on"


def test_we_promote_libsignals_archived_session_when_its_late_prekey_message_arrives(
    libsignal: Driver,
) -> None:
    ours = _ours(libsignal)
    theirs = LibsignalDevice.create(libsignal, "current", prefix="v4-policy-theirs")
    theirs.process_bundle(ours, ours.prekey_bundles()[0])
    (kind, first), (_, late) = (
        theirs.encrypt(ours.address, b"first"),
        theirs.encrypt(ours.address, b"late"),
    )
    assert kind == "prekey" and _base_key(first) == _base_key(late)
    assert ours.decrypt(theirs.address, first, kind="prekey") == b"first"
    ours.initiate(theirs.address, theirs.bundle(3, 4, 5))  # our newer session B
    assert wire.message_kind(SIGNAL_V4, ours.encrypt(theirs.address, b"on B")) == "prekey"
    assert ours.decrypt(theirs.address, late, kind="prekey") == b"late"
    record = ours.session_record(theirs.address)
    assert record is not None and record.current.ephemeral_key == _base_key(late)
    # We answer on A again: a normal message, which libsignal's A (its current) decrypts.
    answer = ours.encrypt(theirs.address, b"answer on A")
    assert wire.message_kind(SIGNAL_V4, answer) == "message"
    assert theirs.decrypt(ours.address, "message", answer) == b"answer on A"
    kind, data = theirs.encrypt(ours.address, b"and on")
    assert kind == "message"
    assert ours.decrypt(theirs.address, data, kind=kind) == b"and on"


def test_both_refuse_to_send_on_a_session_unanswered_for_thirty_days_and_one_second(
    libsignal: Driver,
) -> None:
    clock = Clock(T0)
    ours = _ours(libsignal, clock)
    theirs = LibsignalDevice.create(libsignal, "current", prefix="v4-policy-theirs")
    ours.initiate(theirs.address, theirs.bundle(3, 4, 5))
    peer = {"name": ours.address.user, "device_id": ours.address.device}
    served = bundle_for_libsignal(ours, ours.prekey_bundles()[0])
    libsignal.call("process_bundle", name=theirs.name, peer=peer, bundle=served, now=T0)

    def libsignal_sends(now: int, plaintext: bytes) -> tuple[int, bytes]:
        sent = libsignal.call(
            "encrypt", name=theirs.name, peer=peer, plaintext=plaintext.hex(), now=now
        )
        return sent["type"], bytes.fromhex(sent["body"])

    clock.now = T0 + THIRTY_DAYS
    ours_last = ours.encrypt(theirs.address, b"ours at 30 days")
    kind, theirs_last = libsignal_sends(T0 + THIRTY_DAYS, b"theirs at 30 days")
    assert wire.message_kind(SIGNAL_V4, ours_last) == "prekey" and kind == 3  # PreKey
    clock.now = T0 + THIRTY_DAYS + 1
    with pytest.raises(NoSession):
        ours.encrypt(theirs.address, b"ours too late")
    with pytest.raises(LibsignalError) as refused:
        libsignal_sends(T0 + THIRTY_DAYS + 1, b"theirs too late")
    # SignalProtocolError::SessionNotFound (error.rs), which the Node binding reports as
    # ErrorCode.Generic with its Display text.
    assert refused.value.message.endswith(" not found: message_encrypt")
    assert refused.value.message.startswith("session with ")
    # The messages sent in time still set the sessions up, and answer both: both send again.
    assert theirs.decrypt(ours.address, "prekey", ours_last) == b"ours at 30 days"
    assert ours.decrypt(theirs.address, theirs_last, kind="prekey") == b"theirs at 30 days"
    data = ours.encrypt(theirs.address, b"ours after the answer")
    assert theirs.decrypt(ours.address, "message", data) == b"ours after the answer"
    kind, data = libsignal_sends(T0 + THIRTY_DAYS + 1, b"theirs after the answer")
    assert ours.decrypt(theirs.address, data, kind="message") == b"theirs after the answer"
