"""Incremental ML-KEM-768 (spec/spqr.md §4), as spqr ``src/incremental_mlkem768.rs``.

The ML-KEM Braid sends the encapsulation key in two parts so the other side
can start encapsulating early (Braid §1, the
incremental ML-KEM interface, and Braid §2.1, the overview of an epoch): a 64-byte
header and a 1152-byte key vector.
spqr does it with libcrux ``mlkem768::incremental``, whose layout is:

* header (libcrux ``pk1``) = ρ ‖ H(ek), 64 bytes, where ek = t̂-encoding ‖ ρ
  is the FIPS 203 encapsulation key;
* encapsulation-key vector (``pk2``) = ByteEncode12(t̂), 1152 bytes, the
  first 1152 bytes of ek;
* ct1 = c1 of K-PKE.Encrypt, 960 bytes, computed from the header alone
  (``encapsulate1``);
* ct2 = c2, 128 bytes, computed once the key vector arrives
  (``encapsulate2``); ct1 ‖ ct2 is an ordinary ML-KEM-768 ciphertext.

Key generation and decapsulation are pyca's (ML-KEM-768 from the 64-byte
seed d ‖ z, decapsulation of ct1 ‖ ct2); only the split encapsulation is
written by hand, from FIPS 203 (``protocol.spqr.kpke``).

Note that our state differs from spqr's in two places the peer never sees:
the decapsulation key is kept as its 64-byte seed (spqr keeps libcrux's
2400-byte expanded key), and the encapsulation state between ct1 and ct2 is
(m, r), from which ŷ, e1 and e2 are re-derived (libcrux keeps ŷ and e2 as
2080 bytes of its own encoding, the subject of the endianness repair in
``potentially_fix_state_incorrectly_encoded_by_libcrux_issue_1275``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from protocol.errors import InvalidArgument, InvalidPublicKey, MalformedMessage
from protocol.primitives import KEM_SEED_LEN, constant_time_equal, kem_decapsulate, kem_public_key
from protocol.randomness import Random
from protocol.secrecy import SECRET
from protocol.spqr import kpke

HEADER_LEN: Final = 64
ENCAPSULATION_KEY_LEN: Final = 1152
CIPHERTEXT1_LEN: Final = 960
CIPHERTEXT2_LEN: Final = 128
_P: Final = kpke.ML_KEM_768


@dataclass(frozen=True, slots=True, repr=False)
class Keys:
    """A key pair: ``hdr`` and ``ek`` are sent, ``seed`` (d ‖ z) is the decapsulation key."""

    hdr: bytes
    ek: bytes
    seed: Annotated[bytes, SECRET]

    def __repr__(self) -> str:
        return f"Keys(hdr={self.hdr[:4].hex()}…, ek=<{len(self.ek)} bytes>, seed=<redacted>)"


@dataclass(frozen=True, slots=True, repr=False)
class EncapsulationState:
    """What ``encaps1`` keeps for ``encaps2``: the message m and the coins r = G(m ‖ H(ek))[32:]."""

    m: Annotated[bytes, SECRET]
    r: Annotated[bytes, SECRET]

    def __repr__(self) -> str:
        return "EncapsulationState(<redacted>)"


def keys_from_seed(seed: bytes) -> Keys:
    """ML-KEM-768 KeyGen from d ‖ z (pyca), split into header and key vector (spqr ``generate``)."""
    ek = kem_public_key("ML-KEM-768", seed)
    t_encoded, rho = ek[:ENCAPSULATION_KEY_LEN], ek[ENCAPSULATION_KEY_LEN:]
    return Keys(hdr=rho + kpke.h(ek), ek=t_encoded, seed=seed)


def generate(rng: Random) -> Keys:
    """spqr ``incremental_mlkem768::generate``: one draw ``spqr_kem_seed`` of 64 bytes."""
    return keys_from_seed(rng.draw("spqr_kem_seed", KEM_SEED_LEN))


def ek_matches_header(ek: bytes, hdr: bytes) -> bool:
    """spqr ``ek_matches_header`` (libcrux ``validate_pk_bytes``).

    True when H(ek ‖ ρ) equals the header's H(ek) and the key vector passes
    the FIPS 203 §7.2 modulus check.
    """
    if len(hdr) != HEADER_LEN or len(ek) != ENCAPSULATION_KEY_LEN:
        return False
    rho, h_ek = hdr[:32], hdr[32:]
    return constant_time_equal(kpke.h(ek + rho), h_ek) and kpke.is_modulus_canonical(ek)


def require_matching_ek(ek: bytes, hdr: bytes) -> bytes:
    """``ek`` if ``ek_matches_header``, else INVALID_PUBLIC_KEY.

    spqr's ``Ct1Sent::recv_ek`` returns ``ErroneousDataReceived`` here.
    """
    if not isinstance(ek, bytes) or not isinstance(hdr, bytes) or not ek_matches_header(ek, hdr):
        raise InvalidPublicKey("encapsulation-key vector does not match the header")
    return ek


def _check_header(hdr: bytes) -> bytes:
    if not isinstance(hdr, bytes) or len(hdr) != HEADER_LEN:
        raise MalformedMessage(f"incremental ML-KEM header must be {HEADER_LEN} bytes")
    return hdr


def encaps1_derand(hdr: bytes, m: bytes) -> tuple[bytes, EncapsulationState, bytes]:
    """libcrux ``encapsulate1`` with the message m given: (K, r) = G(m ‖ H(ek)); ct1 = c1.

    ML-KEM.Encaps_internal (FIPS 203 Algorithm 17) lines 1-2, and K-PKE.Encrypt
    as far as it can go without t̂. Returns ``(ct1, state, shared_secret)``.
    """
    _check_header(hdr)
    if not isinstance(m, bytes) or len(m) != 32:
        raise InvalidArgument("encapsulation message m must be 32 bytes")
    rho, h_ek = hdr[:32], hdr[32:]
    shared, r = kpke.g(m + h_ek)
    ct1 = kpke.encrypt_c1(_P, rho, kpke.sample_noise(_P, r))
    return ct1, EncapsulationState(m=m, r=r), shared


def encaps1(hdr: bytes, rng: Random) -> tuple[bytes, EncapsulationState, bytes]:
    """spqr ``encaps1``: one draw ``spqr_encaps_m`` of 32 bytes, then ``encaps1_derand``."""
    _check_header(hdr)
    return encaps1_derand(hdr, rng.draw("spqr_encaps_m", 32))


def encaps2(ek: bytes, state: EncapsulationState) -> bytes:
    """spqr ``encaps2`` (libcrux ``encapsulate2``): ct2 = c2 from t̂ = ByteDecode12(ek).

    Note that the caller checks ``ek_matches_header`` first, as spqr's state
    machine does before it calls ``encaps2``; here only the modulus check
    FIPS 203 §7.2 asks of any encapsulation key is repeated.
    """
    if not isinstance(ek, bytes) or len(ek) != ENCAPSULATION_KEY_LEN:
        raise InvalidPublicKey(f"encapsulation-key vector must be {ENCAPSULATION_KEY_LEN} bytes")
    if not kpke.is_modulus_canonical(ek):
        raise InvalidPublicKey("encapsulation-key vector fails the modulus check")
    noise = kpke.sample_noise(_P, state.r)
    return kpke.encrypt_c2(_P, kpke.decode_t_hat(_P, ek), noise, state.m)


def decaps(seed: bytes, ct1: bytes, ct2: bytes) -> bytes:
    """spqr ``decaps``: ML-KEM-768.Decaps(ct1 ‖ ct2) with the key from ``seed`` (pyca)."""
    if not isinstance(ct1, bytes) or len(ct1) != CIPHERTEXT1_LEN:
        raise MalformedMessage(f"ct1 must be {CIPHERTEXT1_LEN} bytes")
    if not isinstance(ct2, bytes) or len(ct2) != CIPHERTEXT2_LEN:
        raise MalformedMessage(f"ct2 must be {CIPHERTEXT2_LEN} bytes")
    return kem_decapsulate("ML-KEM-768", seed, ct1 + ct2)
