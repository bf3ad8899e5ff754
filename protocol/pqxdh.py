"""The KEM step PQXDH adds to X3DH (spec/pqxdh.md §4).

PQXDH (revision 3) is X3DH with one more secret: the initiator encapsulates
to the responder's signed KEM prekey PQPK_B and appends the shared secret SS
to the KDF input, after the DH outputs (PQXDH §3.3 steps 3-4). Everything
else, from the DHs to AD, is X3DH's and lives in ``x3dh.py``, which calls
the two functions here at the point the specification puts them.

The KEM is a parameter of the key types (ML-KEM-768 for ``pq-default``;
ML-KEM-1024 works the same), never a constant of this module.
"""

from __future__ import annotations

from protocol import kyber1024
from protocol.errors import UnknownPrekey
from protocol.prekeys import KemPrekey
from protocol.primitives import (
    KEM_CIPHERTEXT_LEN,
    KEM_SS_LEN,
    KemName,
    kem_decapsulate,
    kem_encapsulate,
    require_bytes,
)

KemEncapsulation = tuple[bytes, bytes]
"""(CT, SS) as ML-KEM.Encaps returns them."""


def encapsulate(
    kem: KemName, public: bytes, replay: KemEncapsulation | None = None
) -> KemEncapsulation:
    """Implements PQXDH §3.3 step 3: (CT, SS) = PQKEM-ENC(PQPK_B).

    pyca draws ML-KEM's encapsulation randomness m itself and cannot take it
    as input, so a vector cannot replay m. Instead ``replay`` supplies a
    recorded (CT, SS); only their lengths are checked here, and the
    responder's decapsulation proves the pair genuine (spec/pqxdh.md §7).
    """
    if replay is None:
        if kem == "Kyber1024":
            return kyber1024.encapsulate(public)
        return kem_encapsulate(kem, public)
    ciphertext, shared = replay
    require_bytes(ciphertext, KEM_CIPHERTEXT_LEN[kem], f"{kem} ciphertext")
    require_bytes(shared, KEM_SS_LEN, "KEM shared secret")
    return ciphertext, shared


def decapsulate(kem: KemName, prekey: KemPrekey, ciphertext: bytes) -> bytes:
    """Implements the responder's SS = PQKEM-DEC(PQPK_B, CT), PQXDH §3.4.

    A ciphertext of the wrong length is MALFORMED_MESSAGE. A well-formed but
    altered one is not detected here: ML-KEM's implicit rejection returns an
    unrelated SS, so the two sides derive different SKs and the initial
    message fails to authenticate (spec/pqxdh.md §5).
    """
    if prekey.kem != kem:
        raise UnknownPrekey(f"the KEM prekey with that id is not an {kem} key")
    if kem == "Kyber1024":
        return kyber1024.decapsulate(prekey.seed, ciphertext)
    return kem_decapsulate(kem, prekey.seed, ciphertext)
