"""Key agreement, a profile part: which X3DH or PQXDH variant and its constants.

Implements the parameters of spec/x3dh.md §2 and spec/pqxdh.md §2 (X3DH
§2.1-§2.2, PQXDH §2.1-§2.2); the algorithm itself is ``x3dh.py`` with the
KEM step of ``pqxdh.py``. A key-agreement part provides (spec/profiles.md §1.2):

* ``handshake``: ``"x3dh"`` or ``"pqxdh"``;
* ``kdf_info``: the HKDF info of KDF(KM);
* ``kem``: PQXDH's KEM, None exactly for X3DH;
* ``sk_len``: bytes of SK taken from the KDF;
* ``xeddsa_accept_libsignal_sign_bit``: whether bundle signatures may use
  libsignal's sign-bit variant (spec/xeddsa.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from protocol.errors import InvalidArgument
from protocol.primitives import KEM_PUBLIC_LEN, KemName


@dataclass(frozen=True, slots=True)
class KeyAgreement:
    """One X3DH/PQXDH variant (spec/profiles.md §1.2); refuses inconsistent constants."""

    handshake: Literal["x3dh", "pqxdh"]
    # KDF(KM) info string (X3DH §2.1 `info`; PQXDH §2.2 info = info_curve_hash_pqkem).
    kdf_info: bytes
    # The KEM of PQXDH; None for X3DH.
    kem: KemName | None
    # Length of SK taken from HKDF (spec: 32; libsignal v3: 64 = root ‖ chain;
    # libsignal v4: 96 = root ‖ chain ‖ SPQR authentication key).
    sk_len: int
    # Accept libsignal's XEdDSA variant (Edwards sign bit in bit 7 of s[63]) on
    # verify, in addition to spec signatures (spec/xeddsa.md §5). Signing always
    # follows the XEdDSA specification.
    xeddsa_accept_libsignal_sign_bit: bool

    def __post_init__(self) -> None:
        if self.handshake not in ("x3dh", "pqxdh"):
            raise InvalidArgument(f"unknown handshake {self.handshake!r}")
        if (self.kem is not None) != (self.handshake == "pqxdh"):
            raise InvalidArgument("a KEM is used exactly by PQXDH")
        if self.kem is not None and self.kem not in KEM_PUBLIC_LEN:
            raise InvalidArgument(f"unknown KEM {self.kem!r}")
        if not isinstance(self.kdf_info, bytes) or not self.kdf_info:
            raise InvalidArgument("KDF(KM) needs a non-empty info string")
        if self.sk_len not in (32, 64, 96):
            raise InvalidArgument("SK is 32 bytes, or 64 (v3) or 96 (v4) under libsignal's split")


X3DH: Final = KeyAgreement(
    handshake="x3dh",
    kdf_info=b"E2EERef_X3DH_CURVE25519_SHA-256",
    kem=None,
    sk_len=32,
    xeddsa_accept_libsignal_sign_bit=False,
)

PQXDH_ML_KEM_768: Final = KeyAgreement(
    handshake="pqxdh",
    # PQXDH §2.2: info, curve, hash and pqkem joined with "_".
    kdf_info=b"E2EERef_CURVE25519_SHA-256_ML-KEM-768",
    kem="ML-KEM-768",
    sk_len=32,
    xeddsa_accept_libsignal_sign_bit=False,
)

# libsignal v3 (libsignal-protocol-java fde96d2 RatchetingSession; libsignal
# b056faa): X3DH info "WhisperText" with a 64-byte SK split into root key and
# chain key.
LIBSIGNAL_X3DH: Final = KeyAgreement(
    handshake="x3dh",
    kdf_info=b"WhisperText",
    kem=None,
    sk_len=64,
    xeddsa_accept_libsignal_sign_bit=True,
)

# libsignal v4 (b056faa rust/protocol/src/pqxdh.rs ``HandshakeKeys::derive``):
# PQXDH with Kyber1024 (key type 0x08), HKDF(salt = none, info below) -> 96
# bytes = root key 32 ‖ chain key 32 ‖ SPQR authentication key 32 (spec/pqxdh.md §9).
LIBSIGNAL_PQXDH_KYBER1024: Final = KeyAgreement(
    handshake="pqxdh",
    kdf_info=b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024",
    kem="Kyber1024",
    sk_len=96,
    xeddsa_accept_libsignal_sign_bit=True,
)
