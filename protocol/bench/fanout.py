"""MediaKey fan-out: one sender's key distribution to every device of a call (spec/media.md §5).

One unit is a whole distribution: ``CallSender.start`` draws the base key and
encodes a MediaKey per device; each MediaKey is encrypted over the sender's
ratchet session with that device (``ratchet_encrypt``); each device decrypts
it (``ratchet_decrypt``) and installs it (``CallReceiver.install``, which
derives the frame key). The sessions exist before and are reused; each
distribution is a new call.
"""

from __future__ import annotations

import os
from functools import cache

from protocol.bench.floor import MESSAGE, sequence_workload
from protocol.bench.sequences import burst_sequence
from protocol.bench.session_pair import RatchetPair, make_pair
from protocol.bench.timing import Run, Workload
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.profiles import DEFAULT_PROFILE

SENDER = "sender"


def _clock() -> float:
    return 0.0


@cache
def _pairs() -> list[RatchetPair]:
    """Sessions from the sender to each device, made once and grown on demand."""
    return []


def _sessions(devices: int) -> list[RatchetPair]:
    """Sessions whose next sender message rides on an established chain (no DH step)."""
    pairs = _pairs()
    while len(pairs) < devices:
        pair = make_pair(DEFAULT_PROFILE)
        pair.decrypt(1, pair.encrypt(0, MESSAGE))  # the DH step of the sender's new chain
        pairs.append(pair)
    return pairs[:devices]


def _distribute(
    sessions: list[RatchetPair], receivers: dict[str, CallReceiver], call_id: bytes
) -> None:
    _, deliveries = CallSender.start(call_id, SENDER, receivers, clock=_clock)
    for index, delivery in enumerate(deliveries):
        pair = sessions[index]
        media_key = pair.decrypt(1, pair.encrypt(0, delivery.message))
        receivers[delivery.device].install(SENDER, media_key)


def _device_names(devices: int) -> list[str]:
    # Zero-padded so that the sorted delivery order is the session order.
    return [f"device-{i:04d}" for i in range(devices)]


def fanout_workloads(devices: int) -> tuple[Workload, Workload]:
    """(ours, floor) for one key distribution to ``devices`` devices.

    Floor: the base key draw and the sender's own frame key, then per
    device the burst message sequence of the default profile (the MediaKey
    rides on an established chain) and the receiver's frame key.
    """
    sessions = _sessions(devices)
    names = _device_names(devices)

    def prepare(units: int) -> Run:
        calls = []
        for _ in range(units):
            call_id = os.urandom(16)
            receivers = {
                name: CallReceiver(call_id, name, [SENDER, *names], clock=_clock) for name in names
            }
            calls.append((call_id, receivers))

        def run() -> None:
            for call_id, receivers in calls:
                _distribute(sessions, receivers, call_id)

        return run

    per_device = [*burst_sequence(DEFAULT_PROFILE), "frame_key"]
    sequence = ["media_base_key", "frame_key", *per_device * devices]
    ours = Workload(f"ours/fanout/{devices}", prepare)
    return ours, sequence_workload(f"floor/fanout/{devices}", DEFAULT_PROFILE, sequence)
