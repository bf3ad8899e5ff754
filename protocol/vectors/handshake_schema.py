"""The handshake vectors' schema, notes and check ciphertext (spec/pqxdh.md §7).

``handshake.py`` generates and verifies the tests; this module describes
their layout for consumers: the JSON Schema every handshake file follows,
the notes that explain each flag, and ``check_ciphertext``, the stand-in
for the first AEAD message that lets a responder prove it derived the
initiator's SK and AD (spec/pqxdh.md §7.3).
"""

from __future__ import annotations

from typing import Any, Final

from protocol.primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256
from protocol.vectors.common import (
    ENTROPY_LIST,
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    file_schema,
    obj,
)
from protocol.x3dh import HKDF_SALT

SCHEMA: Final = "handshake_schema_v2.json"
CHECK_INFO: Final = b"E2EERef handshake vector check"
CHECK_PLAINTEXT: Final = b"E2EERef first message"


def check_ciphertext(sk: bytes, ad: bytes) -> bytes:
    """The vector's stand-in for the first AEAD message (spec/pqxdh.md §7.3)."""
    keys = hkdf_sha256(sk, HKDF_SALT, CHECK_INFO, 44)
    return aes_gcm_encrypt(keys[:32], keys[32:], CHECK_PLAINTEXT, ad)


def open_check(sk: bytes, ad: bytes, ciphertext: bytes) -> None:
    """Raise AUTH_FAILED unless ``ciphertext`` authenticates under SK and AD."""
    keys = hkdf_sha256(sk, HKDF_SALT, CHECK_INFO, 44)
    aes_gcm_decrypt(keys[:32], keys[32:], ciphertext, ad)


# --- Schema and notes ----------------------------------------------------------------

_NULLABLE_HEX: Final = {"type": ["string", "null"], "pattern": HEX_BYTES["pattern"]}
_ID: Final = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
_NULLABLE_ID: Final = {"type": ["integer", "null"], "minimum": 0, "maximum": 2**32 - 1}
_NEGATIVE_FIELDS: Final = ("error", "detected_by")

TEST_SCHEMA: Final = {
    **obj(
        {
            **TEST_ENVELOPE,
            "inputs": obj(
                {
                    "initiator": obj({"ik_priv": HEX_BYTES, "ek_priv": HEX_BYTES}),
                    "responder": obj(
                        {
                            "ik_priv": HEX_BYTES,
                            "spk_id": _ID,
                            "spk_priv": HEX_BYTES,
                            "spk_sig_z": HEX_BYTES,
                            "spk_sig_convention": {"enum": ["xeddsa", "libsignal"]},
                            "opk_id": _NULLABLE_ID,
                            "opk_priv": _NULLABLE_HEX,
                            "pqspk_id": _NULLABLE_ID,
                            "pqspk_seed": _NULLABLE_HEX,
                            "pqspk_last_resort": {"type": ["boolean", "null"]},
                            "pqspk_sig_z": _NULLABLE_HEX,
                            "expected_initiator_ik": _NULLABLE_HEX,
                        }
                    ),
                }
            ),
            "entropy": obj({"responder": ENTROPY_LIST, "initiator": ENTROPY_LIST}),
            "bundle": obj(
                {
                    "ik_pub": HEX_BYTES,
                    "spk_id": _ID,
                    "spk_pub": HEX_BYTES,
                    "spk_sig": HEX_BYTES,
                    "opk_id": _NULLABLE_ID,
                    "opk_pub": _NULLABLE_HEX,
                    "pqspk_id": _NULLABLE_ID,
                    "pqspk_pub": _NULLABLE_HEX,
                    "pqspk_sig": _NULLABLE_HEX,
                    "encoded": HEX_BYTES,
                }
            ),
            "intermediate": obj(
                {
                    **{f"dh{i}": HEX_BYTES for i in (1, 2, 3)},
                    "dh4": _NULLABLE_HEX,
                    "kem_ct": _NULLABLE_HEX,
                    "kem_ss": _NULLABLE_HEX,
                    "km": HEX_BYTES,
                    "hkdf_salt": HEX_BYTES,
                }
            ),
            "outputs": obj(
                {
                    "sk": HEX_BYTES,
                    "ad": HEX_BYTES,
                    "initial_message": HEX_BYTES,
                    "check_ciphertext": {
                        **HEX_BYTES,
                        "description": (
                            "AES-256-GCM(key = K[0:32], nonce = K[32:44], plaintext = "
                            f"{CHECK_PLAINTEXT.decode()!r}, aad = AD), K = HKDF-SHA256(salt = "
                            f"32 zero bytes, ikm = SK, info = {CHECK_INFO.decode()!r}, 44): "
                            "the responder opens it to prove it derived SK and AD"
                        ),
                    },
                }
            ),
            "events": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "initial_message": HEX_BYTES,
                        "result": {"enum": ["ok", *ERROR_CODE["enum"]]},
                    }
                ),
            },
        },
        {
            "mutation": obj(
                {
                    "field": {"type": "string", "pattern": "^(bundle\\.|initial_message)"},
                    "op": {"enum": ["xor", "truncate", "replace", "add"]},
                    "description": {"type": "string"},
                },
                {
                    "offset": _ID,
                    "mask": HEX_BYTES,
                    "length": _ID,
                    "value": HEX_BYTES,
                    "addend": {"type": "integer"},
                },
            ),
            "error": ERROR_CODE,
            "detected_by": {"enum": ["initiator", "responder"]},
        },
    ),
    "if": {"properties": {"result": {"const": "invalid"}}},
    "then": {"required": list(_NEGATIVE_FIELDS)},
    "else": {"not": {"anyOf": [{"required": [name]} for name in ("mutation", *_NEGATIVE_FIELDS)]}},
}

GROUP_SCHEMA: Final = {
    "type": {"enum": ["X3dhHandshake", "PqxdhHandshake"]},
    "profile": {"type": "string"},
    "curve": {"const": "X25519"},
    "hash": {"const": "SHA-256"},
    "kem": {"enum": ["ML-KEM-768", "ML-KEM-1024", None]},
    "signature": {"const": "XEdDSA"},
    "info": HEX_BYTES,
    "info_text": {"type": "string"},
    "sk_len": {"enum": [32, 64]},
    "pubkey_encoding": {"type": "string"},
    "signature_acceptance": {"type": "string"},
}

SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    SCHEMA: file_schema("X3DH and PQXDH handshake tests", GROUP_SCHEMA, TEST_SCHEMA)
}

HEADER: Final = (
    "X3DH (rev 1) and PQXDH (rev 3) handshakes: spec/x3dh.md, spec/pqxdh.md; format in "
    "spec/pqxdh.md §7.",
    "Rebuild the responder's keys and the initiator's identity from entropy (or use inputs), "
    "check the bundle, run the initiator with the recorded (kem_ct, kem_ss), compare outputs, "
    "then replay the responder's events in order on one prekey store.",
    "A responder event is ok when the initial message is accepted, check_ciphertext opens "
    "under the derived SK and AD, and SK equals outputs.sk; one-time prekeys are consumed "
    "only then.",
    "Schema v2 (was v1): a mutation is {field, op, ...} in the vocabulary of "
    "vectors/README.md §4, where v1 had {target, description, value}; a replayed message "
    "(ReusedOpk) carries no mutation; groups state their signature-acceptance rule. Every key, "
    "message and output byte is that of v1.",
)

NOTES: Final = {
    "WithOpk": {
        "bugType": "FUNCTIONALITY",
        "description": "X3DH with a one-time prekey: DH4 present.",
    },
    "WithoutOpk": {"bugType": "FUNCTIONALITY", "description": "X3DH without a one-time prekey."},
    "OneTimeKemPrekey": {
        "bugType": "FUNCTIONALITY",
        "description": "PQXDH with an OPK and a one-time KEM prekey; both are consumed.",
    },
    "LastResortKemPrekey": {
        "bugType": "FUNCTIONALITY",
        "description": "PQXDH with an OPK and the last-resort KEM prekey, which is kept.",
    },
    "LastResortKemPrekeyNoOpk": {
        "bugType": "FUNCTIONALITY",
        "description": "PQXDH with the last-resort KEM prekey and no OPK: DH4 absent.",
    },
    "BadSpkSignature": {
        "bugType": "AUTH_BYPASS",
        "description": "The signed-prekey signature does not verify: the initiator must abort.",
    },
    "BadPqspkSignature": {
        "bugType": "AUTH_BYPASS",
        "description": "The KEM-prekey signature does not verify: the initiator must abort.",
    },
    "LibsignalSpk": {
        "bugType": "FUNCTIONALITY",
        "description": (
            "Sig(IK_B, Encode(SPK_B)) made by libsignal's curve25519_sign with the recorded Z, "
            "for an identity key whose Edwards sign bit is 1 (so bit 7 of byte 63 is set): "
            "signal-v3 accepts it, as libsignal does."
        ),
    },
    "LibsignalSpkSignature": {
        "bugType": "SIGNATURE_MALLEABILITY",
        "description": (
            "The bundle's SPK signature replaced by libsignal's curve25519_sign signature "
            "(sign bit of A in bit 7 of byte 63): a strict XEdDSA verifier refuses it."
        ),
    },
    "LowOrderSpk": {
        "bugType": "WEAK_KEY",
        "description": "SPK_B is a low-order point: refused before any signature check.",
    },
    "LowOrderEphemeral": {
        "bugType": "WEAK_KEY",
        "description": "EK_A is a low-order point: the responder refuses it.",
    },
    "UnknownOpkId": {
        "bugType": "FUNCTIONALITY",
        "description": "The initial message names a one-time prekey the responder does not have.",
    },
    "ReusedOpk": {
        "bugType": "REPLAY",
        "description": "A one-time prekey is used once; the same message again is refused.",
    },
    "TruncatedKemCiphertext": {
        "bugType": "MALFORMED",
        "description": "CT is one byte short: refused as malformed, never decapsulated.",
    },
    "TamperedKemCiphertext": {
        "bugType": "AUTH_BYPASS",
        "description": (
            "A flipped ciphertext bit: ML-KEM's implicit rejection gives another SS, so the "
            "responder derives another SK and check_ciphertext fails (AUTH_FAILED)."
        ),
    },
    "IdentityKeyMismatch": {
        "bugType": "AUTH_BYPASS",
        "description": "IK_A is not the identity the responder expects from this peer.",
    },
    "UnsupportedBundleVersion": {
        "bugType": "MALFORMED_INPUT",
        "description": "A bundle of another version is UNSUPPORTED_VERSION.",
    },
    "NonCanonicalBundle": {
        "bugType": "MALFORMED_INPUT",
        "description": "A bundle whose msgpack is not canonical (vectors/README.md §2) is refused.",
    },
    "BadEncodeKemType": {
        "bugType": "MALFORMED_INPUT",
        "description": "An EncodeKEM type byte of no KEM is INVALID_PUBLIC_KEY.",
    },
    "InvalidKemPrekey": {
        "bugType": "WEAK_KEY",
        "description": "An ML-KEM encapsulation key failing FIPS 203 §7.2's modulus check is "
        "INVALID_PUBLIC_KEY, before its signature is checked and before encapsulation.",
    },
    "MissingKemPart": {
        "bugType": "DEFINED",
        "description": "A KEM part that does not fit the profile (none, for PQXDH) is refused: "
        "no silent fallback to X3DH.",
    },
    "UnknownSpkId": {
        "bugType": "FUNCTIONALITY",
        "description": "An initial message naming a signed prekey the responder lacks.",
    },
    "UnknownKemPrekeyId": {
        "bugType": "FUNCTIONALITY",
        "description": "An initial message naming a KEM prekey the responder lacks.",
    },
    "UnsupportedInitialDataVersion": {
        "bugType": "MALFORMED_INPUT",
        "description": "Initial data of another version is UNSUPPORTED_VERSION.",
    },
    "ReusedOneTimeKemPrekey": {
        "bugType": "AUTH_BYPASS",
        "description": "A one-time KEM prekey serves one initial message; the replay fails.",
    },
    "LastResortKemPrekeyReplayed": {
        "bugType": "FUNCTIONALITY",
        "description": "A last-resort KEM prekey is not consumed: the handshake accepts the "
        "same initial message again (the session layer catches the duplicate).",
    },
    "TorsionTwinEphemeral": {
        "bugType": "REPLAY",
        "description": (
            "EK_A replaced by a torsion twin, which gives the responder the same DH outputs and "
            "SK: the responder accepts only the torsion-free base key (spec/x3dh.md §5.3)."
        ),
    },
}
