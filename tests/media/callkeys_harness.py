"""A small call harness for the call-key tests: devices, a manual clock, key delivery."""

from __future__ import annotations

from collections.abc import Iterable

from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.limits import DEFAULT_MEDIA_LIMITS, MediaLimits
from protocol.media.sender import KeyDelivery
from protocol.randomness import DrbgRandom

CALL_ID = bytes(range(16))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Call:
    """Devices each with a sender and a receiver; MediaKeys are handed over directly.

    In an application the deliveries travel over Double Ratchet sessions; the
    session tests do that. Here only call-key behaviour is under test.
    """

    def __init__(
        self, devices: Iterable[str], limits: MediaLimits = DEFAULT_MEDIA_LIMITS, seed: bytes = b"t"
    ) -> None:
        self.clock = Clock()
        self.limits = limits
        self.rng = DrbgRandom(seed)
        self.senders: dict[str, CallSender] = {}
        self.receivers: dict[str, CallReceiver] = {}
        names = list(devices)
        for device in names:
            self._add(device, names)
        for device in names:
            sender, deliveries = CallSender.start(
                CALL_ID, device, names, clock=self.clock, rng=self.rng, limits=limits
            )
            self.senders[device] = sender
            self.deliver(device, deliveries)

    def _add(self, device: str, members: list[str]) -> None:
        self.receivers[device] = CallReceiver(
            CALL_ID, device, members, clock=self.clock, limits=self.limits
        )

    def deliver(self, sender: str, deliveries: list[KeyDelivery]) -> None:
        for device, message in deliveries:
            self.receivers[device].install(sender, message)

    def join(self, device: str) -> None:
        """``device`` joins: everyone ratchets, the joiner gets the current keys."""
        members = [*self.senders, device]
        self._add(device, members)
        for name in list(self.senders):
            self.receivers[name].add_members([device])
            self.deliver(name, self.senders[name].join([device], rng=self.rng))
        sender, deliveries = CallSender.start(
            CALL_ID, device, members, clock=self.clock, rng=self.rng, limits=self.limits
        )
        self.senders[device] = sender
        self.deliver(device, deliveries)

    def leave(self, device: str) -> None:
        """``device`` leaves: everyone else starts a new generation for the rest."""
        del self.senders[device]
        for name, sender in self.senders.items():
            self.receivers[name].remove_members([device])
            self.deliver(name, sender.leave([device], rng=self.rng))
