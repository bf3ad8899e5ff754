"""Running a relay in a process (spec/relay.md §8).

Used by ``e2ee relay``, ``e2ee demo`` and the tests: a relay that is always
stopped (``running_relay``), and one that serves until signalled.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from protocol.relay.limits import RelayLimits
from protocol.relay.server import RelayServer


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
