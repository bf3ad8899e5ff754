"""The Double Ratchet (spec/ratchet.md; header encryption: spec/header-encryption.md).

Implements DR §3 (the Double Ratchet, revision 1, 2016-11-20: RatchetInitAlice,
RatchetInitBob, RatchetEncrypt, RatchetDecrypt, SkipMessageKeys, DHRatchet)
and DR §4 (the header-encryption variants). The profile's parts supply every
external function: KDF_RK and KDF_CK (``chains.py``), ENCRYPT and DECRYPT
(``cipher.py``), HEADER and HENCRYPT (``headers.py``) and the message bytes
(``framing.py``); nothing here asks which profile it runs.

State is an immutable ``RatchetState`` under the spec's names. A transition
copies it into a ``_Draft``, changes the copy line by line as the
pseudocode changes ``state``, and freezes it only once the message has
authenticated; a failure drops the copy, so the caller's state is untouched
(spec/ratchet.md §7).

Both ``ratchet_encrypt`` and ``ratchet_decrypt`` take an optional per-message
input to the message-key derivation (``message_key_salt``, spec/ratchet.md
§2.2): libsignal v4's triple ratchet passes its SPQR message key there, so a
triple ratchet is this Double Ratchet plus a separate post-quantum state.

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
from typing import Final, Literal, cast

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


@dataclass(frozen=True, slots=True)
class RatchetState:
    """Double Ratchet state (DR §3.2, §4) under the spec's names (spec/ratchet.md §1).

    ``mkskipped`` and ``evicted`` are never mutated: a transition that changes
    them builds new dicts, and one that does not shares them.
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


class _Draft:
    """A private, mutable copy of a ``RatchetState`` for one transition.

    The pseudocode assigns to ``state``; a transition assigns to its draft
    instead, and ``freeze`` builds the new state once nothing can fail.
    ``mkskipped`` and ``evicted`` are shared with the old state until the
    first change (``own_skipped``), so a message that changes neither copies
    neither.
    """

    __slots__ = (
        "_owned",
        "ckr",
        "cks",
        "dhr",
        "dhs",
        "evicted",
        "hkr",
        "hks",
        "mkskipped",
        "nhkr",
        "nhks",
        "nr",
        "ns",
        "old_chains",
        "pn",
        "profile",
        "rk",
        "role",
    )  # fmt: skip

    def __init__(self, state: RatchetState) -> None:
        self.profile = state.profile
        self.role = state.role
        self.dhs = state.dhs
        self.dhr = state.dhr
        self.rk = state.rk
        self.cks = state.cks
        self.ckr = state.ckr
        self.ns = state.ns
        self.nr = state.nr
        self.pn = state.pn
        self.mkskipped = state.mkskipped
        self.hks = state.hks
        self.hkr = state.hkr
        self.nhks = state.nhks
        self.nhkr = state.nhkr
        self.old_chains = state.old_chains
        self.evicted = state.evicted
        self._owned = False

    def own_skipped(self) -> dict[SkippedKeyId, MessageKey]:
        """``mkskipped``, copied on first use so the old state's dict is never changed."""
        if not self._owned:
            self.mkskipped = dict(self.mkskipped)
            self._owned = True
        return self.mkskipped

    def freeze(self) -> RatchetState:
        return RatchetState(
            profile=self.profile,
            role=self.role,
            dhs=self.dhs,
            dhr=self.dhr,
            rk=self.rk,
            cks=self.cks,
            ckr=self.ckr,
            ns=self.ns,
            nr=self.nr,
            pn=self.pn,
            mkskipped=self.mkskipped,
            hks=self.hks,
            hkr=self.hkr,
            nhks=self.nhks,
            nhkr=self.nhkr,
            old_chains=self.old_chains,
            evicted=self.evicted,
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
    s = _Draft(state)
    s.cks, mk = kdf_ck(profile, state.cks)
    header = Header(state.dhs.public, state.pn, state.ns, pq_ratchet)
    block = profile.headers.protect(header, state.hks, rng)
    keys = profile.cipher.message_keys(mk, message_key_salt)
    message = profile.cipher.seal(
        keys, plaintext, ad, state.role == "initiator", header, block, profile.framing
    )
    if len(message) > profile.max_message_size:
        raise LimitExceeded("message would exceed the profile's size limit")
    s.ns += 1
    return s.freeze(), message


# --- RatchetDecrypt (DR §3.5, §4; spec/ratchet.md §3.2, §4) --------------------------------


def ratchet_decrypt(
    state: RatchetState,
    message: bytes,
    ad: bytes,
    rng: Random = SYSTEM_RANDOM,
    *,
    message_key_salt: bytes | None = None,
) -> tuple[RatchetState, bytes]:
    """Implements RatchetDecrypt / RatchetDecryptHE (DR §3.5, §4), step by step.

    Note that on a DH step the message is authenticated with the new
    receiving chain *before* GENERATE_DH and the sending half of DHRatchet
    run; the result is the spec's, but a forgery draws no randomness. On any
    failure nothing is returned and ``state`` is unchanged (it is immutable;
    every change is made to a draft).
    """
    profile = state.profile
    profile.cipher.check_ad(ad)
    incoming = decode_message(profile, message)
    # DecryptHeader (DR §4), or the plain header's DHr comparison (DR §3.5).
    header, chain_id, source = _find_chain(state, incoming)
    s = _Draft(state)
    mk = _try_skipped_message_keys(s, chain_id, header.n)
    dh_step = mk is None and source == "next"
    if mk is None:
        if dh_step:  # header.dh != state.DHr
            _end_receiving_chain(s, header.pn)  # SkipMessageKeys(state, header.pn)
            chain_id = _dh_ratchet_receive(s, header)  # DHRatchet, receiving half
            source = "current"
        mk = _next_message_key(s, chain_id, source, header.n)  # SkipMessageKeys(n); KDF_CK
    keys = profile.cipher.message_keys(mk, message_key_salt)
    plaintext = profile.cipher.open(keys, incoming, ad, state.role != "initiator")  # DECRYPT
    if dh_step:
        _dh_ratchet_send(s, rng)  # DHRatchet, sending half, now that the message is genuine
    return s.freeze(), plaintext


def _find_chain(state: RatchetState, message: RatchetMessage) -> tuple[Header, bytes, Source]:
    """The header of ``message`` and its chain id and Source (spec/ratchet.md §3.2 step 2)."""
    headers = state.profile.headers
    current = headers.chain_id(state.dhr, state.hkr)
    old = [chain.chain_id for chain in state.old_chains]
    return headers.locate(message, current, state.nhkr, old)


def _try_skipped_message_keys(s: _Draft, chain_id: bytes, n: int) -> MessageKey | None:
    """TrySkippedMessageKeys (DR §3.5): take and delete the stored key of (chain, n).

    A key evicted from the store (spec/ratchet.md §6.2) is MESSAGE_KEY_EVICTED.
    """
    key = (chain_id, n)
    if key in s.mkskipped:
        return s.own_skipped().pop(key)
    if key in s.evicted:
        raise MessageKeyEvicted("the key of this message was evicted from the skipped-key store")
    return None


def _next_message_key(s: _Draft, chain_id: bytes, source: Source, n: int) -> MessageKey:
    """SkipMessageKeys(state, n), then (CK, mk) = KDF_CK(CK) and N = n + 1 (DR §3.5).

    On the current receiving chain, or (spec/ratchet.md §4.1) on an old one.
    """
    if source == "current":
        ck, start = s.ckr, s.nr
    else:
        assert isinstance(source, int)
        ck, start = s.old_chains[source].ck, s.old_chains[source].n
    if n < start:
        raise DuplicateMessage("message key already used")
    if ck is None:
        raise AuthFailed("no receiving chain key for this message")
    ck = _skip_message_keys(s, chain_id, ck, start, n)
    ck, mk = kdf_ck(s.profile, ck)
    if source == "current":
        s.ckr, s.nr = ck, n + 1
    else:
        assert isinstance(source, int)
        chains = list(s.old_chains)
        chains[source] = ReceivingChain(chain_id, ck, n + 1)
        s.old_chains = tuple(chains)
    return mk


def _skip_message_keys(
    s: _Draft, chain_id: bytes, ck: ChainKey, start: int, until: int
) -> ChainKey:
    """SkipMessageKeys (DR §3.5): store the keys of messages start..until-1; returns the chain key.

    Refuses to skip more than max_skip keys; beyond max_stored_skipped stored
    keys, the oldest are evicted and remembered (spec/ratchet.md §6).

    Note that when more keys are skipped than the store holds, the first of
    them would be evicted as soon as they were stored: only their chain
    keys are computed (``ChainRules.advance``) and only the ids the eviction
    record keeps are made. The state that results is the same as storing
    every key and evicting the oldest; the work for a forged header that
    jumps max_skip keys is halved (spec/security.md §3.13).
    """
    rules = s.profile.chains
    count = until - start
    if count > rules.max_skip:
        raise TooManySkipped(f"message would skip {count} keys")
    if count <= 0:
        return ck
    keep = min(count, rules.max_stored_skipped)
    ck, kept = rules.advance(ck, count, keep)
    stored = s.own_skipped()
    overflow = len(stored) + count - rules.max_stored_skipped
    if overflow > 0:
        gone = list(islice(stored, min(overflow, len(stored))))
        for key in gone:
            del stored[key]
        dropped = count - keep  # new keys evicted straight away, oldest first
        first = max(start, start + dropped - rules.max_stored_skipped)
        gone += [(chain_id, n) for n in range(first, start + dropped)]
        _record_evicted(s, gone[-rules.max_stored_skipped :])
    for n, mk in enumerate(kept, until - keep):
        stored[(chain_id, n)] = mk
    return ck


def _record_evicted(s: _Draft, gone: list[SkippedKeyId]) -> None:
    """Remember the last max_stored_skipped evictions (spec/ratchet.md §6.2)."""
    record = dict(s.evicted)
    record.update(dict.fromkeys(gone))
    for key in list(islice(record, max(len(record) - s.profile.chains.max_stored_skipped, 0))):
        del record[key]
    s.evicted = record


def _end_receiving_chain(s: _Draft, pn: int) -> None:
    """Close the receiving chain at a DH step and add it to old_chains (spec/ratchet.md §4.1).

    When PN says where the peer's chain ended (DR §3.5), SkipMessageKeys(PN)
    stores the rest of its keys and the chain key is deleted. Under
    libsignal's PN rule it cannot say (0 for both 0 and 1 messages), so the
    chain key is kept and advanced if a late message arrives.
    """
    chain_id = s.profile.headers.chain_id(s.dhr, s.hkr)
    if s.ckr is None or chain_id is None:
        return
    if s.profile.chains.pn_ends_chain:
        _skip_message_keys(s, chain_id, s.ckr, s.nr, pn)
        ended = ReceivingChain(chain_id, None, max(pn, s.nr))
    else:
        ended = ReceivingChain(chain_id, s.ckr, s.nr)
    _retire_chains(s, (*s.old_chains, ended))


def _retire_chains(s: _Draft, chains: tuple[ReceivingChain, ...]) -> None:
    """Keep at most max_receiving_chains old chains; forget the keys of older ones."""
    excess = len(chains) - s.profile.chains.max_receiving_chains
    if excess > 0:
        gone = {chain.chain_id for chain in chains[:excess]}
        chains = chains[excess:]
        s.mkskipped = {key: mk for key, mk in s.mkskipped.items() if key[0] not in gone}
        s._owned = True
        s.evicted = {key: None for key in s.evicted if key[0] not in gone}
    s.old_chains = chains


def _dh_ratchet_receive(s: _Draft, header: Header) -> bytes:
    """The receiving half of DHRatchet / DHRatchetHE (DR §3.5, §4); returns the new chain's id.

    HKs = NHKs; HKr = NHKr; DHr = header.dh; Nr = 0;
    RK, CKr, NHKr = KDF_RK(RK, DH(DHs, DHr)).
    """
    chain_id = s.profile.headers.chain_id(header.dh, s.nhkr)
    assert chain_id is not None  # NHKr is set whenever headers are encrypted
    s.hks, s.hkr = s.nhks, s.nhkr
    s.dhr = header.dh
    s.nr = 0
    s.rk, s.ckr, s.nhkr = kdf_rk(s.profile, s.rk, s.dhs.exchange(header.dh))
    return chain_id


def _dh_ratchet_send(s: _Draft, rng: Random) -> None:
    """The sending half of DHRatchet / DHRatchetHE (DR §3.5, §4).

    PN = Ns (libsignal: Ns - 1, saturating at 0; spec/ratchet.md §5.3);
    Ns = 0; DHs = GENERATE_DH(); RK, CKs, NHKs = KDF_RK(RK, DH(DHs, DHr)).
    """
    assert s.dhr is not None  # set by the receiving half
    s.pn = s.profile.chains.previous_counter(s.ns)
    s.ns = 0
    s.dhs = generate_dh(rng)
    s.rk, s.cks, s.nhks = kdf_rk(s.profile, s.rk, s.dhs.exchange(s.dhr))
