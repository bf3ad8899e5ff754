"""Recorded ML-KEM and Kyber1024 encapsulations for deterministic vectors (spec/pqxdh.md §7.2).

pyca draws ML-KEM's encapsulation randomness m itself and cannot take it as
input, so a fresh encapsulation would change the vectors on every run. A
generator instead asks an ``Encapsulator`` for each test's (CT, SS):
``pinned`` serves pairs recorded once in a JSON file, after checking that
each decapsulates to its SS under the test's own KEM prekey; ``record``
runs a generator with fresh encapsulations for missing or stale pins and
writes the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from protocol import pqxdh
from protocol.prekeys import KemPrekey
from protocol.primitives import sha256
from protocol.vectors.common import VectorMismatch, dump, from_hex

Encapsulator = Callable[[str, KemPrekey], tuple[bytes, bytes]]
"""(test key, KEM prekey) -> (CT, SS)."""

COMMENT: Final = (
    "ML-KEM encapsulations recorded once for vectors: pyca cannot take the encapsulation "
    "randomness m as input. Each pin names its test, the SHA-256 of the encapsulation key "
    "it was made for, and (kem_ct, kem_ss); generators check that kem_ct decapsulates to "
    "kem_ss under the test's KEM prekey before using it."
)


def _load(path: Path) -> dict[str, dict[str, str]]:
    pins: dict[str, dict[str, str]] = json.loads(path.read_text())["pins"]
    return pins


def _genuine(pin: Mapping[str, str] | None, prekey: KemPrekey) -> bool:
    if pin is None or pin.get("ek_sha256") != sha256(prekey.public).hex():
        return False
    shared = pqxdh.decapsulate(prekey.kem, prekey, from_hex(pin["kem_ct"]))
    return shared == from_hex(pin["kem_ss"])


def _pair(pin: Mapping[str, str]) -> tuple[bytes, bytes]:
    return from_hex(pin["kem_ct"]), from_hex(pin["kem_ss"])


def pinned(path: Path) -> Encapsulator:
    """Serve the recorded pairs of ``path``; a missing or stale pin is VectorMismatch."""
    pins = _load(path)

    def encapsulate(key: str, prekey: KemPrekey) -> tuple[bytes, bytes]:
        pin = pins.get(key)
        if pin is None or not _genuine(pin, prekey):
            raise VectorMismatch(f"{key}: no genuine recorded ML-KEM encapsulation")
        return _pair(pin)

    return encapsulate


def record(path: Path, generate: Callable[[Encapsulator], object]) -> int:
    """Run ``generate``, encapsulating afresh where no genuine pin exists; save; count them."""
    pins = _load(path) if path.exists() else {}
    fresh = 0

    def encapsulate(key: str, prekey: KemPrekey) -> tuple[bytes, bytes]:
        nonlocal fresh
        if not _genuine(pins.get(key), prekey):
            ciphertext, shared = pqxdh.encapsulate(prekey.kem, prekey.public)
            pins[key] = {
                "ek_sha256": sha256(prekey.public).hex(),
                "kem_ct": ciphertext.hex(),
                "kem_ss": shared.hex(),
            }
            fresh += 1
        return _pair(pins[key])

    generate(encapsulate)
    path.write_bytes(dump({"comment": COMMENT, "pins": dict(sorted(pins.items()))}))
    return fresh
