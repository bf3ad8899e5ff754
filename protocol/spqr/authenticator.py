"""SPQR's authenticator: MACs over the KEM header and ciphertext (spec/spqr.md §7).

As spqr ``src/authenticator.rs`` (``Authenticator``), the authentication of
the ML-KEM Braid (Braid §2, where the header and
the ciphertext travel with MACs under a key ratcheted by every epoch
secret):

* ``authenticator_update`` (``Authenticator::update``): HKDF-SHA256(salt =
  0^32, ikm = root_key ‖ k, info = "Signal_PQCKA_V1_MLKEM768:Authenticator
  Update" ‖ be64(epoch)) → root_key 32 ‖ mac_key 32;
* ``authenticator_start`` (``Authenticator::new``): both keys zero, then an
  update with the PQXDH SPQR authentication key at epoch 1;
* ``mac_hdr`` / ``mac_ct``: HMAC-SHA256(mac_key, label ‖ be64(epoch) ‖
  data), all 32 bytes, with labels "Signal_PQCKA_V1_MLKEM768:ekheader" and
  "Signal_PQCKA_V1_MLKEM768:ciphertext";
* ``verify_hdr`` / ``verify_ct`` compare in constant time and raise
  AUTH_FAILED (spqr ``InvalidHdrMac`` / ``InvalidCtMac``, which libsignal
  reports as ``MacVerifyFailed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from protocol.errors import AuthFailed
from protocol.primitives import constant_time_equal, hkdf_sha256, hmac_sha256
from protocol.secrecy import SECRET

UPDATE_INFO: Final = b"Signal_PQCKA_V1_MLKEM768:Authenticator Update"
HDR_LABEL: Final = b"Signal_PQCKA_V1_MLKEM768:ekheader"
CT_LABEL: Final = b"Signal_PQCKA_V1_MLKEM768:ciphertext"
MAC_LEN: Final = 32


@dataclass(frozen=True, slots=True, repr=False)
class Authenticator:
    """spqr ``Authenticator``: a root key and the MAC key of the current epoch."""

    root_key: Annotated[bytes, SECRET]
    mac_key: Annotated[bytes, SECRET]

    def __post_init__(self) -> None:
        if len(self.root_key) != 32 or len(self.mac_key) != MAC_LEN:
            raise ValueError("authenticator keys are 32 bytes")

    def __repr__(self) -> str:
        return "Authenticator(<redacted>)"


def authenticator_update(auth: Authenticator, epoch: int, k: bytes) -> Authenticator:
    """Implements ``Authenticator::update`` with the epoch secret (or auth key) ``k``."""
    info = UPDATE_INFO + epoch.to_bytes(8, "big")
    out = hkdf_sha256(auth.root_key + k, bytes(32), info, 64)
    return Authenticator(root_key=out[:32], mac_key=out[32:])


def authenticator_start(auth_key: bytes, epoch: int = 1) -> Authenticator:
    """Implements ``Authenticator::new``: zero keys updated with the authentication key."""
    return authenticator_update(Authenticator(bytes(32), bytes(32)), epoch, auth_key)


def _mac(auth: Authenticator, label: bytes, epoch: int, data: bytes) -> bytes:
    return hmac_sha256(auth.mac_key, label + epoch.to_bytes(8, "big") + data)


def mac_hdr(auth: Authenticator, epoch: int, hdr: bytes) -> bytes:
    """``Authenticator::mac_hdr``: the MAC sent with the incremental ML-KEM header."""
    return _mac(auth, HDR_LABEL, epoch, hdr)


def mac_ct(auth: Authenticator, epoch: int, ct: bytes) -> bytes:
    """``Authenticator::mac_ct``: the MAC sent with ct2, over ct1 ‖ ct2."""
    return _mac(auth, CT_LABEL, epoch, ct)


def verify_hdr(auth: Authenticator, epoch: int, hdr: bytes, mac: bytes) -> None:
    """``Authenticator::verify_hdr``; AUTH_FAILED when the MAC differs."""
    if not constant_time_equal(mac, mac_hdr(auth, epoch, hdr)):
        raise AuthFailed("SPQR header MAC is invalid")


def verify_ct(auth: Authenticator, epoch: int, ct: bytes, mac: bytes) -> None:
    """``Authenticator::verify_ct``; AUTH_FAILED when the MAC differs."""
    if not constant_time_equal(mac, mac_ct(auth, epoch, ct)):
        raise AuthFailed("SPQR ciphertext MAC is invalid")
