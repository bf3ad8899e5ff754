"""``e2ee demo``: messages and a group video call through the untrusted relay (spec/relay.md §8).

Starts a relay on an ephemeral loopback port with a temporary database and
a capture file, then five devices (alice.1, bob.1, bob.2, carol.1, dave.1,
profile pq-default) that register, publish prekeys, set up PQXDH sessions
through bundles the relay hands out, and exchange text messages. Then a
group call of synthetic video (key frames of 30-50 KB once a second, deltas
of 1-8 KB, 30 frames per second; real video with ``--video``, spec/video.md)
between one device of each user: alice.1, bob.1 and carol.1 start; carol
leaves (every remaining sender starts a new key generation, RFC 9605 §5.1);
dave joins (every sender ratchets one step, the joiner gets the new step).
bob.2, the fifth device, takes part in the messages only: a call is joined
by a device, not by a user. MediaKey
messages travel over the Double Ratchet sessions through the relay; SFrame
frames are fanned out by the relay.

The run succeeds only if every message and every frame a member was
entitled to decrypted, and every frame it was not entitled to failed when
handed to it directly (``entitlement``).

Media time is simulated (frame n is at n / 30 s) unless ``--realtime``; the
wall time is what the run took.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from protocol.audit.secrets import SecretLog
from protocol.client.device import TEXT, Device, Received
from protocol.demo.call import (
    SHORT_CALL_LIMITS,
    Call,
    Member,
    SentFrame,
    SimClock,
    media_id,
)
from protocol.demo.entitlement import Entitlement, check_not_entitled
from protocol.demo.media import FPS, CallMedia
from protocol.errors import InvalidArgument
from protocol.profiles import PQ_DEFAULT, Profile
from protocol.randomness import SYSTEM_RANDOM, DrbgRandom, Random, RecordingRandom
from protocol.relay.harness import running_relay
from protocol.relay.schema import Address
from protocol.relay.server import RelayServer, RelayStats

DEVICES: Final = (("alice", 1), ("bob", 1), ("bob", 2), ("carol", 1), ("dave", 1))
FIRST_MEMBERS: Final = ("alice.1", "bob.1", "carol.1")
LEAVER, JOINER = "carol.1", "dave.1"
DEMO_MEDIA_LIMITS: Final = SHORT_CALL_LIMITS
# One-time prekeys (X25519 and ML-KEM) each device publishes: fewer than the
# four sessions each device answers, so the relay also hands out bundles with
# no one-time prekey left (the last-resort KEM prekey, PQXDH §3.3).
DEMO_PREKEYS: Final = 2


@dataclass
class DemoOptions:
    seconds: float = 4.0
    realtime: bool = False
    capture: Path | None = None
    secrets_out: Path | None = None
    seed: bytes | None = None
    progress: Callable[[str], None] = lambda line: None
    media: CallMedia | None = None  # the frames (default: synthetic; ``--video``: real video)
    profile: Profile = PQ_DEFAULT  # every device's session profile


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """Session messages through the relay: text, then the call's MediaKey messages."""

    text_sent: int
    text_ok: int
    keys_sent: int
    keys_ok: int


@dataclass
class DemoReport:
    members: dict[str, Member]
    devices: list[Device]
    stats: RelayStats
    frames: list[SentFrame]
    capture: Path | None
    wall_seconds: float
    media_seconds: float
    messages: MessageCounts
    entitlement: Entitlement

    @property
    def ok(self) -> bool:
        failures = sum(m.failures for m in self.members.values())
        failures += sum(d.failures for d in self.devices)
        counts = self.messages
        return (
            not self.entitlement.violations
            and failures == 0
            and counts.text_ok == counts.text_sent
            and counts.keys_ok == counts.keys_sent
            and self.entitlement.checks > 0
        )


# --- Setup and messaging ---------------------------------------------------------------


def _device_rng(options: DemoOptions, name: str) -> RecordingRandom:
    inner: Random = (
        SYSTEM_RANDOM if options.seed is None else DrbgRandom(options.seed + name.encode())
    )
    return RecordingRandom(inner)


async def _create_devices(
    relay: RelayServer, options: DemoOptions, log: SecretLog | None
) -> list[Device]:
    devices: list[Device] = []
    for user, number in DEVICES:
        address = Address(user, number)
        rng = _device_rng(options, media_id(address))
        # bob.2 registers with the endorsement of bob.1, bob's first device.
        endorser = next((d for d in devices if d.address.user == user), None)
        device = await Device.create(
            relay.port,
            address,
            options.profile,
            rng,
            now=0,
            prekeys=DEMO_PREKEYS,
            secrets=log,
            endorser=endorser,
        )
        devices.append(device)
    return devices


async def _exchange_messages(devices: list[Device], rng: Random) -> int:
    """Every device writes to every device of every other user, then they all answer.

    Returns how many messages arrived intact.
    """
    expected: dict[tuple[Address, Address], list[bytes]] = {}
    for round_name in ("hello", "reply"):
        for sender in devices:
            for recipient in devices:
                if recipient.address.user == sender.address.user:
                    continue
                tag = rng.draw("demo_text_tag", 8).hex()
                text = f"{round_name} from {media_id(sender.address)} #{tag}".encode()
                await sender.send(recipient.address, TEXT, text)
                expected.setdefault((sender.address, recipient.address), []).append(text)
        for recipient in devices:
            for got in await recipient.receive():
                _check_text(got, recipient, expected)
    return sum(d.sent for d in devices) - sum(len(texts) for texts in expected.values())


def _check_text(
    got: Received, recipient: Device, expected: dict[tuple[Address, Address], list[bytes]]
) -> None:
    queue = expected.get((got.sender, recipient.address), [])
    if got.kind == TEXT and queue and queue[0] == got.body:
        queue.pop(0)


# --- Running it ----------------------------------------------------------------------------------


async def _run_call(call: Call, options: DemoOptions, relay: RelayServer) -> None:
    ticks = max(int(options.seconds * FPS), 6)
    leave_tick, join_tick = int(ticks * 0.35), int(ticks * 0.65)
    await call.start(FIRST_MEMBERS)
    started = time.monotonic()
    for tick in range(ticks):
        call.clock.now = tick / FPS
        if tick == leave_tick:
            await call.leave(LEAVER, tick)
        if tick == join_tick:
            await call.join(JOINER, tick)
        await call.tick(tick)
        if tick % FPS == FPS - 1:
            _progress(call, relay, options)
        if options.realtime:
            await asyncio.sleep(max(0.0, started + (tick + 1) / FPS - time.monotonic()))
    for name in list(call.active):
        await call.members[name].device.client.leave(call.room)


def _progress(call: Call, relay: RelayServer, options: DemoOptions) -> None:
    decrypted = sum(m.frames_decrypted for m in call.members.values())
    options.progress(
        f"[media time {call.clock.now + 1 / FPS:4.1f} s] in call: {' '.join(call.active):<24} "
        f"frames sent {len(call.frames):5d}, decrypted {decrypted:5d}, "
        f"relay {relay.stats.bytes_received + relay.stats.bytes_sent:,} bytes"
    )


async def run_demo(options: DemoOptions) -> DemoReport:
    """Run the whole demo; ``summary(report)`` is what ``e2ee demo`` prints.

    The relay's database is scratch; so is its capture unless
    ``options.capture`` names a file to keep.
    """
    if not options.seconds > 0:
        raise InvalidArgument("the call lasts a positive number of seconds")
    started = time.monotonic()
    log = SecretLog() if options.secrets_out else None
    with tempfile.TemporaryDirectory(prefix="e2ee-demo-") as folder:
        capture = options.capture or Path(folder) / "relay.capture"
        async with running_relay(Path(folder) / "relay.db", capture_path=capture) as relay:
            call, devices, counts = await _conversation(relay, options, log)
        call.media.relay_capture(capture)
    report = DemoReport(
        call.members,
        devices,
        relay.stats,
        call.frames,
        options.capture,
        time.monotonic() - started,
        call.clock.now + 1 / FPS,
        counts,
        check_not_entitled(call),
    )
    if log is not None and options.secrets_out is not None:
        _collect_final(call, devices, log)
        log.write(options.secrets_out)
    return report


async def _conversation(
    relay: RelayServer, options: DemoOptions, log: SecretLog | None
) -> tuple[Call, list[Device], MessageCounts]:
    """Devices, their messages and their call."""
    rng = _device_rng(options, "demo")
    devices = await _create_devices(relay, options, log)
    try:
        text_ok = await _exchange_messages(devices, rng)
        text_sent, text_received = sum(d.sent for d in devices), sum(d.received for d in devices)
        options.progress(f"text messages: {text_ok} of {text_sent} decrypted")
        call_id = rng.draw("call_id", 16)
        if log is not None:
            log.add("call_id", call_id)
        members = [d for d in devices if media_id(d.address) in (*FIRST_MEMBERS, JOINER)]
        room = rng.draw("relay_room_id", 16)
        call = Call(members, call_id, room, SimClock(), DEMO_MEDIA_LIMITS, options.media)
        await _run_call(call, options, relay)
    finally:
        for device in devices:
            await device.close()
    keys_sent = sum(d.sent for d in devices) - text_sent
    keys_ok = sum(d.received for d in devices) - text_received
    return call, devices, MessageCounts(text_sent, text_ok, keys_sent, keys_ok)


def _collect_final(call: Call, devices: list[Device], log: SecretLog) -> None:
    for member in call.members.values():
        for state in (member.sender, member.receiver):
            if state is not None:
                member.device.collect(state.state)
    for frame in call.frames:
        log.add("frame_plaintext", frame.plaintext)
    for device in devices:  # every session as the run left it, and the last draws
        for peer in device.manager.peers():
            device.collect(device.manager.session_record(peer))
        device.collect(None)
