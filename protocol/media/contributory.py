"""Contributory 1:1 call keys agreed in the call offer and answer (spec/media.md §4).

The Signal (RingRTC) model: each side puts an ephemeral X25519 key (and, in
a profile with a KEM, the caller an ML-KEM key and the callee a ciphertext
to it) into the offer and answer, which travel as ordinary messages over
the Double Ratchet session. Both sides then compute

    call_secret = HKDF-SHA256(salt = 0^32, ikm = DH(e_caller, e_callee) [‖ KEM ss],
                              info = label ‖ Encode(IK_caller) ‖ Encode(IK_callee),
                              L = 2 · Nh)

and split it into two directional base keys: the first Nh bytes are the
caller's sending key, the last Nh the callee's. The media keys are bound to
both identities and are forward secret independently of the ratchet state.
The base keys start generation 0 of each side's sender (``start_sender``
with ``base_key``); later rekeys are ordinary MediaKeys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.encoding import encode_ec
from protocol.errors import InvalidArgument, MalformedMessage, NotInCall
from protocol.media.limits import DEFAULT_R
from protocol.media.messages import (
    CallAnswer,
    CallOffer,
    MediaKey,
    check_call_id,
    decode_call_answer,
    decode_call_offer,
    encode_call_answer,
    encode_call_offer,
)
from protocol.media.sframe import DEFAULT_SUITE, CipherSuite, suite_params
from protocol.primitives import (
    KEM_SEED_LEN,
    X25519_LEN,
    X25519KeyPair,
    hkdf_sha256,
    kem_decapsulate,
    kem_encapsulate,
    kem_public_key,
)
from protocol.profiles import Profile
from protocol.randomness import SYSTEM_RANDOM, Random

# The HKDF info label, by the profile's KEM: the name says which secrets the
# IKM holds, so a classic and a post-quantum call never share a derivation.
CALL_SECRET_LABELS: Final[dict[str | None, bytes]] = {
    None: b"E2EERef_CallSecret_X25519_SHA-256",
    "ML-KEM-768": b"E2EERef_CallSecret_X25519_ML-KEM-768_SHA-256",
    "ML-KEM-1024": b"E2EERef_CallSecret_X25519_ML-KEM-1024_SHA-256",
}


@dataclass(frozen=True, slots=True, repr=False)
class OfferSecret:
    """What the caller keeps between sending the offer and receiving the answer."""

    call_id: bytes
    cipher_suite: CipherSuite
    ephemeral: X25519KeyPair
    kem_seed: bytes | None

    def __repr__(self) -> str:
        return f"OfferSecret(call_id={self.call_id.hex()}, private keys=<redacted>)"


@dataclass(frozen=True, slots=True, repr=False)
class CallKeys:
    """The two directional base keys of a 1:1 call, seen from the holder's side."""

    call_id: bytes
    cipher_suite: CipherSuite
    send_base_key: bytes
    receive_base_key: bytes

    def peer_media_key(self, peer_device: str, r: int = DEFAULT_R) -> MediaKey:
        """The peer's generation 0 as a MediaKey, to install in the receiver."""
        return MediaKey(
            self.call_id, peer_device, self.cipher_suite, r, 0, 0, self.receive_base_key
        )

    def __repr__(self) -> str:
        return f"CallKeys(call_id={self.call_id.hex()}, base keys=<redacted>)"


def call_secret(
    profile: Profile, suite: CipherSuite, ikm: bytes, caller_ik: bytes, callee_ik: bytes
) -> tuple[bytes, bytes]:
    """``(caller_base_key, callee_base_key)`` from the offer/answer secrets (spec/media.md §4.2)."""
    info = CALL_SECRET_LABELS[profile.kem] + encode_ec(caller_ik) + encode_ec(callee_ik)
    nh = suite_params(suite).nh
    secret = hkdf_sha256(ikm, None, info, 2 * nh)
    return secret[:nh], secret[nh:]


def _check_kem_presence(profile: Profile, value: bytes | None, what: str) -> None:
    if (value is None) != (profile.kem is None):
        raise MalformedMessage(f"the {what} does not match the profile's KEM")


def create_offer(
    profile: Profile,
    call_id: bytes,
    *,
    suite: CipherSuite = DEFAULT_SUITE,
    rng: Random = SYSTEM_RANDOM,
) -> tuple[OfferSecret, bytes]:
    """The caller's ephemeral keys: the secret to keep and the CallOffer to send."""
    check_call_id(call_id)
    suite = suite_params(suite).suite
    ephemeral = X25519KeyPair.from_private(rng.draw("call_offer_x25519", X25519_LEN))
    kem_seed = rng.draw("call_offer_kem_seed", KEM_SEED_LEN) if profile.kem else None
    kem_pub = kem_public_key(profile.kem, kem_seed) if profile.kem and kem_seed else None
    offer = CallOffer(call_id, suite, ephemeral.public, kem_pub)
    return OfferSecret(call_id, suite, ephemeral, kem_seed), encode_call_offer(offer)


def answer_offer(
    profile: Profile,
    offer_message: bytes,
    caller_ik: bytes,
    callee_ik: bytes,
    *,
    rng: Random = SYSTEM_RANDOM,
) -> tuple[CallKeys, bytes]:
    """The callee's side: the call keys and the CallAnswer to send back."""
    offer = decode_call_offer(offer_message)
    _check_kem_presence(profile, offer.kem_pub, "offer's KEM key")
    ephemeral = X25519KeyPair.from_private(rng.draw("call_answer_x25519", X25519_LEN))
    ikm = ephemeral.exchange(offer.x25519_pub)
    kem_ciphertext = None
    if profile.kem and offer.kem_pub is not None:
        kem_ciphertext, shared = kem_encapsulate(profile.kem, offer.kem_pub)
        ikm += shared
    caller_key, callee_key = call_secret(profile, offer.cipher_suite, ikm, caller_ik, callee_ik)
    keys = CallKeys(offer.call_id, offer.cipher_suite, callee_key, caller_key)
    answer = CallAnswer(offer.call_id, ephemeral.public, kem_ciphertext)
    return keys, encode_call_answer(answer)


def complete_offer(
    profile: Profile, secret: OfferSecret, answer_message: bytes, caller_ik: bytes, callee_ik: bytes
) -> CallKeys:
    """The caller's side once the CallAnswer arrived: the call keys."""
    if not isinstance(secret, OfferSecret):
        raise InvalidArgument("complete_offer needs the OfferSecret of create_offer")
    answer = decode_call_answer(answer_message)
    if answer.call_id != secret.call_id:
        raise NotInCall("the CallAnswer is for another call")
    _check_kem_presence(profile, answer.kem_ciphertext, "answer's KEM ciphertext")
    ikm = secret.ephemeral.exchange(answer.x25519_pub)
    if profile.kem and secret.kem_seed is not None and answer.kem_ciphertext is not None:
        ikm += kem_decapsulate(profile.kem, secret.kem_seed, answer.kem_ciphertext)
    suite = secret.cipher_suite
    caller_key, callee_key = call_secret(profile, suite, ikm, caller_ik, callee_ik)
    return CallKeys(secret.call_id, suite, caller_key, callee_key)
