"""signal-v4 sessions: PQXDH with Kyber1024, the triple ratchet and wire 0x44 (spec/spqr.md §13).

Our side to our side through ``SessionManager``. The first
message's field 5 is compared with what libsignal 0.103.0 wrote in its first
message (``01 01 01 01 00 ‖ 32 bytes``: epoch 1, index 1, Hdr chunk 0); the
live tests in tests/interop talk to libsignal itself.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import wire
from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    MalformedMessage,
    ProtocolError,
    UnsupportedVersion,
)
from protocol.profiles import SIGNAL_V4
from protocol.protobuf import read_fields, write_fields
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.spqr.messages import MessageType, decode_message
from protocol.store import MemoryStore, SqliteStore, Store

ALICE = Address("alice", 1)
BOB = Address("bob", 1)
MAC_LEN = wire.SIGNAL_MAC_LEN


def device(address: Address, store: Store | None = None, opks: int = 1) -> SessionManager:
    rng = DrbgRandom(f"v4 {address.user}".encode())
    manager = SessionManager.create(store or MemoryStore(), address, SIGNAL_V4, now=0, rng=rng)
    if opks:
        manager.generate_one_time_prekeys(opks)
    return manager


def pair(opks: int = 1) -> tuple[SessionManager, SessionManager]:
    alice, bob = device(ALICE), device(BOB, opks=opks)
    alice.initiate(BOB, bob.prekey_bundles()[0])
    return alice, bob


def signal_fields(message: bytes) -> dict[int, int | bytes]:
    return read_fields(message[1:-MAC_LEN], wire.SIGNAL_V4_MESSAGE)


def field5(data: bytes) -> bytes:
    if wire.is_signal_prekey(data):
        data = wire.decode_prekey_message(SIGNAL_V4, data).message
    value = signal_fields(data)[5]
    assert isinstance(value, bytes)
    return value


def epoch_of(data: bytes) -> int:
    return decode_message(field5(data)).epoch


def snapshot(manager: SessionManager) -> bytes | None:
    return manager._store.get("session", ALICE.key)


@pytest.mark.parametrize("opks", [1, 0])
def test_the_first_message_has_libsignals_fields_and_field_5(opks: int) -> None:
    alice, bob = pair(opks)
    first = alice.encrypt(BOB, bytes(32))
    assert first[0] == 0x44
    outer = read_fields(first[1:], wire.PREKEY_SIGNAL_V4_MESSAGE)
    assert (1 in outer) == bool(opks)
    kyber = outer[8]
    assert isinstance(kyber, bytes) and kyber[0] == 0x08 and len(kyber) == 1569
    pq = field5(first)
    assert pq[:5] == bytes([1, 1, 1, 1, 0]) and len(pq) == 37  # epoch 1, index 1, Hdr, chunk 0
    assert bob.decrypt(ALICE, first) == bytes(32)


def test_five_spqr_epochs_complete_in_an_alternating_conversation() -> None:
    alice, bob = pair()
    epochs = []
    for n in range(480):
        sender, receiver, to, frm = (
            (alice, bob, BOB, ALICE) if n % 2 == 0 else (bob, alice, ALICE, BOB)
        )
        text = n.to_bytes(4, "big")
        data = sender.encrypt(to, text)
        epochs.append(epoch_of(data))
        assert receiver.decrypt(frm, data) == text
    assert epochs == sorted(epochs)
    assert epochs[-1] >= 6  # messages of epoch e use the keys of epoch e - 1: five completed
    record = alice.session_record(BOB)
    assert record is not None and record.current.pq is not None
    assert record.current.pq.chain.current_epoch >= 5


def test_bursts_and_late_messages_within_the_limits_decrypt() -> None:
    alice, bob = pair()
    bob.decrypt(ALICE, alice.encrypt(BOB, b"set up"))
    held = []
    for round_ in range(30):
        burst = [alice.encrypt(BOB, bytes([round_, k])) for k in range(7)]
        held.append(burst.pop(3))
        for k, data in enumerate(burst):
            assert bob.decrypt(ALICE, data) == bytes([round_, k if k < 3 else k + 1])
        answer = bob.encrypt(ALICE, bytes([round_]))
        assert alice.decrypt(BOB, answer) == bytes([round_])
    # the last held messages are within the receiver chains and the SPQR epochs kept
    for round_, data in list(enumerate(held))[-3:]:
        assert bob.decrypt(ALICE, data) == bytes([round_, 3])


def _reframe(data: bytes, fields: dict[int, int | bytes]) -> bytes:
    """The message with other SignalMessage fields and its original MAC."""
    return data[:1] + write_fields(fields) + data[-MAC_LEN:]


def _established() -> tuple[SessionManager, SessionManager]:
    alice, bob = pair()
    bob.decrypt(ALICE, alice.encrypt(BOB, b"set up"))
    alice.decrypt(BOB, bob.encrypt(ALICE, b"answered"))
    return alice, bob


def _mutations(good: bytes) -> list[tuple[str, bytes, type[ProtocolError]]]:
    fields = signal_fields(good)
    pq = fields[5]
    assert isinstance(pq, bytes)
    stripped = {k: v for k, v in fields.items() if k != 5}
    return [
        (
            "pq_ratchet with its type byte changed",
            _reframe(good, {**fields, 5: pq[:3] + bytes([pq[3] ^ 1]) + pq[4:]}),
            ProtocolError,
        ),
        (
            "pq_ratchet with its last byte flipped",
            _reframe(good, {**fields, 5: pq[:-1] + bytes([pq[-1] ^ 1])}),
            AuthFailed,
        ),
        (
            "pq_ratchet index + 1",
            _reframe(good, {**fields, 5: pq[:2] + bytes([pq[2] + 1]) + pq[3:]}),
            AuthFailed,
        ),
        ("SPQR stripped", _reframe(good, stripped), MalformedMessage),
        ("SPQR version 0", _reframe(good, {**fields, 5: b"\x00" + pq[1:]}), UnsupportedVersion),
        ("empty pq_ratchet", _reframe(good, {**fields, 5: b""}), UnsupportedVersion),
        ("version byte 0x34", b"\x34" + good[1:], UnsupportedVersion),
        (
            "addresses of the wrong length",
            _reframe(good, {**fields, 6: bytes(35)}),
            MalformedMessage,
        ),
        ("addresses added", _reframe(good, {**fields, 6: bytes(36)}), AuthFailed),
        ("MAC flipped", good[:-1] + bytes([good[-1] ^ 1]), AuthFailed),
    ]


def test_each_one_field_mutation_is_refused_unchanged_then_the_genuine_message_decrypts() -> None:
    alice, bob = _established()
    for _ in range(3):  # a message carrying an SPQR chunk, not a bare None
        bob.decrypt(ALICE, alice.encrypt(BOB, b"warm"))
    good = alice.encrypt(BOB, b"genuine")
    assert decode_message(field5(good)).type != MessageType.NONE
    for what, bad, error in _mutations(good):
        before = snapshot(bob)
        with pytest.raises(error):
            bob.decrypt(ALICE, bad)
        assert snapshot(bob) == before, what
    assert bob.decrypt(ALICE, good) == b"genuine"
    with pytest.raises(DuplicateMessage):
        bob.decrypt(ALICE, good)


def test_the_message_reads_in_any_field_order() -> None:
    alice, bob = _established()
    good = alice.encrypt(BOB, b"reordered")
    fields = signal_fields(good)
    from protocol.protobuf import write_field

    body = b"".join(write_field(n, fields[n]) for n in sorted(fields, reverse=True))
    reordered = good[:1] + body + good[-MAC_LEN:]
    assert reordered != good
    # The MAC covers the bytes as sent, so a reordered copy fails it, as in libsignal.
    with pytest.raises(AuthFailed):
        bob.decrypt(ALICE, reordered)
    assert (
        wire.decode_message(SIGNAL_V4, reordered).header
        == wire.decode_message(SIGNAL_V4, good).header
    )
    assert bob.decrypt(ALICE, good) == b"reordered"


def test_signal_v4_session_survives_a_reload_mid_epoch(tmp_path: Path) -> None:
    path = tmp_path / "bob.sqlite3"
    alice = device(ALICE)
    bob = device(BOB, SqliteStore(path))
    alice.initiate(BOB, bob.prekey_bundles()[0])
    for n in range(40):  # mid-epoch: the first epoch needs about 87 alternating messages
        bob.decrypt(ALICE, alice.encrypt(BOB, bytes([n])))
        alice.decrypt(BOB, bob.encrypt(ALICE, bytes([n])))
    record = bob.session_record(ALICE)
    assert record is not None and record.current.pq is not None
    epoch = record.current.pq.chain.current_epoch
    state_name = record.current.pq.braid.name
    bob = SessionManager(SqliteStore(path), DrbgRandom(b"v4 bob again"))
    reloaded = bob.session_record(ALICE)
    assert reloaded is not None and reloaded.current.pq == record.current.pq
    assert reloaded.current.pq is not None and reloaded.current.pq.braid.name == state_name
    for n in range(200):
        assert bob.decrypt(ALICE, alice.encrypt(BOB, bytes([n]))) == bytes([n])
        assert alice.decrypt(BOB, bob.encrypt(ALICE, bytes([n]))) == bytes([n])
    after = bob.session_record(ALICE)
    assert after is not None and after.current.pq is not None
    assert after.current.pq.chain.current_epoch >= epoch + 2


def test_a_v3_prekey_message_is_refused_by_a_v4_device() -> None:
    from protocol.profiles import SIGNAL_V3

    v3 = SessionManager.create(MemoryStore(), ALICE, SIGNAL_V3, now=0, rng=DrbgRandom(b"v3"))
    v3_bob = SessionManager.create(MemoryStore(), BOB, SIGNAL_V3, now=0, rng=DrbgRandom(b"v3b"))
    v3.initiate(BOB, v3_bob.prekey_bundles()[0])
    x3dh_message = v3.encrypt(BOB, b"X3DH no longer supported")
    bob = device(BOB)
    with pytest.raises(UnsupportedVersion):
        bob.decrypt(ALICE, x3dh_message, kind="prekey")
    assert bob.session_record(ALICE) is None


def test_the_committed_v4_transcript_completes_five_spqr_epochs() -> None:
    """vectors/session_signal-v4_test.json tcId 6 is what its comment says it is."""
    import json

    path = Path(__file__).resolve().parents[1] / "vectors" / "session_signal-v4_test.json"
    tests = json.loads(path.read_text())["testGroups"][0]["tests"]
    long_run = next(t for t in tests if t["tcId"] == 6)
    epochs = [epoch_of(bytes.fromhex(m["bytes"])) for m in long_run["messages"]]
    assert len(epochs) == 480 and max(epochs) >= 6


def test_a_last_resort_kyber_prekey_serves_each_handshake_once_as_libsignal_marks_it() -> None:
    """libsignal's markKyberPreKeyUsed(kyber id, signed prekey id, base key) (spec/pqxdh.md §9)."""
    from protocol.session.records import KEM_PREKEY_USES, SESSIONS

    alice, bob = pair(opks=0)
    first = alice.encrypt(BOB, b"first")
    assert bob.decrypt(ALICE, first) == b"first"
    assert len(bob._store.keys(KEM_PREKEY_USES)) == 1
    with bob._store.transaction() as txn:  # the session leaves the record (archived out)
        txn.delete(SESSIONS, ALICE.key)
    before = bob._store.keys(SESSIONS)
    with pytest.raises(DuplicateMessage):
        bob.decrypt(ALICE, first)
    assert bob._store.keys(SESSIONS) == before
    # another handshake (another base key) with the same last-resort key is served
    alice.initiate(BOB, bob.prekey_bundles()[0])
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"second")) == b"second"
    assert len(bob._store.keys(KEM_PREKEY_USES)) == 2
    # the marks go when their last-resort key is deleted after the grace period
    from protocol.session.prekey_lifecycle import SIGNED_PREKEY_GRACE_SECONDS

    bob.rotate_signed_prekey(now=1)
    bob.expire_signed_prekeys(now=2 + SIGNED_PREKEY_GRACE_SECONDS)
    assert bob._store.keys(KEM_PREKEY_USES) == []


_GOOD: list[bytes] = []


def _good_messages() -> list[bytes]:
    """A v4 prekey message and a normal message, made once."""
    if not _GOOD:
        alice, bob = pair()
        first = alice.encrypt(BOB, b"fuzz")
        bob.decrypt(ALICE, first)
        _GOOD.extend([first, bob.encrypt(ALICE, b"answer")])
    return _GOOD


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), which=st.integers(0, 1), cut=st.integers(0, 2000))
def test_v4_decoders_raise_only_protocol_errors(data: bytes, which: int, cut: int) -> None:
    """Arbitrary bytes, and a genuine message cut and given another tail, through both codecs.

    Any other exception type fails the test; what decodes is what was written.
    """
    good = _good_messages()[which]
    for candidate in (data, good[: cut % len(good)] + data, bytes([0x44]) + data):
        with contextlib.suppress(ProtocolError):
            message = wire.decode_message(SIGNAL_V4, candidate)
            assert message.header is not None and message.header.pq_ratchet
        with contextlib.suppress(ProtocolError):
            prekey = wire.decode_prekey_message(SIGNAL_V4, candidate)
            assert prekey.initial.kem_ciphertext is not None
