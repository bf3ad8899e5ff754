"""``e2ee demo``: messages and a group video call through the untrusted relay (spec/relay.md §8).

Starts a relay on an ephemeral loopback port with a temporary database and
a capture file, then five devices (alice.1, bob.1, bob.2, carol.1, dave.1,
profile pq-default) that register, publish prekeys, set up PQXDH sessions
through bundles the relay hands out, and exchange text messages. Then a
group call of synthetic video (key frames of 30-50 KB once a second, deltas
of 1-8 KB, 30 frames per second): alice, bob.1 and carol start; carol
leaves (every remaining sender starts a new key generation, RFC 9605 §5.1);
dave joins (every sender ratchets one step, the joiner gets the new step).
MediaKey messages travel over the Double Ratchet sessions through the
relay; SFrame frames are fanned out by the relay.

The run succeeds only if every frame a member was entitled to decrypted,
and every frame it was not entitled to failed when handed to it directly
(as if the relay colluded): the joiner against frames from before its join,
the leaver against frames under the generations made after it left. Frames
in the rotation delay after a leave (``MediaLimits.rotation_delay``) are
still under a key the leaver holds; the relay does not forward them to it,
and the summary counts them separately instead of claiming them.

Media time is simulated (frame n is at n / 30 s) unless ``--realtime``.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from protocol.errors import ProtocolError
from protocol.profiles import PQ_DEFAULT
from protocol.randomness import SYSTEM_RANDOM, DrbgRandom, Random, RecordingRandom
from protocol.relay.call import (
    FPS,
    SHORT_CALL_LIMITS,
    Call,
    Member,
    SentFrame,
    SimClock,
    media_id,
)
from protocol.relay.device import TEXT, Device, Received
from protocol.relay.harness import running_relay
from protocol.relay.schema import Address
from protocol.relay.secrets import SecretLog
from protocol.relay.server import RelayServer

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


@dataclass
class DemoReport:
    members: dict[str, Member]
    devices: list[Device]
    relay: RelayServer
    frames: list[SentFrame]
    capture: Path
    elapsed: float
    messages_expected: int
    messages_ok: int
    delay_window_frames: int = 0
    entitlement_checks: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        failures = sum(m.failures for m in self.members.values())
        failures += sum(d.failures for d in self.devices)
        return (
            not self.violations
            and failures == 0
            and self.messages_ok == self.messages_expected
            and self.entitlement_checks > 0
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
    devices = []
    for user, number in DEVICES:
        address = Address(user, number)
        rng = _device_rng(options, media_id(address))
        device = await Device.create(
            relay.port, address, PQ_DEFAULT, rng, now=0, prekeys=DEMO_PREKEYS, secrets=log
        )
        devices.append(device)
    return devices


async def _exchange_messages(devices: list[Device], rng: Random) -> tuple[int, int]:
    """Every device writes to every device of every other user, then they all answer.

    Returns (messages sent, messages that arrived intact).
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
    left = sum(len(texts) for texts in expected.values())
    total = sum(d.sent for d in devices)
    return total, total - left


def _check_text(
    got: Received, recipient: Device, expected: dict[tuple[Address, Address], list[bytes]]
) -> None:
    queue = expected.get((got.sender, recipient.address), [])
    if got.kind == TEXT and queue and queue[0] == got.body:
        queue.pop(0)


# --- The call ---------------------------------------------------------------------------------


# --- Entitlement (what a member must not decrypt) ---------------------------------------------


def check_not_entitled(call: Call, report: DemoReport) -> None:
    """Hand each member the frames it was not entitled to; every one must fail.

    The leaver is exempt only for frames inside the rotation delay (plus one
    frame for rounding) that still use a generation it holds; a sender that
    failed to rotate would show up as frames after the delay that decrypt.
    """
    delay = math.ceil(DEMO_MEDIA_LIMITS.rotation_delay * FPS) + 1
    for name, left in call.left_at.items():
        member = call.members[name]
        for frame in call.frames:
            if frame.tick < left or frame.sender == name or frame.sender not in _known(member):
                continue
            in_delay = frame.tick < left + delay
            if in_delay and frame.generation <= _max_generation(member, frame.sender):
                report.delay_window_frames += 1
                continue
            _must_fail(member, frame, report, "after it left")
    for name, joined in call.joined_at.items():
        member = call.members[name]
        for frame in call.frames:
            if frame.tick < joined and frame.sender in _known(member):
                _must_fail(member, frame, report, "before it joined")


def _known(member: Member) -> frozenset[str]:
    assert member.receiver is not None
    return frozenset(member.receiver.state.senders)


def _max_generation(member: Member, sender: str) -> int:
    assert member.receiver is not None
    return max(g.generation for g in member.receiver.state.senders[sender])


def _must_fail(member: Member, frame: SentFrame, report: DemoReport, why: str) -> None:
    assert member.receiver is not None
    report.entitlement_checks += 1
    try:
        member.receiver.decrypt(frame.sender, frame.frame)
    except ProtocolError:
        member.refused_as_expected += 1
        return
    report.violations.append(
        f"{member.media_id} decrypted {frame.sender}'s frame {frame.tick} {why}"
    )


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
        f"[t={call.clock.now + 1 / FPS:4.1f}s] in call: {' '.join(call.active):<24} "
        f"frames sent {len(call.frames):5d}, decrypted {decrypted:5d}, "
        f"relay {relay.stats.bytes_received + relay.stats.bytes_sent:,} bytes"
    )


async def run_demo(options: DemoOptions) -> DemoReport:
    """Run the whole demo; the caller prints ``summary(report)``."""
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="e2ee-demo-"))
    capture = options.capture or folder / "relay.capture"
    log = SecretLog() if options.secrets_out else None
    try:
        async with running_relay(folder / "relay.db", capture_path=capture) as relay:
            call, devices, sent, ok = await _conversation(relay, options, log)
    finally:
        _remove_database(folder)
    elapsed = time.monotonic() - started
    report = DemoReport(call.members, devices, relay, call.frames, capture, elapsed, sent, ok)
    check_not_entitled(call, report)
    if log is not None and options.secrets_out is not None:
        _collect_final(call, devices, log)
        log.write(options.secrets_out)
    return report


async def _conversation(
    relay: RelayServer, options: DemoOptions, log: SecretLog | None
) -> tuple[Call, list[Device], int, int]:
    """Devices, their messages and their call; returns (call, devices, sent, intact)."""
    rng = _device_rng(options, "demo")
    devices = await _create_devices(relay, options, log)
    try:
        sent, ok = await _exchange_messages(devices, rng)
        options.progress(f"messages: {ok} of {sent} decrypted")
        call_id = rng.draw("call_id", 16)
        if log is not None:
            log.add("call_id", call_id)
        members = [d for d in devices if media_id(d.address) in (*FIRST_MEMBERS, JOINER)]
        room = rng.draw("relay_room_id", 16)
        call = Call(members, call_id, room, SimClock(), DEMO_MEDIA_LIMITS)
        await _run_call(call, options, relay)
    finally:
        for device in devices:
            await device.close()
    return call, devices, sent, ok


def _remove_database(folder: Path) -> None:
    """The relay's database is scratch; the capture, if it is in the folder, stays."""
    for path in folder.glob("relay.db*"):
        path.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


def _collect_final(call: Call, devices: list[Device], log: SecretLog) -> None:
    for member in call.members.values():
        for state in (member.sender, member.receiver):
            if state is not None:
                member.device.collect(state.state)
    for frame in call.frames:
        log.add("frame_plaintext", frame.plaintext)
    for device in devices:
        device.collect(None)


def summary(report: DemoReport) -> str:
    """The table printed at the end of ``e2ee demo``."""
    columns = ("sent", "received", "decrypted", "refused*", "failures", "rekeys")
    header = f"{'participant':<11}" + "".join(f"{c:>10}" for c in columns)
    lines = [header, "-" * len(header)]
    for m in report.members.values():
        counts = (
            m.frames_sent,
            m.frames_received,
            m.frames_decrypted,
            m.refused_as_expected,
            m.failures,
            m.rekeys,
        )
        lines.append(f"{m.media_id:<11}" + "".join(f"{c:10d}" for c in counts))
    stats = report.relay.stats
    lines += [
        "* frames handed to a member not entitled to them; each must fail",
        f"messages: {report.messages_ok}/{report.messages_expected} decrypted "
        f"(text and MediaKey: {sum(d.sent for d in report.devices)} sent)",
        "frames in the rotation delay after the leave (not forwarded to the leaver): "
        f"{report.delay_window_frames}",
        f"relay: {stats.bytes_received:,} bytes in, {stats.bytes_sent:,} bytes out, "
        f"{stats.media_forwarded} frames forwarded, {stats.media_dropped} dropped, "
        f"{stats.connections} connections",
        f"capture: {report.capture}",
        f"elapsed: {report.elapsed:.1f} s",
        "RESULT: " + ("OK" if report.ok else "FAILED " + "; ".join(report.violations)),
    ]
    return "\n".join(lines)


def main(options: DemoOptions) -> int:
    """``e2ee demo``: exit 0 only if every entitled frame decrypted and no other did."""
    report = asyncio.run(run_demo(options))
    print(summary(report))
    return 0 if report.ok else 1
