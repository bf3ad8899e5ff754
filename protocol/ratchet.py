"""The Double Ratchet (spec/ratchet.md; header encryption: spec/header-encryption.md).

Implements Double Ratchet revision 1 (2016-11-20) §3 (RatchetInitAlice,
RatchetInitBob, RatchetEncrypt, RatchetDecrypt, SkipMessageKeys, DHRatchet)
and §4 (the header-encryption variants), for the three profiles of
spec/ratchet.md §5. State is an immutable ``RatchetState`` under the spec's
names; every operation is a pure transition ``f(state, input) -> (state',
output)`` that builds the new state from locals, so a failure returns
nothing and the caller's state is untouched (spec/ratchet.md §7).

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

from dataclasses import dataclass, fields
from itertools import islice
from operator import attrgetter
from typing import Any, Final, Literal

from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    InvalidArgument,
    LimitExceeded,
    MessageKeyEvicted,
    TooManySkipped,
)
from protocol.primitives import (
    X25519KeyPair,
    aes_cbc_pkcs7_decrypt,
    aes_cbc_pkcs7_encrypt,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    check_x25519_public,
    constant_time_equal,
    hkdf_expand_sha256,
    hkdf_sha256,
    hmac_sha256,
    require_bytes,
)
from protocol.profiles import Profile
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.wire import (
    SIGNAL_MAC_LEN,
    U32_LIMIT,
    Header,
    RatchetMessage,
    decode_header,
    decode_message,
    encode_header,
    encode_message,
    encode_signal_message,
)

Role = Literal["initiator", "responder"]
ChainKey = tuple[bytes, int]
"""A skipped message key's index: (chain id, n). The chain id is the sender's
ratchet public key, or with header encryption the chain's header key (§4)."""

KEY_LEN: Final = 32
HEADER_SALT_LEN: Final = 16
_ZERO_NONCE: Final = bytes(12)
_ENCODED_KEY_LEN: Final = 33


@dataclass(frozen=True, slots=True)
class ReceivingChain:
    """An earlier receiving chain (spec/ratchet.md §4.1).

    ``n`` is the number of the next key the chain would give. ``ck`` is kept
    only under libsignal rules (advanced when a late message arrives); under
    the spec's rules the chain was skipped to PN when it ended and ``ck`` is None.
    """

    chain_id: bytes
    ck: bytes | None
    n: int

    def __repr__(self) -> str:
        return f"ReceivingChain(n={self.n}, open={self.ck is not None}, keys=<redacted>)"


@dataclass(frozen=True, slots=True)
class RatchetState:
    """Double Ratchet state (spec §3.2, §4) under the spec's names (spec/ratchet.md §1).

    ``mkskipped`` and ``evicted`` are never mutated: a transition that changes
    them builds new dicts, and one that does not shares them.
    """

    profile: Profile
    role: Role
    dhs: X25519KeyPair
    dhr: bytes | None
    rk: bytes
    cks: bytes | None
    ckr: bytes | None
    ns: int
    nr: int
    pn: int
    mkskipped: dict[ChainKey, bytes]
    hks: bytes | None
    hkr: bytes | None
    nhks: bytes | None
    nhkr: bytes | None
    old_chains: tuple[ReceivingChain, ...]
    # The most recent evictions from mkskipped, oldest first (spec/ratchet.md §6.2).
    evicted: dict[ChainKey, None]

    def __repr__(self) -> str:
        dhr = self.dhr.hex() if self.dhr is not None else None
        return (
            f"RatchetState(profile={self.profile.name!r}, role={self.role!r}, "
            f"dhs_public={self.dhs.public.hex()}, dhr={dhr}, ns={self.ns}, nr={self.nr}, "
            f"pn={self.pn}, skipped={len(self.mkskipped)}, old_chains={len(self.old_chains)}, "
            "keys=<redacted>)"
        )


_FIELDS: Final = tuple(field.name for field in fields(RatchetState))
_ALL_FIELDS: Final = attrgetter(*_FIELDS)
_POSITION: Final = {name: index for index, name in enumerate(_FIELDS)}


def _evolve(state: RatchetState, changes: dict[str, Any]) -> RatchetState:
    """The state with ``changes`` applied: ``dataclasses.replace`` at half the cost.

    Every message builds one new state, so this is on the hot path.
    """
    values = list(_ALL_FIELDS(state))
    for name, value in changes.items():
        values[_POSITION[name]] = value
    return RatchetState(*values)


@dataclass(frozen=True, slots=True)
class MessageKeys:
    """ENCRYPT's expanded keys: AES key, MAC key (CBC only, else empty), nonce or IV."""

    enc_key: bytes
    auth_key: bytes
    nonce: bytes

    def __repr__(self) -> str:
        return "MessageKeys(<redacted>)"


# --- External functions (spec §3.1, §5.2; spec/ratchet.md §2) ------------------------


def generate_dh(rng: Random) -> X25519KeyPair:
    """GENERATE_DH(): a new X25519 key pair from 32 drawn bytes (label ``ratchet_key``)."""
    return X25519KeyPair.from_private(rng.draw("ratchet_key", KEY_LEN))


def kdf_rk(profile: Profile, rk: bytes, dh_out: bytes) -> tuple[bytes, bytes, bytes | None]:
    """KDF_RK / KDF_RK_HE: HKDF-SHA256(salt=rk, ikm=dh_out, info) -> (rk', ck, nhk or None)."""
    length = 3 * KEY_LEN if profile.header_encryption else 2 * KEY_LEN
    out = hkdf_sha256(dh_out, rk, profile.kdf_rk_info, length)
    return out[:32], out[32:64], out[64:] or None


def kdf_ck(profile: Profile, ck: bytes) -> tuple[bytes, bytes]:
    """KDF_CK: (ck', mk) = (HMAC-SHA256(ck, 0x02), HMAC-SHA256(ck, 0x01))."""
    return (
        hmac_sha256(ck, profile.kdf_ck_chain_constant),
        hmac_sha256(ck, profile.kdf_ck_message_constant),
    )


def message_keys(profile: Profile, mk: bytes) -> MessageKeys:
    """ENCRYPT's key expansion: HKDF-SHA256(salt=zeros, ikm=mk, info).

    AES-256-GCM: 44 bytes = key ‖ nonce. Each mk encrypts exactly one message,
    so a nonce derived from it is never reused under its key (spec §5.2).
    signal-v3: 80 bytes = cipher key ‖ MAC key ‖ IV ("WhisperMessageKeys").
    """
    if profile.aead == "AES-256-GCM":
        out = hkdf_sha256(mk, None, profile.message_keys_info, 44)
        return MessageKeys(out[:32], b"", out[32:])
    out = hkdf_sha256(mk, None, profile.message_keys_info, 80)
    return MessageKeys(out[:32], out[32:64], out[64:])


def header_subkey(profile: Profile, hk: bytes, salt: bytes) -> bytes:
    """The one-header AES key HKDF-Expand(hk, header_keys_info ‖ r, 32).

    Implements the header key schedule of spec/header-encryption.md §2.
    """
    return hkdf_expand_sha256(hk, profile.header_keys_info + salt, KEY_LEN)


def hencrypt(profile: Profile, hk: bytes, header_bytes: bytes, rng: Random) -> bytes:
    """HENCRYPT(hk, header) = r ‖ AES-256-GCM(subkey(hk, r), zero nonce, header).

    hk encrypts every header of a sending chain, so the nonce must never
    repeat under it. r is 128 random bits (spec §4 asks for at least 128)
    and selects a fresh key per header, which is why the nonce may be fixed.
    """
    salt = rng.draw("header_nonce", HEADER_SALT_LEN)
    return salt + aes_gcm_encrypt(header_subkey(profile, hk, salt), _ZERO_NONCE, header_bytes, b"")


def hdecrypt(profile: Profile, hk: bytes, enc_header: bytes) -> bytes | None:
    """HDECRYPT: the header bytes, or None when hk does not open them."""
    salt, sealed = enc_header[:HEADER_SALT_LEN], enc_header[HEADER_SALT_LEN:]
    try:
        return aes_gcm_decrypt(header_subkey(profile, hk, salt), _ZERO_NONCE, sealed, b"")
    except AuthFailed:
        return None


# --- Initialisation (spec §3.3, §4; spec/ratchet.md §1.1) ------------------------------


def _initial_keys(
    profile: Profile, sk: bytes
) -> tuple[bytes, bytes | None, bytes | None, bytes | None]:
    """(RK, first chain key, shared_hka, shared_nhkb) from SK (spec/ratchet.md §1.1)."""
    require_bytes(sk, profile.sk_len, "SK")
    if profile.initial_chains == "libsignal":
        return sk[:32], sk[32:64], None, None
    if profile.header_encryption:
        out = hkdf_sha256(sk, None, profile.initial_keys_info, 3 * KEY_LEN)
        return out[:32], None, out[32:64], out[64:]
    return hkdf_sha256(sk, None, profile.initial_keys_info, KEY_LEN), None, None, None


def init_initiator(
    profile: Profile, sk: bytes, responder_ratchet_public: bytes, rng: Random = SYSTEM_RANDOM
) -> RatchetState:
    """Implements RatchetInitAlice / RatchetInitAliceHE (spec §3.3, §4).

    Under libsignal rules the first chain key is also kept as the receiving
    chain of the responder's signed prekey, which the responder may send on.
    """
    check_x25519_public(responder_ratchet_public)
    rk, ck0, hka, nhkb = _initial_keys(profile, sk)
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
    """Implements RatchetInitBob / RatchetInitBobHE (spec §3.3, §4).

    The key pair is the responder's signed prekey (spec §5.1). Under libsignal
    rules the first chain key is its sending chain, so it may send first.
    """
    if not isinstance(responder_ratchet_keypair, X25519KeyPair):
        raise InvalidArgument("the responder's ratchet key pair must be an X25519KeyPair")
    rk, ck0, hka, nhkb = _initial_keys(profile, sk)
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


# --- ENCRYPT / DECRYPT of one message (spec §3.1, §5.2; spec/ratchet.md §2.1) -------------


def _other(role: Role) -> Role:
    return "responder" if role == "initiator" else "initiator"


def mac_prefix(ad: bytes, sender: Role) -> bytes:
    """signal-v3: Encode(IK_sender) ‖ Encode(IK_receiver), from AD = Encode(IK_A) ‖ Encode(IK_B)."""
    return ad if sender == "initiator" else ad[_ENCODED_KEY_LEN:] + ad[:_ENCODED_KEY_LEN]


def _check_ad(profile: Profile, ad: bytes) -> None:
    if not isinstance(ad, bytes):
        raise InvalidArgument("AD must be bytes")
    if profile.wire == "signal-v3" and len(ad) != 2 * _ENCODED_KEY_LEN:
        raise InvalidArgument("signal-v3 AD must be Encode(IK_A) ‖ Encode(IK_B)")


def _seal(
    state: RatchetState, mk: bytes, header: Header, plaintext: bytes, ad: bytes, rng: Random
) -> bytes:
    profile = state.profile
    keys = message_keys(profile, mk)
    if profile.aead == "AES-256-CBC-HMAC-SHA256-64":
        body = encode_signal_message(
            header, aes_cbc_pkcs7_encrypt(keys.enc_key, keys.nonce, plaintext)
        )
        mac = hmac_sha256(keys.auth_key, mac_prefix(ad, state.role) + body)
        return body + mac[:SIGNAL_MAC_LEN]
    header_bytes = encode_header(header)
    if profile.header_encryption:
        assert state.hks is not None  # set whenever cks is
        header_bytes = hencrypt(profile, state.hks, header_bytes, rng)
    ciphertext = aes_gcm_encrypt(keys.enc_key, keys.nonce, plaintext, ad + header_bytes)
    return encode_message(header_bytes, ciphertext)


def _open(state: RatchetState, mk: bytes, message: RatchetMessage, ad: bytes) -> bytes:
    profile = state.profile
    keys = message_keys(profile, mk)
    if profile.aead == "AES-256-CBC-HMAC-SHA256-64":
        mac = hmac_sha256(keys.auth_key, mac_prefix(ad, _other(state.role)) + message.authenticated)
        if not constant_time_equal(mac[:SIGNAL_MAC_LEN], message.mac):
            raise AuthFailed("message MAC does not verify")
        return aes_cbc_pkcs7_decrypt(keys.enc_key, keys.nonce, message.ciphertext)
    return aes_gcm_decrypt(keys.enc_key, keys.nonce, message.ciphertext, ad + message.authenticated)


# --- RatchetEncrypt (spec §3.4; spec/ratchet.md §3.1) ------------------------------------


def ratchet_encrypt(
    state: RatchetState, plaintext: bytes, ad: bytes, rng: Random = SYSTEM_RANDOM
) -> tuple[RatchetState, bytes]:
    """Implements RatchetEncrypt / RatchetEncryptHE (spec §3.4, §4); returns the wire message."""
    profile = state.profile
    _check_ad(profile, ad)
    if not isinstance(plaintext, bytes):
        raise InvalidArgument("plaintext must be bytes")
    if state.cks is None:
        raise InvalidArgument("no sending chain yet: the responder sends after it first receives")
    if state.ns >= U32_LIMIT - 1:
        raise LimitExceeded("the sending chain has used every message number")
    cks, mk = kdf_ck(profile, state.cks)
    message = _seal(state, mk, Header(state.dhs.public, state.pn, state.ns), plaintext, ad, rng)
    if len(message) > profile.max_message_size:
        raise LimitExceeded("message would exceed the profile's size limit")
    return _evolve(state, {"cks": cks, "ns": state.ns + 1}), message


# --- RatchetDecrypt (spec §3.5, §4; spec/ratchet.md §3.2, §4) ------------------------------

Source = int | Literal["current", "next"]
"""Which chain a message belongs to: the current one, a new one (DH step), or old_chains[i]."""


@dataclass(frozen=True, slots=True)
class _Receipt:
    """What accepting a message would change, computed from locals only."""

    mk: bytes
    changes: dict[str, Any]
    ratchet: bool


def _record_evicted(
    profile: Profile, evicted: dict[ChainKey, None], gone: list[ChainKey]
) -> dict[ChainKey, None]:
    record = dict(evicted)
    record.update(dict.fromkeys(gone))
    for key in list(islice(record, max(len(record) - profile.max_stored_skipped, 0))):
        del record[key]
    return record


def _skip(
    profile: Profile,
    chain_id: bytes,
    ck: bytes,
    start: int,
    until: int,
    skipped: dict[ChainKey, bytes],
    evicted: dict[ChainKey, None],
) -> tuple[bytes, dict[ChainKey, bytes], dict[ChainKey, None]]:
    """SkipMessageKeys (spec §3.5): store the keys of messages start..until-1.

    Refuses to skip more than max_skip keys; beyond max_stored_skipped stored
    keys, the oldest are evicted and remembered (spec/ratchet.md §6).
    """
    if until - start > profile.max_skip:
        raise TooManySkipped(f"message would skip {until - start} keys")
    if until <= start:
        return ck, skipped, evicted
    stored = dict(skipped)
    for n in range(start, until):
        ck, mk = kdf_ck(profile, ck)
        stored[(chain_id, n)] = mk
    overflow = len(stored) - profile.max_stored_skipped
    if overflow <= 0:
        return ck, stored, evicted
    gone = list(islice(stored, overflow))
    for key in gone:
        del stored[key]
    return ck, stored, _record_evicted(profile, evicted, gone)


def _retire(
    profile: Profile,
    chains: tuple[ReceivingChain, ...],
    skipped: dict[ChainKey, bytes],
    evicted: dict[ChainKey, None],
) -> tuple[tuple[ReceivingChain, ...], dict[ChainKey, bytes], dict[ChainKey, None]]:
    """Keep at most max_receiving_chains old chains; forget the keys of older ones."""
    excess = len(chains) - profile.max_receiving_chains
    if excess <= 0:
        return chains, skipped, evicted
    gone = {chain.chain_id for chain in chains[:excess]}
    return (
        chains[excess:],
        {key: mk for key, mk in skipped.items() if key[0] not in gone},
        {key: None for key in evicted if key[0] not in gone},
    )


def _current_id(state: RatchetState) -> bytes | None:
    return state.hkr if state.profile.header_encryption else state.dhr


def _locate(state: RatchetState, message: RatchetMessage) -> tuple[Header, bytes, Source]:
    """Find the header and the chain of a message: its chain id and Source.

    With header encryption, trial decryption under HKr, NHKr, then the old
    chains' header keys, newest first (spec/header-encryption.md §3).
    """
    profile = state.profile
    if not profile.header_encryption:
        assert message.header is not None
        header = message.header
        if header.dh == state.dhr:
            return header, header.dh, "current"
        for index, chain in enumerate(state.old_chains):
            if chain.chain_id == header.dh:
                return header, header.dh, index
        return header, header.dh, "next"
    candidates: list[tuple[bytes | None, Source]] = [(state.hkr, "current"), (state.nhkr, "next")]
    newest_first = reversed(list(enumerate(state.old_chains)))
    candidates += [(chain.chain_id, index) for index, chain in newest_first]
    for hk, source in candidates:
        if hk is not None and (plain := hdecrypt(profile, hk, message.authenticated)) is not None:
            return decode_header(plain), hk, source
    raise AuthFailed("no header key opens the header")


def _receive_known(
    state: RatchetState, header: Header, chain_id: bytes, source: Source
) -> _Receipt:
    """A message on the current chain or an old one (spec §3.5 steps 1 and 3)."""
    profile = state.profile
    if source == "current":
        ck, start = state.ckr, state.nr
    else:
        assert isinstance(source, int)
        ck, start = state.old_chains[source].ck, state.old_chains[source].n
    if header.n < start:
        raise DuplicateMessage("message key already used")
    if ck is None:
        raise AuthFailed("no receiving chain key for this message")
    ck, skipped, evicted = _skip(
        profile, chain_id, ck, start, header.n, state.mkskipped, state.evicted
    )
    ck, mk = kdf_ck(profile, ck)
    changes: dict[str, Any] = {"mkskipped": skipped, "evicted": evicted}
    if source == "current":
        changes |= {"ckr": ck, "nr": header.n + 1}
    else:
        assert isinstance(source, int)
        chains = list(state.old_chains)
        chains[source] = ReceivingChain(chain_id, ck, header.n + 1)
        changes["old_chains"] = tuple(chains)
    return _Receipt(mk, changes, ratchet=False)


def _end_current_chain(
    state: RatchetState, header: Header
) -> tuple[tuple[ReceivingChain, ...], dict[ChainKey, bytes], dict[ChainKey, None]]:
    """Close the current receiving chain at a DH step and add it to old_chains.

    Spec rules: SkipMessageKeys(header.pn) stores the rest of its keys and
    the chain key is deleted. libsignal rules: PN is one less than the count
    (and 0 for both 0 and 1 messages), so it cannot say where the chain ends;
    the chain key is kept and advanced if a late message arrives.
    """
    profile = state.profile
    chain_id = _current_id(state)
    if state.ckr is None or chain_id is None:
        return state.old_chains, state.mkskipped, state.evicted
    skipped, evicted = state.mkskipped, state.evicted
    if profile.pn_semantics == "count":
        _, skipped, evicted = _skip(
            profile, chain_id, state.ckr, state.nr, header.pn, skipped, evicted
        )
        ended = ReceivingChain(chain_id, None, max(header.pn, state.nr))
    else:
        ended = ReceivingChain(chain_id, state.ckr, state.nr)
    return _retire(profile, (*state.old_chains, ended), skipped, evicted)


def _receive_new_chain(state: RatchetState, header: Header) -> _Receipt:
    """The receiving half of DHRatchet / DHRatchetHE (spec §3.5, §4), then SkipMessageKeys(n)."""
    profile = state.profile
    chains, skipped, evicted = _end_current_chain(state, header)
    rk, ckr, nhkr = kdf_rk(profile, state.rk, state.dhs.exchange(header.dh))
    chain_id = state.nhkr if profile.header_encryption else header.dh
    assert chain_id is not None
    ckr, skipped, evicted = _skip(profile, chain_id, ckr, 0, header.n, skipped, evicted)
    ckr, mk = kdf_ck(profile, ckr)
    changes: dict[str, Any] = {
        "dhr": header.dh,
        "rk": rk,
        "ckr": ckr,
        "nr": header.n + 1,
        "mkskipped": skipped,
        "evicted": evicted,
        "old_chains": chains,
        "hks": state.nhks,
        "hkr": state.nhkr,
        "nhkr": nhkr,
    }
    return _Receipt(mk, changes, ratchet=True)


def _send_half(state: RatchetState, rk: bytes, dhr: bytes, rng: Random) -> dict[str, Any]:
    """The sending half of DHRatchet: new DHs, then (RK, CKs[, NHKs]) = KDF_RK(RK, DH(DHs, DHr)).

    PN is the number of messages of the chain that ends ("count"), or under
    libsignal rules that number minus one, saturating at 0 ("last-index").
    """
    profile = state.profile
    pn = state.ns if profile.pn_semantics == "count" else max(state.ns - 1, 0)
    dhs = generate_dh(rng)
    rk, cks, nhks = kdf_rk(profile, rk, dhs.exchange(dhr))
    return {"dhs": dhs, "rk": rk, "cks": cks, "nhks": nhks, "ns": 0, "pn": pn}


def _receive(state: RatchetState, header: Header, chain_id: bytes, source: Source) -> _Receipt:
    """TrySkippedMessageKeys, then the chain the header names (spec §3.5)."""
    key = (chain_id, header.n)
    mk = state.mkskipped.get(key)
    if mk is not None:
        skipped = dict(state.mkskipped)
        del skipped[key]
        return _Receipt(mk, {"mkskipped": skipped}, ratchet=False)
    if key in state.evicted:
        raise MessageKeyEvicted("the key of this message was evicted from the skipped-key store")
    if source == "next":
        return _receive_new_chain(state, header)
    return _receive_known(state, header, chain_id, source)


def ratchet_decrypt(
    state: RatchetState, message: bytes, ad: bytes, rng: Random = SYSTEM_RANDOM
) -> tuple[RatchetState, bytes]:
    """Implements RatchetDecrypt / RatchetDecryptHE (spec §3.5, §4).

    Note that on a DH step the message is authenticated with the new
    receiving chain *before* GENERATE_DH and the sending half of DHRatchet
    run; the result is the spec's, but a forgery draws no randomness. On any
    failure nothing is returned and ``state`` is unchanged (it is immutable).
    """
    _check_ad(state.profile, ad)
    incoming = decode_message(state.profile, message)
    header, chain_id, source = _locate(state, incoming)
    receipt = _receive(state, header, chain_id, source)
    plaintext = _open(state, receipt.mk, incoming, ad)
    changes = receipt.changes
    if receipt.ratchet:
        changes = changes | _send_half(state, changes["rk"], header.dh, rng)
    return _evolve(state, changes), plaintext
