"""The relay's operational limits in one place (spec/relay.md §6).

Field sizes of the wire protocol are fixed in ``schema.py`` (they are part
of the protocol); the limits here are a deployment's choice and may be
lowered, for example by tests that exercise them at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import InvalidArgument
from protocol.relay.framing import LENGTH_PREFIX, MAX_FRAME_LEN
from protocol.relay.schema import MAX_DEVICES

# What asyncio holds per connection besides one frame each way: the stream
# reader's buffer (twice its 64 KiB limit before it pauses the socket) and
# the transport's write high-water mark (64 KiB) that ``drain`` waits under.
STREAM_SLACK = 3 * 64 * 1024


@dataclass(frozen=True, slots=True)
class RelayLimits:
    # Messages queued per device mailbox; a send beyond it is LIMIT_EXCEEDED,
    # so one silent device cannot make the server's disk grow without bound.
    max_queued: int = 10_000
    # One-time prekeys stored per device and kind (libsignal clients keep 100).
    max_prekeys: int = 1_000
    # Devices registered under one user name (the first binds the name, the
    # others need its authority, spec/relay.md §3.1); at most schema.MAX_DEVICES.
    max_devices_per_user: int = 16
    # Devices in one call: fan-out costs the server members - 1 writes per frame.
    max_call_members: int = 64
    # Calls one connection may be in at once.
    max_calls_per_connection: int = 4
    # Open connections; the next one is refused with LIMIT_EXCEEDED and closed.
    max_connections: int = 1024
    # Of those, connections that have not authenticated yet: a smaller cap, so
    # connections that never authenticate cannot take the places of devices.
    # A burst of devices connecting at once may meet it; they retry.
    max_unauthenticated: int = 256
    # Bytes waiting to be written to one slow receiver; pushes for it (media,
    # mail and call events) are dropped beyond this (real-time media is
    # useless late), responses still wait. Times max_connections, it bounds
    # what pushes can hold in the relay (spec/relay.md §6.1).
    max_outbound_buffer: int = 256 * 1024
    # Seconds a new connection has to authenticate, counted from its accept,
    # whatever it sends meanwhile.
    auth_timeout: float = 10.0
    # Seconds to receive the rest of a frame once its length arrived, and to
    # hand a response to a client that does not read.
    frame_timeout: float = 10.0
    # Seconds an authenticated connection may stay silent.
    idle_timeout: float = 600.0

    def __post_init__(self) -> None:
        if self.max_unauthenticated < 1 or self.max_connections < 1:
            raise InvalidArgument("the relay admits at least one connection")
        if not 0 < self.max_devices_per_user <= MAX_DEVICES:
            raise InvalidArgument(f"max_devices_per_user must be in 1..{MAX_DEVICES}")

    def memory_bound(self) -> int:
        """The bytes of buffers the relay can hold, whatever its clients do (spec/relay.md §6.1).

        Per connection: pushes only while its write buffer is within
        ``max_outbound_buffer`` (so at most that plus one frame), one
        response frame being written and one request frame being read, and
        asyncio's stream slack.
        """
        frame = LENGTH_PREFIX + MAX_FRAME_LEN
        per_connection = self.max_outbound_buffer + 3 * frame + STREAM_SLACK
        return self.max_connections * per_connection
