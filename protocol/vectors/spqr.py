"""The ``spqr`` vector family: the building blocks of SPQR and Kyber1024 (spec/spqr.md §12).

One file, ``spqr_test.json`` (schema ``spqr_schema_v1.json``), one group
per layer; each group's tests are described in the module that builds them:

* ``Kyber1024Wrap``, ``IncrementalMlKem768``: ``protocol/vectors/spqr_kem.py``;
* ``SpqrChainKdf``, ``SpqrChainTranscript``, ``SpqrAuthenticator``:
  ``protocol/vectors/spqr_chain.py``;
* ``SpqrErasure``, ``SpqrMessage``: ``protocol/vectors/spqr_codec.py``;
* ``SpqrTranscript``: ``protocol/vectors/spqr_transcript.py``.

Every value comes from a per-group DRBG (``drbg_for("spqr", ...)``), so the
file is identical on every run. Randomness that the library draws through a
``Random`` (the ML-KEM seed and the encapsulation message m) is given as
plain inputs named after their draw labels (``spqr_kem_seed`` → ``seed``,
``spqr_encaps_m`` → ``m``). None of these values is a known answer from
Signal: they pin this implementation, for others to compare against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from protocol.vectors import spqr_chain, spqr_codec, spqr_kem, spqr_transcript
from protocol.vectors.common import (
    VectorFile,
    VectorMismatch,
    envelope,
    file_schema,
    obj,
    test_ids,
)

FILE: Final = "spqr_test.json"
SCHEMA: Final = "spqr_schema_v1.json"

_Verify = Callable[[Mapping[str, Any], Mapping[str, Any]], None]
_GROUPS: Final[dict[str, tuple[dict[str, Any], _Verify]]] = {
    "Kyber1024Wrap": (spqr_kem.KYBER_TEST, spqr_kem.verify_kyber),
    "IncrementalMlKem768": (spqr_kem.INCREMENTAL_TEST, spqr_kem.verify_incremental),
    "SpqrChainKdf": (spqr_chain.KDF_TEST, spqr_chain.verify_kdf),
    "SpqrChainTranscript": (spqr_chain.TRANSCRIPT_TEST, spqr_chain.verify_transcript),
    "SpqrAuthenticator": (spqr_chain.AUTH_TEST, spqr_chain.verify_auth),
    "SpqrErasure": (spqr_codec.ERASURE_TEST, spqr_codec.verify_erasure),
    "SpqrMessage": (spqr_codec.MESSAGE_TEST, spqr_codec.verify_message),
    "SpqrTranscript": (spqr_transcript.TRANSCRIPT_TEST, spqr_transcript.verify_transcript),
}
_LIMITS: Final = {"max_jump": {"type": "integer"}, "max_ooo_keys": {"type": "integer"}}

HEADER: Final = [
    "Building blocks of SPQR (signalapp/SparsePostQuantumRatchet v1.5.3) and libsignal's",
    "Kyber1024 through FIPS 203 ML-KEM-1024: see spec/spqr.md and vectors/README.md.",
]
NOTES: Final = {
    "Mutation": {
        "bugType": "MALFORMED_INPUT",
        "description": "exactly one documented mutation of the valid test named by mutation_of",
    },
    "Transcript": {
        "bugType": "FUNCTIONALITY",
        "description": "events in order; a failing event is followed by a succeeding one",
    },
}


def _schema() -> dict[str, Any]:
    variants = []
    for name, (test_schema, _) in _GROUPS.items():
        limits = _LIMITS if name == "SpqrChainTranscript" else {}
        tests = {"type": "array", "items": test_schema}
        variants.append(obj({"type": {"const": name}, **limits, "tests": tests}))
    schema = file_schema("SPQR building-block vectors", {"type": {"type": "string"}}, {})
    schema["properties"]["testGroups"]["items"] = {"oneOf": variants}
    return schema


SCHEMAS: Final[dict[str, dict[str, Any]]] = {SCHEMA: _schema()}


def generate() -> list[VectorFile]:
    """The spqr family's one file (identical on every run)."""
    ids = test_ids()
    limits = spqr_chain.TRANSCRIPT_PARAMS
    groups: list[dict[str, Any]] = [
        {"type": "Kyber1024Wrap", "tests": spqr_kem.kyber_tests(ids)},
        {"type": "IncrementalMlKem768", "tests": spqr_kem.incremental_tests(ids)},
        {"type": "SpqrChainKdf", "tests": spqr_chain.kdf_tests(ids)},
        {
            "type": "SpqrChainTranscript",
            "max_jump": limits.max_jump,
            "max_ooo_keys": limits.max_ooo_keys,
            "tests": spqr_chain.transcript_tests(ids),
        },
        {"type": "SpqrAuthenticator", "tests": spqr_chain.auth_tests(ids)},
        {"type": "SpqrErasure", "tests": spqr_codec.erasure_tests(ids)},
        {"type": "SpqrMessage", "tests": spqr_codec.message_tests(ids)},
        {"type": "SpqrTranscript", "tests": spqr_transcript.transcript_tests(ids)},
    ]
    document = envelope(
        algorithm="SPQR-V1", schema=SCHEMA, header=HEADER, notes=NOTES, groups=groups
    )
    return [VectorFile(FILE, SCHEMA, document)]


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one spqr test against the library."""
    if schema_name != SCHEMA or group.get("type") not in _GROUPS:
        raise VectorMismatch(f"unknown schema or group {schema_name!r}")
    _GROUPS[group["type"]][1](group, test)


__all__ = ["SCHEMAS", "generate", "verify_test"]
