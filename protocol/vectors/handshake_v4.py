"""Handshake vectors of ``signal-v4``: PQXDH as libsignal v4 computes it (spec/pqxdh.md §7.5, §9).

One file, ``pqxdh_x25519_kyber1024_sha256_test.json``, in the layout of the
other handshake files (``handshake.py`` generates and replays the shared
part) with what libsignal's handshake adds:

* the Kyber1024 encapsulation from recorded randomness: ``kem_encaps_m``
  (ML-KEM's m, which is Kyber's m after its hash of the coins) gives
  ``kem_k_bar`` and ``kem_ct`` by FIPS 203 ML-KEM.Encaps_internal, and
  ``kem_ss`` = SHAKE-256(K̄ ‖ SHA3-256(CT))[:32], Kyber's final KDF
  (spec/spqr.md §2). Unlike the ML-KEM-768 file, no recorded pair is pinned:
  the hand-written FIPS 203 internals (``protocol.spqr.kpke``, checked
  against the round-3 Kyber1024 KAT in tests/test_kyber1024.py) take m;
* the 96-byte SK split into ``rk``, ``ck`` and ``spqr_auth_key``
  (libsignal ``pqxdh.rs`` ``HandshakeKeys::derive``);
* negatives of libsignal v4 on top of the family's: a Kyber key under
  ML-KEM-1024's type byte, an X3DH initial message, a base key with bit 255
  set (``is_canonical``), besides the torsion twin the family already has.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any, Final

from protocol import kyber1024
from protocol.prekeys import KemPrekey
from protocol.profiles import SIGNAL_V4
from protocol.spqr import kpke
from protocol.vectors import handshake
from protocol.vectors.common import (
    HEX_BYTES,
    VectorFile,
    drbg_for,
    envelope,
    expect_equal,
    file_schema,
    from_hex,
    obj,
    test_ids,
    to_hex,
)
from protocol.vectors.handshake_schema import GROUP_SCHEMA, NOTES, TEST_SCHEMA

__all__ = ["SCHEMAS", "generate", "verify_test"]

FAMILY: Final = "pqxdh-v4"
FILE: Final = "pqxdh_x25519_kyber1024_sha256_test.json"
SCHEMA: Final = "handshake_v4_schema_v1.json"
M_LABEL: Final = "kem_encaps_m"
SPLIT: Final = (("rk", 0), ("ck", 32), ("spqr_auth_key", 64))
"""libsignal's 96-byte SK: root key ‖ chain key ‖ SPQR authentication key."""

GROUP_TEXT: Final = {
    "sk_split": "rk = SK[0:32], ck = SK[32:64], spqr_auth_key = SK[64:96] "
    "(libsignal pqxdh.rs HandshakeKeys::derive)",
    "kem_encapsulation": "(kem_k_bar, kem_ct) = ML-KEM-1024.Encaps_internal(pqspk_pub, "
    "kem_encaps_m) (FIPS 203 Algorithm 17); kem_ss = SHAKE-256(kem_k_bar ‖ "
    "SHA3-256(kem_ct))[:32] (Kyber round 3, Algorithm 8)",
    "base_key_check": "the responder refuses EK_A unless it is canonical (u < 2^255 - 19, so "
    "bit 255 clear) and torsion-free ([q]EK_A = O), before any DH: libsignal "
    "PublicKey::is_canonical",
}

# --- Schema, header, notes --------------------------------------------------------------


def _test_schema() -> dict[str, Any]:
    """The family's test schema with the Kyber randomness, K̄ and the SK split required."""
    schema = copy.deepcopy(TEST_SCHEMA)
    properties = schema["properties"]
    properties["inputs"]["properties"]["initiator"] = obj(
        {"ik_priv": HEX_BYTES, "ek_priv": HEX_BYTES, M_LABEL: HEX_BYTES}
    )
    properties["intermediate"] = obj(
        {
            **{f"dh{i}": HEX_BYTES for i in (1, 2, 3)},
            "dh4": properties["intermediate"]["properties"]["dh4"],
            "kem_ct": HEX_BYTES,
            "kem_k_bar": HEX_BYTES,
            "kem_ss": HEX_BYTES,
            "km": HEX_BYTES,
            "hkdf_salt": HEX_BYTES,
        }
    )
    outputs = properties["outputs"]["properties"]
    properties["outputs"] = obj(
        {"sk": HEX_BYTES, **{name: HEX_BYTES for name, _ in SPLIT}, **outputs}
    )
    return schema


_GROUP: Final = {
    **GROUP_SCHEMA,
    "type": {"const": "PqxdhHandshake"},
    "profile": {"const": SIGNAL_V4.name},
    "kem": {"const": "Kyber1024"},
    "sk_len": {"const": 96},
    **{name: {"type": "string"} for name in GROUP_TEXT},
}

SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    SCHEMA: file_schema("PQXDH handshake tests of signal-v4 (libsignal v4)", _GROUP, _test_schema())
}

HEADER: Final = (
    "PQXDH as libsignal v4 computes it (signal-v4): spec/pqxdh.md §9; format in spec/pqxdh.md "
    "§7 and §7.5.",
    "The layout of handshake_schema_v2.json, plus inputs.initiator.kem_encaps_m, "
    "intermediate.kem_k_bar and outputs rk, ck, spqr_auth_key; the group states the SK split, "
    "the encapsulation and the base-key check.",
    "KM = 0xFF x 32 (the discontinuity bytes) ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS; SK = "
    "HKDF-SHA256(salt = none, which RFC 5869 makes 32 zero bytes (hkdf_salt), KM, info) to "
    "96 bytes.",
    "Our Kyber1024 prekeys are ML-KEM-1024 keys from the 64-byte seed pqspk_seed (spec/spqr.md "
    "§2): a Kyber1024 implementation cannot regenerate them from the seed, but encapsulates "
    "to pqspk_pub and decapsulates kem_ct exactly as libsignal does.",
    "initial_message is the family's InitialData encoding (spec/x3dh.md §5.2), not libsignal's "
    "PreKeySignalMessage: session_signal-v4_test.json holds the wire form.",
)

_V4_NOTES: Final = {
    "LibsignalSpk": {
        "bugType": "FUNCTIONALITY",
        "description": "Sig(IK_B, Encode(SPK_B)) made by libsignal's curve25519_sign with the "
        "recorded Z, for an identity key whose Edwards sign bit is 1: signal-v4 accepts it, "
        "as libsignal does.",
    },
    "TamperedKemCiphertext": {
        "bugType": "AUTH_BYPASS",
        "description": "A flipped Kyber ciphertext bit: implicit rejection gives another SS "
        "(the bytes differ from libsignal's Kyber, spec/spqr.md §2; the outcome does not), "
        "so the responder derives another SK and check_ciphertext fails (AUTH_FAILED).",
    },
    "MlKem1024KemPrekey": {
        "bugType": "DEFINED",
        "description": "A Kyber prekey sent under ML-KEM-1024's type byte 0x0a is not a "
        "Kyber1024 key: INVALID_PUBLIC_KEY before any signature check, as libsignal 0.103.0 "
        "refuses it.",
    },
    "X3dhInitialMessage": {
        "bugType": "DEFINED",
        "description": "An initial message without the Kyber part is X3DH, which signal-v4 "
        "refuses (MALFORMED_MESSAGE): no fallback to a handshake without the KEM.",
    },
    "NonCanonicalEphemeral": {
        "bugType": "REPLAY",
        "description": "EK_A with bit 255 set gives the same DH outputs and SK (X25519 "
        "masks the bit): the responder refuses the non-canonical encoding (INVALID_PUBLIC_KEY).",
    },
}

# --- Generation ---------------------------------------------------------------------------


def cases() -> list[handshake.Case]:
    """The family's cases for signal-v4, then the negatives of libsignal v4 only."""
    full = handshake.Shape(True, True, kem_last_resort=False)
    names = [*handshake.V4_INITIATOR_DETECTS, *handshake.V4_RESPONDER_DETECTS]
    return [
        *handshake.first_cases(SIGNAL_V4),
        *handshake.later_cases(SIGNAL_V4),
        *(handshake.Case(f"negative: {name}", full, name) for name in names),
    ]


def _encaps_m(tc_id: int) -> bytes:
    return drbg_for(FAMILY, f"{tc_id} {M_LABEL}").draw(M_LABEL, 32)


def kyber_encapsulation(public: bytes, m: bytes) -> tuple[bytes, bytes, bytes]:
    """(K̄, CT, SS) of Kyber1024 encapsulation with ML-KEM's m (spec/spqr.md §2)."""
    k_bar, ciphertext = kpke.encaps_internal(kpke.ML_KEM_1024, public, m)
    return k_bar, ciphertext, kyber1024.kyber_shared_secret(k_bar, ciphertext)


def _generate_test(case: handshake.Case, tc_id: int) -> dict[str, Any]:
    m = _encaps_m(tc_id)

    def encapsulate(key: str, prekey: KemPrekey) -> tuple[bytes, bytes]:
        _, ciphertext, shared = kyber_encapsulation(prekey.public, m)
        return ciphertext, shared

    test = handshake.generate_test(FAMILY, SIGNAL_V4, case, tc_id, encapsulate)
    handshake.replay_test(handshake.group_fields(SIGNAL_V4), test)  # checks its own output
    return _with_v4_values(test, m)


def _with_v4_values(test: Mapping[str, Any], m: bytes) -> dict[str, Any]:
    """``test`` with kem_encaps_m, kem_k_bar and the SK split, each beside its kin."""
    k_bar, _, _ = kyber_encapsulation(from_hex(test["bundle"]["pqspk_pub"]), m)
    inputs, inter, outputs = test["inputs"], test["intermediate"], test["outputs"]
    sk = from_hex(outputs["sk"])
    before_ss = {k: v for k, v in inter.items() if k in ("dh1", "dh2", "dh3", "dh4", "kem_ct")}
    return {
        **test,
        "inputs": {**inputs, "initiator": {**inputs["initiator"], M_LABEL: to_hex(m)}},
        "intermediate": {**before_ss, "kem_k_bar": to_hex(k_bar), **inter},
        "outputs": {
            "sk": outputs["sk"],
            **{name: to_hex(sk[start : start + 32]) for name, start in SPLIT},
            **outputs,
        },
    }


def _group(ids: Iterator[int]) -> dict[str, Any]:
    tests = [_generate_test(case, next(ids)) for case in cases()]
    return {**handshake.group_fields(SIGNAL_V4), **GROUP_TEXT, "tests": tests}


def generate() -> list[VectorFile]:
    """The signal-v4 handshake file, byte-identical on every run (spec/pqxdh.md §7.5)."""
    group = _group(test_ids())
    flags = {flag for test in group["tests"] for flag in test["flags"]}
    notes = {name: note for name, note in {**NOTES, **_V4_NOTES}.items() if name in flags}
    document = envelope(
        algorithm="PQXDH", schema=SCHEMA, header=HEADER, notes=notes, groups=[group]
    )
    return [VectorFile(FILE, SCHEMA, document)]


# --- Verification -------------------------------------------------------------------------


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """The Kyber encapsulation from m, the SK split, then the family's replay of the rest."""
    expect_equal("schema", schema_name, SCHEMA)
    for name, text in GROUP_TEXT.items():
        expect_equal(f"group {name}", group[name], text)
    m = from_hex(test["inputs"]["initiator"][M_LABEL])
    k_bar, ciphertext, shared = kyber_encapsulation(from_hex(test["bundle"]["pqspk_pub"]), m)
    inter = test["intermediate"]
    expect_equal("kem_k_bar", k_bar, from_hex(inter["kem_k_bar"]))
    expect_equal("kem_ct", ciphertext, from_hex(inter["kem_ct"]))
    expect_equal("kem_ss", shared, from_hex(inter["kem_ss"]))
    sk = from_hex(test["outputs"]["sk"])
    for name, start in SPLIT:
        expect_equal(name, sk[start : start + 32], from_hex(test["outputs"][name]))
    expect_equal("sk length", len(sk), SIGNAL_V4.agreement.sk_len)
    handshake.replay_test(
        {key: value for key, value in group.items() if key not in GROUP_TEXT},
        _family_fields(test),
    )


def _family_fields(test: Mapping[str, Any]) -> dict[str, Any]:
    """``test`` without the fields of this file only: what ``handshake.replay_test`` reads."""
    inputs = test["inputs"]
    initiator = {k: v for k, v in inputs["initiator"].items() if k != M_LABEL}
    return {
        **test,
        "inputs": {**inputs, "initiator": initiator},
        "intermediate": {k: v for k, v in test["intermediate"].items() if k != "kem_k_bar"},
        "outputs": {k: v for k, v in test["outputs"].items() if k not in dict(SPLIT)},
    }
