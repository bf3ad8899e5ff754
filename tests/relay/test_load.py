"""Reliability under load: many devices, messages and media frames through a relay
process on loopback; nothing lost or duplicated to the application, also when the
relay is killed with SIGKILL mid-load and restarted (spec/relay.md §4.2, §7)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from protocol.client.connection import LOOPBACK, RelayClient, connect_device
from protocol.client.inbox import Inbox
from protocol.errors import LimitExceeded
from protocol.prekeys import IdentityKeyPair
from protocol.randomness import DrbgRandom
from protocol.relay.schema import Address, Envelope, Prekey

T = TypeVar("T")
RETRIES = 200  # reconnect attempts, 50 ms apart: a restart must finish within 10 s


class RelayProcess:
    """``e2ee relay`` in a subprocess; always stopped by the fixture."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "protocol", "relay", "--db", str(self._folder / "r.db")]
        with open(self._folder / "relay.log", "ab") as log:
            self._process = subprocess.Popen(
                [*command, "--port", str(self.port)], stdout=subprocess.PIPE, stderr=log
            )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], 20)
        assert ready, "relay did not start"
        line = self._process.stdout.readline().decode()
        assert line.startswith("relay listening on 127.0.0.1:"), line
        self.port = int(line.rsplit(":", 1)[1])

    def kill(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait(10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    process = RelayProcess(tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


class Peer:
    """A device that reconnects and retries when the relay goes away."""

    def __init__(self, relay: RelayProcess, address: Address) -> None:
        self.relay = relay
        self.address = address
        self.identity = IdentityKeyPair.generate(DrbgRandom(f"{address}".encode()))
        self.inbox = Inbox()
        self.handled: list[Envelope] = []
        self._client: RelayClient | None = None
        self._lock = asyncio.Lock()

    async def call(self, operation: Callable[[RelayClient], Awaitable[T]]) -> T:
        for _ in range(RETRIES):
            client = await self.connected()
            try:
                return await operation(client)
            except ConnectionError:
                await self._drop(client)
        raise ConnectionError(f"{self.address} gave up")

    async def connected(self) -> RelayClient:
        async with self._lock:
            while self._client is None:
                try:
                    self._client = await connect_device(
                        self.relay.port, self.address.user, self.address.device, self.identity
                    )
                except (ConnectionError, OSError, LimitExceeded):  # a burst meets the caps
                    await asyncio.sleep(0.05)
            return self._client

    async def _drop(self, client: RelayClient) -> None:
        async with self._lock:
            if self._client is client:
                self._client = None
        await client.close()
        await asyncio.sleep(0.05)

    async def receive(self) -> int:
        return await self.call(lambda c: self.inbox.receive(c, self.handled.append))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


@dataclass
class Load:
    devices: int
    messages_per_device: int
    call_size: int
    frames_per_member: int
    seconds: float = 100.0  # the whole exchange must finish within this bound


def mid(sender: int, n: int) -> bytes:
    return sender.to_bytes(8, "big") + n.to_bytes(8, "big")


async def send_all(peers: list[Peer], me: int, load: Load) -> None:
    for n in range(load.messages_per_device):
        to = peers[(me + 1 + 7 * n) % len(peers)].address
        body = bytes([n % 256]) * (16 + (n * 37) % 600)
        message_id = mid(me, n)
        await peers[me].call(lambda c, to=to, b=body, m=message_id: c.send(to, b, m))


async def receive_all(peer: Peer, want: int, deadline: float) -> None:
    while len(peer.handled) < want and time.monotonic() < deadline:
        if not await peer.receive():
            client = await peer.connected()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.mail.wait(), 0.2)


def expected_mail(peers: list[Peer], load: Load) -> Counter[tuple[Address, Address, bytes]]:
    want: Counter[tuple[Address, Address, bytes]] = Counter()
    for me, peer in enumerate(peers):
        for n in range(load.messages_per_device):
            to = peers[(me + 1 + 7 * n) % len(peers)].address
            want[(to, peer.address, mid(me, n))] += 1
    return want


def handed_over(peers: list[Peer]) -> Counter[tuple[Address, Address, bytes]]:
    return Counter((p.address, e.sender, e.mid) for p in peers for e in p.handled)


async def run_messages(peers: list[Peer], load: Load, during: Awaitable[None] | None) -> None:
    await asyncio.gather(*(p.connected() for p in peers))  # every mailbox registered
    want = expected_mail(peers, load)
    per_peer = Counter(to for to, _, _ in want.elements())
    deadline = time.monotonic() + load.seconds
    senders = [send_all(peers, i, load) for i in range(len(peers))]
    receivers = [receive_all(p, per_peer[p.address], deadline) for p in peers]
    await asyncio.gather(*senders, *receivers, *([during] if during else []))
    assert time.monotonic() < deadline, f"the load did not finish within {load.seconds} s"
    assert handed_over(peers) == want  # every message once: none lost, none duplicated


async def run_call(peers: list[Peer], call: bytes, frames: int) -> None:
    clients = [await p.connected() for p in peers]
    for client in clients:
        await client.join(call)
    for n in range(frames):
        for i, client in enumerate(clients):
            size = 20_000 if n % 30 == 0 else 800 + (n * 131) % 3000
            delivered, dropped = await client.send_media(
                call, bytes([i]) * 8 + n.to_bytes(4, "big") + bytes(size)
            )
            assert (delivered, dropped) == (len(clients) - 1, 0)
    for i, client in enumerate(clients):
        got = [
            await asyncio.wait_for(client.media.get(), 10)
            for _ in range((len(clients) - 1) * frames)
        ]
        seen = Counter((f.sender, f.frame[:12]) for f in got)
        assert len(seen) == len(got)  # no duplicate frame
        assert all(f.sender != peers[i].address for f in got)
        assert client.media.empty() and client.media_dropped == 0


def peers_for(relay: RelayProcess, count: int) -> list[Peer]:
    return [Peer(relay, Address(f"user{i}", 1 + i % 3)) for i in range(count)]


def run(coro: Awaitable[T], timeout: float) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def load_run(relay: RelayProcess, load: Load) -> None:
    peers = peers_for(relay, load.devices)
    try:
        await run_messages(peers, load, None)
        groups = [
            peers[i : i + load.call_size]
            for i in range(0, len(peers) - load.call_size + 1, load.call_size)
        ]
        await asyncio.gather(
            *(
                run_call(g, f"call{n}".encode(), load.frames_per_member)
                for n, g in enumerate(groups)
            )
        )
    finally:
        for peer in peers:
            await peer.close()


def test_small_load_delivers_every_message_and_frame_exactly_once(relay: RelayProcess) -> None:
    run(
        load_run(relay, Load(devices=9, messages_per_device=30, call_size=3, frames_per_member=30)),
        120,
    )


@pytest.mark.slow
def test_large_load_delivers_every_message_and_frame_exactly_once(relay: RelayProcess) -> None:
    # 300 devices, 30,000 messages; 100 calls of 3 with 100 frames each:
    # 30,000 frames sent and 60,000 delivered.
    run(
        load_run(
            relay,
            Load(
                devices=300,
                messages_per_device=100,
                call_size=3,
                frames_per_member=100,
                seconds=500,
            ),
        ),
        600,
    )


async def kill_midway(relay: RelayProcess, peers: list[Peer], after: int, at: list[int]) -> None:
    """SIGKILL the relay once ``after`` messages were handed over, then restart it."""
    for _ in range(6000):
        if sum(len(p.handled) for p in peers) >= after:
            break
        await asyncio.sleep(0.005)
    at.append(sum(len(p.handled) for p in peers))
    relay.kill()
    await asyncio.sleep(0.2)
    relay.start()  # same database, same port


async def crash_run(relay: RelayProcess, load: Load) -> None:
    peers = peers_for(relay, load.devices)
    owner = peers[0]
    await owner.call(lambda c: c.put_bundle(b"bundle"))
    await owner.call(lambda c: c.add_prekeys("ec", [Prekey(i, b"k") for i in range(100)]))
    taken: list[int] = []

    async def take(n: int) -> None:
        for _ in range(n):
            bundle = await peers[1].call(lambda c: c.get_bundle(owner.address))
            assert bundle.ec_prekey is not None
            taken.append(bundle.ec_prekey.id)

    total = load.devices * load.messages_per_device
    killed_at: list[int] = []
    try:
        await take(10)
        await run_messages(peers, load, kill_midway(relay, peers, total // 3, killed_at))
        await take(10)
        left = (await owner.call(lambda c: c.prekey_count()))["ec"]
    finally:
        for peer in peers:
            await peer.close()
    assert total // 3 <= killed_at[0] < total  # the kill really came mid-load
    assert len(set(taken)) == 20 and left == 80  # no prekey lost or handed out twice


def test_relay_killed_mid_load_and_restarted_loses_and_duplicates_nothing(
    relay: RelayProcess,
) -> None:
    run(
        crash_run(relay, Load(devices=6, messages_per_device=50, call_size=0, frames_per_member=0)),
        120,
    )


@pytest.mark.slow
def test_relay_killed_mid_large_load_and_restarted_loses_and_duplicates_nothing(
    relay: RelayProcess,
) -> None:
    run(
        crash_run(
            relay,
            Load(
                devices=100, messages_per_device=100, call_size=0, frames_per_member=0, seconds=500
            ),
        ),
        600,
    )


def test_misbehaving_client_under_load_is_cut_off_without_affecting_others(
    relay: RelayProcess,
) -> None:
    async def main() -> None:
        async def garbage() -> None:
            for n in range(20):
                reader, writer = await asyncio.open_connection(LOOPBACK, relay.port)
                writer.write(b"\xff\xff\xff\xff" if n % 2 else b"\x00\x00\x00\x03\xc1\xc1\xc1")
                await writer.drain()
                assert await asyncio.wait_for(reader.read(), 10) != b""  # an error, then EOF
                writer.close()

        peers = peers_for(relay, 6)
        try:
            await run_messages(peers, Load(6, 30, 0, 0), garbage())
        finally:
            for peer in peers:
                await peer.close()

    run(main(), 120)
