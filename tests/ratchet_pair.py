"""Shared set-up for the ratchet tests (no tests here): two parties from a seeded DRBG."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.encoding import encode_ec
from protocol.primitives import X25519KeyPair
from protocol.profiles import Profile
from protocol.randomness import DrbgRandom
from protocol.ratchet import RatchetState, init_initiator, init_responder


@dataclass
class Pair:
    """Both parties of one session, with the AD an X3DH run would give them."""

    initiator: RatchetState
    responder: RatchetState
    ad: bytes
    rng: DrbgRandom


def make_pair(profile: Profile, seed: bytes = b"pair") -> Pair:
    rng = DrbgRandom(seed)
    sk = rng.draw("sk", profile.agreement.sk_len)
    spk = X25519KeyPair.from_private(rng.draw("spk", 32))
    ik_a = X25519KeyPair.from_private(rng.draw("ik", 32))
    ik_b = X25519KeyPair.from_private(rng.draw("ik", 32))
    ad = encode_ec(ik_a.public) + encode_ec(ik_b.public)
    return Pair(
        init_initiator(profile, sk, spk.public, rng), init_responder(profile, sk, spk), ad, rng
    )
