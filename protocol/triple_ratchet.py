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
* ``decrypt``: the message is decoded, SPQR ``recv`` reads its field 5 and
  gives the SPQR key (or none), and the Double Ratchet decrypts with it. The
  new SPQR state is kept only when the Double Ratchet verified the MAC and
  decrypted: libsignal commits ``new_pqr_state`` after the MAC and the
  decryption, and both halves here are pure functions, so a failure leaves
  both states as they were.

A profile without SPQR (``Profile.spqr`` False) is the Double Ratchet alone;
this module is then a pass-through, so the session layer calls one
function for every profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import ratchet, wire
from protocol.errors import InvalidArgument, MalformedMessage
from protocol.primitives import X25519KeyPair
from protocol.profiles import SPQR_AUTH_KEY_LEN, Profile
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.spqr import pq_ratchet
from protocol.spqr.chain import Direction, chain_params
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
    """``TripleRatchet::decrypt``: SPQR recv on field 5, then RatchetDecrypt salted by its key.

    Note that libsignal finds the Double Ratchet's message key before it runs
    SPQR; here SPQR runs first because its key is an input of the Double
    Ratchet's step. Both are pure, so only the error reported for a message
    both would refuse can differ, never the outcome or the state.
    """
    if state.pq is None:
        new_ratchet, plaintext = ratchet.ratchet_decrypt(state.ratchet, message, ad, rng)
        return TripleRatchetState(new_ratchet, None), plaintext
    state.ratchet.profile.cipher.check_ad(ad)
    header = wire.decode_message(state.ratchet.profile, message).header
    if header is None:  # a profile with SPQR has plain headers (spec/profiles.md §1.3)
        raise MalformedMessage("an SPQR message has a plain header")
    pq, pq_key = pq_ratchet.recv(state.pq, header.pq_ratchet)
    new_ratchet, plaintext = ratchet.ratchet_decrypt(
        state.ratchet, message, ad, rng, message_key_salt=pq_key
    )
    return TripleRatchetState(new_ratchet, pq), plaintext
