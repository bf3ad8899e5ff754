"""The Double Ratchet (spec/ratchet.md; header encryption: spec/header-encryption.md).

Implements DR §3 (the Double Ratchet, revision 1, 2016-11-20: RatchetInitAlice,
RatchetInitBob, RatchetEncrypt, RatchetDecrypt, SkipMessageKeys, DHRatchet)
and DR §4 (the header-encryption variants). The profile's parts supply every
external function: KDF_RK and KDF_CK (``chains.py``), ENCRYPT and DECRYPT
(``cipher.py``), HEADER and HENCRYPT (``headers.py``) and the message bytes
(``framing.py``); nothing here asks which profile it runs.

State is an immutable ``RatchetState`` under the spec's names. A transition
assigns local variables line by line where the pseudocode assigns
``state.X``, and builds the one new state from them once the message has
authenticated; a failure returns nothing, so the caller's state is
untouched (spec/ratchet.md §7).

Both ``ratchet_encrypt`` and ``ratchet_decrypt`` take an optional per-message
input to the message-key derivation (``message_key_salt``, spec/ratchet.md
§2.2): libsignal v4's triple ratchet passes its SPQR message key there, so a
triple ratchet is this Double Ratchet plus a separate post-quantum state.
``ratchet_decrypt`` is ``find_message_key`` (the message's key and the
pending state, every check that needs no key) then ``open_message``
(DECRYPT, where the input enters), so that the triple ratchet can run SPQR
between them in libsignal's order (spec/ratchet.md §3.2).

Deviations from the pseudocode, each explained where it happens:

* A received DH ratchet step authenticates the message *before* drawing the
  new ratchet key pair, so a forgery consumes no randomness (spec/ratchet.md §3.2).
* Earlier receiving chains are remembered (``old_chains``), so a replay is
  DUPLICATE_MESSAGE rather than a failed DH step, and signal-v3 can follow
  libsignal, which never skips by PN but advances an old chain on demand
  (spec/ratchet.md §4.1).
* Header encryption tries the current and next header keys before the old
  ones; at most one key opens a header, so the order changes only the cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Final, Literal, NamedTuple, cast

from protocol.cipher import MessageKeys
from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    InvalidArgument,
    LimitExceeded,
    MessageKeyEvicted,
    TooManySkipped,
)
from protocol.headers import EncryptedHeaders, Source
from protocol.primitives import X25519KeyPair, check_x25519_public
from protocol.profiles import Profile
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.ratchet_keys import ChainKey, HeaderKey, MessageKey, RootKey
from protocol.wire import U32_LIMIT, Header, RatchetMessage, decode_message

Role = Literal["initiator", "responder"]
SkippedKeyId = tuple[bytes, int]
"""The index of a skipped message key in MKSKIPPED: (chain id, n). The chain id
is the sender's ratchet public key, or with header encryption the chain's
header key (DR §4)."""

KEY_LEN: Final = 32


@dataclass(frozen=True, slots=True)
class ReceivingChain:
    """An earlier receiving chain (spec/ratchet.md §4.1).

    ``n`` is the number of the next key the chain would give. ``ck`` is kept
    only under libsignal rules (advanced when a late message arrives); under
    the spec's rules the chain was skipped to PN when it ended and ``ck`` is None.
    """

    chain_id: bytes
    ck: ChainKey | None
    n: int

    def __repr__(self) -> str:
        return f"ReceivingChain(n={self.n}, open={self.ck is not None}, keys=<redacted>)"


class RatchetState(NamedTuple):
    """Double Ratchet state (DR §3.2, §4) under the spec's names (spec/ratchet.md §1).

    ``mkskipped`` and ``evicted`` are never mutated: a transition that changes
    them builds new dicts, and one that does not shares them.

    Design: a named tuple, not a frozen dataclass. Every message builds one
    new state (RatchetEncrypt's Ns += 1, RatchetDecrypt's new CKr and Nr), and
    a frozen dataclass's ``__init__`` sets each of the 17 fields through
    ``object.__setattr__``, which cost about 1.4 µs more per message than
    one ``tuple.__new__`` (README "Performance"). A named tuple is as
    immutable: its fields are read-only and it has no ``__dict__``. What it
    adds is being a tuple (indexing, unpacking, ``==`` with a plain tuple of
    the same values); nothing in the library uses the state that way, and
    every reader names its fields. The stored format reads a named tuple's
    fields as it reads a dataclass's (protocol/store/schema.py), so the
    stored bytes are the ones of format 1 (spec/storage.md §3.1), and the
    secret fields are found from the key types as before (protocol/secrecy.py).
    Splitting the per-message fields into a small record of their own was the
    other way: a chain step would still rebuild the state holding it, and
    every reader and the stored layout would see two levels instead of the
    spec's flat list.
    """

    profile: Profile
    role: Role
    dhs: X25519KeyPair
    dhr: bytes | None
    rk: RootKey
    cks: ChainKey | None
    ckr: ChainKey | None
    ns: int
    nr: int
    pn: int
    mkskipped: dict[SkippedKeyId, MessageKey]
    hks: HeaderKey | None
    hkr: HeaderKey | None
    nhks: HeaderKey | None
    nhkr: HeaderKey | None
    old_chains: tuple[ReceivingChain, ...]
    # The most recent evictions from mkskipped, oldest first (spec/ratchet.md §6.2).
    evicted: dict[SkippedKeyId, None]

    def __repr__(self) -> str:
        dhr = self.dhr.hex() if self.dhr is not None else None
        return (
            f"RatchetState(profile={self.profile.name!r}, role={self.role!r}, "
            f"dhs_public={self.dhs.public.hex()}, dhr={dhr}, ns={self.ns}, nr={self.nr}, "
            f"pn={self.pn}, skipped={len(self.mkskipped)}, old_chains={len(self.old_chains)}, "
            "keys=<redacted>)"
        )


# --- External functions (DR §3.1, §5.2; spec/ratchet.md §2) ----------------------------


def generate_dh(rng: Random) -> X25519KeyPair:
    """GENERATE_DH(): a new X25519 key pair from 32 drawn bytes (label ``ratchet_key``)."""
    return X25519KeyPair.from_private(rng.draw("ratchet_key", KEY_LEN))


def kdf_rk(
    profile: Profile, rk: bytes, dh_out: bytes
) -> tuple[RootKey, ChainKey, HeaderKey | None]:
    """KDF_RK / KDF_RK_HE (DR §3.1, §4) of the profile: (rk', ck, nhk or None)."""
    return profile.chains.kdf_rk(rk, dh_out, profile.headers.encrypted)


def kdf_ck(profile: Profile, ck: bytes) -> tuple[ChainKey, MessageKey]:
    """KDF_CK (DR §3.1, §5.2) of the profile: (ck', mk)."""
    return profile.chains.kdf_ck(ck)


def message_keys(profile: Profile, mk: bytes, salt: bytes | None = None) -> MessageKeys:
    """ENCRYPT's key expansion of the profile's cipher (spec/ratchet.md §2.1-§2.2)."""
    return profile.cipher.message_keys(mk, salt)


def _header_encryption(profile: Profile) -> EncryptedHeaders:
    """The profile's header encryption, for the vectors and the audit's key trial."""
    if not profile.headers.encrypted:
        raise InvalidArgument(f"profile {profile.name} does not encrypt headers")
    return cast(EncryptedHeaders, profile.headers)


def header_subkey(profile: Profile, hk: bytes, salt: bytes) -> bytes:
    """The one-header AES key of spec/header-encryption.md §2."""
    return _header_encryption(profile).subkey(hk, salt)


def hencrypt(profile: Profile, hk: bytes, header_bytes: bytes, rng: Random) -> bytes:
    """HENCRYPT (DR §4; spec/header-encryption.md §2)."""
    return _header_encryption(profile).hencrypt(hk, header_bytes, rng)


def hdecrypt(profile: Profile, hk: bytes, enc_header: bytes) -> bytes | None:
    """HDECRYPT (DR §4): the header bytes, or None when hk does not open them."""
    return _header_encryption(profile).hdecrypt(hk, enc_header)


# --- Initialisation (DR §3.3, §4; spec/ratchet.md §1.1) ---------------------------------


def init_initiator(
    profile: Profile, sk: bytes, responder_ratchet_public: bytes, rng: Random = SYSTEM_RANDOM
) -> RatchetState:
    """Implements RatchetInitAlice / RatchetInitAliceHE (DR §3.3, §4).

    Under libsignal rules the first chain key is also kept as the receiving
    chain of the responder's signed prekey, which the responder may send on.
    """
    check_x25519_public(responder_ratchet_public)
    rk, ck0, hka, nhkb = profile.chains.initial_keys(sk, profile.headers.encrypted)
    dhs = generate_dh(rng)
    rk, cks, nhks = kdf_rk(profile, rk, dhs.exchange(responder_ratchet_public))
    return RatchetState(
        profile=profile,
        role="initiator",
        dhs=dhs,
        dhr=responder_ratchet_public,
        rk=rk,
        cks=cks,
        ckr=ck0,
        ns=0,
        nr=0,
        pn=0,
        mkskipped={},
        hks=hka,
        hkr=None,
        nhks=nhks,
        nhkr=nhkb,
        old_chains=(),
        evicted={},
    )


def init_responder(
    profile: Profile, sk: bytes, responder_ratchet_keypair: X25519KeyPair
) -> RatchetState:
    """Implements RatchetInitBob / RatchetInitBobHE (DR §3.3, §4).

    The key pair is the responder's signed prekey (DR §7.1). Under libsignal
    rules the first chain key is its sending chain, so it may send first.
    """
    if not isinstance(responder_ratchet_keypair, X25519KeyPair):
        raise InvalidArgument("the responder's ratchet key pair must be an X25519KeyPair")
    rk, ck0, hka, nhkb = profile.chains.initial_keys(sk, profile.headers.encrypted)
    return RatchetState(
        profile=profile,
        role="responder",
        dhs=responder_ratchet_keypair,
        dhr=None,
        rk=rk,
        cks=ck0,
        ckr=None,
        ns=0,
        nr=0,
        pn=0,
        mkskipped={},
        hks=None,
        hkr=None,
        nhks=nhkb,
        nhkr=hka,
        old_chains=(),
        evicted={},
    )


# --- RatchetEncrypt (DR §3.4, §4; spec/ratchet.md §3.1) ------------------------------------


def ratchet_encrypt(
    state: RatchetState,
    plaintext: bytes,
    ad: bytes,
    rng: Random = SYSTEM_RANDOM,
    *,
    message_key_salt: bytes | None = None,
    pq_ratchet: bytes = b"",
) -> tuple[RatchetState, bytes]:
    """Implements RatchetEncrypt / RatchetEncryptHE (DR §3.4, §4); returns the wire message.

    ``message_key_salt`` is the optional per-message input of the message-key
    derivation (spec/ratchet.md §2.2); ``pq_ratchet`` an opaque field the
    framing carries beside the header and under the MAC (libsignal v4's
    SignalMessage field 5; empty elsewhere). Both come from the caller, here
    the triple ratchet (``triple_ratchet.py``).
    """
    profile = state.profile
    profile.cipher.check_ad(ad)
    if not isinstance(plaintext, bytes):
        raise InvalidArgument("plaintext must be bytes")
    if state.cks is None:
        raise InvalidArgument("no sending chain yet: the responder sends after it first receives")
    if state.ns >= U32_LIMIT - 1:
        raise LimitExceeded("the sending chain has used every message number")
    cks, mk = profile.chains.kdf_ck(state.cks)  # state.CKs, mk = KDF_CK(state.CKs)
    header = Header(state.dhs.public, state.pn, state.ns, pq_ratchet)  # HEADER(DHs, PN, Ns)
    block = profile.headers.protect(header, state.hks, rng)  # or HENCRYPT(state.HKs, header)
    keys = profile.cipher.message_keys(mk, message_key_salt)
    message = profile.cipher.seal(
        keys, plaintext, ad, state.role == "initiator", header, block, profile.framing
    )
    if len(message) > profile.max_message_size:
        raise LimitExceeded("message would exceed the profile's size limit")
    # state.Ns += 1: the one new state, with the new sending chain key (fields in order).
    new_state = RatchetState(
        profile, state.role, state.dhs, state.dhr, state.rk, cks, state.ckr, state.ns + 1,
        state.nr, state.pn, state.mkskipped, state.hks, state.hkr, state.nhks, state.nhkr,
        state.old_chains, state.evicted,
    )  # fmt: skip
    return new_state, message


# --- RatchetDecrypt (DR §3.5, §4; spec/ratchet.md §3.2, §4) --------------------------------


class PendingMessage(NamedTuple):
    """A received message whose key RatchetDecrypt has found, before DECRYPT (spec/ratchet.md §3.2).

    ``mk`` is the message's key as KDF_CK gave it or MKSKIPPED kept it,
    before any per-message input salts it (libsignal's seed, its
    ``MessageKeyGenerator``). ``state`` is the state with that key consumed:
    the skipped key deleted, or the chain skipped to the message and stepped
    past it, and on a new chain the receiving half of DHRatchet. It is
    pending: nothing is committed until ``open_message`` authenticates the
    message, and a caller that drops it keeps its state unchanged.
    ``header`` is the message's header (decrypted, with header encryption)
    and ``dh_step`` says whether DHRatchet's sending half is still to run.

    A named tuple, as ``RatchetState`` and for its reason: every received
    message builds one.
    """

    state: RatchetState
    mk: MessageKey
    header: Header
    message: RatchetMessage
    ad: bytes
    dh_step: bool

    def __repr__(self) -> str:
        return f"PendingMessage({self.state!r}, dh_step={self.dh_step}, mk=<redacted>)"


def ratchet_decrypt(
    state: RatchetState,
    message: bytes,
    ad: bytes,
    rng: Random = SYSTEM_RANDOM,
    *,
    message_key_salt: bytes | None = None,
) -> tuple[RatchetState, bytes]:
    """Implements RatchetDecrypt / RatchetDecryptHE (DR §3.5, §4).

    ``find_message_key`` runs the pseudocode up to ``state.Nr += 1`` and
    ``open_message`` its last line, DECRYPT; they are two functions so that
    the triple ratchet can run SPQR between them, as libsignal's
    ``triple_ratchet.rs`` runs it between ``consume_message_key`` and the
    MAC (spec/spqr.md §13). ``message_key_salt`` is the optional
    per-message input of the message-key derivation (spec/ratchet.md §2.2).
    """
    return open_message(find_message_key(state, message, ad), rng, message_key_salt)


def find_message_key(state: RatchetState, message: bytes, ad: bytes) -> PendingMessage:
    """RatchetDecrypt / RatchetDecryptHE (DR §3.5, §4) up to DECRYPT, line by line.

    Where the pseudocode assigns ``state.X``, this function assigns the local
    ``X`` and builds the pending state once, at the end; ``state`` itself is
    immutable, so on any failure nothing is returned and the caller's state
    is unchanged (spec/ratchet.md §7). Every check that needs no key runs
    here: a replay (DUPLICATE_MESSAGE), an evicted key, a gap over the
    limit (TOO_MANY_SKIPPED).

    Note that on a DH step only the receiving half of DHRatchet runs here;
    GENERATE_DH and the sending half wait until ``open_message`` has
    authenticated the message, so the result is the spec's but a forgery
    draws no randomness.
    """
    profile = state.profile
    profile.cipher.check_ad(ad)
    incoming = decode_message(profile, message)
    # DecryptHeader (DR §4), or the plain header's DHr comparison (DR §3.5).
    header, chain_id, source = _find_chain(state, incoming)
    # plaintext = TrySkippedMessageKeys(state, header, ciphertext, AD)
    skipped_id = (chain_id, header.n)
    if skipped_id in state.mkskipped:
        return _take_skipped_message_key(state, skipped_id, header, incoming, ad)
    if skipped_id in state.evicted:
        raise MessageKeyEvicted("the key of this message was evicted from the skipped-key store")
    if isinstance(source, int):  # a late message on an earlier chain (spec/ratchet.md §4.1)
        return _old_chain_message_key(state, chain_id, source, header, incoming, ad)
    rk, dhr, ckr, nr = state.rk, state.dhr, state.ckr, state.nr
    hks, hkr, nhkr = state.hks, state.hkr, state.nhkr
    mkskipped, evicted, old_chains = state.mkskipped, state.evicted, state.old_chains
    dh_step = source == "next"
    if dh_step:  # header.dh != state.DHr
        # SkipMessageKeys(state, header.pn); the chain joins old_chains (spec/ratchet.md §4.1)
        mkskipped, evicted, old_chains = _end_receiving_chain(state, header.pn)
        # DHRatchet(state, header), receiving half:
        # HKs = NHKs; HKr = NHKr; DHr = header.dh; Nr = 0; RK, CKr, NHKr = KDF_RK(RK, DH(DHs, DHr))
        hks, hkr = state.nhks, nhkr
        dhr, nr = header.dh, 0
        rk, ckr, nhkr = kdf_rk(profile, rk, state.dhs.exchange(dhr))
        chain_id = _new_chain_id(profile, dhr, hkr)
    if header.n < nr:
        raise DuplicateMessage("message key already used")
    if ckr is None:
        raise AuthFailed("no receiving chain key for this message")
    if header.n > nr:  # SkipMessageKeys(state, header.n), which skips nothing when n = Nr
        ckr, mkskipped, evicted = _skip_message_keys(
            profile, mkskipped, evicted, chain_id, ckr, nr, header.n
        )
    ckr, mk = profile.chains.kdf_ck(ckr)  # state.CKr, mk = KDF_CK(state.CKr)
    nr = header.n + 1  # state.Nr += 1
    pending = RatchetState(
        profile, state.role, state.dhs, dhr, rk, state.cks, ckr, state.ns, nr, state.pn,
        mkskipped, hks, hkr, state.nhks, nhkr, old_chains, evicted,
    )  # fmt: skip
    return PendingMessage(pending, mk, header, incoming, ad, dh_step)


def open_message(
    pending: PendingMessage, rng: Random = SYSTEM_RANDOM, message_key_salt: bytes | None = None
) -> tuple[RatchetState, bytes]:
    """RatchetDecrypt's last line, DECRYPT(mk, ciphertext, CONCAT(AD, header)) (DR §3.5), then,
    after a new chain, the sending half of DHRatchet; returns the new state and the plaintext.

    ``message_key_salt`` enters the message-key derivation here and only
    here (spec/ratchet.md §2.2). A failure (AUTH_FAILED) returns nothing, so
    the caller's state is unchanged.
    """
    state = pending.state
    plaintext = _open(state, pending.mk, pending.message, pending.ad, message_key_salt)
    if not pending.dh_step:
        return state, plaintext
    # DHRatchet, sending half, now that the message is genuine (spec/ratchet.md §5.3):
    # PN = Ns; Ns = 0; DHs = GENERATE_DH(); RK, CKs, NHKs = KDF_RK(RK, DH(DHs, DHr))
    profile, dhr = state.profile, state.dhr
    assert dhr is not None  # DHr = header.dh in find_message_key
    pn, ns = profile.chains.previous_counter(state.ns), 0
    dhs = generate_dh(rng)
    rk, cks, nhks = kdf_rk(profile, state.rk, dhs.exchange(dhr))
    new_state = RatchetState(
        profile, state.role, dhs, dhr, rk, cks, state.ckr, ns, state.nr, pn, state.mkskipped,
        state.hks, state.hkr, nhks, state.nhkr, state.old_chains, state.evicted,
    )  # fmt: skip
    return new_state, plaintext


def _find_chain(state: RatchetState, message: RatchetMessage) -> tuple[Header, bytes, Source]:
    """The header of ``message`` and its chain id and Source (spec/ratchet.md §3.2 step 2)."""
    headers = state.profile.headers
    current = headers.chain_id(state.dhr, state.hkr)
    old = [chain.chain_id for chain in state.old_chains]
    return headers.locate(message, current, state.nhkr, old)


def _new_chain_id(profile: Profile, dhr: bytes, hkr: HeaderKey | None) -> bytes:
    """The id of the receiving chain a DH step starts: DHr, or with header encryption HKr."""
    chain_id = profile.headers.chain_id(dhr, hkr)
    assert chain_id is not None  # NHKr is set whenever headers are encrypted
    return chain_id


def _open(
    state: RatchetState,
    mk: MessageKey,
    message: RatchetMessage,
    ad: bytes,
    salt: bytes | None,
) -> bytes:
    """DECRYPT(mk, ciphertext, CONCAT(AD, header)) (DR §3.1) with the profile's cipher."""
    cipher = state.profile.cipher
    return cipher.open(cipher.message_keys(mk, salt), message, ad, state.role != "initiator")


def _take_skipped_message_key(
    state: RatchetState,
    skipped_id: SkippedKeyId,
    header: Header,
    message: RatchetMessage,
    ad: bytes,
) -> PendingMessage:
    """TrySkippedMessageKeys (DR §3.5): the stored key of (chain, n), deleted from MKSKIPPED.

    A key evicted from the store (spec/ratchet.md §6.2) is MESSAGE_KEY_EVICTED,
    which the caller checks.
    """
    mkskipped = dict(state.mkskipped)
    mk = mkskipped.pop(skipped_id)  # del state.MKSKIPPED[header.dh, header.n]
    pending = _with_skipped(state, mkskipped, state.evicted, state.old_chains)
    return PendingMessage(pending, mk, header, message, ad, False)


def _old_chain_message_key(
    state: RatchetState,
    chain_id: bytes,
    index: int,
    header: Header,
    message: RatchetMessage,
    ad: bytes,
) -> PendingMessage:
    """SkipMessageKeys(n) and KDF_CK on ``old_chains[index]`` (spec/ratchet.md §4.1).

    Only libsignal's rules keep an old chain's key (``ck``); under the
    spec's rules the chain was skipped to PN when it ended, so a message past
    that has no key (AUTH_FAILED).
    """
    chain, n = state.old_chains[index], header.n
    if n < chain.n:
        raise DuplicateMessage("message key already used")
    if chain.ck is None:
        raise AuthFailed("no receiving chain key for this message")
    ck, mkskipped, evicted = _skip_message_keys(
        state.profile, state.mkskipped, state.evicted, chain_id, chain.ck, chain.n, n
    )
    ck, mk = state.profile.chains.kdf_ck(ck)
    chains = list(state.old_chains)
    chains[index] = ReceivingChain(chain_id, ck, n + 1)
    pending = _with_skipped(state, mkskipped, evicted, tuple(chains))
    return PendingMessage(pending, mk, header, message, ad, False)


def _with_skipped(
    state: RatchetState,
    mkskipped: dict[SkippedKeyId, MessageKey],
    evicted: dict[SkippedKeyId, None],
    old_chains: tuple[ReceivingChain, ...],
) -> RatchetState:
    """``state`` with new skipped keys, evictions and old chains, and nothing else changed."""
    return RatchetState(
        state.profile, state.role, state.dhs, state.dhr, state.rk, state.cks, state.ckr, state.ns,
        state.nr, state.pn, mkskipped, state.hks, state.hkr, state.nhks, state.nhkr, old_chains,
        evicted,
    )  # fmt: skip


Skipped = tuple[ChainKey, dict[SkippedKeyId, MessageKey], dict[SkippedKeyId, None]]
"""What SkipMessageKeys leaves: the chain key, MKSKIPPED and the eviction record."""


def _skip_message_keys(
    profile: Profile,
    mkskipped: dict[SkippedKeyId, MessageKey],
    evicted: dict[SkippedKeyId, None],
    chain_id: bytes,
    ck: ChainKey,
    start: int,
    until: int,
) -> Skipped:
    """SkipMessageKeys (DR §3.5): store the keys of messages start..until-1.

    Refuses to skip more than max_skip keys; beyond max_stored_skipped stored
    keys, the oldest are evicted and remembered (spec/ratchet.md §6). The
    dicts given are never changed: when keys are skipped, new ones are made.

    Note that when more keys are skipped than the store holds, the first of
    them would be evicted as soon as they were stored: only their chain
    keys are computed (``ChainRules.advance``) and only the ids the eviction
    record keeps are made. The state that results is the same as storing
    every key and evicting the oldest; the work for a forged header that
    jumps max_skip keys is halved (spec/security.md §3.13).
    """
    rules = profile.chains
    count = until - start
    if count > rules.max_skip:
        raise TooManySkipped(f"message would skip {count} keys")
    if count <= 0:
        return ck, mkskipped, evicted
    keep = min(count, rules.max_stored_skipped)
    ck, kept = rules.advance(ck, count, keep)
    stored = dict(mkskipped)
    overflow = len(stored) + count - rules.max_stored_skipped
    if overflow > 0:
        gone = list(islice(stored, min(overflow, len(stored))))
        for key in gone:
            del stored[key]
        dropped = count - keep  # new keys evicted straight away, oldest first
        first = max(start, start + dropped - rules.max_stored_skipped)
        gone += [(chain_id, n) for n in range(first, start + dropped)]
        evicted = _record_evicted(profile, evicted, gone[-rules.max_stored_skipped :])
    for n, mk in enumerate(kept, until - keep):
        stored[(chain_id, n)] = mk
    return ck, stored, evicted


def _record_evicted(
    profile: Profile, evicted: dict[SkippedKeyId, None], gone: list[SkippedKeyId]
) -> dict[SkippedKeyId, None]:
    """Remember the last max_stored_skipped evictions (spec/ratchet.md §6.2)."""
    record = dict(evicted)
    record.update(dict.fromkeys(gone))
    for key in list(islice(record, max(len(record) - profile.chains.max_stored_skipped, 0))):
        del record[key]
    return record


def _end_receiving_chain(
    state: RatchetState, pn: int
) -> tuple[dict[SkippedKeyId, MessageKey], dict[SkippedKeyId, None], tuple[ReceivingChain, ...]]:
    """Close the receiving chain at a DH step and add it to old_chains (spec/ratchet.md §4.1).

    When PN says where the peer's chain ended (DR §3.5), SkipMessageKeys(PN)
    stores the rest of its keys and the chain key is deleted. Under
    libsignal's PN rule it cannot say (0 for both 0 and 1 messages), so the
    chain key is kept and advanced if a late message arrives. Returns the
    new MKSKIPPED, eviction record and old chains.
    """
    profile = state.profile
    mkskipped, evicted = state.mkskipped, state.evicted
    chain_id = profile.headers.chain_id(state.dhr, state.hkr)
    if state.ckr is None or chain_id is None:
        return mkskipped, evicted, state.old_chains
    if profile.chains.pn_ends_chain:
        _, mkskipped, evicted = _skip_message_keys(
            profile, mkskipped, evicted, chain_id, state.ckr, state.nr, pn
        )
        ended = ReceivingChain(chain_id, None, max(pn, state.nr))
    else:
        ended = ReceivingChain(chain_id, state.ckr, state.nr)
    chains = (*state.old_chains, ended)
    # Keep at most max_receiving_chains old chains; forget the keys of older ones.
    excess = len(chains) - profile.chains.max_receiving_chains
    if excess > 0:
        gone = {chain.chain_id for chain in chains[:excess]}
        chains = chains[excess:]
        mkskipped = {key: mk for key, mk in mkskipped.items() if key[0] not in gone}
        evicted = {key: None for key in evicted if key[0] not in gone}
    return mkskipped, evicted, chains
