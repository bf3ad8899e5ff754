"""The session manager: the synchronous API an application calls (spec/session.md).

A ``SessionManager`` is one device: its identity key, its prekeys, and one
session record per peer device, all kept in a ``Store`` (spec/storage.md).
Every operation is one store transaction, so it either happens completely
or not at all, even if the process dies half-way (spec/storage.md §7):

* ``SessionManager.create`` makes a device with its first signed prekey;
  ``generate_one_time_prekeys``, ``generate_kem_prekeys`` and
  ``rotate_signed_prekey`` maintain its prekeys (spec/session.md §2,
  protocol/session/prekey_lifecycle.py);
* ``prekey_bundles`` lists what a server hands to initiators (spec/session.md §2.3);
* ``initiate(peer, bundle)`` runs X3DH/PQXDH and returns a ``Session``; the
  initial (prekey) message rides on every message until the peer answers
  (spec/session.md §3);
* ``encrypt(peer, plaintext)`` and ``decrypt(sender, data)``
  (spec/session.md §4); a prekey message from a peer creates or replaces its
  session (spec/session.md §4.2,
  protocol/session/sessions.py); the profile's session policy
  (protocol/session_policy.py, spec/session.md §7) bounds the archived sessions and, for
  signal-v4, refuses to send on a session unanswered for 30 days, by the
  injected ``clock``;
* a peer identity key that changes raises ``UntrustedIdentity`` with a safety
  number until the caller calls ``trust_identity`` (spec/session.md §6,
  protocol/session/identity_trust.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from protocol import pqxdh, triple_ratchet, wire, x3dh
from protocol.bundle import PrekeyBundle
from protocol.errors import DuplicateMessage, InvalidArgument, NoSession, StateCorrupt
from protocol.fingerprint import ScannableFingerprint
from protocol.prekeys import (
    IdentityKeyPair,
    OneTimePrekey,
    SignedPrekey,
    check_prekey_id,
    generate_kem_prekey,
    generate_one_time_prekey,
    generate_signed_prekey,
)
from protocol.profiles import DEFAULT_PROFILE, Profile
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.session import identity_trust, prekey_lifecycle
from protocol.session.records import (
    DEVICE,
    KEM_PREKEY_USES,
    KEM_PREKEYS,
    ONE_TIME_PREKEYS,
    SELF,
    SESSIONS,
    Address,
    DeviceRecord,
    KemPrekeyUse,
    SessionRecord,
    SessionState,
)
from protocol.session.service_ids import is_same_account
from protocol.session.sessions import (
    decrypt_first,
    find_handshake,
    handshake_digest,
    initial_handshake,
)
from protocol.store.access import DecodedCache, put_record
from protocol.store.interface import Store, Transaction

Clock = Callable[[], int]
"""Returns the time now in Unix seconds."""


def wall_clock() -> int:
    """The system's clock, in whole Unix seconds (libsignal stores whole seconds too)."""
    return int(time.time())


class SessionManager:
    """One device's sessions with every peer device, kept in a ``Store``."""

    def __init__(
        self, store: Store, rng: Random = SYSTEM_RANDOM, *, clock: Clock = wall_clock
    ) -> None:
        """Open the device kept in ``store`` (created earlier with ``create``).

        ``clock`` tells the session policy the time (spec/session.md §7.1);
        tests inject a fixed one.
        """
        self._store = store
        self._rng = rng
        self._clock = clock
        self._records = DecodedCache()
        with store.transaction() as txn:
            self._device = self._records.require(
                txn, DEVICE, SELF, DeviceRecord, StateCorrupt, "no device in store"
            )

    @classmethod
    def create(
        cls,
        store: Store,
        address: Address,
        profile: Profile = DEFAULT_PROFILE,
        *,
        now: int,
        rng: Random = SYSTEM_RANDOM,
        clock: Clock = wall_clock,
    ) -> SessionManager:
        """Make a new device (``prekey_lifecycle.create_device``) in an empty store."""
        if store.get(DEVICE, SELF) is not None:
            raise InvalidArgument("the store already holds a device")
        with store.transaction() as txn:
            device = prekey_lifecycle.create_device(txn, address, profile, now, rng)
            put_record(txn, DEVICE, SELF, device)
        return cls(store, rng, clock=clock)

    # --- Who we are -----------------------------------------------------------------------

    @property
    def address(self) -> Address:
        return self._device.address

    @property
    def profile(self) -> Profile:
        return self._device.profile

    @property
    def identity_key(self) -> bytes:
        """Our public identity key (raw u-coordinate)."""
        return self._device.identity.public

    @property
    def identity_key_pair(self) -> IdentityKeyPair:
        """Our identity key pair, for signing with the key our sessions use (a relay login)."""
        return self._device.identity

    @property
    def registration_id(self) -> int:
        """libsignal's registration id (sent in signal-v3 prekey messages)."""
        return self._device.registration_id

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        """A store transaction that reads the device record; ``self._device`` is the committed one.

        It is read again when the transaction starts (another process may
        have changed it), and becomes what the transaction left once it
        commits; a rolled-back change never reaches it. ``encrypt`` and the
        decrypt of a normal message read and write only the session record
        (spec/storage.md §7) and take the store's transaction directly.

        Note that what the transaction left is taken from the decode cache,
        not read from the store again: the transaction read the device record
        when it began, and writes it only through ``_put_device``, which goes
        through the cache.
        """
        with self._store.transaction() as txn:
            self._device = self._records.require(txn, DEVICE, SELF, DeviceRecord, StateCorrupt)
            yield txn
        self._device = self._records.latest(DEVICE, SELF, DeviceRecord)

    def _now(self) -> int:
        """The injected clock's reading, which must be whole Unix seconds (an int)."""
        now = self._clock()
        if type(now) is not int:
            raise InvalidArgument("the clock must return whole Unix seconds as an int")
        return now

    def _put_device(self, txn: Transaction, device: DeviceRecord) -> None:
        self._records.put(txn, DEVICE, SELF, device)

    # --- Prekeys (spec/session.md §2) -----------------------------------------------------

    def generate_one_time_prekeys(self, count: int) -> list[int]:
        """Add ``count`` one-time prekeys; draws ``one_time_prekey[id]`` for each."""
        with self._transaction() as txn:
            device, ids = prekey_lifecycle.generate_batch(
                txn,
                self._device,
                count,
                ONE_TIME_PREKEYS,
                "next_one_time_prekey_id",
                lambda prekey_id: generate_one_time_prekey(prekey_id, self._rng),
            )
            self._put_device(txn, device)
        return ids

    def generate_kem_prekeys(self, count: int) -> list[int]:
        """Add ``count`` signed one-time KEM prekeys (PQXDH §3.2); only for a KEM profile.

        Draws ``kem_prekey_seed[id]`` and ``kem_prekey_sig_z[id]`` for each.
        """
        kem = self.profile.kem
        if kem is None:
            raise InvalidArgument(f"profile {self.profile.name} has no KEM")
        with self._transaction() as txn:
            identity = self._device.identity
            device, ids = prekey_lifecycle.generate_batch(
                txn,
                self._device,
                count,
                KEM_PREKEYS,
                "next_kem_prekey_id",
                lambda prekey_id: generate_kem_prekey(
                    identity, prekey_id, kem, last_resort=False, rng=self._rng
                ),
            )
            self._put_device(txn, device)
        return ids

    def rotate_signed_prekey(self, now: int) -> int:
        """Make a new signed prekey current (draws ``signed_prekey[id]`` and its Z).

        With a KEM profile the last-resort KEM prekey is replaced with it
        (``prekey_lifecycle.rotate_last_resort_kem``, PQXDH §3.2).
        """
        with self._transaction() as txn:
            new_id = check_prekey_id(self._device.next_signed_prekey_id)
            spk = generate_signed_prekey(self._device.identity, new_id, self._rng)
            device = prekey_lifecycle.make_current(txn, self._device, spk, now)
            device = prekey_lifecycle.rotate_last_resort_kem(txn, device, self._rng)
            self._put_device(txn, device)
        return new_id

    def expire_signed_prekeys(self, now: int) -> None:
        """Delete the previous signed and last-resort KEM prekeys once their grace is over."""
        with self._transaction() as txn:
            device = prekey_lifecycle.expire_previous(txn, self._device, now)
            if device is not self._device:
                self._put_device(txn, device)

    def import_prekeys(
        self,
        signed_prekey: SignedPrekey | None = None,
        one_time_prekeys: tuple[OneTimePrekey, ...] = (),
        *,
        now: int,
    ) -> None:
        """Keep prekeys made elsewhere: a migration, or a replay of recorded keys.

        An imported signed prekey becomes current as a rotation would make it;
        later generated ids continue above every imported id.
        """
        with self._transaction() as txn:
            device = prekey_lifecycle.import_one_time(txn, self._device, one_time_prekeys)
            if signed_prekey is not None:
                device = prekey_lifecycle.make_current(txn, device, signed_prekey, now)
            self._put_device(txn, device)

    def prekey_bundles(self) -> list[PrekeyBundle]:
        """What a server hands out (``prekey_lifecycle.bundles``)."""
        with self._store.transaction() as txn:
            return prekey_lifecycle.bundles(txn, self._device)

    # --- Identities (spec/session.md §6) --------------------------------------------------

    def trust_identity(self, peer: Address, identity_key: bytes) -> None:
        """Trust ``identity_key`` for ``peer`` (after the users compared safety numbers)."""
        with self._transaction() as txn:
            identity_trust.trust(txn, peer, identity_key)

    def trusted_identity(self, peer: Address) -> bytes | None:
        with self._store.transaction() as txn:
            return identity_trust.trusted(txn, peer)

    def safety_number(self, peer: Address, identity_key: bytes | None = None) -> str:
        """The safety number for ``peer`` (its trusted key unless ``identity_key`` is given)."""
        return identity_trust.peer_safety_number(
            self._device, peer, self._peer_identity(peer, identity_key)
        )

    def scannable_fingerprint(
        self, peer: Address, identity_key: bytes | None = None, *, version: int = 1
    ) -> ScannableFingerprint:
        """The scannable form of the safety number for ``peer`` (spec/session.md §6).

        ``serialize()`` gives the 74 bytes this device shows as a QR code;
        ``compare(scanned)`` checks the peer's. Version 1, as libsignal's
        text identifiers; the key is the trusted one unless given.
        """
        return identity_trust.peer_scannable_fingerprint(
            self._device, peer, self._peer_identity(peer, identity_key), version
        )

    def _peer_identity(self, peer: Address, identity_key: bytes | None) -> bytes:
        key = identity_key if identity_key is not None else self.trusted_identity(peer)
        if key is None:
            raise NoSession("no identity key is known for that peer")
        return key

    # --- Sessions (spec/session.md §3-§5) -------------------------------------------------

    def initiate(
        self,
        peer: Address,
        bundle: PrekeyBundle,
        *,
        kem_encapsulation: pqxdh.KemEncapsulation | None = None,
    ) -> Session:
        """Implements the initiator's session set-up (spec/session.md §3).

        Verifies the bundle and runs X3DH/PQXDH (draws ``ephemeral_key``),
        then initializes the ratchet with SPK_B as the peer's ratchet key.
        A session already there is archived, not lost. ``kem_encapsulation``
        replays a recorded ML-KEM (CT, SS) for vectors only (spec/pqxdh.md §7).
        """
        now = self._now()  # read before any draw, so a bad clock changes nothing
        with self._transaction() as txn:
            device = self._device
            identity_trust.check(txn, self._device, peer, bundle.identity_key)
            result = x3dh.initiate(
                device.profile,
                device.identity,
                bundle,
                self._rng,
                kem_encapsulation=kem_encapsulation,
            )
            state = triple_ratchet.init_initiator(
                device.profile,
                result.sk,
                bundle.signed_prekey,
                self._rng,
                self_session=is_same_account(
                    device.address, device.identity.public, peer, bundle.identity_key
                ),
            )
            handshake = initial_handshake(device, result.message)
            session = SessionState(
                profile=device.profile,
                role="initiator",
                peer_identity=bundle.identity_key,
                ephemeral_key=handshake.initial.ephemeral_key,
                handshake_digest=handshake_digest(device.profile, handshake),
                pending=handshake,
                ad=result.ad,
                ratchet=state.ratchet,
                pq=state.pq,
                pending_since=device.profile.policy.pending_since(now),
            )
            record = self._records.load(txn, SESSIONS, peer.key, SessionRecord)
            self._records.put(
                txn,
                SESSIONS,
                peer.key,
                SessionRecord(session) if record is None else record.replaced_by(session),
            )
        return Session(self, peer)

    def has_session(self, peer: Address) -> bool:
        return self._store.get(SESSIONS, peer.key) is not None

    def has_usable_session(self, peer: Address) -> bool:
        """libsignal ``has_usable_sender_chain(now, NotStale)``: would ``encrypt`` send to ``peer``?

        False without a session and for a stale one (spec/session.md §7.1); the caller then
        fetches a bundle and calls ``initiate``.
        """
        record = self.session_record(peer)
        return record is not None and not record.current.stale(self._now())

    def session(self, peer: Address) -> Session:
        if not self.has_session(peer):
            raise NoSession("no session with that peer")
        return Session(self, peer)

    def session_record(self, peer: Address) -> SessionRecord | None:
        """The stored session record with ``peer``, as committed (None if there is none).

        For tools that must see the whole record, such as the relay
        harness's secret log and the serialization benchmark; applications
        use ``encrypt`` and ``decrypt``.
        """
        with self._store.transaction() as txn:
            return self._records.load(txn, SESSIONS, peer.key, SessionRecord)

    def peers(self, user: str | None = None) -> list[Address]:
        """Every peer device we have a session with (of ``user`` only, if given)."""
        addresses = [Address.from_key(key) for key in self._store.keys(SESSIONS)]
        return sorted(a for a in addresses if user is None or a.user == user)

    def encrypt(self, peer: Address, plaintext: bytes) -> bytes:
        """Implements RatchetEncrypt in the session with ``peer`` (spec/session.md §4.1).

        Returns a prekey message while the peer has not answered, a normal
        message afterwards. A session unanswered for longer than its policy
        allows is NO_SESSION, as libsignal's ``message_encrypt`` refuses a
        stale one with ``SessionNotFound`` (spec/session.md §7.1): start a new one.
        """
        with self._store.transaction() as txn:
            record = self._records.require(
                txn, SESSIONS, peer.key, SessionRecord, NoSession, "no session with that peer"
            )
            current = record.current
            if current.stale(self._now()):
                raise NoSession("the session with that peer was never answered and is stale")
            state, message = triple_ratchet.encrypt(
                current.triple, plaintext, current.ad, self._rng
            )
            record = SessionRecord(current.advanced(state), record.archived)
            self._records.put(txn, SESSIONS, peer.key, record)
        if current.pending is None:
            return message
        return wire.encode_prekey_message(
            current.profile, dataclasses.replace(current.pending, message=message)
        )

    def decrypt(
        self,
        sender: Address,
        data: bytes,
        *,
        kind: wire.MessageKind | None = None,
        deliver: Callable[[Transaction, bytes], None] | None = None,
    ) -> bytes:
        """Implements RatchetDecrypt for a message from ``sender`` (spec/session.md §4.2).

        ``kind`` is the message type the transport carried beside the bytes
        ("prekey" for Signal's envelope type 3, "message" for type 1;
        spec/wire.md §3.5); without it the framing tells (``wire.message_kind``).
        A prekey message creates the session (responder side of X3DH/PQXDH)
        or finds the one its base key names. The new session state, the
        consumed one-time prekeys and whatever ``deliver(txn, plaintext)``
        writes commit in one transaction; on any error nothing changes
        (spec/storage.md §7).
        """
        if kind not in (None, "prekey", "message"):
            raise InvalidArgument("kind is 'prekey', 'message' or None")
        prekey = (kind or wire.message_kind(self.profile, data)) == "prekey"
        with self._transaction() if prekey else self._store.transaction() as txn:
            if prekey:
                record, index, inner = self._prekey_session(txn, sender, data)
                candidates = [(index, record.states()[index])]
            else:
                record = self._records.require(
                    txn,
                    SESSIONS,
                    sender.key,
                    SessionRecord,
                    NoSession,
                    "no session with that sender",
                )
                candidates, inner = list(enumerate(record.states())), data
            index, state, plaintext = decrypt_first(candidates, inner, self._rng)
            state = state.without_pending()
            self._records.put(txn, SESSIONS, sender.key, record.with_state(index, state))
            if deliver is not None:
                deliver(txn, plaintext)
        return plaintext

    def _prekey_session(
        self, txn: Transaction, sender: Address, data: bytes
    ) -> tuple[SessionRecord, int, bytes]:
        """The session a prekey message belongs to: the one its base key names, or a new one."""
        device = self._device
        message = wire.decode_prekey_message(device.profile, data)
        identity_trust.check(txn, self._device, sender, message.initial.identity_key)
        record = self._records.load(txn, SESSIONS, sender.key, SessionRecord)
        if record is not None:
            index = find_handshake(record, device.profile, message)
            if index is not None:
                return record, index, message.message
        initial = message.initial
        use = None
        if initial.kem_prekey_id is not None:
            use = KemPrekeyUse(
                initial.kem_prekey_id, initial.signed_prekey_id, initial.ephemeral_key
            )
            if txn.get(KEM_PREKEY_USES, use.key) is not None:
                raise DuplicateMessage("this handshake already used the last-resort KEM prekey")
        result = x3dh.respond(
            device.profile, device.identity, prekey_lifecycle.StoredPrekeys(txn), initial
        )
        prekey_lifecycle.consume(txn, result.consumed)
        if use is not None and result.consumed.kem_prekey_id is None:  # a last-resort key
            put_record(txn, KEM_PREKEY_USES, use.key, use)
        state = triple_ratchet.init_responder(
            device.profile,
            result.sk,
            result.signed_prekey,
            self_session=is_same_account(
                device.address, device.identity.public, sender, initial.identity_key
            ),
        )
        session = SessionState(
            profile=device.profile,
            role="responder",
            peer_identity=message.initial.identity_key,
            ephemeral_key=message.initial.ephemeral_key,
            handshake_digest=handshake_digest(device.profile, message),
            pending=None,
            ad=result.ad,
            ratchet=state.ratchet,
            pq=state.pq,
        )
        record = SessionRecord(session) if record is None else record.replaced_by(session)
        return record, 0, message.message

    def __repr__(self) -> str:
        return f"SessionManager({self.address!r}, {self.profile!r})"


@dataclass(frozen=True, slots=True)
class Session:
    """A handle on the session with one peer device; state lives in the manager's store."""

    manager: SessionManager
    peer: Address

    def encrypt(self, plaintext: bytes) -> bytes:
        return self.manager.encrypt(self.peer, plaintext)

    def decrypt(self, data: bytes, *, kind: wire.MessageKind | None = None) -> bytes:
        return self.manager.decrypt(self.peer, data, kind=kind)
