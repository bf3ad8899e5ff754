"""Handshake vectors: X3DH and PQXDH (spec/pqxdh.md §7, vectors/README.md §7).

Two files follow ``handshake_schema_v2.json``: ``x3dh_x25519_sha256_test.json``
(groups ``classic`` and ``signal-v3``) and
``pqxdh_x25519_mlkem768_sha256_test.json`` (group ``pq-default``). Each test
holds the responder's and the initiator's keys (as entropy and as named
inputs), the bundle, the intermediates, the outputs, and the responder's
events: initial messages with the result each must give. A negative test
makes exactly one documented mutation, to the bundle (detected by the
initiator) or to an initial message (detected by the responder).

A responder proves it derived the initiator's SK and AD by opening
``check_ciphertext``: AES-256-GCM of ``CHECK_PLAINTEXT`` under a key and
nonce expanded from SK, with AD as associated data (spec/pqxdh.md §7.3).
That is how a tampered KEM ciphertext, which ML-KEM's implicit rejection
turns into a different SK rather than an error, shows as AUTH_FAILED.

The ``signal-v4`` file (``handshake_v4.py``) reuses this module's actors,
cases, mutations and replay (``generate_test``, ``replay_test``); the
negatives of libsignal v4 only are named in ``V4_INITIATOR_DETECTS`` and
``V4_RESPONDER_DETECTS`` here, so that every mutation is written in one place.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from protocol.bundle import (
    BundleKemPrekey,
    BundleOneTimePrekey,
    PrekeyBundle,
    make_bundle,
    pack,
)
from protocol.encoding import KEM_TYPE, encode_ec
from protocol.initial_data import InitialData
from protocol.prekeys import (
    IdentityKeyPair,
    KemPrekey,
    OneTimePrekey,
    PrekeyStore,
    SignedPrekey,
    generate_kem_prekey,
    generate_one_time_prekey,
    generate_signed_prekey,
)
from protocol.primitives import P25519, X25519_LEN
from protocol.profiles import CLASSIC, PQ_DEFAULT, SIGNAL_V3, Profile, get_profile
from protocol.randomness import DrbgRandom, Random, RecordingRandom, ScriptedRandom
from protocol.vectors import kem_pins
from protocol.vectors.common import (
    VectorFile,
    VectorMismatch,
    drbg_for,
    entropy_entries,
    entropy_list,
    envelope,
    expect_equal,
    flip_last_bit,
    from_hex,
    mutate,
    mutate_int,
    outcome,
    test_ids,
)
from protocol.vectors.handshake_schema import (
    HEADER,
    NOTES,
    SCHEMA,
    SCHEMAS,
    check_ciphertext,
    open_check,
)
from protocol.vectors.xeddsa import libsignal_sign
from protocol.x3dh import HKDF_SALT, initiate, respond

__all__ = ["SCHEMAS", "generate", "verify_test"]

LOW_ORDER_POINT: Final = bytes.fromhex(
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
)  # order 8 (RFC 7748 §6.1 lists the low-order points of Curve25519)
PINS_FILE: Final = Path(__file__).with_name("handshake_kem_pins.json")
SPK_ID: Final = 1
OPK_ID: Final = 7
KEM_ID: Final = 2
UNKNOWN_OPK_ID: Final = 8
SPK_Z: Final = f"signed_prekey_sig_z[{SPK_ID}]"
KEM_Z: Final = f"kem_prekey_sig_z[{KEM_ID}]"


# --- The actors, rebuilt identically by generator and verifier -------------------------


@dataclasses.dataclass(frozen=True)
class Shape:
    """Which prekeys a test's responder has: the only choices a test makes."""

    one_time: bool
    kem: bool
    kem_last_resort: bool = True
    libsignal_signature: bool = False


@dataclasses.dataclass(frozen=True)
class ResponderKeys:
    identity: IdentityKeyPair
    spk: SignedPrekey
    opk: OneTimePrekey | None
    pqpk: KemPrekey | None
    spk_sig_convention: str
    sig_z: Mapping[str, bytes]  # the XEdDSA Z of each signature, by draw label

    @classmethod
    def generate(cls, profile: Profile, shape: Shape, rng: Random) -> ResponderKeys:
        """Draws identity_key, signed_prekey[1] (+ sig z), one_time_prekey[7], kem_prekey_*[2].

        With ``shape.libsignal_signature`` the SPK is signed again with the
        same Z by libsignal's curve25519_sign, as a libsignal client would.
        """
        recorder = RecordingRandom(rng)
        identity = IdentityKeyPair.generate(recorder)
        spk = generate_signed_prekey(identity, SPK_ID, recorder)
        if shape.libsignal_signature:  # the last draw was the SPK signature's Z
            message = encode_ec(spk.key_pair.public)
            signature = libsignal_sign(identity.private, message, recorder.draws[-1][1])
            spk = SignedPrekey(SPK_ID, spk.key_pair, signature)
        opk = generate_one_time_prekey(OPK_ID, recorder) if shape.one_time else None
        pqpk = None
        if shape.kem and profile.kem is not None:
            last = shape.kem_last_resort
            pqpk = generate_kem_prekey(
                identity, KEM_ID, profile.kem, last_resort=last, rng=recorder
            )
        z = {label: value for label, value in recorder.draws if "_sig_z[" in label}
        convention = "libsignal" if shape.libsignal_signature else "xeddsa"
        return cls(identity, spk, opk, pqpk, convention, z)

    def bundle(self) -> PrekeyBundle:
        return make_bundle(self.identity, self.spk, self.opk, self.pqpk)

    def store(self) -> PrekeyStore:
        return PrekeyStore.of(
            (self.spk,),
            () if self.opk is None else (self.opk,),
            () if self.pqpk is None else (self.pqpk,),
        )


def _inputs(keys: ResponderKeys, initiator: IdentityKeyPair, ek: bytes) -> dict[str, Any]:
    opk, pqpk = keys.opk, keys.pqpk
    return {
        "initiator": {"ik_priv": initiator.private.hex(), "ek_priv": ek.hex()},
        "responder": {
            "ik_priv": keys.identity.private.hex(),
            "spk_id": keys.spk.prekey_id,
            "spk_priv": keys.spk.key_pair.private.hex(),
            "spk_sig_z": keys.sig_z[SPK_Z].hex(),
            "spk_sig_convention": keys.spk_sig_convention,
            "opk_id": None if opk is None else opk.prekey_id,
            "opk_priv": None if opk is None else opk.key_pair.private.hex(),
            "pqspk_id": None if pqpk is None else pqpk.prekey_id,
            "pqspk_seed": None if pqpk is None else pqpk.seed.hex(),
            "pqspk_last_resort": None if pqpk is None else pqpk.last_resort,
            "pqspk_sig_z": None if pqpk is None else keys.sig_z[KEM_Z].hex(),
        },
    }


def _bundle_json(bundle: PrekeyBundle) -> dict[str, Any]:
    opk, pqpk = bundle.one_time_prekey, bundle.kem_prekey
    return {
        "ik_pub": bundle.identity_key.hex(),
        "spk_id": bundle.signed_prekey_id,
        "spk_pub": bundle.signed_prekey.hex(),
        "spk_sig": bundle.signed_prekey_signature.hex(),
        "opk_id": None if opk is None else opk.prekey_id,
        "opk_pub": None if opk is None else opk.public.hex(),
        "pqspk_id": None if pqpk is None else pqpk.prekey_id,
        "pqspk_pub": None if pqpk is None else pqpk.public.hex(),
        "pqspk_sig": None if pqpk is None else pqpk.signature.hex(),
        "encoded": bundle.to_bytes().hex(),
    }


def _hex_or_none(value: object) -> bytes | None:
    return None if value is None else from_hex(value)


def bundle_from_json(fields: Mapping[str, Any], profile: Profile) -> PrekeyBundle:
    """Build the bundle a test describes; its constructors check the keys."""
    opk = None
    if fields["opk_id"] is not None:
        opk = BundleOneTimePrekey(fields["opk_id"], from_hex(fields["opk_pub"]))
    pqpk = None
    if fields["pqspk_id"] is not None and profile.kem is not None:
        pqpk = BundleKemPrekey(
            profile.kem,
            fields["pqspk_id"],
            from_hex(fields["pqspk_pub"]),
            from_hex(fields["pqspk_sig"]),
        )
    return PrekeyBundle(
        from_hex(fields["ik_pub"]),
        fields["spk_id"],
        from_hex(fields["spk_pub"]),
        from_hex(fields["spk_sig"]),
        opk,
        pqpk,
    )


# --- Negative tests: one mutation each -------------------------------------------------

INITIATOR_DETECTS: Final = {
    "BadSpkSignature": ("spk_sig", "INVALID_SIGNATURE", "the last bit of Sig(IK_B, Encode(SPK_B))"),
    "BadPqspkSignature": (
        "pqspk_sig",
        "INVALID_SIGNATURE",
        "the last bit of Sig(IK_B, EncodeKEM(PQPK_B))",
    ),
    "LibsignalSpkSignature": (
        "spk_sig",
        "INVALID_SIGNATURE",
        "Sig(IK_B, Encode(SPK_B)) made with libsignal's curve25519_sign (sign bit of A "
        "in bit 7 of byte 63), refused by a strict XEdDSA verifier",
    ),
    "LowOrderSpk": (
        "spk_pub",
        "INVALID_PUBLIC_KEY",
        "SPK_B, replaced by a point of order 8 (the key check precedes the signature check)",
    ),
}
RESPONDER_DETECTS: Final = {
    "LowOrderEphemeral": "INVALID_PUBLIC_KEY",
    "UnknownOpkId": "UNKNOWN_PREKEY",
    "ReusedOpk": "UNKNOWN_PREKEY",
    "TruncatedKemCiphertext": "MALFORMED_MESSAGE",
    "TamperedKemCiphertext": "AUTH_FAILED",
    "IdentityKeyMismatch": "UNTRUSTED_IDENTITY",
    "TorsionTwinEphemeral": "INVALID_PUBLIC_KEY",
}
# Negatives added after schema v1, in groups of their own after the first groups so
# that every earlier tcId (and so every earlier key and message) stays as it was.
LATER_INITIATOR_DETECTS: Final = {
    "UnsupportedBundleVersion": (
        "encoded",
        "UNSUPPORTED_VERSION",
        "the bundle's version 1 (byte 1, a fixint) written as 2",
    ),
    "NonCanonicalBundle": (
        "encoded",
        "MALFORMED_MESSAGE",
        "the bundle's version 1 written as uint8 cc 01 instead of the fixint 01",
    ),
    "BadEncodeKemType": (
        "encoded",
        "INVALID_PUBLIC_KEY",
        "the EncodeKEM type byte of PQPK_B (0b) replaced by ff, a type no KEM has",
    ),
    "MissingKemPart": (
        "encoded",
        "MALFORMED_MESSAGE",
        "the KEM part [IdKEM, EncodeKEM(PQPK_B), Sig] replaced by nil: a PQXDH bundle "
        "without a KEM prekey does not fit the profile",
    ),
    "InvalidKemPrekey": (
        "encoded",
        "INVALID_PUBLIC_KEY",
        "the first two bytes of PQPK_B replaced by ff ff: its first coefficient 0xfff is not "
        "below q, so the FIPS 203 §7.2 modulus check fails (checked before the signature)",
    ),
}
LATER_RESPONDER_DETECTS: Final = {
    "UnknownSpkId": "UNKNOWN_PREKEY",
    "UnknownKemPrekeyId": "UNKNOWN_PREKEY",
    "UnsupportedInitialDataVersion": "UNSUPPORTED_VERSION",
    "ReusedOneTimeKemPrekey": "UNKNOWN_PREKEY",
}
# Negatives of the signal-v4 file only (handshake_v4.py): what libsignal v4 refuses.
V4_INITIATOR_DETECTS: Final = {
    "MlKem1024KemPrekey": (
        "encoded",
        "INVALID_PUBLIC_KEY",
        "the EncodeKEM type byte of PQPK_B, 08 (Kyber1024), replaced by 0a (ML-KEM-1024): the "
        'same 1568 key bytes under a key type libsignal 0.103.0 refuses ("bad KEM key type")',
    ),
}
V4_RESPONDER_DETECTS: Final = {
    "X3dhInitialMessage": "MALFORMED_MESSAGE",
    "NonCanonicalEphemeral": "INVALID_PUBLIC_KEY",
}
_INITIATOR: Final = {**INITIATOR_DETECTS, **LATER_INITIATOR_DETECTS, **V4_INITIATOR_DETECTS}
_RESPONDER: Final = {**RESPONDER_DETECTS, **LATER_RESPONDER_DETECTS, **V4_RESPONDER_DETECTS}
# A replay of the accepted message: it fails because the first delivery consumed a prekey.
_REPLAYS: Final = ("ReusedOpk", "ReusedOneTimeKemPrekey")


def _mutate_bundle(name: str, bundle: Mapping[str, Any], libsignal_sig: bytes) -> dict[str, Any]:
    """The one changed bundle field of an initiator-detected negative."""
    field, _, description = _INITIATOR[name]
    if field == "encoded":
        operation = _encoded_bundle_change(name, bundle)
        return {"field": "bundle.encoded", "op": "replace", **operation, "description": description}
    if name == "LowOrderSpk":
        value = LOW_ORDER_POINT
    elif name == "LibsignalSpkSignature":
        value = libsignal_sig
    else:
        value = flip_last_bit(from_hex(bundle[field]))
        description = f"flipped: {description}"
    return {
        "field": f"bundle.{field}",
        "op": "replace",
        "value": value.hex(),
        "description": description,
    }


def _encoded_bundle_change(name: str, bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The replaced range of ``bundle.encoded`` (spec/x3dh.md §3.2: a msgpack array)."""
    encoded = from_hex(bundle["encoded"])
    if name == "UnsupportedBundleVersion":
        return {"offset": 1, "length": 1, "value": "02"}
    if name == "NonCanonicalBundle":
        return {"offset": 1, "length": 1, "value": "cc01"}
    type_byte = encoded.index(from_hex(bundle["pqspk_pub"])) - 1
    if name == "BadEncodeKemType":
        return {"offset": type_byte, "length": 1, "value": "ff"}
    if name == "InvalidKemPrekey":
        return {"offset": type_byte + 1, "length": 2, "value": "ffff"}
    if name == "MlKem1024KemPrekey":
        return {"offset": type_byte, "length": 1, "value": f"{KEM_TYPE['ML-KEM-1024']:02x}"}
    kem_part = pack(
        [
            bundle["pqspk_id"],
            encoded[type_byte : type_byte + 1] + from_hex(bundle["pqspk_pub"]),
            from_hex(bundle["pqspk_sig"]),
        ]
    )
    if not encoded.endswith(kem_part):
        raise VectorMismatch("the KEM part is not the bundle's last item")
    return {"offset": len(encoded) - len(kem_part), "length": len(kem_part), "value": "c0"}


def _message_mutation(name: str, message: InitialData, other_identity: bytes) -> dict[str, Any]:
    """The one change of a responder-detected negative to a field of the initial message."""
    last = len(message.kem_ciphertext or b"") - 1
    kem_part = pack([message.kem_prekey_id, message.kem_ciphertext])  # the encoding's last item
    changes: dict[str, tuple[str, dict[str, Any], str]] = {
        "LowOrderEphemeral": (
            "ephemeral_key",
            {"op": "replace", "value": LOW_ORDER_POINT.hex()},
            "EK_A (raw u, 32 bytes), replaced by a point of order 8",
        ),
        "TorsionTwinEphemeral": (
            "ephemeral_key",
            {"op": "replace", "value": _order_two_twin(message.ephemeral_key).hex()},
            "EK_A (raw u), replaced by its torsion twin 1/u mod p (EK_A plus the point of order 2)",
        ),
        "UnknownSpkId": (
            "signed_prekey_id",
            {"op": "add", "addend": 1},
            "an SPK id the responder never had",
        ),
        "UnknownKemPrekeyId": (
            "kem_prekey_id",
            {"op": "add", "addend": 1},
            "a KEM prekey id the responder never had",
        ),
        "UnsupportedInitialDataVersion": (
            "",
            {"op": "replace", "offset": 1, "length": 1, "value": "02"},
            "the initial data's version 1 (byte 1, a fixint) written as 2",
        ),
        "UnknownOpkId": (
            "one_time_prekey_id",
            {"op": "add", "addend": UNKNOWN_OPK_ID - OPK_ID},
            "an OPK id the responder never had",
        ),
        "TruncatedKemCiphertext": (
            "kem_ciphertext",
            {"op": "truncate", "length": last},
            "CT without its last byte",
        ),
        "TamperedKemCiphertext": (
            "kem_ciphertext",
            {"op": "xor", "offset": last, "mask": "01"},
            "CT with the low bit of its last byte flipped",
        ),
        "X3dhInitialMessage": (
            "",
            {
                "op": "replace",
                "offset": len(message.to_bytes()) - len(kem_part),
                "length": len(kem_part),
                "value": "c0",
            },
            "the KEM part [IdKEM, CT] (the encoding's last item) replaced by nil: an X3DH "
            'initial message, which libsignal v4 refuses ("X3DH no longer supported")',
        ),
        "NonCanonicalEphemeral": (
            "ephemeral_key",
            {"op": "xor", "offset": X25519_LEN - 1, "mask": "80"},
            "EK_A (raw u) with bit 255 set: X25519 ignores that bit (RFC 7748 §5), so the DH "
            "outputs are unchanged; libsignal's is_canonical refuses it",
        ),
        "IdentityKeyMismatch": (
            "identity_key",
            {"op": "replace", "value": other_identity.hex()},
            "IK_A (raw u, 32 bytes), replaced by another valid key while the responder "
            "expects the real IK_A",
        ),
    }
    field, operation, description = changes[name]
    name = f"initial_message.{field}" if field else "initial_message"
    return {"field": name, **operation, "description": description}


def _order_two_twin(u: bytes) -> bytes:
    """u(P + (0, 0)) = 1/u: a twin giving the same X25519 outputs (spec/x3dh.md §5.3)."""
    return pow(int.from_bytes(u, "little"), -1, P25519).to_bytes(X25519_LEN, "little")


def apply_message_mutation(message: InitialData, mutation: Mapping[str, Any]) -> bytes:
    """The initial-message bytes with the one field ``mutation`` names changed.

    A key field holds the raw 32-byte u (the encoding holds Encode(u) = 0x05 ‖ u);
    the mutated key is spliced into the encoding, because InitialData refuses
    to hold an invalid key. Other fields go through the encoder.
    """
    if mutation["field"] == "initial_message":  # the encoding itself
        return mutate(message.to_bytes(), mutation)
    field = str(mutation["field"]).removeprefix("initial_message.")
    if field not in _MESSAGE_FIELDS:
        raise VectorMismatch(f"unknown mutation field {mutation['field']!r}")
    value = getattr(message, field)
    changed: dict[str, Any] = {}
    if isinstance(value, int):
        changed[field] = mutate_int(value, mutation)
    elif not isinstance(value, bytes):
        raise VectorMismatch(f"the initial message has no {field}")
    elif field in ("identity_key", "ephemeral_key"):
        return message.to_bytes().replace(value, mutate(value, mutation))
    else:
        changed[field] = mutate(value, mutation)
    return dataclasses.replace(message, **changed).to_bytes()


_MESSAGE_FIELDS: Final = (
    "identity_key",
    "ephemeral_key",
    "signed_prekey_id",
    "one_time_prekey_id",
    "kem_prekey_id",
    "kem_ciphertext",
)


# --- Generation ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    comment: str
    shape: Shape
    negative: str | None = None
    replayed: bool = False  # a valid test whose initial message is delivered twice


def first_cases(profile: Profile) -> list[Case]:
    kem = profile.kem is not None
    if kem:
        positives = [
            Case("OPK and a one-time KEM prekey", Shape(True, True, kem_last_resort=False)),
            Case("OPK and the last-resort KEM prekey", Shape(True, True)),
            Case("no OPK, the last-resort KEM prekey", Shape(False, True)),
        ]
    else:
        positives = [Case("with OPK", Shape(True, False)), Case("without OPK", Shape(False, False))]
    full = Shape(True, kem, kem_last_resort=False)
    names = [*INITIATOR_DETECTS, *RESPONDER_DETECTS]
    if not kem:
        names = [n for n in names if "Kem" not in n and "Pqspk" not in n]
    if profile.agreement.xeddsa_accept_libsignal_sign_bit:
        libsignal = dataclasses.replace(full, libsignal_signature=True)
        positives.append(Case("SPK signed by libsignal's curve25519_sign", libsignal))
        names.remove("LibsignalSpkSignature")
    return positives + [Case(f"negative: {name}", full, name) for name in names]


def later_cases(profile: Profile) -> list[Case]:
    """The cases added after schema v1, one group per profile after the first groups."""
    kem = profile.kem is not None
    full = Shape(True, kem, kem_last_resort=False)
    names = ["UnsupportedBundleVersion", "NonCanonicalBundle"]
    names += ["UnknownSpkId", "UnsupportedInitialDataVersion"]
    if kem:
        names += ["BadEncodeKemType", "MissingKemPart", "UnknownKemPrekeyId"]
    cases = [Case(f"negative: {name}", full, name) for name in names]
    if kem:  # a last-resort KEM prekey serves again; a one-time one does not
        cases += [
            Case(
                "no OPK, the last-resort KEM prekey: the initial message delivered twice is "
                "accepted twice by the handshake (a session refuses it as a duplicate)",
                Shape(False, True),
                replayed=True,
            ),
            Case(
                "negative: ReusedOneTimeKemPrekey",
                Shape(False, True, kem_last_resort=False),
                "ReusedOneTimeKemPrekey",
            ),
            Case("negative: InvalidKemPrekey", full, "InvalidKemPrekey"),
        ]
    return cases


def _events(case: Case, original: bytes, mutated: bytes | None) -> list[dict[str, str]]:
    ok = {"initial_message": original.hex(), "result": "ok"}
    if case.replayed:
        return [ok, ok]
    if case.negative is None or case.negative in _INITIATOR or mutated is None:
        return [ok]
    failed = {"initial_message": mutated.hex(), "result": _RESPONDER[case.negative]}
    return [ok, failed] if case.negative in _REPLAYS else [failed, ok]


def generate_test(
    family: str, profile: Profile, case: Case, tc_id: int, encapsulator: kem_pins.Encapsulator
) -> dict[str, Any]:
    drbg = _test_drbg(family, tc_id, profile, case)
    responder_rng, initiator_rng = RecordingRandom(drbg), RecordingRandom(drbg)
    keys = ResponderKeys.generate(profile, case.shape, responder_rng)
    initiator = IdentityKeyPair.generate(initiator_rng)
    bundle = keys.bundle()
    encaps = None if keys.pqpk is None else encapsulator(f"{family}#{tc_id}", keys.pqpk)
    result = initiate(profile, initiator, bundle, initiator_rng, kem_encapsulation=encaps)
    ek = initiator_rng.draws[-1][1]
    inter = result.intermediates
    dh = [*inter.dh, None][:4]
    test: dict[str, Any] = {
        "tcId": tc_id,
        "comment": case.comment,
        "flags": [case.negative or _positive_flag(case)],
        "result": "valid" if case.negative is None else "invalid",
        "inputs": _inputs(keys, initiator, ek),
        "entropy": {
            "responder": entropy_list(responder_rng.draws),
            "initiator": entropy_list(initiator_rng.draws),
        },
        "bundle": _bundle_json(bundle),
        "intermediate": {
            **{f"dh{i + 1}": None if v is None else v.hex() for i, v in enumerate(dh)},
            "kem_ct": None if inter.kem_ciphertext is None else inter.kem_ciphertext.hex(),
            "kem_ss": None if inter.kem_shared_secret is None else inter.kem_shared_secret.hex(),
            "km": inter.ikm.hex(),
            "hkdf_salt": HKDF_SALT.hex(),
        },
        "outputs": {
            "sk": result.sk.hex(),
            "ad": result.ad.hex(),
            "initial_message": result.message.to_bytes().hex(),
            "check_ciphertext": check_ciphertext(result.sk, result.ad).hex(),
        },
    }
    libsignal_sig = _libsignal_signature(profile, case, ScriptedRandom(responder_rng.draws))
    _add_negative(test, case, result.message, drbg.draw("mutation_identity_key", 32), libsignal_sig)
    return test


def _libsignal_signature(profile: Profile, case: Case, rng: Random) -> bytes:
    shape = dataclasses.replace(case.shape, libsignal_signature=True)
    return ResponderKeys.generate(profile, shape, rng).spk.signature


def _test_drbg(family: str, tc_id: int, profile: Profile, case: Case) -> DrbgRandom:
    """The DRBG of one test: seeded by ``tcId``, or for a libsignal-signature test by the
    first of ``tcId``, ``tcId.1``, ... whose identity key has Edwards sign bit 1. With
    sign bit 0, libsignal's signature would also be a valid XEdDSA signature."""
    needs_sign_bit = case.shape.libsignal_signature or case.negative == "LibsignalSpkSignature"
    for attempt in itertools.count():
        seed = str(tc_id) if attempt == 0 else f"{tc_id}.{attempt}"
        if not needs_sign_bit:
            break
        if _libsignal_signature(profile, case, drbg_for(family, seed))[63] & 0x80:
            break
    return drbg_for(family, seed)


def _positive_flag(case: Case) -> str:
    shape = case.shape
    if case.replayed:
        return "LastResortKemPrekeyReplayed"
    if shape.libsignal_signature:
        return "LibsignalSpk"
    if shape.kem and not shape.kem_last_resort:
        return "OneTimeKemPrekey"
    if shape.kem:
        return "LastResortKemPrekey" if shape.one_time else "LastResortKemPrekeyNoOpk"
    return "WithOpk" if shape.one_time else "WithoutOpk"


def _add_negative(
    test: dict[str, Any], case: Case, message: InitialData, seed: bytes, libsignal_sig: bytes
) -> None:
    original = message.to_bytes()
    test["inputs"]["responder"]["expected_initiator_ik"] = None
    if case.negative is None:
        test["events"] = _events(case, original, None)
        return
    if case.negative in _INITIATOR:
        test["mutation"] = _mutate_bundle(case.negative, test["bundle"], libsignal_sig)
        test["events"] = _events(case, original, None)
        test["error"] = _INITIATOR[case.negative][1]
        test["detected_by"] = "initiator"
        return
    other = IdentityKeyPair.from_private(seed).public
    if case.negative in _REPLAYS:  # a replay: no mutation, the same bytes again
        mutated = original
    else:
        test["mutation"] = _message_mutation(case.negative, message, other)
        mutated = apply_message_mutation(message, test["mutation"])
    if case.negative == "IdentityKeyMismatch":
        test["inputs"]["responder"]["expected_initiator_ik"] = message.identity_key.hex()
    test["events"] = _events(case, original, mutated)
    test["error"] = _RESPONDER[case.negative]
    test["detected_by"] = "responder"


def _group(
    family: str,
    profile: Profile,
    cases: list[Case],
    ids: Iterator[int],
    encapsulator: kem_pins.Encapsulator,
) -> dict[str, Any]:
    tests = [generate_test(family, profile, case, next(ids), encapsulator) for case in cases]
    for test in tests:
        verify_test(SCHEMA, group_fields(profile), test)  # the generator checks its own output
    return {**group_fields(profile), "tests": tests}


def group_fields(profile: Profile) -> dict[str, Any]:
    kem = profile.kem
    return {
        "type": "X3dhHandshake" if kem is None else "PqxdhHandshake",
        "profile": profile.name,
        "curve": "X25519",
        "hash": "SHA-256",
        "kem": kem,
        "signature": "XEdDSA",
        "info": profile.agreement.kdf_info.hex(),
        "info_text": profile.agreement.kdf_info.decode("ascii"),
        "sk_len": profile.agreement.sk_len,
        "pubkey_encoding": "EncodeEC = 0x05 ‖ u"
        + ("" if kem is None else f"; EncodeKEM = 0x{KEM_TYPE[kem]:02x} ‖ ek"),
        "signature_acceptance": _ACCEPTANCE[profile.agreement.xeddsa_accept_libsignal_sign_bit],
    }


_ACCEPTANCE: Final = {
    False: "strict XEdDSA (spec/xeddsa.md): bit 7 of signature byte 63 must be 0",
    True: "XEdDSA, or libsignal's variant with the sign bit of A in bit 7 of signature byte 63 "
    "(spec/xeddsa.md §5)",
}


FILES: Final = (
    ("x3dh", "x3dh_x25519_sha256_test.json", "X3DH", (CLASSIC, SIGNAL_V3)),
    ("pqxdh", "pqxdh_x25519_mlkem768_sha256_test.json", "PQXDH", (PQ_DEFAULT,)),
)


def _generate(encapsulator: kem_pins.Encapsulator) -> list[VectorFile]:
    files = []
    for family, name, algorithm, profiles in FILES:
        ids = test_ids()
        groups = [
            _group(family, profile, cases(profile), ids, encapsulator)
            for cases in (first_cases, later_cases)
            for profile in profiles
        ]
        document = envelope(
            algorithm=algorithm, schema=SCHEMA, header=HEADER, notes=NOTES, groups=groups
        )
        files.append(VectorFile(name, SCHEMA, document))
    return files


def generate() -> list[VectorFile]:
    """Both handshake files, byte-identical on every run (spec/pqxdh.md §7)."""
    return _generate(kem_pins.pinned(PINS_FILE))


# --- Verification --------------------------------------------------------------------


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one handshake test: keys, bundle, initiator, then the responder's events."""
    expect_equal("schema", schema_name, SCHEMA)
    replay_test(group, test)


def replay_test(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """The replay of ``verify_test``, for a group and test in the fields of schema v2."""
    profile = get_profile(str(group["profile"]))
    fields = {key: value for key, value in group.items() if key != "tests"}
    expect_equal("group parameters", fields, group_fields(profile))
    responder = test["inputs"]["responder"]
    shape = Shape(
        one_time=responder["opk_id"] is not None,
        kem=responder["pqspk_id"] is not None,
        kem_last_resort=responder["pqspk_last_resort"] is not False,
        libsignal_signature=responder["spk_sig_convention"] == "libsignal",
    )
    responder_rng = ScriptedRandom(entropy_entries(test["entropy"]["responder"]))
    keys = ResponderKeys.generate(profile, shape, responder_rng)
    responder_rng.assert_exhausted()
    initiator_draws = entropy_entries(test["entropy"]["initiator"])
    initiator_rng = ScriptedRandom(initiator_draws)
    initiator = IdentityKeyPair.generate(initiator_rng)
    inputs = _inputs(keys, initiator, initiator_draws[-1][1])
    inputs["responder"]["expected_initiator_ik"] = responder["expected_initiator_ik"]
    expect_equal("inputs", inputs, test["inputs"])
    bundle = _verify_bundle_fields(profile, keys, test["bundle"])
    if test.get("detected_by") == "initiator":
        _expect_initiator_refuses(profile, initiator, test, initiator_rng)
    _verify_initiator(profile, initiator, bundle, test, initiator_rng)
    _replay_responder(profile, keys, test)


def _verify_bundle_fields(
    profile: Profile, keys: ResponderKeys, fields: Mapping[str, Any]
) -> PrekeyBundle:
    bundle = bundle_from_json(fields, profile)
    expect_equal("bundle", bundle, keys.bundle())
    expect_equal("bundle.encoded", from_hex(fields["encoded"]), bundle.to_bytes())
    expect_equal("decoded bundle", PrekeyBundle.from_bytes(bundle.to_bytes()), bundle)
    return bundle


def _recorded_encapsulation(test: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
    inter = test["intermediate"]
    if inter["kem_ct"] is None:
        return None
    return from_hex(inter["kem_ct"]), from_hex(inter["kem_ss"])


def _expect_initiator_refuses(
    profile: Profile, initiator: IdentityKeyPair, test: Mapping[str, Any], rng: ScriptedRandom
) -> None:
    """The mutated bundle fails with the test's error and draws nothing."""
    mutation = test["mutation"]
    field = str(mutation["field"]).removeprefix("bundle.")
    fields = {**test["bundle"], field: mutate(from_hex(test["bundle"][field]), mutation).hex()}

    def mutated_bundle() -> PrekeyBundle:
        if field == "encoded":  # what an initiator decodes from the server
            return PrekeyBundle.from_bytes(from_hex(fields["encoded"]))
        return bundle_from_json(fields, profile)

    before = rng.remaining
    _, code = outcome(lambda: initiate(profile, initiator, mutated_bundle(), rng))
    if code != test["error"] or rng.remaining != before:
        raise VectorMismatch(f"mutated bundle gave {code}, expected {test['error']}")


def _verify_initiator(
    profile: Profile,
    initiator: IdentityKeyPair,
    bundle: PrekeyBundle,
    test: Mapping[str, Any],
    rng: ScriptedRandom,
) -> None:
    encaps = _recorded_encapsulation(test)
    result = initiate(profile, initiator, bundle, rng, kem_encapsulation=encaps)
    rng.assert_exhausted()
    inter, outputs = result.intermediates, test["outputs"]
    dh = [*inter.dh, None][:4]
    for index, value in enumerate(dh):
        expect_equal(f"dh{index + 1}", value, _hex_or_none(test["intermediate"][f"dh{index + 1}"]))
    expect_equal("km", inter.ikm, from_hex(test["intermediate"]["km"]))
    expect_equal("hkdf_salt", HKDF_SALT, from_hex(test["intermediate"]["hkdf_salt"]))
    expect_equal("sk", result.sk, from_hex(outputs["sk"]))
    expect_equal("ad", result.ad, from_hex(outputs["ad"]))
    expect_equal("initial_message", result.message.to_bytes(), from_hex(outputs["initial_message"]))
    check = check_ciphertext(result.sk, result.ad)
    expect_equal("check_ciphertext", check, from_hex(outputs["check_ciphertext"]))


def _replay_responder(profile: Profile, keys: ResponderKeys, test: Mapping[str, Any]) -> None:
    """Each event in order on one store; a store changes only after an event succeeds."""
    expected = _hex_or_none(test["inputs"]["responder"]["expected_initiator_ik"])
    store = [keys.store()]

    def receive(encoded: bytes) -> None:
        message = InitialData.from_bytes(encoded)
        result = respond(profile, keys.identity, store[0], message, expected_initiator=expected)
        open_check(result.sk, result.ad, from_hex(test["outputs"]["check_ciphertext"]))
        expect_equal("responder sk", result.sk, from_hex(test["outputs"]["sk"]))
        expect_equal("responder ad", result.ad, from_hex(test["outputs"]["ad"]))
        kem_ss = _hex_or_none(test["intermediate"]["kem_ss"])
        expect_equal("decapsulated kem_ss", result.intermediates.kem_shared_secret, kem_ss)
        store[0] = store[0].consume(result.consumed)

    for index, event in enumerate(test["events"]):
        encoded = from_hex(event["initial_message"])
        _, code = outcome(lambda: receive(encoded))  # noqa: B023 (called at once)
        if code != event["result"]:
            raise VectorMismatch(f"event {index} gave {code}, expected {event['result']}")
    failing = [event for event in test["events"] if event["result"] != "ok"]
    if test.get("detected_by") != "responder":
        return
    if [event["result"] for event in failing] != [test["error"]]:
        raise VectorMismatch("the failing event does not carry the test's error")
    expect_equal("mutated initial_message", from_hex(failing[0]["initial_message"]), _mutated(test))


def _mutated(test: Mapping[str, Any]) -> bytes:
    """The mutation applied to the valid initial message (a replay has none)."""
    original = from_hex(test["outputs"]["initial_message"])
    if "mutation" not in test:
        return original
    return apply_message_mutation(InitialData.from_bytes(original), test["mutation"])


if __name__ == "__main__":
    fresh = kem_pins.record(PINS_FILE, _generate)
    print(f"recorded {fresh} new ML-KEM encapsulations in {PINS_FILE.name}")
