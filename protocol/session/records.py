"""The records a device keeps in its store (spec/storage.md §1, spec/session.md §1-§4).

One record type per table: ``DeviceRecord`` (who this device is and its
prekey bookkeeping), ``TrustedIdentity`` (a peer's trusted identity key) and
``SessionRecord`` (the current ``SessionState`` with a peer device and the
replaced ones still kept). ``Address`` names a peer device and is the key of
its records.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final, Literal

from protocol import ratchet, triple_ratchet, wire
from protocol.errors import InvalidArgument, StateCorrupt
from protocol.prekeys import IdentityKeyPair
from protocol.profiles import Profile
from protocol.session_policy import SessionPolicy
from protocol.spqr.pq_ratchet import PqRatchet
from protocol.store.format import ADDED
from protocol.store.schema import SHARED_ITEMS

# Store tables (spec/storage.md §1).
DEVICE: Final = "device"
SIGNED_PREKEYS: Final = "signed_prekey"
ONE_TIME_PREKEYS: Final = "one_time_prekey"
KEM_PREKEYS: Final = "kem_prekey"
KEM_PREKEY_USES: Final = "kem_prekey_use"
"""Last-resort KEM prekeys used, keyed ``kem id:signed prekey id:base key`` (libsignal's mark)."""
SESSIONS: Final = "session"
IDENTITIES: Final = "identity"
SELF: Final = "self"
"""The key of the one record in ``DEVICE``."""


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """A peer device: the user id and one of its device ids (spec/session.md §1)."""

    user: str
    device: int
    # The store key, ``device:user`` (the first colon ends the device id).
    # Note that it is derived (``init=False``, never stored, not compared)
    # and made once here: every store operation with a peer reads it.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.user, str) or not self.user:
            raise InvalidArgument("a user id is a non-empty string")
        if isinstance(self.device, bool) or not isinstance(self.device, int):
            raise InvalidArgument("a device id is an int")
        if not 0 <= self.device < 2**31:
            raise InvalidArgument("a device id is in 0..2^31-1")
        object.__setattr__(self, "key", f"{self.device}:{self.user}")

    @classmethod
    def from_key(cls, key: str) -> Address:
        device, _, user = key.partition(":")
        if not device.isdigit():
            raise StateCorrupt("store key is not an address")
        return cls(user, int(device))


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """This device: who it is, its identity key, and its prekey bookkeeping."""

    profile: Profile
    address: Address
    registration_id: int
    identity: IdentityKeyPair
    signed_prekey_id: int
    previous_signed_prekey_id: int | None
    signed_prekey_since: int
    next_signed_prekey_id: int
    next_one_time_prekey_id: int
    next_kem_prekey_id: int

    def __repr__(self) -> str:
        return f"DeviceRecord({self.address!r}, {self.profile!r}, identity=<{self.identity!r}>)"


@dataclass(frozen=True, slots=True)
class KemPrekeyUse:
    """A last-resort KEM prekey used by one handshake, as libsignal marks a Kyber prekey used.

    libsignal's ``markKyberPreKeyUsed(kyber id, signed prekey id, base key)``
    (session.rs ``process_prekey_impl``): a last-resort key serves many
    handshakes, but the same one (same signed prekey and base key) only once,
    even after its session left the record (spec/session.md §4.2).
    """

    kem_prekey_id: int
    signed_prekey_id: int
    base_key: bytes

    @property
    def key(self) -> str:
        """The store key: ``kem id:signed prekey id:base key hex``."""
        return f"{self.kem_prekey_id}:{self.signed_prekey_id}:{self.base_key.hex()}"


@dataclass(frozen=True, slots=True)
class TrustedIdentity:
    """The identity key trusted for a peer device (first use, or acknowledged)."""

    identity_key: bytes


@dataclass(frozen=True, slots=True, weakref_slot=True)
class SessionState:
    """One session with a peer device (spec/session.md §3).

    ``ephemeral_key`` (EK_A, libsignal's base key) names the session, so a repeated initial message
    finds it again; ``handshake_digest``, the SHA-256 of that initial message
    without its ratchet message, makes every other field match too. The
    initiator keeps the initial message itself as ``pending`` and prepends it
    to every message until the session is ``answered`` (DR §5.1),
    that is until a message from the peer decrypted; then it is dropped (a
    PQXDH one carries a 1,088-byte KEM ciphertext). A responder's session is
    answered from the start.
    """

    profile: Profile
    role: Literal["initiator", "responder"]
    peer_identity: bytes
    ephemeral_key: bytes
    handshake_digest: bytes
    pending: wire.PrekeyMessage | None
    ad: bytes
    ratchet: ratchet.RatchetState
    # SPQR's state beside the Double Ratchet (signal-v4 only; None otherwise,
    # and then not stored, so no other profile's record changes).
    pq: PqRatchet | None = field(default=None, metadata=ADDED)
    # Unix seconds; None for every profile whose policy never expires a session.
    pending_since: int | None = field(default=None, metadata=ADDED)

    @property
    def answered(self) -> bool:
        return self.pending is None

    def stale(self, now: int) -> bool:
        """Unanswered for longer than its policy lets a session send (spec/session.md §7.1)."""
        since = self.pending_since
        return since is not None and self.profile.policy.unacknowledged_expired(since, now)

    def without_pending(self) -> SessionState:
        """This session once the peer answered: its initial message is no longer repeated."""
        if self.pending is None and self.pending_since is None:
            return self
        return replace(self, pending=None, pending_since=None)

    def advanced(self, triple: triple_ratchet.TripleRatchetState) -> SessionState:
        """This session with the triple ratchet's new states, after an encrypt or a decrypt.

        Note that this builds the state field by field instead of with
        ``dataclasses.replace``, which cost three times as much on every
        message; ``tests/session/test_session.py::test_advancing_a_session_keeps_every_other_field``
        fails if a field is added and not carried here.
        """
        return SessionState(
            self.profile,
            self.role,
            self.peer_identity,
            self.ephemeral_key,
            self.handshake_digest,
            self.pending,
            self.ad,
            triple.ratchet,
            triple.pq,
            self.pending_since,
        )

    @property
    def triple(self) -> triple_ratchet.TripleRatchetState:
        """The Double Ratchet and SPQR states as the triple ratchet takes them."""
        return triple_ratchet.TripleRatchetState(self.ratchet, self.pq)

    def __repr__(self) -> str:
        ephemeral_key = self.ephemeral_key.hex()
        return f"SessionState({self.profile!r}, {self.role}, ephemeral_key={ephemeral_key}, ...)"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """The current session with a peer device and the replaced ones still kept.

    spec/session.md §4.2.
    """

    current: SessionState
    # Note that the archived sessions are encoded once each, not on every
    # write of the record (SHARED_ITEMS, protocol/store/codec.py).
    archived: tuple[SessionState, ...] = field(default=(), metadata=SHARED_ITEMS)

    def replaced_by(self, state: SessionState) -> SessionRecord:
        """libsignal ``promote_state``: a new current session; the old one is archived."""
        return SessionRecord(state, _bounded(state.profile.policy, (self.current, *self.archived)))

    def with_state(self, index: int, state: SessionState) -> SessionRecord:
        """``state`` replaces state ``index`` (0 = current) and becomes current.

        For an archived state this is libsignal's ``promote_old_session``: the
        current one is archived in its place.
        """
        if index == 0:
            # Note that the archived sessions are then the same ones, already
            # bounded when they were archived, so they are kept as they are.
            return SessionRecord(state, self.archived)
        states = [self.current, *self.archived]
        del states[index]
        return SessionRecord(state, _bounded(state.profile.policy, tuple(states)))

    def states(self) -> tuple[SessionState, ...]:
        """The current session first, then the archived ones, newest first."""
        return (self.current, *self.archived)


def _stored_keys(state: SessionState) -> int:
    """The skipped keys and evicted ids a session holds: the Double Ratchet's, and SPQR's."""
    keys = len(state.ratchet.mkskipped) + len(state.ratchet.evicted)
    if state.pq is not None:
        links = state.pq.chain.links
        keys += sum(len(link.send.skipped) + len(link.recv.skipped) for link in links)
    return keys


def _bounded(policy: SessionPolicy, archived: tuple[SessionState, ...]) -> tuple[SessionState, ...]:
    """The archived sessions, newest first, that fit the policy's count and key bounds.

    libsignal ``archive_current_state_inner`` (state/session.rs): at most
    ``max_archived_sessions``, the oldest dropped, and under
    ``archive_drops_pending`` each archived one without its pending initial
    message. ``max_archived_keys`` is ours (spec/session.md §7).

    Note that the cut is at the first session that does not fit: every older
    one goes too, so what is dropped is always the oldest.
    """
    kept: list[SessionState] = []
    total = 0
    for state in archived[: policy.max_archived_sessions]:
        total += _stored_keys(state)
        if total > policy.max_archived_keys:
            break
        kept.append(state.without_pending() if policy.archive_drops_pending else state)
    return tuple(kept)
