"""The receiving side of call keys: installed sender keys and replay windows (spec/media.md §6).

A receiver keeps, per sender device and per generation, the newest base_key
it knows and the frame keys of a few recent ratchet steps, each with its own
replay window. Keys are stored under the sender device the session
authenticated, and a frame is looked up under the sender the transport
names, so a frame of one sender fails authentication under any other.

Every transition is a pure function on an immutable ``ReceiverState``: it
computes on locals and returns a new state only on success, so a frame that
fails (unknown key, replay, bad tag) changes nothing, and in particular a
ratchet catch-up or a window update happens only after the AEAD accepted
the frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, NamedTuple

from protocol.errors import (
    DuplicateMessage,
    InvalidArgument,
    LimitExceeded,
    MalformedMessage,
    NotInCall,
    ProtocolError,
    StateCorrupt,
    UnknownKeyId,
)
from protocol.media.limits import DEFAULT_MEDIA_LIMITS, DEFAULT_R, MAX_R, MIN_R, MediaLimits
from protocol.media.messages import MediaKey, check_call_id, check_device_id, decode_media_key
from protocol.media.replay import ReplayWindow
from protocol.media.sframe import (
    CipherSuite,
    FrameKey,
    decode_header,
    derive_frame_key,
    open_frame,
    ratchet_base_key,
    sender_key_kid,
)
from protocol.secrecy import SECRET


class StepKey(NamedTuple):
    """The frame key of one (generation, step) and the counters seen under it.

    The receiver's records (StepKey, GenerationKeys, ReceiverState) are
    immutable named tuples rather than frozen dataclasses: every frame
    rebuilds them, and a tuple is the cheapest immutable record Python has.
    """

    step: int
    frame_key: FrameKey
    window: ReplayWindow


class GenerationKeys(NamedTuple):
    """What a receiver holds of one sender's generation.

    ``latest_base_key`` is the base_key of ``latest_step``, the newest step
    known; earlier base keys are not kept, only the frame keys of the newest
    ``max_retained_steps`` steps (ascending in ``steps``). ``first_frame_at``
    is when the first authenticated frame of this generation arrived; it
    starts the grace period of every older generation.
    """

    generation: int
    suite: CipherSuite
    latest_step: int
    latest_base_key: Annotated[bytes, SECRET]
    steps: tuple[StepKey, ...]
    first_frame_at: float | None = None

    def __repr__(self) -> str:
        retained = [step.step for step in self.steps]
        return (
            f"GenerationKeys(generation={self.generation}, suite={self.suite.name}, "
            f"latest_step={self.latest_step}, retained_steps={retained}, base_key=<redacted>)"
        )


class ReceiverState(NamedTuple):
    """One device's receiving keys for one call (its repr has no secrets).

    ``senders`` maps a sender device to its generations, ascending; the
    mapping is never mutated, transitions build a new one.
    """

    call_id: bytes
    device: str
    r: int
    members: frozenset[str]
    senders: Mapping[str, tuple[GenerationKeys, ...]]
    limits: MediaLimits

    def with_sender(self, device: str, gens: tuple[GenerationKeys, ...]) -> ReceiverState:
        """This state with ``device``'s generations replaced (a new mapping; the hot path)."""
        senders = {**self.senders, device: gens}
        return ReceiverState(self.call_id, self.device, self.r, self.members, senders, self.limits)


def new_receiver(
    call_id: bytes,
    device: str,
    members: Iterable[str],
    *,
    r: int = DEFAULT_R,
    limits: MediaLimits = DEFAULT_MEDIA_LIMITS,
) -> ReceiverState:
    """A receiver that accepts keys from ``members`` (the call's other devices)."""
    if type(r) is not int or not MIN_R <= r <= MAX_R:
        raise InvalidArgument(f"R must be in [{MIN_R}, {MAX_R}]")
    group = frozenset(check_device_id(member) for member in members) - {device}
    return ReceiverState(check_call_id(call_id), check_device_id(device), r, group, {}, limits)


def add_members(state: ReceiverState, devices: Iterable[str]) -> ReceiverState:
    """Accept keys and frames from more devices."""
    added = frozenset(check_device_id(device) for device in devices) - {state.device}
    return state._replace(members=state.members | added)


def remove_members(state: ReceiverState, devices: Iterable[str]) -> ReceiverState:
    """Stop accepting anything from ``devices`` and forget their keys."""
    removed = frozenset(check_device_id(device) for device in devices)
    senders = {d: gens for d, gens in state.senders.items() if d not in removed}
    return state._replace(members=state.members - removed, senders=senders)


def _live(gens: tuple[GenerationKeys, ...], now: float, grace: float) -> tuple[GenerationKeys, ...]:
    """Drop generations whose grace period ended: a newer one has been in use for ``grace`` s."""
    if len(gens) < 2:
        return gens  # the common case: nothing older can expire
    cutoff = max(
        (
            g.generation
            for g in gens
            if g.first_frame_at is not None and now >= g.first_frame_at + grace
        ),
        default=0,
    )
    return tuple(g for g in gens if g.generation >= cutoff)


def _check_sender(state: ReceiverState, device: str) -> None:
    if device not in state.members:
        raise NotInCall("the sender device is not a member of this call")


def receive_media_key(
    state: ReceiverState, from_device: str, message: bytes | MediaKey, now: float
) -> ReceiverState:
    """Install a MediaKey that arrived over the session with ``from_device`` (spec/media.md §6.1).

    The key must name this call and the device the session authenticated,
    which must be a member; a generation is installed once (later steps are
    derived by ratcheting, never accepted as new keys).
    """
    key = message if isinstance(message, MediaKey) else decode_media_key(message)
    if key.call_id != state.call_id:
        raise NotInCall("the MediaKey is for another call")
    if key.sender_device != from_device:
        raise NotInCall("the MediaKey names a sender other than the session's peer")
    _check_sender(state, from_device)
    if key.r != state.r:
        raise MalformedMessage("the MediaKey's R differs from the call's")
    gens = _live(state.senders.get(from_device, ()), now, state.limits.grace_period)
    if any(g.generation == key.generation for g in gens):
        raise DuplicateMessage("this generation of the sender is already installed")
    if len(gens) >= state.limits.max_generations and key.generation < gens[0].generation:
        raise LimitExceeded("the MediaKey is older than every retained generation")
    step = StepKey(
        key.step, derive_frame_key(key.cipher_suite, key.base_key, key.kid), _window(state)
    )
    installed = GenerationKeys(key.generation, key.cipher_suite, key.step, key.base_key, (step,))
    merged = sorted((*gens, installed), key=lambda g: g.generation)
    return state.with_sender(from_device, _retain(merged, state.limits.max_generations))


def _retain(gens: list[GenerationKeys], limit: int) -> tuple[GenerationKeys, ...]:
    """The newest ``limit`` generations, never evicting the newest one in use.

    Several leaves within one rotation delay each replace the sender's pending
    generation before it is used (spec/media.md §5.3); the receiver installs
    every one, and they must not push out the generation whose frames still
    arrive. "In use" is the newest generation a frame authenticated under.
    """
    kept = gens[-limit:]
    used = [g for g in gens if g.first_frame_at is not None]
    if used and used[-1] not in kept:
        kept = [used[-1], *(gens[-(limit - 1) :] if limit > 1 else [])]
    return tuple(kept)


def _window(state: ReceiverState) -> ReplayWindow:
    return ReplayWindow(state.limits.replay_window)


def _catch_up(state: ReceiverState, gen: GenerationKeys, step: int) -> GenerationKeys:
    """Ratchet a generation forward to ``step`` (RFC 9605 §5.1), on locals only.

    Frame keys are derived for the steps that will be retained; the caller
    commits the result only after a frame under ``step`` authenticated.
    """
    distance = step - gen.latest_step
    if distance > state.limits.max_catch_up:
        raise LimitExceeded(f"the KID is {distance} ratchet steps ahead, more than allowed")
    retain = state.limits.max_retained_steps
    base_key, steps = gen.latest_base_key, list(gen.steps)
    for current in range(gen.latest_step + 1, step + 1):
        base_key = ratchet_base_key(gen.suite, base_key)
        if current > step - retain:
            kid = sender_key_kid(gen.generation, current, state.r)
            steps.append(
                StepKey(current, derive_frame_key(gen.suite, base_key, kid), _window(state))
            )
    return gen._replace(latest_step=step, latest_base_key=base_key, steps=tuple(steps[-retain:]))


def _index(items: tuple[StepKey, ...] | tuple[GenerationKeys, ...], value: int) -> int:
    """The position of the step or generation numbered ``value``, or -1.

    Both records carry their number in their first field.
    """
    for position, item in enumerate(items):
        if item[0] == value:
            return position
    return -1


def _step_key(state: ReceiverState, gen: GenerationKeys, step: int) -> tuple[GenerationKeys, int]:
    """The generation (caught up if needed) and the position of ``step`` in its steps."""
    position = _index(gen.steps, step)
    if position >= 0:
        return gen, position
    if step < gen.latest_step:
        raise UnknownKeyId("this ratchet step is no longer retained")
    advanced = _catch_up(state, gen, step)
    return advanced, len(advanced.steps) - 1


def decrypt_frame(
    state: ReceiverState, sender: str, frame: bytes, metadata: bytes, now: float
) -> tuple[ReceiverState, bytes]:
    """Implements frame reception, spec/media.md §6.2: key lookup, replay check, SFrame open.

    Looks the KID up under ``sender`` (the device the transport names), ratchets
    forward at most ``max_catch_up`` steps, checks the replay window read-only,
    opens the frame (RFC 9605 §4.4.4) and only then records the counter.
    """
    _check_sender(state, sender)
    kid, ctr, header_len = decode_header(frame)
    generation, step = kid >> state.r, kid & ((1 << state.r) - 1)
    gens = _live(state.senders.get(sender, ()), now, state.limits.grace_period)
    at = _index(gens, generation)
    if at < 0:
        raise UnknownKeyId("no key of this sender for the frame's KID")
    gen, position = _step_key(state, gens[at], step)
    step_key = gen.steps[position]
    step_key.window.check(ctr)
    plaintext = open_frame(step_key.frame_key, frame, metadata, (kid, ctr, header_len))
    # Authenticated: commit the counter, the caught-up steps and the first-frame time.
    recorded = StepKey(step, step_key.frame_key, step_key.window.record(ctr))
    steps = (*gen.steps[:position], recorded, *gen.steps[position + 1 :])
    first = now if gen.first_frame_at is None else gen.first_frame_at
    gen = GenerationKeys(generation, gen.suite, gen.latest_step, gen.latest_base_key, steps, first)
    updated = _live((*gens[:at], gen, *gens[at + 1 :]), now, state.limits.grace_period)
    return state.with_sender(sender, updated), plaintext


# --- The stored form (spec/storage.md §3, spec/media.md §6) -------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class StepRecord:
    """A ``StepKey`` in the store's versioned format: the frame key's bytes and the window."""

    step: int
    key: Annotated[bytes, SECRET]
    salt: Annotated[bytes, SECRET]
    window_size: int
    highest: int | None
    seen: int

    @property
    def key_salt(self) -> tuple[bytes, bytes]:
        return self.key, self.salt

    def __repr__(self) -> str:
        return f"StepRecord(step={self.step}, key=<redacted>, salt=<redacted>)"


@dataclass(frozen=True, slots=True, repr=False)
class GenerationRecord:
    """A ``GenerationKeys`` in the store's versioned format."""

    generation: int
    suite: int
    latest_step: int
    latest_base_key: Annotated[bytes, SECRET]
    steps: tuple[StepRecord, ...]
    first_frame_at: float | None

    def __repr__(self) -> str:
        return f"GenerationRecord(generation={self.generation}, base_key=<redacted>, ...)"


@dataclass(frozen=True, slots=True, repr=False)
class ReceiverRecord:
    """A ``ReceiverState`` in the store's versioned format; senders sorted by device."""

    call_id: bytes
    device: str
    r: int
    members: tuple[str, ...]
    senders: tuple[tuple[str, tuple[GenerationRecord, ...]], ...]
    limits: MediaLimits

    def __repr__(self) -> str:
        return f"ReceiverRecord(device={self.device!r}, senders={len(self.senders)})"


def receiver_record(state: ReceiverState) -> ReceiverRecord:
    """The storable form of ``state`` (store it with ``dump_state``)."""

    def step_record(key: StepKey) -> StepRecord:
        window = key.window
        return StepRecord(
            key.step,
            key.frame_key.key,
            key.frame_key.salt,
            window.size,
            window.highest,
            window.seen,
        )

    def generation_record(gen: GenerationKeys) -> GenerationRecord:
        steps = tuple(step_record(key) for key in gen.steps)
        return GenerationRecord(
            gen.generation,
            int(gen.suite),
            gen.latest_step,
            gen.latest_base_key,
            steps,
            gen.first_frame_at,
        )

    senders = tuple(
        (device, tuple(generation_record(gen) for gen in gens))
        for device, gens in sorted(state.senders.items())
    )
    return ReceiverRecord(
        state.call_id, state.device, state.r, tuple(sorted(state.members)), senders, state.limits
    )


def restore_receiver(record: ReceiverRecord) -> ReceiverState:
    """The ``ReceiverState`` a stored record holds; STATE_CORRUPT if it could not be one."""

    def generation(device: str, gen: GenerationRecord) -> GenerationKeys:
        suite = CipherSuite(gen.suite)
        steps = tuple(
            StepKey(
                step.step,
                FrameKey(
                    suite, sender_key_kid(gen.generation, step.step, record.r), step.key, step.salt
                ),
                ReplayWindow(step.window_size, step.highest, step.seen),
            )
            for step in gen.steps
        )
        MediaKey(  # checks the generation, step and base key against the suite and R
            record.call_id,
            device,
            suite,
            record.r,
            gen.generation,
            gen.latest_step,
            gen.latest_base_key,
        )
        return GenerationKeys(
            gen.generation, suite, gen.latest_step, gen.latest_base_key, steps, gen.first_frame_at
        )

    try:
        check_call_id(record.call_id)
        senders = {
            check_device_id(device): tuple(generation(device, gen) for gen in gens)
            for device, gens in record.senders
        }
        members = frozenset(check_device_id(member) for member in record.members)
    except (ValueError, ProtocolError):
        raise StateCorrupt("the stored call receiver is not a valid receiver state") from None
    return ReceiverState(record.call_id, record.device, record.r, members, senders, record.limits)
