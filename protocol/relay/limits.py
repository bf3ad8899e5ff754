"""The relay's operational limits in one place (spec/relay.md §6).

Field sizes of the wire protocol are fixed in ``schema.py`` (they are part
of the protocol); the limits here are a deployment's choice and may be
lowered, for example by tests that exercise them at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RelayLimits:
    # Messages queued per device mailbox; a send beyond it is LIMIT_EXCEEDED,
    # so one silent device cannot make the server's disk grow without bound.
    max_queued: int = 10_000
    # One-time prekeys stored per device and kind (libsignal clients keep 100).
    max_prekeys: int = 1_000
    # Devices in one call: fan-out costs the server members - 1 writes per frame.
    max_call_members: int = 64
    # Calls one connection may be in at once.
    max_calls_per_connection: int = 4
    # Open connections; the next one is refused with LIMIT_EXCEEDED and closed.
    max_connections: int = 1024
    # Bytes waiting to be written to one slow receiver; media for it is dropped
    # beyond this (real-time media is useless late), responses still wait.
    max_outbound_buffer: int = 4 * 1024 * 1024
    # Seconds a new connection has to authenticate.
    auth_timeout: float = 10.0
    # Seconds to receive the rest of a frame once its length arrived, and to
    # hand a response to a client that does not read.
    frame_timeout: float = 10.0
    # Seconds an authenticated connection may stay silent.
    idle_timeout: float = 600.0
