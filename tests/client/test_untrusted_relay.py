"""A malicious relay cannot forge, replay or substitute anything unnoticed: devices
refuse what it tampers with, injects or replays, and what it reorders still
arrives exactly once (spec/relay.md §10)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from protocol.client.connection import connect_device
from protocol.client.device import TEXT, Device
from protocol.client.publish import assemble_bundle
from protocol.errors import FrameReplay, InvalidSignature, ProtocolError
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.prekeys import IdentityKeyPair
from protocol.profiles import PQ_DEFAULT
from protocol.randomness import DrbgRandom, RecordingRandom
from protocol.relay.harness import running_relay
from protocol.relay.schema import Address
from protocol.relay.server import RelayServer
from protocol.session import Address as PeerAddress

T = TypeVar("T")
ALICE, BOB, MALLORY = Address("alice", 1), Address("bob", 1), Address("mallory", 1)


def with_devices(tmp_path: Path, body: Callable[[RelayServer, Device, Device], Awaitable[T]]) -> T:
    async def main() -> T:
        async with running_relay(tmp_path / "relay.db") as server:
            devices = [
                await Device.create(
                    server.port, a, PQ_DEFAULT, RecordingRandom(DrbgRandom(a.user.encode())), now=0
                )
                for a in (ALICE, BOB)
            ]
            try:
                return await body(server, *devices)
            finally:
                for device in devices:
                    await device.close()

    return asyncio.run(asyncio.wait_for(main(), 60))


async def session_with_one_message(alice: Device, bob: Device) -> None:
    await alice.send(BOB, TEXT, b"first")
    assert [r.body for r in await bob.receive()] == [b"first"]
    await bob.send(ALICE, TEXT, b"answer")
    assert [r.body for r in await alice.receive()] == [b"answer"]


def test_a_tampered_message_is_refused_and_the_genuine_one_still_decrypts(tmp_path: Path) -> None:
    async def body(server: RelayServer, alice: Device, bob: Device) -> None:
        await session_with_one_message(alice, bob)
        await alice.send(BOB, TEXT, b"pay 10")
        (queued,) = server.store.fetch(BOB, 10)
        server.store.ack(BOB, [queued.id])
        for index in (0, len(queued.body) // 2, len(queued.body) - 1):
            forged = bytearray(queued.body)
            forged[index] ^= 0x01
            server.store.enqueue(BOB, ALICE, bytes([index % 256 + 1]) * 16, bytes(forged), 0)
        assert await bob.receive() == [] and bob.failures == 3
        server.store.enqueue(BOB, ALICE, queued.mid, queued.body, 0)
        assert [r.body for r in await bob.receive()] == [b"pay 10"]

    with_devices(tmp_path, body)


def test_a_replayed_message_is_refused_as_a_duplicate(tmp_path: Path) -> None:
    async def body(server: RelayServer, alice: Device, bob: Device) -> None:
        await session_with_one_message(alice, bob)
        await alice.send(BOB, TEXT, b"once")
        (queued,) = server.store.fetch(BOB, 10)
        assert [r.body for r in await bob.receive()] == [b"once"]
        # The relay queues the same ciphertext again under a fresh message id.
        server.store.enqueue(BOB, ALICE, b"\xee" * 16, queued.body, 0)
        assert await bob.receive() == []
        assert bob.refused == ["DUPLICATE_MESSAGE"]

    with_devices(tmp_path, body)


def test_a_message_the_relay_attributes_to_another_sender_is_refused(tmp_path: Path) -> None:
    async def body(server: RelayServer, alice: Device, bob: Device) -> None:
        await session_with_one_message(alice, bob)
        await alice.send(BOB, TEXT, b"from alice")
        (queued,) = server.store.fetch(BOB, 10)
        server.store.ack(BOB, [queued.id])
        server.store.register(MALLORY, bytes(range(1, 33)))
        server.store.enqueue(BOB, MALLORY, queued.mid, queued.body, 0)
        assert await bob.receive() == []
        assert bob.failures == 1

    with_devices(tmp_path, body)


def test_reordered_messages_each_arrive_once(tmp_path: Path) -> None:
    async def body(server: RelayServer, alice: Device, bob: Device) -> None:
        await session_with_one_message(alice, bob)
        for n in range(5):
            await alice.send(BOB, TEXT, f"message {n}".encode())
        queued = server.store.fetch(BOB, 10)
        server.store.ack(BOB, [q.id for q in queued])
        for q in reversed(queued):  # the relay delivers them backwards
            server.store.enqueue(BOB, ALICE, q.mid, q.body, 0)
        received = sorted(r.body for r in await bob.receive())
        assert received == [f"message {n}".encode() for n in range(5)] and bob.failures == 0

    with_devices(tmp_path, body)


def test_a_substituted_bundle_is_refused_before_any_key_is_used(tmp_path: Path) -> None:
    async def body(server: RelayServer, alice: Device, bob: Device) -> None:
        fetched = await alice.client.get_bundle(BOB)
        bundle = assemble_bundle(fetched)
        forged = dataclasses.replace(bundle, signed_prekey=bundle.identity_key)
        with pytest.raises(InvalidSignature):
            alice.manager.initiate(_peer(BOB), forged)
        assert not alice.manager.has_session(_peer(BOB))

    with_devices(tmp_path, body)


def _peer(address: Address) -> PeerAddress:
    return PeerAddress(address.user, address.device)


def test_relayed_frames_replayed_or_credited_to_another_sender_are_refused(
    tmp_path: Path,
) -> None:
    clock = lambda: 0.0  # noqa: E731
    call = bytes(16)
    alice, deliveries = CallSender.start(call, "alice.1", ["bob.1", "carol.1"], clock=clock)
    _, carol_keys = CallSender.start(call, "carol.1", ["alice.1", "bob.1"], clock=clock)
    bob = CallReceiver(call, "bob.1", ["alice.1", "carol.1"], clock=clock)
    for delivery in (*deliveries, *carol_keys):
        if delivery.device == "bob.1":
            sender = "alice.1" if delivery in deliveries else "carol.1"
            bob.install(sender, delivery.message)

    async def relay_frames(server: RelayServer) -> list[bytes]:
        a = await connect_device(server.port, "alice", 1, IdentityKeyPair.generate())
        b = await connect_device(server.port, "bob", 1, IdentityKeyPair.generate())
        await a.join(b"room")
        await b.join(b"room")
        for n in range(3):
            await a.send_media(b"room", alice.encrypt(f"frame {n}".encode()))
        got = [await asyncio.wait_for(b.media.get(), 5) for _ in range(3)]
        await a.close()
        await b.close()
        return [g.frame for g in got]

    async def main() -> list[bytes]:
        async with running_relay(tmp_path / "relay.db") as server:
            return await relay_frames(server)

    frames = asyncio.run(main())
    assert bob.decrypt("alice.1", frames[0]) == b"frame 0"
    with pytest.raises(FrameReplay):
        bob.decrypt("alice.1", frames[0])  # the relay sends it again
    with pytest.raises(ProtocolError):
        bob.decrypt("carol.1", frames[1])  # the relay credits it to carol
    assert bob.decrypt("alice.1", frames[1]) == b"frame 1"  # the genuine one still works
