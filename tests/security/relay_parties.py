"""Devices on a real relay whose stores the tests can steal (spec/security.md §2).

``protocol.client.device.Device`` keeps its store to itself; here each party's
``MemoryStore`` is also kept, so a test can snapshot it after every step (the
leak scan) or hand it to an attacker. The relay always runs on loopback and
is always stopped (``running_relay``); every coroutine is bounded by
``run_bounded``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from protocol.audit.secrets import SecretLog
from protocol.client.connection import connect_device
from protocol.client.device import Device, publish
from protocol.profiles import Profile
from protocol.randomness import DrbgRandom, RecordingRandom
from protocol.relay.schema import Address
from protocol.session import Address as PeerAddress
from protocol.session import SessionManager
from protocol.store import MemoryStore

T = TypeVar("T")

PREKEYS: Final = 4
RUN_TIMEOUT: Final = 60.0


def run_bounded(coro: Awaitable[T], timeout: float = RUN_TIMEOUT) -> T:
    """Run ``coro`` in a fresh event loop, cancelled after ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@dataclass
class Party:
    """A device on the relay, its store, and the log of its random draws."""

    device: Device
    store: MemoryStore

    @property
    def address(self) -> Address:
        return self.device.address


def peer_address(address: Address) -> PeerAddress:
    return PeerAddress(address.user, address.device)


async def create_party(
    port: int,
    address: Address,
    profile: Profile,
    seed: bytes,
    log: SecretLog | None = None,
    endorser: Party | None = None,
) -> Party:
    """Make a device's keys, register it with the relay and publish its prekeys.

    A further device of a user registers with ``endorser``'s endorsement.
    """
    rng = RecordingRandom(DrbgRandom(seed + f"{address.user}.{address.device}".encode()))
    store = MemoryStore()
    manager = SessionManager.create(store, peer_address(address), profile, now=0, rng=rng)
    manager.generate_one_time_prekeys(PREKEYS)
    if profile.kem is not None:
        manager.generate_kem_prekeys(PREKEYS)
    identity = manager.identity_key_pair
    endorsement = None if endorser is None else endorser.device.endorse(address, identity.public)
    client = await connect_device(port, address.user, address.device, identity, rng, endorsement)
    try:
        await publish(client, manager)
    except BaseException:
        await client.close()
        raise
    return Party(Device(address, manager, client, rng, log), store)


def relay_files(folder: Path) -> Iterator[tuple[str, bytes]]:
    """Everything the relay wrote: its SQLite database (with WAL and shared memory) and capture."""
    for path in sorted(folder.iterdir()):
        yield path.name, path.read_bytes()
