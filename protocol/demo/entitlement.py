"""What a call member must not decrypt, checked by handing it the frames (spec/relay.md §8).

After the call, every member is handed directly (as if the relay colluded)
the frames it was not entitled to: the joiner those sent before it joined,
the leaver those under the generations made after it left. Every one must
fail. Frames in the rotation delay after a leave
(``MediaLimits.rotation_delay``) are still under a key the leaver holds; the
relay does not forward them to it, and they are counted separately instead
of claimed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from protocol.demo.call import Call, Member, SentFrame
from protocol.demo.media import FPS
from protocol.errors import ProtocolError


@dataclass
class Entitlement:
    """The outcome: how many frames were handed over, and any that decrypted."""

    checks: int = 0
    delay_window_frames: int = 0
    violations: list[str] = field(default_factory=list)
    refused: list[tuple[str, str, int]] = field(default_factory=list)  # member, sender, tick


def check_not_entitled(call: Call) -> Entitlement:
    """Hand each member the frames it was not entitled to; every one must fail.

    The leaver is exempt only for frames inside the rotation delay (plus one
    frame for rounding) that still use a generation it holds; a sender that
    failed to rotate would show up as frames after the delay that decrypt.
    """
    outcome = Entitlement()
    delay = math.ceil(call.limits.rotation_delay * FPS) + 1
    for name, left in call.left_at.items():
        member = call.members[name]
        for frame in call.frames:
            if frame.tick < left or frame.sender == name or frame.sender not in _known(member):
                continue
            in_delay = frame.tick < left + delay
            if in_delay and frame.generation <= _max_generation(member, frame.sender):
                outcome.delay_window_frames += 1
                continue
            _must_fail(member, frame, outcome, "after it left")
    for name, joined in call.joined_at.items():
        member = call.members[name]
        for frame in call.frames:
            if frame.tick < joined and frame.sender in _known(member):
                _must_fail(member, frame, outcome, "before it joined")
    return outcome


def _known(member: Member) -> frozenset[str]:
    assert member.receiver is not None
    return frozenset(member.receiver.state.senders)


def _max_generation(member: Member, sender: str) -> int:
    assert member.receiver is not None
    return max(g.generation for g in member.receiver.state.senders[sender])


def _must_fail(member: Member, frame: SentFrame, outcome: Entitlement, why: str) -> None:
    assert member.receiver is not None
    outcome.checks += 1
    try:
        member.receiver.decrypt(frame.sender, frame.frame)
    except ProtocolError:
        member.refused_as_expected += 1
        outcome.refused.append((member.media_id, frame.sender, frame.tick))
        return
    outcome.violations.append(
        f"{member.media_id} decrypted {frame.sender}'s frame {frame.tick} {why}"
    )
