"""The triple ratchet: the Double Ratchet with SPQR beside it (spec/spqr.md §13).

Implements DR-rev3 §5-§6, the Triple Ratchet, as libsignal b056faa composes it in
``rust/protocol/src/triple_ratchet.rs``
(``OutgoingTripleRatchet::encrypt``, ``TripleRatchet::decrypt``):

* set-up (``ratchet.rs`` ``initialize_alice_session`` / ``_bob_session``):
  libsignal v4's SK is 96 bytes = root key ‖ chain key ‖ SPQR authentication
  key; the first 64 start the Double Ratchet exactly as v3, the last 32
  start SPQR (``pq_ratchet.initial_state``), A2B for the PQXDH initiator and
  B2A for the responder, with the Double Ratchet's jump limit in a
  session with oneself where libsignal has none (``chain_params``);
* ``encrypt``: SPQR ``send`` first gives field 5 and the SPQR message key;
  the Double Ratchet then encrypts with that key as the HKDF salt of
  "WhisperMessageKeys" and carries field 5 under its MAC;
* ``decrypt``: in libsignal's order, the Double Ratchet finds the
  message's key and the state it leaves (``ratchet.find_message_key``, as
  ``ensure_receiver_chain`` and ``consume_message_key``), SPQR ``recv``
  reads field 5 and gives the SPQR key (or none), and the Double Ratchet
  opens the message with that key as the salt (``ratchet.open_message``:
  the keys, the MAC, the decryption). libsignal commits both states after
  the MAC and the decryption; here every step is a pure function, so a
  failure leaves both states as they were. A message both ratchets would
  refuse gets the Double Ratchet's code, as in libsignal (a replay with
  field 5 changed is DUPLICATE_MESSAGE).

A profile without SPQR (``Profile.spqr`` False) is the Double Ratchet alone;
this module is then a pass-through, so the session layer calls one
function for every profile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from protocol import ratchet
from protocol.errors import InvalidArgument
from protocol.primitives import X25519KeyPair
from protocol.profiles import SPQR_AUTH_KEY_LEN, Profile
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.spqr import pq_ratchet
from protocol.spqr.chain import SESSION_PARAMS, Direction, chain_params
from protocol.spqr.pq_ratchet import PqRatchet


@dataclass(frozen=True, slots=True)
class TripleRatchetState:
    """The Double Ratchet state and, for an SPQR profile, the SPQR state beside it."""

    ratchet: ratchet.RatchetState
    pq: PqRatchet | None

    def __repr__(self) -> str:
        return f"TripleRatchetState({self.ratchet!r}, {self.pq!r})"


def _split_sk(profile: Profile, sk: bytes) -> tuple[bytes, bytes | None]:
    """libsignal v4: SK = root ‖ chain (the Double Ratchet's part) ‖ SPQR authentication key."""
    if not profile.spqr:
        return sk, None
    if not isinstance(sk, bytes) or len(sk) != profile.agreement.sk_len:
        raise InvalidArgument(f"SK must be {profile.agreement.sk_len} bytes")
    return sk[:-SPQR_AUTH_KEY_LEN], sk[-SPQR_AUTH_KEY_LEN:]


def init_initiator(
    profile: Profile,
    sk: bytes,
    responder_ratchet_public: bytes,
    rng: Random = SYSTEM_RANDOM,
    *,
    self_session: bool = False,
) -> TripleRatchetState:
    """RatchetInitAlice with SPQR's ``initial_state`` (direction A2B) beside it."""
    dr_sk, auth_key = _split_sk(profile, sk)
    state = ratchet.init_initiator(profile, dr_sk, responder_ratchet_public, rng)
    if auth_key is None:
        return TripleRatchetState(state, None)
    params = chain_params(self_session)
    return TripleRatchetState(state, pq_ratchet.initial_state(auth_key, Direction.A2B, params))


def init_responder(
    profile: Profile,
    sk: bytes,
    responder_ratchet_keypair: X25519KeyPair,
    *,
    self_session: bool = False,
) -> TripleRatchetState:
    """RatchetInitBob with SPQR's ``initial_state`` (direction B2A) beside it."""
    dr_sk, auth_key = _split_sk(profile, sk)
    state = ratchet.init_responder(profile, dr_sk, responder_ratchet_keypair)
    if auth_key is None:
        return TripleRatchetState(state, None)
    params = chain_params(self_session)
    return TripleRatchetState(state, pq_ratchet.initial_state(auth_key, Direction.B2A, params))


def encrypt(
    state: TripleRatchetState, plaintext: bytes, ad: bytes, rng: Random = SYSTEM_RANDOM
) -> tuple[TripleRatchetState, bytes]:
    """``OutgoingTripleRatchet::encrypt``: SPQR send, then RatchetEncrypt salted by its key."""
    if state.pq is None:
        new_ratchet, message = ratchet.ratchet_encrypt(state.ratchet, plaintext, ad, rng)
        return TripleRatchetState(new_ratchet, None), message
    pq, field5, pq_key = pq_ratchet.send(state.pq, rng)
    new_ratchet, message = ratchet.ratchet_encrypt(
        state.ratchet, plaintext, ad, rng, message_key_salt=pq_key, pq_ratchet=field5
    )
    return TripleRatchetState(new_ratchet, pq), message


def decrypt(
    state: TripleRatchetState, message: bytes, ad: bytes, rng: Random = SYSTEM_RANDOM
) -> tuple[TripleRatchetState, bytes]:
    """``TripleRatchet::decrypt``: the Double Ratchet's key, SPQR recv, then the salted open.

    In libsignal's order: the Double Ratchet finds the message's key
    (``ensure_receiver_chain``, ``consume_message_key``: a replay, an
    evicted key or a jump over the limit is refused here); SPQR reads field
    5 (``spqr::recv``); the message keys are derived with SPQR's key as the
    salt, the MAC is checked and the message decrypted. Each step returns a
    new state and commits nothing, so a failure at any of them leaves both
    states as they were; both are kept only once the message opened.
    """
    if state.pq is None:
        new_ratchet, plaintext = ratchet.ratchet_decrypt(state.ratchet, message, ad, rng)
        return TripleRatchetState(new_ratchet, None), plaintext
    pending = ratchet.find_message_key(state.ratchet, message, ad)
    pq, pq_key = pq_ratchet.recv(_with_session_limits(state.pq), pending.header.pq_ratchet)
    new_ratchet, plaintext = ratchet.open_message(pending, rng, pq_key)
    return TripleRatchetState(new_ratchet, pq), plaintext


def _with_session_limits(pq: PqRatchet) -> PqRatchet:
    """``pq`` with its chain's limits as the session policy sets them (``SESSION_PARAMS``).

    Note that the limits are part of the stored SPQR chain (``Chain.params``)
    and that a session with oneself stored while its jump limit was
    libsignal's u32::MAX carries ``max_jump`` 2^32 − 1. The limits used are
    the policy's, not the record's: the stored ones are replaced before
    SPQR's receive reads them, and the record is written with them after its
    next message. A record that already has them, every record made since,
    is used as stored and keeps its bytes (spec/spqr.md §6).
    """
    chain = pq.chain
    if chain.params == SESSION_PARAMS:
        return pq
    return PqRatchet(pq.braid, replace(chain, params=SESSION_PARAMS))
