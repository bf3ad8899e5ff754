"""A group call whose keys travel over sessions through the relay (spec/relay.md §8).

Each member device runs the call-key state machines of spec/media.md: a
``CallSender`` that starts with a fresh generation, ratchets one step when
someone joins and starts a new generation when someone leaves, and a
``CallReceiver`` that installs the MediaKey messages arriving over its
sessions. MediaKey messages go through the relay as ordinary session
messages (``Device.send``); SFrame frames go through it as opaque media
(``RelayClient.send_media``), routed by a room id that is not the call id.
Every frame a member receives is checked against what its sender sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

from protocol.client.device import MEDIA_KEY, Device
from protocol.demo.media import FPS as FPS  # the frame rate, as before the media moved out
from protocol.demo.media import CallMedia, SyntheticMedia
from protocol.errors import ProtocolError
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.limits import MediaLimits
from protocol.media.sender import KeyDelivery
from protocol.relay.schema import Address
from protocol.secrecy import SECRET

FRAME_TIMEOUT: Final = 10.0
# A short rotation delay and grace period, so that a call of a few seconds
# goes through a whole leave: new generation, switch, old key dropped.
# Deployments keep the defaults of spec/media.md.
SHORT_CALL_LIMITS: Final = MediaLimits(rotation_delay=0.5, grace_period=1.0)


def media_id(address: Address) -> str:
    """The device id of the media layer: ``user.device``."""
    return f"{address.user}.{address.device}"


class SimClock:
    """Media time: frame n is at n / FPS seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Member:
    """A device's part in the call and what happened to it."""

    device: Device
    media_id: str
    sender: CallSender | None = None
    receiver: CallReceiver | None = None
    frames_sent: int = 0
    frames_received: int = 0
    frames_decrypted: int = 0
    refused_as_expected: int = 0
    failures: int = 0
    rekeys: int = 0


@dataclass(frozen=True, slots=True)
class SentFrame:
    """A frame as its sender made it: the entitlement checks replay these."""

    sender: str
    tick: int
    plaintext: bytes = field(repr=False, metadata=SECRET)
    frame: bytes = field(repr=False)
    generation: int = 0


class Call:
    """The call as the devices run it; the relay only forwards."""

    def __init__(
        self,
        devices: list[Device],
        call_id: bytes,
        room: bytes,
        clock: SimClock,
        limits: MediaLimits = SHORT_CALL_LIMITS,
        media: CallMedia | None = None,
    ) -> None:
        # The call id inside MediaKey messages stays end to end; the relay
        # routes by a separate room id, so it cannot link the two.
        self.call_id = call_id
        self.room = room
        self.clock = clock
        self.limits = limits
        self.media: CallMedia = SyntheticMedia() if media is None else media
        self.members = {media_id(d.address): Member(d, media_id(d.address)) for d in devices}
        self.active: list[str] = []
        self.frames: list[SentFrame] = []
        self._sent: set[tuple[str, bytes]] = set()
        self.left_at: dict[str, int] = {}
        self.joined_at: dict[str, int] = {}

    def _address(self, member: str) -> Address:
        return self.members[member].device.address

    async def deliver(self, sender: Member, deliveries: list[KeyDelivery]) -> None:
        """Send each MediaKey over the session with its device, then let every device fetch."""
        for delivery in deliveries:
            await sender.device.send(self._address(delivery.device), MEDIA_KEY, delivery.message)
        for name in self.active:
            await self._fetch_keys(self.members[name])

    async def _fetch_keys(self, member: Member) -> None:
        for got in await member.device.receive():
            if got.kind != MEDIA_KEY or member.receiver is None:
                member.failures += 1
                continue
            released = member.receiver.install(media_id(got.sender), got.body)
            for frame in released:
                self._decrypted(member, frame.sender, frame.plaintext)

    def _matches(self, sender: str, plaintext: bytes) -> bool:
        return (sender, plaintext) in self._sent

    def _decrypted(self, member: Member, sender: str, plaintext: bytes) -> bool:
        """Count a frame ``member`` decrypted if ``sender`` sent it, and show it to the media."""
        if not self._matches(sender, plaintext):
            return False
        member.frames_decrypted += 1
        self.media.decrypted(member.media_id, sender, plaintext)
        return True

    async def start(self, names: tuple[str, ...]) -> None:
        for name in names:
            await self.members[name].device.client.join(self.room)
            self.active.append(name)
            self._new_receiver(self.members[name], [n for n in names if n != name])
        for name in names:
            await self._start_sending(self.members[name], [n for n in names if n != name])

    def _new_receiver(self, member: Member, others: list[str]) -> None:
        member.receiver = CallReceiver(
            self.call_id, member.media_id, others, clock=self.clock, limits=self.limits
        )

    async def _start_sending(self, member: Member, others: list[str]) -> None:
        member.sender, deliveries = CallSender.start(
            self.call_id,
            member.media_id,
            others,
            clock=self.clock,
            rng=member.device.rng,
            limits=self.limits,
        )
        member.device.collect(member.sender.state)
        await self.deliver(member, deliveries)

    async def leave(self, name: str, tick: int) -> None:
        leaver = self.members[name]
        await leaver.device.client.leave(self.room)
        self.active.remove(name)
        self.left_at[name] = tick
        for other in self._active_members():
            assert other.sender is not None and other.receiver is not None
            other.receiver.remove_members([name])
            deliveries = other.sender.leave([name], other.device.rng)
            other.rekeys += 1
            other.device.collect(other.sender.state)
            await self.deliver(other, deliveries)

    async def join(self, name: str, tick: int) -> None:
        joiner = self.members[name]
        await joiner.device.client.join(self.room)
        current = list(self.active)
        self.active.append(name)
        self.joined_at[name] = tick
        self._new_receiver(joiner, current)
        for other in (self.members[n] for n in current):
            assert other.sender is not None and other.receiver is not None
            other.receiver.add_members([name])
            deliveries = other.sender.join([name], other.device.rng)
            other.rekeys += 1
            other.device.collect(other.sender.state)
            await self.deliver(other, deliveries)
        await self._start_sending(joiner, current)

    def _active_members(self) -> list[Member]:
        return [self.members[n] for n in self.active]

    async def tick(self, tick: int) -> None:
        """Every active member sends one frame; every member takes what the relay forwards."""
        for member in self._active_members():
            await self._send_frame(member, tick)
        for member in self._active_members():
            await self._take_frames(member, len(self.active) - 1)

    async def _send_frame(self, member: Member, tick: int) -> None:
        assert member.sender is not None
        receivers = [name for name in self.active if name != member.media_id]
        plaintext = self.media.frame(member.media_id, tick, receivers, member.device.rng)
        frame = member.sender.encrypt(plaintext)
        generation = member.sender.state.current.generation
        self.frames.append(SentFrame(member.media_id, tick, plaintext, frame, generation))
        self._sent.add((member.media_id, plaintext))
        await member.device.client.send_media(self.room, frame)
        member.frames_sent += 1

    async def _take_frames(self, member: Member, count: int) -> None:
        assert member.receiver is not None
        for _ in range(count):
            got = await asyncio.wait_for(member.device.client.media.get(), FRAME_TIMEOUT)
            member.frames_received += 1
            sender = media_id(got.sender)
            try:
                plaintext = member.receiver.receive(sender, got.frame)
            except ProtocolError:
                member.failures += 1
                continue
            if plaintext is not None and not self._decrypted(member, sender, plaintext):
                member.failures += 1
