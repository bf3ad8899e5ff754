"""Live: our ``signal-v4`` SessionManager and libsignal 0.103.0 beyond a clean alternation.

test_live_signal_v4_session.py carries both directions through five SPQR
epochs of strict alternation. Here the same two parties meet what a real
conversation brings: bursts of mixed lengths across several epochs, messages
delivered out of order within libsignal's limits, every field of a message
tampered with in both directions (each refused, our state unchanged, and the
genuine message decrypts after it), replays, both sides sending before
either has heard the other after set-up, and our side reloaded from a
``SqliteStore`` in the middle of an SPQR epoch. The epoch is read from field
5 of each message (spec/spqr.md §8) with ``libsignal_peer.spqr_message``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from libsignal_peer import (
    MAC_LEN,
    PREKEY_MESSAGE,
    SIGNAL_MESSAGE,
    Driver,
    LibsignalDevice,
    LibsignalError,
    spqr_message,
)

from protocol.errors import DuplicateMessage, MalformedMessage, ProtocolError
from protocol.profiles import SIGNAL_V4
from protocol.protobuf import Schema, read_fields, write_fields
from protocol.session import Address, SessionManager
from protocol.spqr.messages import Message, encode_message
from protocol.store import MemoryStore, SqliteStore, Store
from protocol.wire import MessageKind

Sent = tuple[MessageKind, bytes]


class Conversation:
    """Our SessionManager (side 0) and a libsignal 0.103.0 device (side 1) with a session."""

    def __init__(
        self, libsignal: Driver, *, we_initiate: bool, one_time_prekey: bool, store: Store
    ) -> None:
        self.libsignal = libsignal
        address = Address(libsignal.fresh_name("v4-live-ours"), 1)
        self.ours = SessionManager.create(store, address, SIGNAL_V4, now=0)
        self.theirs = LibsignalDevice.create(libsignal, "current", prefix="v4-live-theirs")
        if we_initiate:
            bundle = self.theirs.bundle(3, 4 if one_time_prekey else None, 5)
            self.ours.initiate(self.theirs.address, bundle)
        else:
            if one_time_prekey:
                self.ours.generate_one_time_prekeys(1)
            self.theirs.process_bundle(self.ours, self.ours.prekey_bundles()[0])

    def send(self, side: int, plaintext: bytes) -> Sent:
        if side == 0:
            data = self.ours.encrypt(self.theirs.address, plaintext)
            kind: MessageKind = "prekey" if _is_prekey(data) else "message"
            return kind, data
        return self.theirs.encrypt(self.ours.address, plaintext)

    def receive(self, side: int, sent: Sent) -> bytes:
        kind, data = sent
        if side == 0:
            return self.ours.decrypt(self.theirs.address, data, kind=kind)
        return self.theirs.decrypt(self.ours.address, kind, data)

    def exchange(self, sender: int, plaintext: bytes) -> int:
        """One message delivered at once; returns its SPQR epoch."""
        sent = self.send(sender, plaintext)
        assert self.receive(1 - sender, sent) == plaintext
        return spqr_message(*sent).epoch


def _is_prekey(data: bytes) -> bool:
    """Our signal-v4 prekey messages parse as PreKeySignalMessage fields 1-8 with field 8."""
    try:
        return 8 in read_fields(data[1:], PREKEY_MESSAGE)
    except ProtocolError:
        return False


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "libsignal-initiates"])
def test_bursts_of_mixed_lengths_carry_spqr_through_epochs(
    libsignal: Driver, we_initiate: bool
) -> None:
    chat = Conversation(
        libsignal, we_initiate=we_initiate, one_time_prekey=True, store=MemoryStore()
    )
    rng = random.Random(4)
    sender, epochs, n = (0 if we_initiate else 1), [], 0
    while n < 400:
        for _ in range(rng.choice((1, 2, 5, 10, 20))):
            epochs.append(chat.exchange(sender, n.to_bytes(2, "big")))
            n += 1
        sender = 1 - sender
    assert epochs[-1] >= 4  # at least three epochs completed under bursts


@pytest.mark.parametrize("receiver", [0, 1], ids=["we-receive", "libsignal-receives"])
def test_out_of_order_delivery_within_the_limits(libsignal: Driver, receiver: int) -> None:
    """Bursts delivered shuffled, and a held message opened four sending chains later."""
    chat = Conversation(libsignal, we_initiate=True, one_time_prekey=False, store=MemoryStore())
    chat.exchange(0, b"set up")
    chat.exchange(1, b"answer")
    sender, rng = 1 - receiver, random.Random(7)
    held = chat.send(sender, b"held")
    for round_ in range(12):
        burst = [chat.send(sender, bytes([round_, k])) for k in range(8)]
        order = list(range(8))
        rng.shuffle(order)
        for k in order:
            assert chat.receive(receiver, burst[k]) == bytes([round_, k])
        if round_ < 3:  # three answers: the held message's chain is then 4 sending chains back
            chat.exchange(receiver, bytes([round_]))
    assert chat.receive(receiver, held) == b"held"


def _mutants(kind: MessageKind, data: bytes) -> list[tuple[str, bytes]]:
    """One mutation of each field, the version byte and the MAC; field 5 also stripped.

    The PreKeySignalMessage's registration_id (its field 5) is left alone:
    libsignal does not authenticate it, and neither side refuses another value.
    """
    out = [("version byte", bytes([data[0] ^ 0x10]) + data[1:])]
    if kind == "prekey":
        outer = read_fields(data[1:], PREKEY_MESSAGE)
        assert write_fields(outer) == data[1:]  # the rebuild changes nothing else
        inner = bytes(outer[4])
        for number in outer:
            if number not in (4, 5):
                out.append((f"prekey field {number}", _rebuild(data, PREKEY_MESSAGE, number, 0)))
        for what, bad in _mutants("message", inner):
            out.append((f"inner {what}", data[:1] + write_fields({**outer, 4: bad})))
        return out
    fields = read_fields(data[1:-MAC_LEN], SIGNAL_MESSAGE)
    assert write_fields(fields) == data[1:-MAC_LEN]
    for number in fields:
        out.append((f"field {number}", _rebuild(data, SIGNAL_MESSAGE, number, MAC_LEN)))
    stripped = {k: v for k, v in fields.items() if k != 5}
    out.append(("field 5 stripped", data[:1] + write_fields(stripped) + data[-MAC_LEN:]))
    out.append(("MAC", data[:-1] + bytes([data[-1] ^ 1])))
    return out


def _rebuild(data: bytes, schema: Schema, number: int, mac_len: int) -> bytes:
    """``data`` with field ``number`` changed (last byte flipped, or the integer + 1)."""
    end = len(data) - mac_len
    fields = read_fields(data[1:end], schema)
    value = fields[number]
    fields[number] = value + 1 if isinstance(value, int) else value[:-1] + bytes([value[-1] ^ 1])
    return data[:1] + write_fields(fields) + data[end:]


@pytest.mark.parametrize("receiver", [0, 1], ids=["we-receive", "libsignal-receives"])
def test_every_field_tampered_is_refused_and_the_genuine_message_then_decrypts(
    libsignal: Driver, receiver: int
) -> None:
    chat = Conversation(
        libsignal, we_initiate=receiver == 1, one_time_prekey=True, store=MemoryStore()
    )
    sender = 1 - receiver
    for n in range(40):  # a prekey message first, then messages deep in an SPQR epoch
        sent = chat.send(sender, bytes([n]))
        if n in (0, 10, 39):
            for what, bad in _mutants(*sent):
                before = chat.ours.session_record(chat.theirs.address)
                error = ProtocolError if receiver == 0 else LibsignalError
                with pytest.raises(error):
                    chat.receive(receiver, (sent[0], bad))
                assert chat.ours.session_record(chat.theirs.address) == before, what
        assert chat.receive(receiver, sent) == bytes([n])
        if n % 3 == 2:
            chat.exchange(receiver, b"answer")


@pytest.mark.parametrize("receiver", [0, 1], ids=["we-receive", "libsignal-receives"])
def test_a_replayed_message_is_refused_and_the_session_goes_on(
    libsignal: Driver, receiver: int
) -> None:
    chat = Conversation(
        libsignal, we_initiate=receiver == 1, one_time_prekey=True, store=MemoryStore()
    )
    sender = 1 - receiver
    for n in range(6):
        sent = chat.send(sender, bytes([n]))
        assert chat.receive(receiver, sent) == bytes([n])
        error = DuplicateMessage if receiver == 0 else LibsignalError
        with pytest.raises(error):
            chat.receive(receiver, sent)
        chat.exchange(receiver, b"answer")


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "libsignal-initiates"])
def test_both_sides_send_before_hearing_each_other_after_set_up(
    libsignal: Driver, we_initiate: bool
) -> None:
    """After the first message arrives, both send crossed bursts, then deliver them."""
    chat = Conversation(
        libsignal, we_initiate=we_initiate, one_time_prekey=True, store=MemoryStore()
    )
    initiator = 0 if we_initiate else 1
    chat.exchange(initiator, b"set up")
    for round_ in range(20):
        crossed = [[chat.send(side, bytes([side, round_, k])) for k in range(3)] for side in (0, 1)]
        for side in (1, 0):
            for k, sent in enumerate(crossed[1 - side]):
                assert chat.receive(side, sent) == bytes([1 - side, round_, k])
    epochs = [chat.exchange(n & 1, b"after") for n in range(100)]
    assert epochs[-1] > epochs[0]


def test_our_side_reloaded_from_sqlite_in_the_middle_of_an_epoch(
    libsignal: Driver, tmp_path: Path
) -> None:
    path = tmp_path / "ours.sqlite3"
    chat = Conversation(libsignal, we_initiate=True, one_time_prekey=True, store=SqliteStore(path))
    epochs = [chat.exchange(n & 1, n.to_bytes(2, "big")) for n in range(130)]
    assert epochs[-1] == epochs[-30]  # about 40 messages into the second epoch
    held = chat.send(1, b"held across the reload")
    chat.ours = SessionManager(SqliteStore(path))
    assert chat.receive(0, held) == b"held across the reload"
    epochs += [chat.exchange(n & 1, n.to_bytes(2, "big")) for n in range(130, 300)]
    assert epochs[-1] >= epochs[129] + 2


def _spqr_epoch_out_of_range(kind: MessageKind, data: bytes) -> bytes:
    """``data`` with field 5 naming an SPQR epoch five ahead, a field 5 SPQR refuses (MAC kept)."""
    assert kind == "message"
    fields = read_fields(data[1:-MAC_LEN], SIGNAL_MESSAGE)
    message = spqr_message(kind, data)
    ahead = Message(message.epoch + 5, message.index, message.type, message.chunk)
    fields[5] = encode_message(ahead)
    return data[:1] + write_fields(fields) + data[-MAC_LEN:]


# libsignal-client's ErrorCode (dist/Errors.d.ts): Generic, which InvalidMessage is, and
# DuplicatedMessage.
LIBSIGNAL_GENERIC, LIBSIGNAL_DUPLICATED_MESSAGE = 0, 1


@pytest.mark.parametrize("receiver", [0, 1], ids=["we-receive", "libsignal-receives"])
def test_a_replay_with_field_5_changed_is_a_duplicate_on_both_sides(
    libsignal: Driver, receiver: int
) -> None:
    """The Double Ratchet's key is looked up before SPQR reads field 5 (spec/spqr.md §13).

    The same change of field 5 is refused by SPQR on a message not yet
    delivered (MALFORMED_MESSAGE here; libsignal's InvalidMessage, which
    reaches JavaScript as a Generic error) and is a duplicate on the same
    message once delivered (DUPLICATE_MESSAGE; DuplicatedMessage), on both sides.
    """
    chat = Conversation(
        libsignal, we_initiate=receiver == 1, one_time_prekey=True, store=MemoryStore()
    )
    sender = 1 - receiver
    chat.exchange(sender, b"set up")
    chat.exchange(receiver, b"answer")
    for n in range(3):
        kind, data = chat.send(sender, bytes([n]))
        changed = _spqr_epoch_out_of_range(kind, data)
        for delivered in (False, True):
            with pytest.raises((ProtocolError, LibsignalError)) as refused:
                chat.receive(receiver, (kind, changed))
            error = refused.value
            if isinstance(error, LibsignalError):
                assert receiver == 1
                assert error.code == (
                    LIBSIGNAL_DUPLICATED_MESSAGE if delivered else LIBSIGNAL_GENERIC
                )
            else:
                assert receiver == 0
                assert type(error) is (DuplicateMessage if delivered else MalformedMessage)
            if not delivered:
                assert chat.receive(receiver, (kind, data)) == bytes([n])
        chat.exchange(receiver, bytes([n]))
