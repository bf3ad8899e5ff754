"""The initial message's handshake data (spec/x3dh.md §5.2; X3DH §3.3, PQXDH §3.3 step 7).

What the initiator's first message carries besides the first ciphertext,
and its unambiguous byte encoding. It lives apart from ``x3dh.py`` so that
the wire formats can carry it without depending on the key agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.bundle import optional_prekey_id, pack, unpack_array
from protocol.encoding import decode_ec, encode_ec
from protocol.errors import InvalidArgument, MalformedMessage, UnsupportedVersion
from protocol.prekeys import check_prekey_id
from protocol.primitives import check_x25519_public

INITIAL_DATA_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class InitialData:
    """What the initial message carries besides the first ciphertext (X3DH §3.3, PQXDH §3.3 step 7).

    IK_A, EK_A, the ids of the prekeys used, and for PQXDH the KEM prekey id
    and CT. ``to_bytes``/``from_bytes`` give the unambiguous encoding
    (spec/x3dh.md §5.2).
    """

    identity_key: bytes
    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None = None
    kem_prekey_id: int | None = None
    kem_ciphertext: bytes | None = None

    def __post_init__(self) -> None:
        check_x25519_public(self.identity_key)
        check_x25519_public(self.ephemeral_key)
        check_prekey_id(self.signed_prekey_id)
        if self.one_time_prekey_id is not None:
            check_prekey_id(self.one_time_prekey_id)
        if (self.kem_prekey_id is None) != (self.kem_ciphertext is None):
            raise InvalidArgument("a KEM ciphertext needs its KEM prekey id, and vice versa")
        if self.kem_prekey_id is not None:
            check_prekey_id(self.kem_prekey_id)
        if self.kem_ciphertext is not None and not isinstance(self.kem_ciphertext, bytes):
            raise InvalidArgument("the KEM ciphertext must be bytes")

    def __repr__(self) -> str:
        ct = "None" if self.kem_ciphertext is None else f"<{len(self.kem_ciphertext)} bytes>"
        return (
            f"InitialData(identity_key={self.identity_key.hex()}, "
            f"ephemeral_key={self.ephemeral_key.hex()}, signed_prekey_id={self.signed_prekey_id}, "
            f"one_time_prekey_id={self.one_time_prekey_id}, kem_prekey_id={self.kem_prekey_id}, "
            f"kem_ciphertext={ct})"
        )

    def to_bytes(self) -> bytes:
        """[version, Encode(IK_A), Encode(EK_A), IdEC(SPK), IdEC(OPK) | nil, [IdKEM, CT] | nil]."""
        kem = None
        if self.kem_prekey_id is not None:
            kem = [self.kem_prekey_id, self.kem_ciphertext]
        return pack(
            [
                INITIAL_DATA_VERSION,
                encode_ec(self.identity_key),
                encode_ec(self.ephemeral_key),
                self.signed_prekey_id,
                self.one_time_prekey_id,
                kem,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> InitialData:
        """Strict inverse of ``to_bytes``.

        Raises MALFORMED_MESSAGE, INVALID_PUBLIC_KEY or UNSUPPORTED_VERSION.
        """
        version, identity, ephemeral, spk_id, opk_id, kem = unpack_array(data, 6, "initial data")
        if version != INITIAL_DATA_VERSION:
            raise UnsupportedVersion("unknown initial-data version")
        if type(identity) is not bytes or type(ephemeral) is not bytes:
            raise MalformedMessage("initial-data keys must be bin items")
        signed_prekey_id = optional_prekey_id(spk_id)
        if signed_prekey_id is None:
            raise MalformedMessage("the signed-prekey id is required")
        kem_id, ciphertext = _decode_kem_part(kem)
        message = cls(
            decode_ec(identity),
            decode_ec(ephemeral),
            signed_prekey_id,
            optional_prekey_id(opk_id),
            kem_id,
            ciphertext,
        )
        if message.to_bytes() != data:
            raise MalformedMessage("initial-data encoding is not canonical")
        return message


def _decode_kem_part(part: object) -> tuple[int | None, bytes | None]:
    if part is None:
        return None, None
    if not isinstance(part, list) or len(part) != 2 or type(part[1]) is not bytes:
        raise MalformedMessage("the KEM part must be [id, ciphertext]")
    kem_id = optional_prekey_id(part[0])
    if kem_id is None:
        raise MalformedMessage("the KEM part needs its prekey id")
    return kem_id, part[1]
