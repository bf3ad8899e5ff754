"""Running a relay and its devices in one process (spec/relay.md §8).

Used by ``e2ee relay``, ``e2ee demo`` and the tests: a relay that is always
stopped (``running_relay``), and a device that connects and proves its
identity in one call (``connect_device``).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from protocol.prekeys import IdentityKeyPair
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.relay.client import RelayClient
from protocol.relay.limits import RelayLimits
from protocol.relay.server import RelayServer

LOOPBACK = "127.0.0.1"


@asynccontextmanager
async def running_relay(
    db_path: Path | str,
    *,
    port: int = 0,
    limits: RelayLimits | None = None,
    capture_path: Path | str | None = None,
) -> AsyncIterator[RelayServer]:
    """A started relay on loopback, stopped on exit whatever happens."""
    server = RelayServer(db_path, port=port, limits=limits, capture_path=capture_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def connect_device(
    port: int, user: str, device: int, identity: IdentityKeyPair, rng: Random = SYSTEM_RANDOM
) -> RelayClient:
    """Connect to the relay on loopback and authenticate as (user, device)."""
    client = await RelayClient.connect(LOOPBACK, port)
    try:
        await client.authenticate(user, device, identity, rng)
    except BaseException:
        await client.close()
        raise
    return client


async def serve_until_signalled(
    db_path: Path | str, host: str, port: int, capture_path: Path | str | None
) -> None:
    """``e2ee relay``: serve until SIGINT or SIGTERM; print the bound port first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = RelayServer(db_path, host=host, port=port, capture_path=capture_path)
    await server.start()
    try:
        print(f"relay listening on {host}:{server.port}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
