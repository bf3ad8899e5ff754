"""Safety numbers: libsignal's numeric fingerprint (spec/session.md §6).

The displayable form is the 60-digit number two users compare out of band
(libsignal ``rust/protocol/src/fingerprint.rs``).
"""

from __future__ import annotations

from typing import Final

from protocol.encoding import encode_ec
from protocol.primitives import sha512

SAFETY_NUMBER_ITERATIONS: Final = 5200
"""libsignal's numeric fingerprint iteration count (fingerprint.rs, spec/session.md §6)."""


def _fingerprint_digits(stable_id: str, identity_key: bytes) -> str:
    """libsignal Fingerprint::get_fingerprint then get_encoded_string (fingerprint.rs)."""
    key = encode_ec(identity_key)
    digest = sha512(b"\x00\x00" + key + stable_id.encode() + key)
    for _ in range(SAFETY_NUMBER_ITERATIONS - 1):
        digest = sha512(digest + key)
    chunks = (int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 30, 5))
    return "".join(f"{chunk:05d}" for chunk in chunks)


def safety_number(local_id: str, local_key: bytes, remote_id: str, remote_key: bytes) -> str:
    """The 60-digit number both users compare out of band (libsignal's displayable fingerprint).

    Each side's 30 digits come from 5200 iterations of SHA-512 over its stable
    id and identity key; the two halves are ordered so both users see the same
    string (spec/session.md §6).
    """
    halves = sorted(
        (_fingerprint_digits(local_id, local_key), _fingerprint_digits(remote_id, remote_key))
    )
    return "".join(halves)
