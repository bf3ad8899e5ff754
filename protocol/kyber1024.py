"""Kyber1024 (CRYSTALS-Kyber round 3) through pyca's ML-KEM-1024 (spec/spqr.md §2).

libsignal's session version 4 uses round-3 Kyber1024 for its PQXDH prekey,
key type byte 0x08 (libsignal ``rust/protocol/src/kem/kyber1024.rs``, which
calls libcrux ``kyber1024``); PQXDH §2.2 names the KEM. pyca has only
FIPS 203 ML-KEM. The two differ in three places, and this module bridges the
one that matters:

* Kyber's encapsulation hashes its coins first, m = H(coins); ML-KEM takes m
  as drawn. Both then compute (K̄, r) = G(m ‖ H(ek)) and c = K-PKE.Encrypt(ek,
  m, r), so an ML-KEM ciphertext is a valid Kyber ciphertext and the key and
  ciphertext formats are identical.
* Kyber's shared secret is KDF(K̄ ‖ H(c)) = SHAKE-256(K̄ ‖ SHA3-256(c))[:32]
  where ML-KEM returns K̄ itself. ``kyber_shared_secret`` applies it to what
  pyca returns, on both sides, so ``encapsulate`` and ``decapsulate`` give
  Kyber's secret.

Where the equivalence does not hold (neither affects interoperation):

* Implicit rejection: for an invalid ciphertext, Kyber returns
  KDF(z ‖ H(c)), ML-KEM returns J(z ‖ c) = SHAKE-256(z ‖ c)[:32], and we
  then apply Kyber's KDF to that. Both are pseudorandom and never match the
  sender's secret, so the session fails the same way (a MAC failure), but
  the bytes differ from libsignal's.
* Key generation from a seed: ML-KEM computes (ρ, σ) = G(d ‖ k), Kyber
  G(d). Our Kyber1024 keys are ML-KEM-1024 keys generated from the 64-byte
  seed d ‖ z that we store, so the same seed gives other keys than Kyber's
  keygen would. A peer never sees the seed, only the encapsulation key,
  whose format is the same.

Vectors that depend on this module: the ``signal-v4`` handshakes, whose
Kyber prekeys are ML-KEM-1024 keys from recorded seeds and whose shared
secrets are this wrap. Known answers: tests/test_kyber1024.py checks the
round-3 Kyber1024 KAT (decapsulation of the published sk and ct, and
encapsulation from the published coins) through the FIPS 203 internals in
``protocol.spqr.kpke``, because pyca cannot load an expanded secret key.
"""

from __future__ import annotations

import hashlib
from typing import Final

from protocol.errors import InvalidPublicKey, MalformedMessage
from protocol.primitives import kem_decapsulate, kem_encapsulate, kem_public_key

KYBER1024_KEY_TYPE: Final = 0x08  # libsignal kem::KeyType::Kyber1024
PUBLIC_KEY_LEN: Final = 1568
CIPHERTEXT_LEN: Final = 1568
SHARED_SECRET_LEN: Final = 32
SEED_LEN: Final = 64  # d ‖ z, the ML-KEM-1024 seed we store in place of Kyber's 3168-byte key


def kyber_shared_secret(k_bar: bytes, ciphertext: bytes) -> bytes:
    """Kyber round 3's final KDF: SHAKE-256(K̄ ‖ SHA3-256(c))[:32].

    The last line of Kyber.CCAKEM.Enc and of Kyber.CCAKEM.Dec (Kyber round-3
    specification, Algorithms 8 and 9).
    """
    return hashlib.shake_256(k_bar + hashlib.sha3_256(ciphertext).digest()).digest(
        SHARED_SECRET_LEN
    )


def public_key(seed: bytes) -> bytes:
    """The 1568-byte encapsulation key of the ML-KEM-1024 key pair generated from ``seed``."""
    return kem_public_key("ML-KEM-1024", seed)


def encapsulate(public: bytes) -> tuple[bytes, bytes]:
    """Kyber1024.Encaps through ML-KEM-1024; returns ``(ciphertext, shared_secret)``."""
    ciphertext, k_bar = kem_encapsulate("ML-KEM-1024", public)
    return ciphertext, kyber_shared_secret(k_bar, ciphertext)


def decapsulate(seed: bytes, ciphertext: bytes) -> bytes:
    """Kyber1024.Decaps through ML-KEM-1024 (see the module note on implicit rejection)."""
    return kyber_shared_secret(kem_decapsulate("ML-KEM-1024", seed, ciphertext), ciphertext)


def encode_public(public: bytes) -> bytes:
    """libsignal's serialized KEM public key: 0x08 ‖ ek (1569 bytes)."""
    if not isinstance(public, bytes) or len(public) != PUBLIC_KEY_LEN:
        raise InvalidPublicKey(f"Kyber1024 public key must be {PUBLIC_KEY_LEN} bytes")
    return bytes([KYBER1024_KEY_TYPE]) + public


def decode_public(encoded: bytes) -> bytes:
    """Inverse of ``encode_public``; refuses another type byte (0x0A, ML-KEM-1024, included)."""
    if not isinstance(encoded, bytes) or len(encoded) != 1 + PUBLIC_KEY_LEN:
        raise InvalidPublicKey("encoded Kyber1024 key must be 1569 bytes")
    if encoded[0] != KYBER1024_KEY_TYPE:
        raise InvalidPublicKey("encoded Kyber1024 key has the wrong type byte")
    return encoded[1:]


def encode_ciphertext(ciphertext: bytes) -> bytes:
    """libsignal's serialized ciphertext: 0x08 ‖ c (1569 bytes, PreKeySignalMessage field 8)."""
    if not isinstance(ciphertext, bytes) or len(ciphertext) != CIPHERTEXT_LEN:
        raise MalformedMessage(f"Kyber1024 ciphertext must be {CIPHERTEXT_LEN} bytes")
    return bytes([KYBER1024_KEY_TYPE]) + ciphertext


def decode_ciphertext(encoded: bytes) -> bytes:
    """Inverse of ``encode_ciphertext``."""
    if not isinstance(encoded, bytes) or len(encoded) != 1 + CIPHERTEXT_LEN:
        raise MalformedMessage("encoded Kyber1024 ciphertext must be 1569 bytes")
    if encoded[0] != KYBER1024_KEY_TYPE:
        raise MalformedMessage("encoded Kyber1024 ciphertext has the wrong type byte")
    return encoded[1:]
