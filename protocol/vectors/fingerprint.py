"""The ``fingerprint`` vector family: libsignal's safety numbers (spec/session.md §6).

One file, ``fingerprint_test.json`` (schema ``fingerprint_schema_v1.json``):

* ``Fingerprint``: libsignal ``Fingerprint::new`` with 5200 iterations, for
  ``version`` 1 (text identifiers, UTF-8) or 2 (16-byte service ids, bytes):
  from each side's ``*_id`` (hex of the identifier's bytes) and
  ``*_identity_key`` (the raw 32-byte X25519 key, hashed as its 33-byte
  ``Encode()``) the 60-digit ``display`` and the 74-byte ``scannable``
  (``CombinedFingerprints``).
* ``ScannableCompare``: ``ScannableFingerprint::compare`` of our
  ``scannable`` with the ``combined`` bytes the other device shows:
  ``expect`` is ``match``, ``mismatch`` (another identity: the user must be
  warned) or an error code: another version is UNSUPPORTED_VERSION (the user
  is told to update), bytes that are no ``CombinedFingerprints`` are
  MALFORMED_MESSAGE. Each negative is one ``mutation`` of the mirrored
  combined bytes (vectors/README.md §4).

The identifiers and keys are drawn from the family's DRBG; libsignal's own
published values are checked by tests/test_fingerprint.py, and the live tests
compare both forms with libsignal (tests/interop/test_live_groups.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from protocol.fingerprint import ScannableFingerprint, fingerprint
from protocol.primitives import x25519_public_key
from protocol.vectors.common import (
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorFile,
    VectorMismatch,
    drbg_for,
    envelope,
    expect_equal,
    from_hex,
    mutate,
    obj,
    outcome,
    test_ids,
    to_hex,
    typed_groups_schema,
)

FAMILY: Final = "fingerprint"
FILE: Final = "fingerprint_test.json"
SCHEMA: Final = "fingerprint_schema_v1.json"

_MUTATION: Final = obj(
    {"field": {"const": "combined"}, "op": {"type": "string"}},
    {"offset": {"type": "integer"}, "mask": HEX_BYTES, "length": {"type": "integer"}},
)
FINGERPRINT_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "version": {"enum": [1, 2]},
        "local_id": HEX_BYTES,
        "local_identity_key": HEX_BYTES,
        "remote_id": HEX_BYTES,
        "remote_identity_key": HEX_BYTES,
        "display": {"type": "string", "pattern": "^[0-9]{60}$"},
        "scannable": HEX_BYTES,
    }
)
COMPARE_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "scannable": HEX_BYTES,
        "combined": HEX_BYTES,
        "expect": {"oneOf": [{"enum": ["match", "mismatch"]}, ERROR_CODE]},
    },
    {"mutation": _MUTATION},
)
_GROUPS: Final = {"Fingerprint": FINGERPRINT_TEST, "ScannableCompare": COMPARE_TEST}

HEADER: Final = [
    "libsignal fingerprints (safety numbers), displayable and scannable, versions 1 and 2:",
    "see spec/session.md §6 and vectors/README.md. Bytes are lowercase hex.",
]
NOTES: Final = {
    "Valid": {"bugType": "FUNCTIONALITY", "description": "a valid computation"},
    "Mismatch": {
        "bugType": "AUTH_BYPASS",
        "description": "the scanned fingerprint is of other keys: compare is false",
    },
    "VersionMismatch": {
        "bugType": "FUNCTIONALITY",
        "description": "another version: UNSUPPORTED_VERSION, never a plain mismatch",
    },
    "Malformed": {
        "bugType": "MALFORMED",
        "description": "bytes that are no CombinedFingerprints: MALFORMED_MESSAGE",
    },
}


def _identifier(version: int, drbg_id: bytes) -> str | bytes:
    """Version 1 hashes a phone number's text, version 2 a 16-byte service id."""
    if version == 2:
        return drbg_id
    return "+1555" + str(int.from_bytes(drbg_id[:4], "big") % 10**7).zfill(7)


def _id_bytes(identifier: str | bytes) -> bytes:
    return identifier.encode() if isinstance(identifier, str) else identifier


def fingerprint_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    tests = []
    for version in (1, 1, 2, 2):
        tc_id = next(ids)
        drbg = drbg_for(FAMILY, tc_id)
        local_id = _identifier(version, drbg.draw("local_id", 16))
        remote_id = _identifier(version, drbg.draw("remote_id", 16))
        local_key = x25519_public_key(drbg.draw("local_identity_key", 32))
        remote_key = x25519_public_key(drbg.draw("remote_identity_key", 32))
        result = fingerprint(version, local_id, local_key, remote_id, remote_key)
        tests.append(
            {
                "tcId": tc_id,
                "comment": f"version {version}",
                "flags": ["Valid"],
                "result": "valid",
                "version": version,
                "local_id": to_hex(_id_bytes(local_id)),
                "local_identity_key": to_hex(local_key),
                "remote_id": to_hex(_id_bytes(remote_id)),
                "remote_identity_key": to_hex(remote_key),
                "display": result.display,
                "scannable": to_hex(result.scannable.serialize()),
            }
        )
    return tests


def verify_fingerprint(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    version = test["version"]

    def identifier(field: str) -> str | bytes:
        raw = from_hex(test[field])
        return raw.decode() if version == 1 else raw

    result = fingerprint(
        version,
        identifier("local_id"),
        from_hex(test["local_identity_key"]),
        identifier("remote_id"),
        from_hex(test["remote_identity_key"]),
    )
    expect_equal("display", result.display, test["display"])
    expect_equal("scannable", to_hex(result.scannable.serialize()), test["scannable"])


# (comment, flag, mutation of the mirrored combined bytes) for ScannableCompare.
_COMPARE_CASES: Final[tuple[tuple[str, str, dict[str, Any] | None], ...]] = (
    ("the other device's view: its local part is our remote part", "Valid", None),
    (
        "a flipped bit in the other side's content",
        "Mismatch",
        {"field": "combined", "op": "xor", "offset": 73, "mask": "01"},
    ),
    (
        "version 2 against our version 1",
        "VersionMismatch",
        {"field": "combined", "op": "xor", "offset": 1, "mask": "03"},
    ),
    ("truncated by one byte", "Malformed", {"field": "combined", "op": "truncate", "length": 73}),
)


def _compare(scannable: bytes, combined: bytes) -> str:
    matched, code = outcome(lambda: ScannableFingerprint.deserialize(scannable).compare(combined))
    if code != "ok":
        return code
    return "match" if matched else "mismatch"


def compare_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    drbg = drbg_for(FAMILY, "compare")
    ours = fingerprint(
        1,
        "+15550000001",
        x25519_public_key(drbg.draw("local_identity_key", 32)),
        "+15550000002",
        x25519_public_key(drbg.draw("remote_identity_key", 32)),
    ).scannable
    mirrored = ScannableFingerprint(ours.version, ours.remote, ours.local).serialize()
    tests = []
    for comment, flag, mutation in _COMPARE_CASES:
        combined = mirrored if mutation is None else mutate(mirrored, mutation)
        test: dict[str, Any] = {
            "tcId": next(ids),
            "comment": comment,
            "flags": [flag],
            "result": "valid" if flag == "Valid" else "invalid",
            "scannable": to_hex(ours.serialize()),
            "combined": to_hex(combined),
            "expect": _compare(ours.serialize(), combined),
        }
        if mutation is not None:
            test["mutation"] = mutation
        tests.append(test)
    return tests


def verify_compare(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    expect_equal(
        "expect", _compare(from_hex(test["scannable"]), from_hex(test["combined"])), test["expect"]
    )


SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    SCHEMA: typed_groups_schema("libsignal fingerprint vectors", _GROUPS)
}


def generate() -> list[VectorFile]:
    """The fingerprint family's one file (identical on every run)."""
    ids = test_ids()
    groups = [
        {"type": "Fingerprint", "tests": fingerprint_tests(ids)},
        {"type": "ScannableCompare", "tests": compare_tests(ids)},
    ]
    document = envelope(
        algorithm="FINGERPRINT-LIBSIGNAL",
        schema=SCHEMA,
        header=HEADER,
        notes=NOTES,
        groups=groups,
    )
    return [VectorFile(FILE, SCHEMA, document)]


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one fingerprint test against the library."""
    if schema_name != SCHEMA or group.get("type") not in _GROUPS:
        raise VectorMismatch(f"unknown schema or group {schema_name!r}")
    (verify_fingerprint if group["type"] == "Fingerprint" else verify_compare)(group, test)


__all__ = ["SCHEMAS", "generate", "verify_test"]
