"""Shared pieces of the security property suite (spec/security.md).

* Stores as the adversary sees them when it steals a device: ``snapshot``
  copies every record of a store as bytes, ``restore`` builds a working store
  from such a copy, and ``stored_states`` loads each record with the library's
  own state types.
* Secrets, deny by default: ``Secrets.add_state`` walks any state and takes
  every ``bytes`` value that is not public by name (``PUBLIC_FIELDS``) or by
  type (``PUBLIC_TYPES``); ``record_derived`` additionally records every
  output of the key-schedule functions (DH outputs, SK, KDF_RK, KDF_CK, the
  AEAD key expansion, header subkeys, ML-KEM shared secrets, SFrame keys and
  salts) while a run is in progress.
* ``find_leaks``: which secrets have a 12-byte window inside some bytes
  (stricter than the 16-byte windows spec/security.md §3.1 promises).
* ``SpqrRecorder``: the SPQR values the code computes while a run goes on.
* ``Pair``: two devices with a session, in memory, for the tests in which the
  relay rewrites, replays, reorders or drops what it carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from unittest import mock

from protocol import kyber1024, pqxdh, primitives, wire, x3dh
from protocol.audit.keytrial import Sample, opens
from protocol.chains import ChainRules
from protocol.cipher import AesCbcHmacCipher, AesGcmCipher
from protocol.errors import ProtocolError
from protocol.headers import EncryptedHeaders
from protocol.media import receiver, sender, sframe
from protocol.media.limits import MediaLimits
from protocol.prekeys import KemPrekey, OneTimePrekey, SignedPrekey
from protocol.profiles import Profile
from protocol.randomness import DrbgRandom, Random
from protocol.ratchet import kdf_ck
from protocol.secrecy import named_fields
from protocol.session import Address, SessionManager
from protocol.session.records import (
    DEVICE,
    IDENTITIES,
    KEM_PREKEYS,
    ONE_TIME_PREKEYS,
    SESSIONS,
    SIGNED_PREKEYS,
    DeviceRecord,
    SessionRecord,
    TrustedIdentity,
)
from protocol.spqr import authenticator, erasure, pq_ratchet, states
from protocol.spqr import chain as spqr_chain
from protocol.spqr import incremental_mlkem768 as im
from protocol.spqr.chain import Chain
from protocol.spqr.pq_ratchet import PqRatchet
from protocol.spqr.states import Sending
from protocol.store import MemoryStore, load_state
from protocol.wire import PrekeyMessage

STATE_TYPES: Final[dict[str, type]] = {
    DEVICE: DeviceRecord,
    SIGNED_PREKEYS: SignedPrekey,
    ONE_TIME_PREKEYS: OneTimePrekey,
    KEM_PREKEYS: KemPrekey,
    SESSIONS: SessionRecord,
    IDENTITIES: TrustedIdentity,
}
"""Every table a ``SessionManager`` writes, with the state type of its records."""

Snapshot = dict[tuple[str, str], bytes]


def snapshot(store: MemoryStore) -> Snapshot:
    """Every record of the store, as bytes: what a thief copies."""
    records: Snapshot = {}
    for table in STATE_TYPES:
        for key in store.keys(table):
            value = store.get(table, key)
            assert value is not None
            records[(table, key)] = value
    return records


def restore(records: Snapshot) -> MemoryStore:
    """A working store holding exactly ``records``."""
    store = MemoryStore()
    with store.transaction() as txn:
        for (table, key), value in records.items():
            txn.put(table, key, value)
    return store


def stored_states(records: Snapshot) -> Iterator[object]:
    """Each record loaded strictly with its state type."""
    for (table, _), value in records.items():
        yield load_state(STATE_TYPES[table], value)


def session_state(store: MemoryStore, peer: Address) -> SessionRecord:
    data = store.get(SESSIONS, peer.key)
    assert data is not None
    return load_state(SessionRecord, data)


# --- Secrets, deny by default -----------------------------------------------------------

PUBLIC_FIELDS: Final = frozenset(
    {
        "public",
        "signature",
        "dhr",
        "peer_identity",
        "ad",
        "_kid_field",
        "ephemeral_key",
        "handshake_digest",
        "hdr",
        "ek",
        "ct1",
    }
)
"""Fields whose bytes are public by design: public keys, signatures, AD, KID encodings,
the initiator's ephemeral key naming a session and the digest of its initial message,
and SPQR's ML-KEM header, key vector and ct1 (sent or received in field 5, spec/spqr.md §8).

A call id is not among them: it travels only inside MediaKey messages, and the
relay routes frames by a room id drawn apart from it (spec/relay.md §8)."""
PUBLIC_TYPES: Final = (
    PrekeyMessage,
    TrustedIdentity,
    Profile,
    MediaLimits,
    Sending,
    erasure.Decoder,
)
"""State types with no secret in them: the initial message's fields, trusted identity keys,
and SPQR's payload being sent and chunks received (field 5, spec/spqr.md §8)."""
PUBLIC_DRAWS: Final = frozenset({"relay_message_id", "header_nonce", "registration_id"})
"""Random draws sent in the clear on purpose: message ids, header-encryption salts, and the
registration id libsignal puts in initial messages."""
MIN_SECRET_LEN: Final = 12
"""The shortest secret: an AES-GCM nonce or SFrame salt (12 bytes)."""


class Secrets:
    """Secret byte strings by label, and the public values seen beside them."""

    def __init__(self) -> None:
        self.by_label: dict[str, set[bytes]] = {}
        self.public: set[bytes] = set()

    def add(self, label: str, value: bytes) -> None:
        if len(value) >= MIN_SECRET_LEN:
            self.by_label.setdefault(label, set()).add(value)

    def add_state(self, value: object, name: str = "state") -> None:
        """Every bytes value under ``value`` not public by field name or type."""
        if isinstance(value, PUBLIC_TYPES):
            self.public.update(_all_bytes(value))
        elif isinstance(value, bytes) and name in PUBLIC_FIELDS:
            self.public.add(value)
        elif isinstance(value, bytes):
            self.add(name, value)
        elif (fields := named_fields(value)) is not None:
            for field_name, item in fields:
                self.add_state(item, field_name)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self.add_state(key, name)
                self.add_state(item, name)
        elif isinstance(value, tuple | list | frozenset | set):
            for item in value:
                self.add_state(item, name)

    def add_records(self, records: Snapshot) -> None:
        for state in stored_states(records):
            self.add_state(state)

    def add_draws(self, draws: Iterable[tuple[str, bytes]]) -> None:
        for label, value in draws:
            if label not in PUBLIC_DRAWS:
                self.add(label, value)

    def labels(self) -> set[str]:
        """The labels under which some non-public value was collected."""
        return {label for label, values in self.by_label.items() if values - self.public}

    def items(self) -> dict[bytes, str]:
        """Each secret once, with its label; values also seen in a public field are dropped.

        A chain id is a public ratchet key without header encryption and a
        header key with it; only the first is ever also a public value.
        """
        return {
            value: label
            for label, values in self.by_label.items()
            for value in values
            if value not in self.public
        }


def _all_bytes(value: object) -> Iterator[bytes]:
    if isinstance(value, bytes):
        yield value
    elif (fields := named_fields(value)) is not None:
        for _, item in fields:
            yield from _all_bytes(item)


def _outputs(value: object) -> Iterator[bytes]:
    if isinstance(value, bytes):
        yield value
    elif isinstance(value, tuple | list) or dataclasses.is_dataclass(value):
        items = value if isinstance(value, tuple | list) else dataclasses.astuple(value)  # type: ignore[arg-type]
        for item in items:
            yield from _outputs(item)


# (module, function, label, which outputs are public) of every key-schedule step.
_DERIVATIONS: Final[tuple[tuple[Any, str, str, frozenset[int]], ...]] = (
    (primitives, "_exchange", "dh_output", frozenset()),
    (x3dh, "kdf", "sk", frozenset()),
    (pqxdh, "kem_encapsulate", "kem_shared_secret", frozenset({0})),
    (pqxdh, "kem_decapsulate", "kem_shared_secret", frozenset()),
    (ChainRules, "kdf_rk", "kdf_rk_output", frozenset()),
    (ChainRules, "kdf_ck", "kdf_ck_output", frozenset()),
    (ChainRules, "advance", "kdf_ck_output", frozenset()),
    (AesGcmCipher, "message_keys", "message_key_expansion", frozenset()),
    (AesCbcHmacCipher, "message_keys", "message_key_expansion", frozenset()),
    (EncryptedHeaders, "subkey", "header_subkey", frozenset()),
    (sframe, "derive_key_salt", "sframe_key_salt", frozenset()),
    (sframe, "sframe_secret", "sframe_secret", frozenset()),
    (sender, "ratchet_base_key", "media_base_key", frozenset()),
    (receiver, "ratchet_base_key", "media_base_key", frozenset()),
    (kyber1024, "encapsulate", "kem_shared_secret", frozenset({0})),
    (kyber1024, "decapsulate", "kem_shared_secret", frozenset()),
    (states, "epoch_secret", "spqr_epoch_secret", frozenset()),
    (states, "authenticator_update", "spqr_authenticator", frozenset()),
    (im, "encaps1_derand", "spqr_kem_shared_secret", frozenset({0})),
    (im, "decaps", "spqr_kem_shared_secret", frozenset()),
    (authenticator, "authenticator_update", "spqr_authenticator", frozenset()),
    (spqr_chain, "chain_start_kdf", "spqr_chain", frozenset()),
    (spqr_chain, "chain_add_epoch_kdf", "spqr_chain", frozenset()),
    (spqr_chain, "chain_next", "spqr_chain", frozenset()),
    (spqr_chain, "chain_next_key", "spqr_chain", frozenset()),
)


def _recording(
    function: Callable[..., Any], label: str, public: frozenset[int], secrets: Secrets
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        parts = result if public and isinstance(result, tuple) else (result,)
        for index, part in enumerate(parts):
            if index not in public:
                for value in _outputs(part):
                    secrets.add(label, value)
        return result

    return wrapper


@contextmanager
def record_derived(secrets: Secrets) -> Iterator[None]:
    """Record every output of the key schedule computed inside the block."""
    with ExitStack() as stack:
        for module, name, label, public in _DERIVATIONS:
            original = getattr(module, name)
            wrapped = _recording(original, label, public, secrets)
            stack.enter_context(mock.patch.object(module, name, wrapped))
        yield


@dataclass
class SpqrRecorder:
    """The SPQR values the code computed: each message key sent, each epoch's ML-KEM
    shared secret (from encapsulation and from decapsulation) and each epoch secret
    each side added to its chain."""

    keys: list[bytes] = field(default_factory=list)
    encapsulated: list[bytes] = field(default_factory=list)
    decapsulated: list[bytes] = field(default_factory=list)
    added: dict[int, set[bytes]] = field(default_factory=dict)

    @contextmanager
    def recording(self) -> Iterator[None]:
        real_send, real_encaps1, real_decaps = pq_ratchet.send, im.encaps1, im.decaps
        real_add_epoch = pq_ratchet.chain_add_epoch

        def send(state: PqRatchet, draw: Random) -> tuple[PqRatchet, bytes, bytes]:
            out = real_send(state, draw)
            self.keys.append(out[2])
            return out

        def encaps1(hdr: bytes, draw: Random) -> tuple[bytes, im.EncapsulationState, bytes]:
            out = real_encaps1(hdr, draw)
            self.encapsulated.append(out[2])
            return out

        def decaps(seed: bytes, ct1: bytes, ct2: bytes) -> bytes:
            self.decapsulated.append(real_decaps(seed, ct1, ct2))
            return self.decapsulated[-1]

        def add_epoch(chain: Chain, epoch: int, secret: bytes) -> Chain:
            self.added.setdefault(epoch, set()).add(secret)
            return real_add_epoch(chain, epoch, secret)

        with ExitStack() as stack:
            stack.enter_context(mock.patch.object(pq_ratchet, "send", send))
            stack.enter_context(mock.patch.object(im, "encaps1", encaps1))
            stack.enter_context(mock.patch.object(im, "decaps", decaps))
            stack.enter_context(mock.patch.object(pq_ratchet, "chain_add_epoch", add_epoch))
            yield


CHAIN_LOOKAHEAD: Final = 16
"""How far a thief runs KDF_CK from each chain key it holds."""


# --- Scanning ---------------------------------------------------------------------------

WINDOW: Final = MIN_SECRET_LEN


def find_leaks(secrets: Mapping[bytes, str], haystack: bytes) -> set[str]:
    """The labels of the secrets with some ``WINDOW``-byte window inside ``haystack``."""
    windows: dict[bytes, str] = {}
    for value, label in secrets.items():
        for start in range(len(value) - WINDOW + 1):
            windows[value[start : start + WINDOW]] = label
    found: set[str] = set()
    for start in range(len(haystack) - WINDOW + 1):
        hit = windows.get(haystack[start : start + WINDOW])
        if hit is not None:
            found.add(hit)
    return found


def message_keys_in(stolen: Snapshot) -> Iterator[bytes]:
    """Every message key the stolen records hold, or yield by KDF_CK from a chain key they hold."""
    for state in stored_states(stolen):
        if not isinstance(state, SessionRecord):
            continue
        for session in state.states():
            r = session.ratchet
            yield from r.mkskipped.values()
            for ck in (r.cks, r.ckr, *(chain.ck for chain in r.old_chains)):
                for _ in range(CHAIN_LOOKAHEAD if ck is not None else 0):
                    assert ck is not None
                    ck, mk = kdf_ck(r.profile, ck)
                    yield mk


def opened_by_any(keys: Iterable[bytes], pair: Pair, data: bytes) -> bool:
    """Whether one of ``keys``, used as a message key, opens a message of the pair's session.

    ``keytrial.opens`` does the opening (AES-256-GCM profiles only).
    """
    try:
        inner = wire.decode_prekey_message(pair.profile, data).message
    except ProtocolError:
        inner = data
    ad = session_state(pair.stores[INITIATOR], RESPONDER).current.ad
    message = Sample("message", ad, wire.decode_message(pair.profile, inner), b"")
    return any(opens(key, message, pair.profile) for key in keys)


# --- Two devices in memory ----------------------------------------------------------------

INITIATOR, RESPONDER = Address("alice", 1), Address("bob", 1)


@dataclass
class Pair:
    """An initiator and a responder with a session; the relay is the test in between."""

    profile: Profile
    stores: dict[Address, MemoryStore]
    managers: dict[Address, SessionManager]

    @classmethod
    def create(cls, profile: Profile, seed: bytes) -> Pair:
        stores, managers = {}, {}
        for address in (INITIATOR, RESPONDER):
            store = MemoryStore()
            rng = DrbgRandom(seed + address.key.encode())
            managers[address] = SessionManager.create(store, address, profile, now=0, rng=rng)
            stores[address] = store
        managers[RESPONDER].generate_one_time_prekeys(1)
        if profile.kem is not None:
            managers[RESPONDER].generate_kem_prekeys(1)
        managers[INITIATOR].initiate(RESPONDER, managers[RESPONDER].prekey_bundles()[0])
        return cls(profile, stores, managers)

    def send(self, sender: Address, plaintext: bytes) -> bytes:
        return self.managers[sender].encrypt(peer_of(sender), plaintext)

    def receive(self, receiver: Address, data: bytes) -> bytes:
        return self.managers[receiver].decrypt(peer_of(receiver), data)

    def records(self, address: Address) -> Snapshot:
        return snapshot(self.stores[address])


def peer_of(address: Address) -> Address:
    return RESPONDER if address == INITIATOR else INITIATOR


def converse(pair: Pair, bursts: list[int], rng: DrbgRandom) -> None:
    """Bursts of messages, alternating from the initiator, each delivered at once and checked."""
    sender = INITIATOR
    for count in bursts:
        for _ in range(count):
            plaintext = rng.draw("plaintext", 24)
            assert pair.receive(peer_of(sender), pair.send(sender, plaintext)) == plaintext
        sender = peer_of(sender)
