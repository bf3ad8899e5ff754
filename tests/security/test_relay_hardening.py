"""The relay under a hostile client or a careless one: the regressions of the relay findings
(spec/security.md §3.9, spec/relay.md §2.4, §3.1, §6.1).

Each test fails on the relay before its fix: a mailbox wedged by large
messages (F1), connections that never authenticate (F2), refused joins that
leave rooms behind (F3), idle call members that grow the relay's buffers
(F6), and devices registered under another user's name (F9).
"""

from __future__ import annotations

import asyncio
import struct
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from protocol.client.connection import LOOPBACK, RelayClient, connect_device
from protocol.client.inbox import Inbox
from protocol.errors import AccessDenied, InvalidSignature, LimitExceeded, MalformedMessage
from protocol.prekeys import IdentityKeyPair
from protocol.randomness import DrbgRandom
from protocol.relay.auth import Endorsement, endorse_device
from protocol.relay.framing import encode_frame
from protocol.relay.harness import running_relay
from protocol.relay.limits import RelayLimits
from protocol.relay.schema import FETCH_BUDGET, MAX_BODY_LEN, Address, Envelope, envelope_size
from protocol.relay.server import RelayServer

T = TypeVar("T")
ALICE, BOB = Address("alice", 1), Address("bob", 1)


def identity(name: str) -> IdentityKeyPair:
    return IdentityKeyPair.generate(DrbgRandom(name.encode()))


def with_relay(tmp_path: Path, body: Callable[[RelayServer], Awaitable[T]], **limits: Any) -> T:
    async def main() -> T:
        async with running_relay(tmp_path / "relay.db", limits=RelayLimits(**limits)) as server:
            return await asyncio.wait_for(body(server), 60)

    return asyncio.run(main())


async def device(
    server: RelayServer, address: Address, endorsement: Endorsement | None = None
) -> RelayClient:
    key = identity(f"{address.user}.{address.device}")
    return await connect_device(
        server.port, address.user, address.device, key, endorsement=endorsement
    )


async def admitted(server: RelayServer, address: Address, within: float = 10.0) -> RelayClient:
    """A device that retries while the relay refuses it for the connection limits."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await device(server, address)
        except LimitExceeded:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


# --- F1: a fetch response always fits its frame -------------------------------------------


def test_large_queued_messages_never_wedge_a_mailbox(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        sent = [bytes([n]) * 180_000 for n in range(3)] + [bytes([9]) * MAX_BODY_LEN]
        for n, message in enumerate(sent):
            await alice.send(BOB, message, n.to_bytes(16, "big"))
        got: list[Envelope] = []
        inbox = Inbox()
        for _ in range(len(sent)):  # each fetch is answered, with as many as fit
            await inbox.receive(bob, got.append)
        assert [e.body for e in got] == sent
        assert await bob.fetch() == []
        await alice.close()
        await bob.close()

    with_relay(tmp_path, body)


def test_the_largest_envelope_fits_a_fetch_response_alone() -> None:
    largest = Envelope(2**63 - 1, Address("u" * 64, 2**31 - 1), bytes(16), bytes(MAX_BODY_LEN), 0)
    assert envelope_size(largest) <= FETCH_BUDGET


# --- F2: authenticate within the deadline; unauthenticated connections have their own cap ---


def test_a_connection_that_keeps_saying_hello_is_closed_at_the_auth_deadline(
    tmp_path: Path,
) -> None:
    async def body(server: RelayServer) -> None:
        client = await RelayClient.connect(LOOPBACK, server.port)
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            while time.monotonic() - started < 10:  # before the fix: never closed
                await client.request("hello", {})
                await asyncio.sleep(0.1)
        assert time.monotonic() - started < 5
        await client.close()

    with_relay(tmp_path, body, auth_timeout=0.5)


def test_squatters_cannot_take_the_places_of_devices(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice = await device(server, ALICE)
        squatters = [await asyncio.open_connection(LOOPBACK, server.port) for _ in range(2)]
        with pytest.raises(LimitExceeded):  # a third unauthenticated connection is refused
            await device(server, BOB)
        assert await alice.devices("alice") == [1]  # the authenticated device is served
        for _, writer in squatters:
            writer.write(encode_frame({"op": "hello", "rid": 1, "args": {}}))
        bob = await admitted(server, BOB)  # the squatters are cut at the deadline, hello or not
        assert await bob.devices("bob") == [1]
        for client in (alice, bob):
            await client.close()
        for _, writer in squatters:
            writer.close()

    with_relay(tmp_path, body, max_connections=8, max_unauthenticated=2, auth_timeout=1.0)


def test_a_connection_refused_for_the_limit_reports_limit_exceeded(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice = await device(server, ALICE)
        with pytest.raises(LimitExceeded):
            await device(server, BOB)
        await alice.close()

    with_relay(tmp_path, body, max_connections=1)


# --- F3: a refused request allocates nothing ------------------------------------------------


def test_refused_joins_leave_no_room_behind(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice = await device(server, ALICE)
        await alice.join(b"room-0")
        for n in range(1, 50):
            with pytest.raises(LimitExceeded):
                await alice.join(f"room-{n}".encode())
        assert server.rooms == 1
        await alice.leave(b"room-0")
        assert server.rooms == 0
        await alice.close()

    with_relay(tmp_path, body, max_calls_per_connection=1)


# --- F6: relay memory is bounded; slow members drop frames ------------------------------------


def test_idle_call_members_drop_frames_and_the_relay_stays_within_its_bound(
    tmp_path: Path,
) -> None:
    limits = {"max_connections": 16}

    async def body(server: RelayServer) -> int:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        for client in (alice, bob):
            await client.join(b"call")
        idle = []
        for n in range(12):
            member = await device(server, Address(f"idle{n}", 1))
            await member.join(b"call")
            member._writer.transport.pause_reading()  # this member stops reading
            idle.append(member)
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        dropped = 0
        for n in range(80):
            _, lost = await alice.send_media(b"call", n.to_bytes(4, "big") + bytes(100_000))
            dropped += lost
            got = await asyncio.wait_for(bob.media.get(), 5)  # the reading member keeps up
            assert got.frame[:4] == n.to_bytes(4, "big")
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
        assert dropped > 0 and server.stats.media_dropped == dropped
        for client in (alice, bob, *idle):
            await client.close()
        return peak

    peak = with_relay(tmp_path, body, **limits)
    assert peak <= RelayLimits(**limits).memory_bound()


# --- F9: a user's further devices need the user's authority -----------------------------------


def test_a_further_device_of_a_user_needs_the_endorsement_of_a_registered_one(
    tmp_path: Path,
) -> None:
    async def body(server: RelayServer) -> None:
        bob = await device(server, BOB)
        with pytest.raises(AccessDenied):  # anyone else claiming bob's name
            await device(server, Address("bob", 2))
        stranger = identity("mallory")
        forged = endorse_device(stranger.private, 1, "bob", 3, identity("bob.3").public)
        with pytest.raises(InvalidSignature):
            await device(server, Address("bob", 3), forged)
        new_key = identity("bob.2").public
        endorsed = endorse_device(identity("bob.1").private, 1, "bob", 2, new_key)
        second = await device(server, Address("bob", 2), endorsed)
        assert await second.devices("bob") == [1, 2]
        for client in (bob, second):
            await client.close()

    with_relay(tmp_path, body)


def test_a_users_device_list_is_bounded(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        first = await device(server, BOB)
        key = identity("bob.1").private
        clients = [first]
        for number in (2, 3):
            public = identity(f"bob.{number}").public
            endorsement = endorse_device(key, 1, "bob", number, public)
            clients.append(await device(server, Address("bob", number), endorsement))
        endorsement = endorse_device(key, 1, "bob", 4, identity("bob.4").public)
        with pytest.raises(LimitExceeded):
            await device(server, Address("bob", 4), endorsement)
        assert await first.devices("bob") == [1, 2, 3]
        for client in clients:
            await client.close()

    with_relay(tmp_path, body, max_devices_per_user=3)


def test_a_malformed_response_fails_its_request_at_once() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        prefix = await reader.readexactly(4)
        await reader.readexactly(struct.unpack(">I", prefix)[0])
        too_many = list(range(1, 2000))  # a device list longer than any relay may send
        writer.write(encode_frame({"rid": 1, "ok": True, "result": {"devices": too_many}}))
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, LOOPBACK, 0)
        port = server.sockets[0].getsockname()[1]
        client = await RelayClient.connect(LOOPBACK, port)
        started = time.monotonic()
        with pytest.raises(MalformedMessage):
            await client.devices("bob")
        assert time.monotonic() - started < 10  # before the fix: the 30 s request timeout
        await client.close()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 30))
