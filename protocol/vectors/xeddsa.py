"""The ``xeddsa`` vector family: XEdDSA signing and verification (spec/xeddsa.md §7).

One file, ``xeddsa_test.json`` (schema ``xeddsa_schema_v1.json``), in three
groups: spec signing with every intermediate; spec verification, valid and
invalid; and libsignal's sign-bit convention (spec/xeddsa.md §5), whose tests
say whether the verifier accepts it (``accept_libsignal_sign_bit``).

A negative test is either one documented ``mutation`` of the valid test named
by ``mutation_of`` (the verifier checks that the mutation turns that test's
inputs into this test's, so there is exactly one change) or, where no single
change of a valid signature can show the property, a signature built for the
purpose and described in ``construction``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from protocol.errors import InvalidSignature, ProtocolError
from protocol.primitives import P25519, clamp_scalar, sha512, x25519_public_key
from protocol.randomness import Random, RecordingRandom, ScriptedRandom
from protocol.vectors.common import (
    ENTROPY_LIST,
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorFile,
    VectorMismatch,
    drbg_for,
    entropy_entries,
    entropy_list,
    envelope,
    expect_equal,
    file_schema,
    from_hex,
    mutate,
    mutate_flag,
    obj,
    test_ids,
)
from protocol.xeddsa import (
    Q,
    calculate_key_pair,
    hash_i,
    reduce_q,
    scalar_mult_base,
    sign,
    u_to_y,
    xeddsa_sign,
    xeddsa_sign_trace,
    xeddsa_verify,
)

FAMILY: Final = "xeddsa"
FILE: Final = "xeddsa_test.json"
SCHEMA: Final = "xeddsa_schema_v1.json"

SPEC_CONVENTION: Final = "XEdDSA rev 1: A has sign bit 0, s < 2^253"
LIBSIGNAL_CONVENTION: Final = "libsignal curve25519_sign: sign bit of A in bit 7 of byte 63"

# --- Schema ---------------------------------------------------------------------------

_GROUP_COMMON: Final = {"curve": {"const": "curve25519"}, "hash": {"const": "SHA-512"}}
_INTERMEDIATE: Final = obj(
    {
        "k": HEX_BYTES,
        "E_s": {"enum": [0, 1]},
        "a": HEX_BYTES,
        "A": HEX_BYTES,
        "r": HEX_BYTES,
        "R": HEX_BYTES,
        "h": HEX_BYTES,
    }
)
_SIGN_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "private_key": HEX_BYTES,
        "public_key": HEX_BYTES,
        "message": HEX_BYTES,
        "entropy": ENTROPY_LIST,
        "intermediate": _INTERMEDIATE,
        "signature": HEX_BYTES,
    }
)
_MUTATION: Final = obj(
    {
        "field": {
            "enum": ["public_key", "message", "signature", "R", "s", "accept_libsignal_sign_bit"]
        },
        "op": {"enum": ["xor", "add", "truncate", "replace", "toggle"]},
        "description": {"type": "string"},
    },
    {
        "offset": {"type": "integer", "minimum": 0},
        "mask": HEX_BYTES,
        "addend": HEX_BYTES,
        "length": {"type": "integer", "minimum": 0},
        "value": HEX_BYTES,
    },
)
_VERIFY_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "public_key": HEX_BYTES,
        "message": HEX_BYTES,
        "signature": HEX_BYTES,
        "accept_libsignal_sign_bit": {"type": "boolean"},
    },
    {
        "error": ERROR_CODE,
        "mutation_of": {"type": "integer", "minimum": 1},
        "mutation": _MUTATION,
        "construction": {"type": "string"},
    },
)


def _schema() -> dict[str, Any]:
    sign_group = {"type": {"const": "XEdDSASign"}, **_GROUP_COMMON}
    schema = file_schema("XEdDSA sign and verify vectors", sign_group, _SIGN_TEST)
    verify_group = obj(
        {
            "type": {"const": "XEdDSAVerify"},
            **_GROUP_COMMON,
            "signature_convention": {"enum": [SPEC_CONVENTION, LIBSIGNAL_CONVENTION]},
            "tests": {"type": "array", "items": _VERIFY_TEST},
        }
    )
    groups = schema["properties"]["testGroups"]
    groups["items"] = {"oneOf": [groups["items"], verify_group]}
    return schema


SCHEMAS: Final[dict[str, dict[str, Any]]] = {SCHEMA: _schema()}

# --- Mutations (shared by the generator and the verifier) ---------------------------------


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What a verification test feeds to xeddsa_verify."""

    public_key: bytes
    message: bytes
    signature: bytes
    accept_libsignal_sign_bit: bool


def _inputs(test: Mapping[str, Any]) -> _Inputs:
    return _Inputs(
        from_hex(test["public_key"]),
        from_hex(test["message"]),
        from_hex(test["signature"]),
        bool(test["accept_libsignal_sign_bit"]),
    )


def _apply(inputs: _Inputs, mutation: Mapping[str, Any]) -> _Inputs:
    """The inputs after one mutation; ``R`` and ``s`` are the signature's halves."""
    field = mutation["field"]
    if field == "accept_libsignal_sign_bit":
        accept = mutate_flag(inputs.accept_libsignal_sign_bit, mutation)
        return replace(inputs, accept_libsignal_sign_bit=accept)
    r_point, s = inputs.signature[:32], inputs.signature[32:]
    if field == "R":
        return replace(inputs, signature=mutate(r_point, mutation) + s)
    if field == "s":
        return replace(inputs, signature=r_point + mutate(s, mutation))
    if field == "public_key":
        return replace(inputs, public_key=mutate(inputs.public_key, mutation))
    if field == "message":
        return replace(inputs, message=mutate(inputs.message, mutation))
    if field == "signature":
        return replace(inputs, signature=mutate(inputs.signature, mutation))
    raise VectorMismatch(f"unknown mutation field {field!r}")


# --- Verifier -------------------------------------------------------------------------


def _intermediate(private_key: bytes, message: bytes, z: bytes) -> dict[str, Any]:
    """The values spec/xeddsa.md §2-§3 computes, as the vector records them."""
    k = clamp_scalar(private_key)
    trace = xeddsa_sign_trace(private_key, message, z)
    return {
        "k": k.hex(),
        "E_s": scalar_mult_base(int.from_bytes(k, "little"))[31] >> 7,
        "a": trace.a.to_bytes(32, "little").hex(),
        "A": trace.A.hex(),
        "r": trace.r.to_bytes(32, "little").hex(),
        "R": trace.R.hex(),
        "h": trace.h.to_bytes(32, "little").hex(),
    }


def _verify_sign_test(test: Mapping[str, Any]) -> None:
    private_key, message = from_hex(test["private_key"]), from_hex(test["message"])
    entropy = entropy_entries(test["entropy"])
    rng = ScriptedRandom(entropy)
    signature = sign(private_key, message, rng)
    rng.assert_exhausted()
    expect_equal("signature", signature.hex(), test["signature"])
    expect_equal("public_key", x25519_public_key(private_key).hex(), test["public_key"])
    expect_equal(
        "intermediate", _intermediate(private_key, message, entropy[0][1]), test["intermediate"]
    )
    xeddsa_verify(from_hex(test["public_key"]), message, signature)


def _check_derivation(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """A mutated test is its base with exactly the one documented change; the base is valid."""
    if "mutation" not in test:
        if test["result"] == "invalid" and "construction" not in test:
            raise VectorMismatch("an invalid test needs a mutation or a construction")
        return
    bases = [t for t in group["tests"] if t["tcId"] == test.get("mutation_of")]
    if len(bases) != 1 or bases[0]["result"] != "valid" or "mutation" in bases[0]:
        raise VectorMismatch("mutation_of must name one unmutated valid test of the group")
    expect_equal("mutated inputs", _apply(_inputs(bases[0]), test["mutation"]), _inputs(test))


def _run_verify(inputs: _Inputs) -> None:
    xeddsa_verify(
        inputs.public_key,
        inputs.message,
        inputs.signature,
        accept_libsignal_sign_bit=inputs.accept_libsignal_sign_bit,
    )


def _verify_verify_test(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    _check_derivation(group, test)
    if test["result"] == "valid":
        _run_verify(_inputs(test))
        return
    try:
        _run_verify(_inputs(test))
    except ProtocolError as error:
        expect_equal("error code", error.code, test.get("error"))
        return
    raise VectorMismatch("an invalid signature was accepted")


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one test against protocol.xeddsa; raises VectorMismatch on any difference."""
    expect_equal("schema", schema_name, SCHEMA)
    if group["type"] == "XEdDSASign":
        _verify_sign_test(test)
    else:
        _verify_verify_test(group, test)


# --- Generator ------------------------------------------------------------------------

_ERROR: Final = InvalidSignature.code
# Curve25519 u-coordinates below p of order 1, 2, 4 or 8 (spec/xeddsa.md §4).
_SMALL_ORDER_U: Final = (
    ("u = 0, order 2", 0),
    ("u = 1, order 4", 1),
    ("order 8", 0xB8495F16056286FDB1329CEB8D09DA6AC49FF1FAE35616AEB8413B7C7AEBE0),
    ("order 8", 0x57119FD0DD4E22D8868E1C58C45C44045BEF839C55B1D0B1248C50A3BC959C5F),
    ("u = p - 1", P25519 - 1),
)

NOTES: Final = {
    "NegatedScalar": {
        "bugType": "FUNCTIONALITY",
        "description": "E = kB has sign bit 1, so calculate_key_pair signs with a = -k mod q.",
    },
    "EmptyMessage": {"bugType": "EDGE_CASE", "description": "The message is empty."},
    "SignedPrekeyShape": {
        "bugType": "FUNCTIONALITY",
        "description": "A 33-byte message 0x05 || u, what a signed-prekey signature covers.",
    },
    "ModifiedR": {"bugType": "MODIFIED_SIGNATURE", "description": "One bit of R flipped."},
    "ModifiedS": {"bugType": "MODIFIED_SIGNATURE", "description": "One bit of s flipped."},
    "ModifiedMessage": {"bugType": "MODIFIED_SIGNATURE", "description": "The message changed."},
    "ModifiedPublicKey": {"bugType": "MODIFIED_SIGNATURE", "description": "The key changed."},
    "ScalarOutOfRange": {
        "bugType": "SIGNATURE_MALLEABILITY",
        "description": "s >= 2^253 although s = s' mod q for a valid s'; XEdDSA rejects it.",
    },
    "NonReducedS": {
        "bugType": "SIGNATURE_MALLEABILITY",
        "description": "q <= s < 2^253 (s + q for a valid s). XEdDSA accepts it (only s >= "
        "2^253 is rejected); verifiers built on RFC 8032 / libsodium (s < q) reject it.",
    },
    "NonCanonicalPublicKey": {
        "bugType": "INVALID_ENCODING",
        "description": "u >= p (u + p for a valid u). XEdDSA rejects it; libsignal's Rust "
        "verifier reduces u and would accept it.",
    },
    "PublicKeyNotOnCurve": {
        "bugType": "INVALID_ENCODING",
        "description": "u lies on the quadratic twist: no curve point has it.",
    },
    "SmallOrderPublicKey": {
        "bugType": "WEAK_PUBLIC_KEY",
        "description": "A has order 1, 2, 4 or 8 and the signature satisfies R = sB - hA; "
        "only the small-order check rejects it.",
    },
    "NonCanonicalR": {
        "bugType": "INVALID_ENCODING",
        "description": "R encodes sB - hA non-canonically; only the bytewise comparison "
        "rejects it.",
    },
    "WrongLength": {"bugType": "INVALID_ENCODING", "description": "A wrong-length input."},
    "SignBitInS": {
        "bugType": "MODIFIED_SIGNATURE",
        "description": "Bit 7 of byte 63 set: libsignal's sign bit; a spec verifier sees "
        "s >= 2^253.",
    },
    "LibsignalSignBit": {
        "bugType": "FUNCTIONALITY",
        "description": "A libsignal curve25519_sign signature by a key whose E has sign bit 1: "
        "valid only when the verifier accepts libsignal's sign bit.",
    },
    "LibsignalSignZero": {
        "bugType": "FUNCTIONALITY",
        "description": "A libsignal signature by a key whose E has sign bit 0: a spec signature "
        "(with k unreduced in hash_1), valid in both modes.",
    },
    "SpecSignatureInLibsignalMode": {
        "bugType": "FUNCTIONALITY",
        "description": "A spec signature checked by a verifier that accepts libsignal's sign bit.",
    },
    "WrongSignBit": {
        "bugType": "MODIFIED_SIGNATURE",
        "description": "The sign bit in byte 63 does not match the signer's key.",
    },
}

HEADER: Final = [
    "XEdDSA over Curve25519 (XEdDSA and VXEdDSA rev 1, 2016-10-20), spec/xeddsa.md.",
    "Integers (k, a, r, h) are 32 bytes little-endian; A and R are point encodings.",
    "private_key is 32 random bytes, clamped (RFC 7748) before signing; public_key is "
    "its X25519 u-coordinate. entropy holds the 64-byte Z drawn by sign() as 'xeddsa_z'.",
    "Sign tests hash a reduced mod q in hash_1 (the spec); libsignal hashes the unreduced k.",
    "accept_libsignal_sign_bit: false is a strict spec verifier; true also reads bit 7 of "
    "byte 63 as the sign bit of A (spec/xeddsa.md §5).",
    "A negative test is one mutation of the valid test named by mutation_of (its inputs "
    "are that test's with the mutation applied), or a signature built as 'construction' says.",
]


def libsignal_sign(private_key: bytes, message: bytes, z: bytes) -> bytes:
    """libsignal's curve25519_sign (spec/xeddsa.md §5), here only to generate vectors.

    A = kB keeps its sign bit, the scalar is the clamped k (never negated and
    hashed unreduced), and A's sign bit goes into bit 7 of byte 63.
    """
    k = clamp_scalar(private_key)
    k_int = int.from_bytes(k, "little")
    a_point = scalar_mult_base(k_int)
    r = reduce_q(hash_i(1, k + message + z))
    r_point = scalar_mult_base(r)
    h = reduce_q(sha512(r_point + a_point + message))
    signature = bytearray(r_point + ((r + h * k_int) % Q).to_bytes(32, "little"))
    signature[63] |= a_point[31] & 0x80
    return bytes(signature)


def _e_sign(private_key: bytes) -> int:
    return scalar_mult_base(int.from_bytes(clamp_scalar(private_key), "little"))[31] >> 7


def _key_with_e_sign(rng: Random, e_sign: int) -> bytes:
    """The first DRBG private key whose E = kB has the given sign bit."""
    while True:
        private_key = rng.draw("private_key", 32)
        if _e_sign(private_key) == e_sign:
            return private_key


def _sign_test(tc_id: int, message_len: int, comment: str) -> dict[str, Any]:
    drbg = drbg_for(FAMILY, tc_id)
    private_key = drbg.draw("private_key", 32)
    message = drbg.draw("message", message_len) if message_len else b""
    if message_len == 33:
        message = b"\x05" + message[1:]
    rng = RecordingRandom(drbg)
    signature = sign(private_key, message, rng)
    intermediate = _intermediate(private_key, message, rng.draws[0][1])
    flags = ["NegatedScalar"] if intermediate["E_s"] else []
    flags += ["EmptyMessage"] if not message else []
    flags += ["SignedPrekeyShape"] if message_len == 33 else []
    return {
        "tcId": tc_id,
        "comment": comment,
        "flags": flags,
        "private_key": private_key.hex(),
        "public_key": x25519_public_key(private_key).hex(),
        "message": message.hex(),
        "entropy": entropy_list(rng.draws),
        "intermediate": intermediate,
        "signature": signature.hex(),
        "result": "valid",
    }


_SIGN_CASES: Final = (
    (0, "empty message"),
    (1, "one-byte message"),
    (32, "32-byte message"),
    (33, "signed-prekey shaped message 0x05 || u"),
    (64, "64-byte message"),
    (200, "200-byte message"),
    (1000, "1000-byte message"),
    (33, "another signed-prekey shaped message"),
)


def _test(
    tc_id: int, comment: str, flags: list[str], inputs: _Inputs, error: str | None
) -> dict[str, Any]:
    test: dict[str, Any] = {
        "tcId": tc_id,
        "comment": comment,
        "flags": flags,
        "public_key": inputs.public_key.hex(),
        "message": inputs.message.hex(),
        "signature": inputs.signature.hex(),
        "accept_libsignal_sign_bit": inputs.accept_libsignal_sign_bit,
        "result": "invalid" if error else "valid",
    }
    if error:
        test["error"] = error
    return test


def _derived(
    tc_id: int, base: Mapping[str, Any], flag: str, mutation: dict[str, Any], valid: bool = False
) -> dict[str, Any]:
    inputs = _apply(_inputs(base), mutation)
    test = _test(tc_id, mutation["description"], [flag], inputs, None if valid else _ERROR)
    return {**test, "mutation_of": base["tcId"], "mutation": mutation}


def _xor(field: str, offset: int, mask: int, description: str) -> dict[str, Any]:
    return {
        "field": field,
        "op": "xor",
        "offset": offset,
        "mask": f"{mask:02x}",
        "description": description,
    }


def _add(field: str, addend: int, description: str) -> dict[str, Any]:
    return {
        "field": field,
        "op": "add",
        "addend": addend.to_bytes(32, "little").hex(),
        "description": description,
    }


def _on_twist(u: int) -> bool:
    """True if u³ + 486662u² + u is not a square mod p (u is on the quadratic twist)."""
    v2 = (u * u * u + 486662 * u * u + u) % P25519
    return pow(v2, (P25519 - 1) // 2, P25519) == P25519 - 1


def _spec_mutations(base: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every single change of a valid spec signature that must be rejected."""
    inputs = _inputs(base)
    s = int.from_bytes(inputs.signature[32:], "little")
    twist_u = next(u for u in itertools.count(2) if _on_twist(u))
    return [
        ("ModifiedR", _xor("R", 0, 0x01, "bit 0 of R flipped")),
        ("ModifiedR", _xor("R", 31, 0x80, "bit 255 of R (the sign of R.x) flipped")),
        ("ModifiedS", _xor("s", 0, 0x01, "bit 0 of s flipped")),
        ("ModifiedS", _xor("s", 31, 0x10, "bit 252 of s flipped")),
        ("SignBitInS", _xor("s", 31, 0x80, "bit 255 of s set: s >= 2^253")),
        (
            "ScalarOutOfRange",
            _add("s", -(-(2**253 - s) // Q) * Q, "s + c*q, the least c with s >= 2^253"),
        ),
        ("ModifiedMessage", _xor("message", 0, 0x01, "bit 0 of the message flipped")),
        (
            "ModifiedMessage",
            _xor("message", len(inputs.message) - 1, 0x80, "last message bit flipped"),
        ),
        (
            "ModifiedMessage",
            {
                "field": "message",
                "op": "truncate",
                "length": len(inputs.message) - 1,
                "description": "last message byte removed",
            },
        ),
        ("ModifiedPublicKey", _xor("public_key", 0, 0x01, "bit 0 of u flipped")),
        ("ModifiedPublicKey", _xor("public_key", 31, 0x40, "bit 254 of u flipped")),
        (
            "NonCanonicalPublicKey",
            _add("public_key", P25519, "u + p: the same u mod p, not canonical"),
        ),
        (
            "PublicKeyNotOnCurve",
            {
                "field": "public_key",
                "op": "replace",
                "value": twist_u.to_bytes(32, "little").hex(),
                "description": f"u = {twist_u}, the least u >= 2 on the quadratic twist",
            },
        ),
        (
            "WrongLength",
            {
                "field": "signature",
                "op": "truncate",
                "length": 63,
                "description": "signature of 63 bytes",
            },
        ),
        (
            "WrongLength",
            {
                "field": "public_key",
                "op": "truncate",
                "length": 31,
                "description": "public key of 31 bytes",
            },
        ),
    ]


def _spec_signed(tc_id: int, message_len: int, *, below_2_253_minus_q: bool = False) -> _Inputs:
    """A spec signature by a DRBG key; optionally one whose s + q is still below 2^253."""
    drbg = drbg_for(FAMILY, tc_id)
    private_key = drbg.draw("private_key", 32)
    message = b"\x05" + drbg.draw("message", 32) if message_len == 33 else bytes(message_len)
    while True:
        signature = xeddsa_sign(private_key, message, drbg.draw("xeddsa_z", 64))
        s = int.from_bytes(signature[32:], "little")
        if not below_2_253_minus_q or s + Q < 2**253:
            return _Inputs(x25519_public_key(private_key), message, signature, False)


def _constructed(
    tc_id: int, flag: str, public_key: bytes, message: bytes, signature: bytes, construction: str
) -> dict[str, Any]:
    inputs = _Inputs(public_key, message, signature, False)
    return {**_test(tc_id, construction, [flag], inputs, _ERROR), "construction": construction}


def _small_order_forgery(tc_id: int, name: str, u: int) -> dict[str, Any]:
    """R = rB with h = 0 mod 8, so hA is the identity and R = sB - hA holds with s = r."""
    drbg = drbg_for(FAMILY, tc_id)
    message = b"\x05" + drbg.draw("message", 32)
    a_point = u_to_y(u).to_bytes(32, "little")
    while True:
        r = reduce_q(drbg.draw("r", 64))
        r_point = scalar_mult_base(r)
        if reduce_q(sha512(r_point + a_point + message)) % 8 == 0:
            break
    construction = (
        f"public key of small order ({name}); R = rB for an r with h = 0 mod 8, s = r, "
        "so R = sB - hA holds and only the small-order check rejects it"
    )
    signature = r_point + r.to_bytes(32, "little")
    return _constructed(
        tc_id, "SmallOrderPublicKey", u.to_bytes(32, "little"), message, signature, construction
    )


def _non_canonical_r(tc_id: int, r_point: bytes, name: str) -> dict[str, Any]:
    """R a non-canonical encoding of the identity and s = h·a, so sB - hA is the identity."""
    drbg = drbg_for(FAMILY, tc_id)
    private_key = drbg.draw("private_key", 32)
    message = b"\x05" + drbg.draw("message", 32)
    a_point, a = calculate_key_pair(clamp_scalar(private_key))
    s = reduce_q(sha512(r_point + a_point + message)) * a % Q
    construction = (
        f"R is {name}, a non-canonical encoding of the identity, and s = h*a mod q, so "
        "sB - hA is the identity: a verifier that decodes R and compares points accepts it"
    )
    signature = r_point + s.to_bytes(32, "little")
    return _constructed(
        tc_id, "NonCanonicalR", x25519_public_key(private_key), message, signature, construction
    )


def _spec_verify_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    tc_id = next(ids)
    base = _test(
        tc_id, "valid spec signature", ["SignedPrekeyShape"], _spec_signed(tc_id, 33), None
    )
    tc_id = next(ids)
    empty = _test(tc_id, "valid spec signature", ["EmptyMessage"], _spec_signed(tc_id, 0), None)
    tc_id = next(ids)
    inputs = _spec_signed(tc_id, 33, below_2_253_minus_q=True)
    small_s = _test(tc_id, "valid spec signature with s + q < 2^253", [], inputs, None)
    tests = [base, empty, small_s]
    tests += [_derived(next(ids), base, flag, mutation) for flag, mutation in _spec_mutations(base)]
    tests.append(_derived(next(ids), empty, "ModifiedR", _xor("R", 0, 0x01, "bit 0 of R flipped")))
    non_reduced = _add("s", Q, "s + q, below 2^253: the spec accepts it")
    tests.append(_derived(next(ids), small_s, "NonReducedS", non_reduced, valid=True))
    tests += [_small_order_forgery(next(ids), name, u) for name, u in _SMALL_ORDER_U]
    identity_p_plus_1 = (P25519 + 1).to_bytes(32, "little")
    negative_zero = (1 | 1 << 255).to_bytes(32, "little")
    tests.append(_non_canonical_r(next(ids), identity_p_plus_1, "y = p + 1 (y = 1 mod p)"))
    tests.append(_non_canonical_r(next(ids), negative_zero, "y = 1 with the sign bit set"))
    return tests


def _libsignal_signed(tc_id: int, e_sign: int, signer: str) -> _Inputs:
    drbg = drbg_for(FAMILY, tc_id)
    private_key = _key_with_e_sign(drbg, e_sign)
    message = b"\x05" + drbg.draw("message", 32)
    z = drbg.draw("xeddsa_z", 64)
    sign_with = libsignal_sign if signer == "libsignal" else xeddsa_sign
    return _Inputs(
        x25519_public_key(private_key), message, sign_with(private_key, message, z), True
    )


def _libsignal_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    cases = (
        (1, "libsignal", "libsignal signature, E.s = 1: bit 7 of byte 63 set", "LibsignalSignBit"),
        (
            0,
            "libsignal",
            "libsignal signature, E.s = 0: bit 7 of byte 63 clear",
            "LibsignalSignZero",
        ),
        (
            1,
            "spec",
            "spec signature, E.s = 1, accepted in libsignal mode",
            "SpecSignatureInLibsignalMode",
        ),
    )
    sign_one, sign_zero, spec = (
        _test(tc_id, comment, [flag], _libsignal_signed(tc_id, e_sign, signer), None)
        for (e_sign, signer, comment, flag), tc_id in zip(cases, ids, strict=False)
    )
    strict = {"field": "accept_libsignal_sign_bit", "op": "toggle"}
    derivations: list[tuple[Mapping[str, Any], str, dict[str, Any], bool]] = [
        (
            sign_one,
            "SignBitInS",
            {**strict, "description": "checked by a strict spec verifier"},
            False,
        ),
        (
            sign_zero,
            "LibsignalSignZero",
            {**strict, "description": "checked by a strict spec verifier"},
            True,
        ),
        (
            sign_one,
            "WrongSignBit",
            _xor("s", 31, 0x80, "sign bit cleared: A taken with sign 0"),
            False,
        ),
        (spec, "WrongSignBit", _xor("s", 31, 0x80, "sign bit set on a spec signature"), False),
        (
            sign_one,
            "ScalarOutOfRange",
            _xor("s", 31, 0x40, "bit 254 set: s >= 2^253 without the sign bit"),
            False,
        ),
        (sign_one, "ModifiedR", _xor("R", 0, 0x01, "bit 0 of R flipped"), False),
        (
            sign_one,
            "ModifiedMessage",
            _xor("message", 1, 0x01, "bit 8 of the message flipped"),
            False,
        ),
        (
            sign_one,
            "NonCanonicalPublicKey",
            _add("public_key", P25519, "u + p: libsignal's Rust verifier reduces it; we refuse"),
            False,
        ),
    ]
    derived = [
        _derived(next(ids), base, flag, mutation, valid)
        for base, flag, mutation, valid in derivations
    ]
    return [sign_one, sign_zero, spec, *derived]


def generate() -> list[VectorFile]:
    """The xeddsa family's one file, from per-test DRBGs only (identical on every run)."""
    ids = test_ids()
    sign_tests = [_sign_test(next(ids), length, comment) for length, comment in _SIGN_CASES]
    common = {"curve": "curve25519", "hash": "SHA-512"}
    groups = [
        {"type": "XEdDSASign", **common, "tests": sign_tests},
        {
            "type": "XEdDSAVerify",
            **common,
            "signature_convention": SPEC_CONVENTION,
            "tests": _spec_verify_tests(ids),
        },
        {
            "type": "XEdDSAVerify",
            **common,
            "signature_convention": LIBSIGNAL_CONVENTION,
            "tests": _libsignal_tests(ids),
        },
    ]
    document = envelope(
        algorithm="XEdDSA", schema=SCHEMA, header=HEADER, notes=NOTES, groups=groups
    )
    return [VectorFile(FILE, SCHEMA, document)]
