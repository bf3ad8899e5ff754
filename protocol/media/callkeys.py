"""Call key management for 1:1 and group calls over ratchet sessions (spec/media.md §5-§6).

The API an application calls. ``CallSender`` and ``CallReceiver`` hold the
immutable states of ``protocol.media.sender`` and ``protocol.media.receiver``
and swap in the new state only when a transition succeeds. Membership
operations return the MediaKey messages to deliver, one ``KeyDelivery``
per device; the caller encrypts each over its Double Ratchet session with
that device, and hands what arrives from a session to ``CallReceiver.install``
together with the device the session authenticated. The server that forwards
frames never holds a key.

Time is whatever the caller's ``clock`` returns (seconds, monotonic); nothing
here reads the system clock, so tests and simulations control it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Annotated, NamedTuple

from protocol.errors import ProtocolError, UnknownKeyId
from protocol.media.limits import DEFAULT_MEDIA_LIMITS, DEFAULT_R, MediaLimits
from protocol.media.messages import MediaKey
from protocol.media.receiver import (
    ReceiverState,
    add_members,
    decrypt_frame,
    new_receiver,
    receive_media_key,
    remove_members,
)
from protocol.media.sender import (
    KeyDelivery,
    PersistHook,
    SenderState,
    persist_checkpoint,
    sender_encrypt,
    sender_join,
    sender_leave,
    start_sender,
)
from protocol.media.sframe import DEFAULT_SUITE, CipherSuite
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.secrecy import SECRET

Clock = Callable[[], float]


class CallSender:
    """One device's sending side of one call (spec/media.md §5)."""

    def __init__(
        self, state: SenderState, *, clock: Clock, persist: PersistHook | None = None
    ) -> None:
        self._state = state
        self._clock = clock
        self._persist = persist

    @classmethod
    def start(
        cls,
        call_id: bytes,
        device: str,
        members: Iterable[str],
        *,
        clock: Clock,
        rng: Random = SYSTEM_RANDOM,
        suite: CipherSuite = DEFAULT_SUITE,
        r: int = DEFAULT_R,
        limits: MediaLimits = DEFAULT_MEDIA_LIMITS,
        persist: PersistHook | None = None,
        base_key: bytes | None = None,
    ) -> tuple[CallSender, list[KeyDelivery]]:
        """Start sending; returns the sender and generation 0's MediaKey for every member.

        ``base_key`` is an agreed generation 0 (``CallKeys.send_base_key`` of a
        contributory 1:1 call); then no key is drawn and none is delivered.
        """
        state, deliveries = start_sender(
            call_id, device, members, rng=rng, suite=suite, r=r, limits=limits, base_key=base_key
        )
        return cls(state, clock=clock, persist=persist), deliveries

    @property
    def state(self) -> SenderState:
        return self._state

    def encrypt(self, plaintext: bytes, metadata: bytes = b"") -> bytes:
        """One SFrame ciphertext under the current key and the next counter."""
        self._state, frame = sender_encrypt(
            self._state, plaintext, metadata, self._clock(), self._persist
        )
        return frame

    def join(self, devices: Iterable[str], rng: Random = SYSTEM_RANDOM) -> list[KeyDelivery]:
        """Devices join: ratchet one step; returns the keys for the joiners.

        The new state is persisted before the keys are handed out (F7,
        spec/media.md §5.4): a sender restored later never hands another key
        for a step a member already has.
        """
        state, deliveries = sender_join(self._state, devices, self._clock(), rng)
        persist_checkpoint(state, self._persist, "join")
        self._state = state
        return deliveries

    def leave(self, devices: Iterable[str], rng: Random = SYSTEM_RANDOM) -> list[KeyDelivery]:
        """Devices leave: a new generation for those who remain, used after the delay.

        The new state is persisted before the keys are handed out (F7,
        spec/media.md §5.4): a sender restored later still uses the new
        generation, and never draws another key for it.
        """
        state, deliveries = sender_leave(self._state, devices, self._clock(), rng)
        persist_checkpoint(state, self._persist, "leave")
        self._state = state
        return deliveries


class ReleasedFrame(NamedTuple):
    """A buffered frame that decrypted once its key arrived."""

    sender: str
    metadata: bytes
    plaintext: Annotated[bytes, SECRET]

    def __repr__(self) -> str:
        return (
            f"ReleasedFrame(sender={self.sender!r}, metadata=<{len(self.metadata)} bytes>, "
            f"plaintext=<{len(self.plaintext)} bytes redacted>)"
        )


class CallReceiver:
    """One device's receiving side of one call (spec/media.md §6).

    ``receive`` holds frames whose key has not arrived (RFC 9605 §4.4.4 MAY
    buffer) in a bounded buffer outside the key state; ``install`` retries
    them. ``decrypt`` never buffers.
    """

    def __init__(
        self,
        call_id: bytes,
        device: str,
        members: Iterable[str],
        *,
        clock: Clock,
        r: int = DEFAULT_R,
        limits: MediaLimits = DEFAULT_MEDIA_LIMITS,
    ) -> None:
        self._state = new_receiver(call_id, device, members, r=r, limits=limits)
        self._clock = clock
        self._buffer: deque[tuple[str, bytes, bytes]] = deque(maxlen=limits.max_buffered_frames)

    @classmethod
    def restore(cls, state: ReceiverState, *, clock: Clock) -> CallReceiver:
        """A receiver resuming from a stored state (``receiver.restore_receiver``); no buffer."""
        receiver = cls(
            state.call_id, state.device, state.members, clock=clock, r=state.r, limits=state.limits
        )
        receiver._state = state
        return receiver

    @property
    def state(self) -> ReceiverState:
        return self._state

    @property
    def buffered(self) -> int:
        """How many frames wait for their key."""
        return len(self._buffer)

    def decrypt(self, sender_device: str, frame: bytes, metadata: bytes = b"") -> bytes:
        """The plaintext of a frame the transport says ``sender_device`` sent."""
        self._state, plaintext = decrypt_frame(
            self._state, sender_device, frame, metadata, self._clock()
        )
        return plaintext

    def receive(self, sender_device: str, frame: bytes, metadata: bytes = b"") -> bytes | None:
        """Like ``decrypt``, but a frame with a KID not installed yet is buffered (None)."""
        try:
            return self.decrypt(sender_device, frame, metadata)
        except UnknownKeyId:
            if self._buffer.maxlen:
                self._buffer.append((sender_device, frame, metadata))
            return None

    def install(self, from_device: str, message: bytes | MediaKey) -> list[ReleasedFrame]:
        """Install a MediaKey from the session with ``from_device``; release buffered frames."""
        self._state = receive_media_key(self._state, from_device, message, self._clock())
        waiting = [entry for entry in self._buffer if entry[0] == from_device]
        released = []
        for entry in waiting:
            try:
                released.append(ReleasedFrame(entry[0], entry[2], self.decrypt(*entry)))
            except UnknownKeyId:
                continue  # still waiting for another key
            except ProtocolError:
                pass  # a replay or forgery: dropped
            self._buffer.remove(entry)
        return released

    def add_members(self, devices: Iterable[str]) -> None:
        self._state = add_members(self._state, devices)

    def remove_members(self, devices: Iterable[str]) -> None:
        """Forget the devices' keys and refuse their frames; drop their buffered frames."""
        gone = set(devices)
        self._state = remove_members(self._state, gone)
        self._buffer = deque(
            (entry for entry in self._buffer if entry[0] not in gone), maxlen=self._buffer.maxlen
        )
