"""Sender keys: libsignal's group messages, as pure transitions (spec/sender-keys.md §2, §4).

libsignal ``rust/protocol/src/sender_keys.rs`` (chain, states, record) and
``group_cipher.rs`` (encrypt, decrypt). A sender has one symmetric chain per
distribution id, which it hands to every member in a
SenderKeyDistributionMessage, and signs every message with a signature key
whose public half travels in that message. Members can follow the chain
forwards only; the signature tells members apart, which a shared chain
cannot.

    seed_i      = HMAC-SHA256(CK_i, 0x01)                      (message key seed)
    CK_{i+1}    = HMAC-SHA256(CK_i, 0x02)
    iv ‖ key    = HKDF-SHA256(salt = none, ikm = seed_i, info = "WhisperGroup", 48)
    ciphertext  = AES-256-CBC-PKCS#7(key, iv, plaintext)

Every function here takes a state and returns a new one; nothing is changed
in place, so an operation that raises changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from protocol.errors import (
    DuplicateMessage,
    InvalidArgument,
    LimitExceeded,
    NoSession,
    TooManySkipped,
)
from protocol.primitives import (
    aes_cbc_pkcs7_decrypt,
    aes_cbc_pkcs7_encrypt,
    hkdf_sha256,
    hmac_sha256,
    x25519_public_key,
)
from protocol.protobuf import UINT32_LIMIT
from protocol.randomness import Random
from protocol.secrecy import SECRET
from protocol.sender_key_messages import (
    CHAIN_KEY_LEN,
    SIGNATURE_LEN,
    SenderKeyDistributionMessage,
    SenderKeyMessage,
    encode_message_body,
)
from protocol.xeddsa import sign, xeddsa_verify

# --- Limits (libsignal rust/protocol/src/consts.rs) ------------------------------------------

MAX_FORWARD_JUMPS: Final = 25_000
"""Most iterations one message may skip ahead (consts.rs ``MAX_FORWARD_JUMPS``)."""
MAX_MESSAGE_KEYS: Final = 2000
"""Skipped message keys kept per state, oldest dropped first (``MAX_MESSAGE_KEYS``)."""
MAX_SENDER_KEY_STATES: Final = 5
"""Chains kept per (sender, distribution id), oldest dropped first (``MAX_SENDER_KEY_STATES``)."""

MESSAGE_KEY_SEED: Final = b"\x01"
CHAIN_KEY_SEED: Final = b"\x02"
WHISPER_GROUP: Final = b"WhisperGroup"
"""HKDF info of the message keys (sender_keys.rs ``SenderMessageKey::new``)."""


@dataclass(frozen=True, slots=True)
class SenderMessageKey:
    """A message key seed and its iteration (libsignal ``SenderMessageKey``)."""

    iteration: int
    seed: bytes = field(metadata=SECRET)

    def __repr__(self) -> str:
        return f"SenderMessageKey(iteration={self.iteration}, seed=<redacted>)"

    def keys(self) -> tuple[bytes, bytes]:
        """(iv, cipher_key) = HKDF(seed, "WhisperGroup") split 16 ‖ 32."""
        derived = hkdf_sha256(self.seed, None, WHISPER_GROUP, 48)
        return derived[:16], derived[16:]


@dataclass(frozen=True, slots=True)
class SenderChainKey:
    """CK_i and i (libsignal ``SenderChainKey``)."""

    iteration: int
    chain_key: bytes = field(metadata=SECRET)

    def __repr__(self) -> str:
        return f"SenderChainKey(iteration={self.iteration}, chain_key=<redacted>)"

    def message_key(self) -> SenderMessageKey:
        """seed_i = HMAC-SHA256(CK_i, 0x01)."""
        return SenderMessageKey(self.iteration, hmac_sha256(self.chain_key, MESSAGE_KEY_SEED))

    def next(self) -> SenderChainKey:
        """CK_{i+1} = HMAC-SHA256(CK_i, 0x02); LIMIT_EXCEEDED past iteration 2^32 − 1."""
        if self.iteration + 1 >= UINT32_LIMIT:
            raise LimitExceeded("the sender chain has used every iteration")
        return SenderChainKey(self.iteration + 1, hmac_sha256(self.chain_key, CHAIN_KEY_SEED))


@dataclass(frozen=True, slots=True)
class SenderKeyState:
    """One chain of one sender (libsignal ``SenderKeyStateStructure``).

    ``signing_private`` is present only in the sender's own state.
    ``message_keys`` are the skipped keys, oldest first. Note that
    libsignal also stores a message version; every state here is version 3.
    """

    chain_id: int
    chain: SenderChainKey
    signing_key: bytes
    signing_private: bytes | None = field(metadata=SECRET)
    message_keys: tuple[SenderMessageKey, ...] = field(metadata=SECRET)

    def __post_init__(self) -> None:
        # Note that libsignal's SenderKeyRecord::deserialize takes any number
        # of keys and trims to MAX_MESSAGE_KEYS only when it adds one. Our
        # transitions never hold more, so a stored state with more is refused
        # (STATE_CORRUPT when loaded): a record that grew in the store cannot
        # make every later message search or rewrite it (spec/sender-keys.md §6).
        if len(self.message_keys) > MAX_MESSAGE_KEYS:
            raise InvalidArgument(f"a sender key state keeps at most {MAX_MESSAGE_KEYS} keys")

    def __repr__(self) -> str:
        return (
            f"SenderKeyState(chain_id={self.chain_id}, iteration={self.chain.iteration}, "
            f"signing_key={self.signing_key.hex()}, own={self.signing_private is not None}, "
            f"skipped={len(self.message_keys)}, keys=<redacted>)"
        )


@dataclass(frozen=True, slots=True)
class SenderKeyRecord:
    """The states of one (sender, distribution id), newest first (libsignal ``SenderKeyRecord``)."""

    states: tuple[SenderKeyState, ...]

    def __post_init__(self) -> None:
        # Note that libsignal's deserialize takes any number of states and
        # trims to MAX_SENDER_KEY_STATES only in add_sender_key_state; ours
        # refuses more, as for the keys of a state above.
        if len(self.states) > MAX_SENDER_KEY_STATES:
            raise InvalidArgument(
                f"a sender key record keeps at most {MAX_SENDER_KEY_STATES} states"
            )

    def state_for_chain(self, chain_id: int) -> SenderKeyState | None:
        return next((s for s in self.states if s.chain_id == chain_id), None)


EMPTY_RECORD: Final = SenderKeyRecord(())


def add_state(record: SenderKeyRecord, state: SenderKeyState) -> SenderKeyRecord:
    """Implements libsignal ``SenderKeyRecord::add_sender_key_state``.

    A state with the same chain id and signing key is kept as it is (its
    chain is not reset) and moved to the front; any other state with that
    chain id is dropped; the oldest states go beyond MAX_SENDER_KEY_STATES.
    """
    same = next(
        (
            s
            for s in record.states
            if (s.chain_id, s.signing_key) == (state.chain_id, state.signing_key)
        ),
        None,
    )
    others = tuple(s for s in record.states if s.chain_id != state.chain_id)
    newest = same if same is not None else state
    return SenderKeyRecord((newest, *others)[:MAX_SENDER_KEY_STATES])


def create_state(rng: Random) -> SenderKeyState:
    """A new own chain (libsignal ``create_sender_key_distribution_message``, no record yet).

    Draws ``sender_chain_id`` (4 bytes, big-endian, shifted right by one: libsignal
    keeps chain ids to 31 bits for libsignal-protocol-java), ``sender_chain_key``
    (32) and ``sender_signing_key`` (32, an X25519 private key).
    """
    chain_id = int.from_bytes(rng.draw("sender_chain_id", 4), "big") >> 1
    chain_key = rng.draw("sender_chain_key", CHAIN_KEY_LEN)
    signing_private = rng.draw("sender_signing_key", 32)
    public = x25519_public_key(signing_private)
    return SenderKeyState(chain_id, SenderChainKey(0, chain_key), public, signing_private, ())


def distribution_message(
    distribution_id: bytes, state: SenderKeyState
) -> SenderKeyDistributionMessage:
    """The distribution message for ``state``: its current iteration and chain key."""
    chain = state.chain
    return SenderKeyDistributionMessage(
        distribution_id, state.chain_id, chain.iteration, chain.chain_key, state.signing_key
    )


def state_from_distribution(message: SenderKeyDistributionMessage) -> SenderKeyState:
    """A member's state for a received distribution message (no signing private key)."""
    chain = SenderChainKey(message.iteration, message.chain_key)
    return SenderKeyState(message.chain_id, chain, message.signing_key, None, ())


def encrypt(
    distribution_id: bytes, state: SenderKeyState, plaintext: bytes, rng: Random
) -> tuple[SenderKeyState, bytes]:
    """Implements libsignal ``group_encrypt`` on the current own state: (state', message).

    Encrypts under the key of the current iteration, signs version ‖ protobuf
    with XEdDSA (draws ``xeddsa_z``), then steps the chain.
    """
    if not isinstance(plaintext, bytes):
        raise InvalidArgument("plaintext must be bytes")
    if state.signing_private is None:
        raise NoSession("this sender key state is a member's: it cannot send")
    following = state.chain.next()
    iv, key = state.chain.message_key().keys()
    ciphertext = aes_cbc_pkcs7_encrypt(key, iv, plaintext)
    body = encode_message_body(distribution_id, state.chain_id, state.chain.iteration, ciphertext)
    signature = sign(state.signing_private, body, rng)
    assert len(signature) == SIGNATURE_LEN
    return replace(state, chain=following), body + signature


def _message_key(state: SenderKeyState, iteration: int) -> tuple[SenderKeyState, SenderMessageKey]:
    """Implements libsignal ``get_sender_key``: the key of ``iteration`` and the state after it.

    An earlier iteration must be among the stored keys (else DUPLICATE_MESSAGE,
    as libsignal: a key dropped from the store reads as a replay). A later one
    may be at most MAX_FORWARD_JUMPS ahead (else TOO_MANY_SKIPPED); the keys
    skipped on the way are stored, keeping the newest MAX_MESSAGE_KEYS.
    """
    chain = state.chain
    if iteration < chain.iteration:
        stored = next((k for k in state.message_keys if k.iteration == iteration), None)
        if stored is None:
            raise DuplicateMessage(f"sender key iteration {iteration} was already used")
        remaining = tuple(k for k in state.message_keys if k is not stored)
        return replace(state, message_keys=remaining), stored
    if iteration - chain.iteration > MAX_FORWARD_JUMPS:
        raise TooManySkipped("sender key message is too far into the future")
    skipped = list(state.message_keys)
    while chain.iteration < iteration:
        skipped.append(chain.message_key())
        chain = chain.next()
    kept = tuple(skipped[-MAX_MESSAGE_KEYS:])
    return replace(state, chain=chain.next(), message_keys=kept), chain.message_key()


def decrypt(state: SenderKeyState, message: SenderKeyMessage) -> tuple[SenderKeyState, bytes]:
    """Implements libsignal ``group_decrypt`` on the message's chain: (state', plaintext).

    Verifies the signature over version ‖ protobuf as received
    (INVALID_SIGNATURE; libsignal's sign-bit variant, spec/xeddsa.md §5)
    before touching the chain, then decrypts (AUTH_FAILED on bad padding).
    """
    xeddsa_verify(
        state.signing_key, message.signed, message.signature, accept_libsignal_sign_bit=True
    )
    after, message_key = _message_key(state, message.iteration)
    iv, key = message_key.keys()
    return after, aes_cbc_pkcs7_decrypt(key, iv, message.ciphertext)
