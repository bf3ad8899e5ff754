"""A call whose MediaKeys travel over real Double Ratchet sessions: three parties, a join, a leave.

Each device is a ``SessionManager`` (pq-default, PQXDH + header-encrypted
ratchet) with a ``CallSender`` and a ``CallReceiver``. MediaKeys are
encrypted over the pairwise sessions; a receiver installs a key under the
address its session authenticated. Everything that crosses the "network"
is recorded, and no base key ever appears in it.
"""

from __future__ import annotations

import pytest
from callkeys_harness import CALL_ID, Clock

from protocol.errors import UnknownKeyId
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.messages import decode_media_key
from protocol.media.sender import KeyDelivery
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

NAMES = ("alice", "bob", "carol", "dave")


def _device_id(address: Address) -> str:
    return f"{address.user}.{address.device}"


class Device:
    def __init__(self, name: str) -> None:
        self.address = Address(name, 1)
        self.rng = DrbgRandom(f"call over sessions {name}".encode())
        self.sessions = SessionManager.create(MemoryStore(), self.address, now=0, rng=self.rng)
        self.sessions.generate_one_time_prekeys(len(NAMES))
        self.sessions.generate_kem_prekeys(len(NAMES))
        self.sender: CallSender | None = None
        self.receiver: CallReceiver | None = None

    @property
    def id(self) -> str:
        return _device_id(self.address)


class Network:
    """Delivers session messages at once and records every byte it carries."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.devices = {name: Device(name) for name in NAMES}
        self.wire: list[bytes] = []
        self.base_keys: list[bytes] = []
        for i, first in enumerate(NAMES):
            for second in NAMES[i + 1 :]:
                self._connect(self.devices[first], self.devices[second])

    def _connect(self, initiator: Device, responder: Device) -> None:
        bundle = next(b for b in responder.sessions.prekey_bundles())
        initiator.sessions.initiate(responder.address, bundle)
        hello = initiator.sessions.encrypt(responder.address, b"hello")
        responder.sessions.decrypt(initiator.address, hello)
        answer = responder.sessions.encrypt(initiator.address, b"hello back")
        initiator.sessions.decrypt(responder.address, answer)

    def by_id(self, device_id: str) -> Device:
        return next(d for d in self.devices.values() if d.id == device_id)

    def send_keys(self, sender: Device, deliveries: list[KeyDelivery]) -> None:
        """Encrypt each MediaKey over the session; the receiver installs what it decrypts."""
        for device_id, message in deliveries:
            self.base_keys.append(decode_media_key(message).base_key)
            recipient = self.by_id(device_id)
            data = sender.sessions.encrypt(recipient.address, message)
            self.wire.append(data)
            plaintext = recipient.sessions.decrypt(sender.address, data)
            assert recipient.receiver is not None
            recipient.receiver.install(_device_id(sender.address), plaintext)

    def open_receiver(self, name: str, members: list[str]) -> None:
        device = self.devices[name]
        ids = [self.devices[m].id for m in members]
        device.receiver = CallReceiver(CALL_ID, device.id, ids, clock=self.clock)

    def start_sender(self, name: str, members: list[str]) -> None:
        device = self.devices[name]
        ids = [self.devices[m].id for m in members]
        device.sender, deliveries = CallSender.start(
            CALL_ID, device.id, ids, clock=self.clock, rng=device.rng
        )
        self.send_keys(device, deliveries)

    def frame(self, name: str, payload: bytes) -> bytes:
        sender = self.devices[name].sender
        assert sender is not None
        data = sender.encrypt(payload, b"rtp")
        self.wire.append(data)
        return data

    def open(self, receiver: str, sender: str, data: bytes) -> bytes:
        device = self.devices[receiver]
        assert device.receiver is not None
        return device.receiver.decrypt(self.devices[sender].id, data, b"rtp")


def test_three_party_call_with_a_join_and_a_leave_through_real_sessions() -> None:
    net = Network()
    members = ["alice", "bob", "carol"]
    for name in members:
        net.open_receiver(name, members)
    for name in members:
        net.start_sender(name, members)

    # Everyone hears everyone.
    frames = {name: net.frame(name, f"{name} 1".encode()) for name in members}
    for receiver in members:
        for sender in members:
            if sender != receiver:
                assert net.open(receiver, sender, frames[sender]) == f"{sender} 1".encode()

    # dave joins: every sender ratchets and hands dave its new step only.
    net.open_receiver("dave", members)
    for name in members:
        device = net.devices[name]
        assert device.receiver is not None and device.sender is not None
        device.receiver.add_members([net.devices["dave"].id])
        net.send_keys(device, device.sender.join([net.devices["dave"].id]))
    net.start_sender("dave", members)
    with pytest.raises(UnknownKeyId):
        net.open("dave", "alice", frames["alice"])
    after_join = net.frame("alice", b"alice 2")
    for receiver in ("bob", "carol", "dave"):
        assert net.open(receiver, "alice", after_join) == b"alice 2"

    # bob leaves: the others start a new generation without him.
    bob_id = net.devices["bob"].id
    for name in ("alice", "carol", "dave"):
        device = net.devices[name]
        assert device.receiver is not None and device.sender is not None
        device.receiver.remove_members([bob_id])
        net.send_keys(device, device.sender.leave([bob_id], rng=device.rng))
    net.clock.now = 5.0
    after_leave = net.frame("alice", b"alice 3")
    assert net.open("carol", "alice", after_leave) == b"alice 3"
    assert net.open("dave", "alice", after_leave) == b"alice 3"
    with pytest.raises(UnknownKeyId):
        net.open("bob", "alice", after_leave)

    # The network carried session ciphertexts and frames, never a base key.
    assert net.base_keys
    assert not any(key in data for key in net.base_keys for data in net.wire)
