"""The sending side of call keys: sender keys, rekeying and counters (spec/media.md §5).

Each sending device owns one base_key per generation and ratchets it with
RFC 9605 §5.1 ("SFrame 1.0 Ratchet"); frames carry KID = (generation << R) |
step. Every transition is a pure function ``f(state, ...) -> (state', out)``
on an immutable ``SenderState``: a failure raises and the caller keeps the old
state.

* ``start_sender``: generation 0, step 0; its MediaKey goes to every member.
* ``sender_join``: one ratchet step; the joiners get the new step's key (and a
  pending generation, if one is waiting), never an earlier step's.
* ``sender_leave``: a fresh generation sent to those who remain, used for
  frames only ``rotation_delay`` seconds later, so they hold it first.
* ``sender_encrypt``: switches to a due pending generation, steps the ratchet
  before the counter space runs out, makes sure the counter is covered by a
  persisted reservation, and encrypts with the next counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, NamedTuple

from protocol.errors import InvalidArgument, LimitExceeded, ProtocolError, StateCorrupt
from protocol.media.limits import DEFAULT_MEDIA_LIMITS, DEFAULT_R, MediaLimits
from protocol.media.messages import MediaKey, check_call_id, check_device_id, encode_media_key
from protocol.media.sframe import (
    DEFAULT_SUITE,
    MAX_CTR,
    CipherSuite,
    FrameKey,
    derive_frame_key,
    encrypt_frame,
    ratchet_base_key,
    sender_key_kid,
    suite_params,
)
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.secrecy import SECRET

BASE_KEY_LABEL = "media_base_key"


class KeyDelivery(NamedTuple):
    """One encoded MediaKey the caller sends over its session with ``device``."""

    device: str
    message: Annotated[bytes, SECRET]

    def __repr__(self) -> str:
        return f"KeyDelivery(device={self.device!r}, message=<{len(self.message)} bytes redacted>)"


class SendKey(NamedTuple):
    """The key the sender encrypts with now: one (generation, step) and its counters.

    Counters below ``next_ctr`` were used; counters below ``reserved_ctr`` are
    covered by a reservation the caller persisted (spec/media.md §5.4).
    SendKey and SenderState are immutable named tuples rather than frozen
    dataclasses: every frame rebuilds them, and a tuple is the cheapest
    immutable record Python has.
    """

    generation: int
    step: int
    base_key: Annotated[bytes, SECRET]
    frame_key: FrameKey
    next_ctr: int = 0
    reserved_ctr: int = 0

    def with_counters(self, next_ctr: int, reserved_ctr: int) -> SendKey:
        """This key with other counters (a direct constructor call: this is the hot path)."""
        return SendKey(
            self.generation, self.step, self.base_key, self.frame_key, next_ctr, reserved_ctr
        )

    def __repr__(self) -> str:
        return (
            f"SendKey(generation={self.generation}, step={self.step}, next_ctr={self.next_ctr}, "
            f"reserved_ctr={self.reserved_ctr}, base_key=<redacted>)"
        )


@dataclass(frozen=True, slots=True, repr=False)
class PendingKey:
    """A generation already sent to the members, used for frames from ``switch_at`` on."""

    generation: int
    base_key: Annotated[bytes, SECRET]
    switch_at: float

    def __repr__(self) -> str:
        return f"PendingKey(generation={self.generation}, switch_at={self.switch_at})"


class SenderState(NamedTuple):
    """Everything one sending device keeps for one call (its repr has no secrets)."""

    call_id: bytes
    device: str
    suite: CipherSuite
    r: int
    members: frozenset[str]
    current: SendKey
    pending: PendingKey | None
    limits: MediaLimits

    def with_current(self, current: SendKey) -> SenderState:
        """This state with another current key (a direct constructor call: the hot path)."""
        return SenderState(
            self.call_id,
            self.device,
            self.suite,
            self.r,
            self.members,
            current,
            self.pending,
            self.limits,
        )


PersistHook = Callable[[SenderState], None]
"""Durably stores a checkpoint before any counter it covers is used (spec/media.md §5.4)."""


def _send_key(suite: CipherSuite, r: int, generation: int, step: int, base_key: bytes) -> SendKey:
    kid = sender_key_kid(generation, step, r)
    return SendKey(generation, step, base_key, derive_frame_key(suite, base_key, kid))


def _media_key(state: SenderState, generation: int, step: int, base_key: bytes) -> MediaKey:
    return MediaKey(state.call_id, state.device, state.suite, state.r, generation, step, base_key)


def _deliver(devices: Iterable[str], keys: Iterable[MediaKey]) -> list[KeyDelivery]:
    messages = [encode_media_key(key) for key in keys]
    return [KeyDelivery(device, message) for device in sorted(devices) for message in messages]


def _devices(state: SenderState, devices: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(check_device_id(device) for device in devices)
    if not chosen or state.device in chosen:
        raise InvalidArgument("name at least one device other than the sender")
    return chosen


def start_sender(
    call_id: bytes,
    device: str,
    members: Iterable[str],
    *,
    rng: Random = SYSTEM_RANDOM,
    suite: CipherSuite = DEFAULT_SUITE,
    r: int = DEFAULT_R,
    limits: MediaLimits = DEFAULT_MEDIA_LIMITS,
    base_key: bytes | None = None,
) -> tuple[SenderState, list[KeyDelivery]]:
    """Start sending in a call: draw generation 0 and address it to every member.

    ``base_key`` replaces the draw when the key is agreed instead (the 1:1
    contributory mode, spec/media.md §4); then nothing needs delivering.
    """
    check_call_id(call_id)
    check_device_id(device)
    group = frozenset(check_device_id(member) for member in members) - {device}
    nh = suite_params(suite).nh
    key = rng.draw(BASE_KEY_LABEL, nh) if base_key is None else base_key
    first = MediaKey(call_id, device, suite, r, 0, 0, key)  # checks suite, R and key length
    current = _send_key(first.cipher_suite, r, 0, 0, key)
    state = SenderState(call_id, device, first.cipher_suite, r, group, current, None, limits)
    return state, ([] if base_key is not None else _deliver(group, [first]))


def _next_generation(state: SenderState) -> int:
    newest = state.current.generation if state.pending is None else state.pending.generation
    if newest + 1 >= 1 << (64 - state.r):
        raise LimitExceeded("the sender's key generations are exhausted")
    return newest + 1


def _rotate(state: SenderState, rng: Random, now: float) -> PendingKey:
    base_key = rng.draw(BASE_KEY_LABEL, suite_params(state.suite).nh)
    return PendingKey(_next_generation(state), base_key, now + state.limits.rotation_delay)


def _ratchet_step(state: SenderState) -> SendKey:
    """The current key one RFC 9605 §5.1 ratchet step later, with fresh counters."""
    current = state.current
    base_key = ratchet_base_key(state.suite, current.base_key)
    return _send_key(state.suite, state.r, current.generation, current.step + 1, base_key)


def sender_join(
    state: SenderState, devices: Iterable[str], now: float, rng: Random = SYSTEM_RANDOM
) -> tuple[SenderState, list[KeyDelivery]]:
    """Add devices to the call (RFC 9605 §5.1 "ratchet forward" on join).

    The current key takes one ratchet step and the joiners receive that step,
    from which no earlier step can be computed; the other members derive it
    themselves from the KID of the next frame. A pending generation is sent
    to the joiners too: no frame has used it yet. At the last step (2^R - 1)
    a join starts a new generation for everyone instead (drawing a key), and
    the joiners receive only that.
    """
    joiners = _devices(state, devices)
    if joiners & state.members:
        raise InvalidArgument("a joining device is already a member")
    members = state.members | joiners
    if state.current.step + 1 < 1 << state.r:
        stepped = _ratchet_step(state)
        new = state._replace(members=members, current=stepped)
        keys = [_media_key(new, stepped.generation, stepped.step, stepped.base_key)]
        if new.pending is not None:
            keys.append(_media_key(new, new.pending.generation, 0, new.pending.base_key))
        return new, _deliver(joiners, keys)
    pending = state.pending or _rotate(state, rng, now)
    new = state._replace(members=members, pending=pending)
    receivers = joiners if state.pending is not None else members
    return new, _deliver(receivers, [_media_key(new, pending.generation, 0, pending.base_key)])


def sender_leave(
    state: SenderState, devices: Iterable[str], now: float, rng: Random = SYSTEM_RANDOM
) -> tuple[SenderState, list[KeyDelivery]]:
    """Remove devices from the call: a fresh generation for those who remain.

    The sender keeps using its current key until ``now + rotation_delay``. A
    generation that was still pending is replaced before any frame used it, so
    a device removed now never sees a key that will encrypt later frames.
    """
    leavers = _devices(state, devices)
    if not leavers <= state.members:
        raise InvalidArgument("a leaving device is not a member")
    pending = _rotate(state, rng, now)
    new = state._replace(members=state.members - leavers, pending=pending)
    return new, _deliver(new.members, [_media_key(new, pending.generation, 0, pending.base_key)])


def _switch_if_due(state: SenderState, now: float) -> SenderState:
    pending = state.pending
    if pending is None or now < pending.switch_at:
        return state
    current = _send_key(state.suite, state.r, pending.generation, 0, pending.base_key)
    return state._replace(current=current, pending=None)


def _step_if_exhausted(state: SenderState) -> SenderState:
    """Ratchet one step once every counter of the current key was used (RFC 9605 §4.3)."""
    current = state.current
    if current.next_ctr <= MAX_CTR:
        return state
    if current.step + 1 >= 1 << state.r:
        raise LimitExceeded("counters and ratchet steps of this generation are exhausted")
    return state.with_current(_ratchet_step(state))


def checkpoint(state: SenderState) -> SenderState:
    """The state a restarted sender resumes from: counters continue after the reservation."""
    current = state.current
    return state.with_current(current.with_counters(current.reserved_ctr, current.reserved_ctr))


def persist_checkpoint(state: SenderState, persist: PersistHook | None, what: str) -> None:
    """Hand ``persist`` the checkpoint of ``state`` before anything uses it (spec/media.md §5.4).

    Whatever the store raises becomes LIMIT_EXCEEDED, and the caller keeps
    its old state: no frame is produced and no key delivered.
    """
    if persist is None:
        return
    try:
        persist(checkpoint(state))
    except Exception as exc:
        raise LimitExceeded(f"the {what} could not be persisted") from exc


def _reserve(state: SenderState, persist: PersistHook | None) -> SenderState:
    """Extend the counter reservation and persist it before its first counter is used."""
    current = state.current
    if current.next_ctr < current.reserved_ctr:
        return state
    limit = min(current.next_ctr + state.limits.reservation_block, MAX_CTR + 1)
    reserved = state.with_current(current.with_counters(current.next_ctr, limit))
    persist_checkpoint(reserved, persist, "counter reservation")
    return reserved


def sender_encrypt(
    state: SenderState,
    plaintext: bytes,
    metadata: bytes,
    now: float,
    persist: PersistHook | None = None,
) -> tuple[SenderState, bytes]:
    """Encrypt one frame with the sender's current key and next counter (RFC 9605 §4.4.3).

    ``persist`` receives a checkpoint whenever a new block of counters is
    reserved, before any of them is used; if it raises, nothing is encrypted.
    Without it the state lives only in memory and must never be restored: a
    restarted sender starts a new generation instead.
    """
    ready = _reserve(_step_if_exhausted(_switch_if_due(state, now)), persist)
    current = ready.current
    frame = encrypt_frame(current.frame_key, current.next_ctr, metadata, plaintext)
    advanced = current.with_counters(current.next_ctr + 1, current.reserved_ctr)
    return ready.with_current(advanced), frame


@dataclass(frozen=True, slots=True, repr=False)
class SenderRecord:
    """A ``SenderState`` in the store's versioned format (spec/storage.md §3.1).

    The current key is stored as its (generation, step, base key, counters);
    its ``FrameKey`` is derived again on load. Members are sorted.
    """

    call_id: bytes
    device: str
    suite: int
    r: int
    members: tuple[str, ...]
    generation: int
    step: int
    base_key: Annotated[bytes, SECRET]
    next_ctr: int
    reserved_ctr: int
    pending: PendingKey | None
    limits: MediaLimits

    def __repr__(self) -> str:
        return f"SenderRecord(device={self.device!r}, generation={self.generation}, ...)"


def sender_record(state: SenderState) -> SenderRecord:
    """The storable form of ``state`` (store it with ``dump_state``)."""
    current = state.current
    return SenderRecord(
        state.call_id,
        state.device,
        int(state.suite),
        state.r,
        tuple(sorted(state.members)),
        current.generation,
        current.step,
        current.base_key,
        current.next_ctr,
        current.reserved_ctr,
        state.pending,
        state.limits,
    )


def restore_sender(record: SenderRecord) -> SenderState:
    """The ``SenderState`` a stored record holds; STATE_CORRUPT if it could not be one."""
    try:
        suite = CipherSuite(record.suite)
        key = MediaKey(
            record.call_id,
            record.device,
            suite,
            record.r,
            record.generation,
            record.step,
            record.base_key,
        )  # checks suite, R, generation, step and key length
        current = _send_key(suite, record.r, key.generation, key.step, key.base_key)
        members = frozenset(check_device_id(member) for member in record.members)
    except (ValueError, ProtocolError):
        raise StateCorrupt("the stored call sender is not a valid sender state") from None
    if not 0 <= record.next_ctr <= record.reserved_ctr <= MAX_CTR + 1:
        raise StateCorrupt("the stored call sender's counters are out of order")
    return SenderState(
        record.call_id,
        record.device,
        suite,
        record.r,
        members,
        current.with_counters(record.next_ctr, record.reserved_ctr),
        record.pending,
        record.limits,
    )
