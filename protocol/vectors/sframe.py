"""The ``sframe`` vector family (spec/sframe.md §10): frames, RFC 9605 §5.1 ratchets, KIDs.

One file, ``sframe_test.json`` (schema ``sframe_schema_v1.json``):

* ``SFrameFrame`` groups, one per cipher suite: a frame from its inputs
  (``base_key``, ``kid``, ``ctr``, ``metadata``, ``pt``) with every
  intermediate of RFC 9605 §4.4 and the output ``ct``. An invalid test
  carries one documented ``mutation`` of its own frame (or metadata) and two
  ``events``: the mutated frame fails with the expected code, then the
  genuine frame opens, so the failure changed nothing.
* ``SFrameSenderKeyRatchet``: RFC 9605 §5.1 base-key chains with each step's
  KID, key and salt (the RFC publishes no vector for them).
* ``SFrameSenderKeyKid``: KID = (key_generation << R) | (ratchet_step mod 2^R)
  with R = 8 and the header each KID gives, at the generation boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from protocol.errors import ProtocolError
from protocol.media.sframe import (
    MAX_CTR,
    RATCHET_LABEL,
    SECRET_KEY_LABEL,
    SECRET_SALT_LABEL,
    CipherSuite,
    ctr_hmac_subkeys,
    decode_header,
    derive_frame_key,
    encode_header,
    encrypt_frame,
    open_frame,
    ratchet_base_key,
    sender_key_kid,
    sframe_key_label,
    sframe_salt_label,
    sframe_secret,
    suite_params,
)
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
    mutate_int,
    obj,
    test_ids,
)

FAMILY: Final = "sframe"
FILE: Final = "sframe_test.json"
SCHEMA: Final = "sframe_schema_v1.json"
R: Final = 8  # bits of ratchet step in a sender-key KID (spec/sframe.md §9.2)

# --- Schema ----------------------------------------------------------------------------

U64: Final = {"type": "integer", "minimum": 0, "maximum": MAX_CTR}
_SUITE: Final = {"enum": [int(suite) for suite in CipherSuite]}
_FRAME_GROUP: Final = {
    "type": {"const": "SFrameFrame"},
    "cipher_suite": _SUITE,
    "cipher_suite_name": {"type": "string"},
    "source": {"type": "string"},
    "aead": {"enum": ["AES-GCM", "AES-CTR-HMAC"]},
    "hash": {"enum": ["SHA-256", "SHA-512"]},
    **{name: {"type": "integer"} for name in ("Nh", "Nk", "Nn", "Nt")},
    "Nka": {"type": ["integer", "null"]},
    "sframe_key_label_prefix": HEX_BYTES,
    "sframe_key_label_prefix_text": {"type": "string"},
    "sframe_salt_label_prefix": HEX_BYTES,
    "sframe_salt_label_prefix_text": {"type": "string"},
}
_FRAME_INTERMEDIATE: Final = obj(
    {
        name: HEX_BYTES
        for name in (
            "sframe_key_label",
            "sframe_salt_label",
            "sframe_secret",
            "sframe_key",
            "sframe_salt",
            "header",
            "nonce",
            "aad",
        )
    },
    {"enc_key": HEX_BYTES, "auth_key": HEX_BYTES},
)
_MUTATION: Final = obj(
    {
        "field": {"enum": ["ct", "metadata"]},
        "op": {"enum": ["xor", "truncate", "replace"]},
        "description": {"type": "string"},
    },
    {
        "offset": {"type": "integer", "minimum": 0},
        "mask": HEX_BYTES,
        "length": {"type": "integer", "minimum": 0},
        "value": HEX_BYTES,
    },
)
_EVENT: Final = obj(
    {
        "op": {"const": "open"},
        "frame": HEX_BYTES,
        "metadata": HEX_BYTES,
        "expect": {"anyOf": [{"const": "ok"}, ERROR_CODE]},
    },
    {"pt": HEX_BYTES},
)
_FRAME_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "entropy": ENTROPY_LIST,
        "inputs": obj(
            {"base_key": HEX_BYTES, "kid": U64, "ctr": U64, "metadata": HEX_BYTES, "pt": HEX_BYTES}
        ),
        "intermediate": _FRAME_INTERMEDIATE,
        "ct": HEX_BYTES,
    },
    {"mutation": _MUTATION, "events": {"type": "array", "items": _EVENT, "minItems": 2}},
) | {
    # An invalid test has its mutation and events; a valid one has neither.
    "if": {"properties": {"result": {"const": "invalid"}}},
    "then": {"required": ["mutation", "events"]},
    "else": {"not": {"anyOf": [{"required": ["mutation"]}, {"required": ["events"]}]}},
}
_RATCHET_GROUP: Final = obj(
    {
        "type": {"const": "SFrameSenderKeyRatchet"},
        "ratchet_label": HEX_BYTES,
        "ratchet_label_text": {"type": "string"},
        "R": {"const": R},
        "tests": {
            "type": "array",
            "items": obj(
                {
                    **TEST_ENVELOPE,
                    "entropy": ENTROPY_LIST,
                    "inputs": obj(
                        {"cipher_suite": _SUITE, "key_generation": U64, "base_key": HEX_BYTES}
                    ),
                    "steps": {
                        "type": "array",
                        "items": obj(
                            {
                                "ratchet_step": {"type": "integer", "minimum": 0},
                                "base_key": HEX_BYTES,
                                "kid": U64,
                                "sframe_key": HEX_BYTES,
                                "sframe_salt": HEX_BYTES,
                            }
                        ),
                    },
                }
            ),
        },
    }
)
_KID_GROUP: Final = obj(
    {
        "type": {"const": "SFrameSenderKeyKid"},
        "R": {"const": R},
        "tests": {
            "type": "array",
            "items": obj(
                {
                    **TEST_ENVELOPE,
                    "inputs": obj(
                        {
                            "key_generation": {"type": "integer", "minimum": 0},
                            "ratchet_step": {"type": "integer", "minimum": 0},
                            "ctr": U64,
                        }
                    ),
                },
                {
                    "kid": U64,
                    "header": HEX_BYTES,
                    "error": ERROR_CODE,
                    "mutation_of": {"type": "integer", "minimum": 1},
                    "mutation": obj(
                        {
                            "field": {"const": "key_generation"},
                            "op": {"const": "add"},
                            "addend": {"type": "integer"},
                            "description": {"type": "string"},
                        }
                    ),
                },
            )
            | {
                "if": {"properties": {"result": {"const": "invalid"}}},
                "then": {"required": ["error", "mutation_of", "mutation"]},
                "else": {"required": ["kid", "header"]},
            },
        },
    }
)


def _schema() -> dict[str, Any]:
    schema = file_schema(
        "SFrame (RFC 9605) frame, ratchet and KID vectors", _FRAME_GROUP, _FRAME_TEST
    )
    groups = schema["properties"]["testGroups"]
    groups["items"] = {"oneOf": [groups["items"], _RATCHET_GROUP, _KID_GROUP]}
    return schema


SCHEMAS: Final[dict[str, dict[str, Any]]] = {SCHEMA: _schema()}

# --- Shared by the generator and the verifier --------------------------------------------


def _draw(rng: Random, label: str, length: int) -> bytes:
    return rng.draw(label, length) if length else b""


def _replay_entropy(entropy: object, draws: list[tuple[str, bytes]]) -> None:
    """The recorded entropy is exactly the given draws, in order."""
    rng = ScriptedRandom(entropy_entries(entropy))
    for label, value in draws:
        expect_equal(f"entropy {label}", _draw(rng, label, len(value)), value)
    rng.assert_exhausted()


def _group_fields(suite: CipherSuite) -> dict[str, Any]:
    params = suite_params(suite)
    return {
        "type": "SFrameFrame",
        "cipher_suite": int(suite),
        "cipher_suite_name": suite.name,
        "source": "RFC 9605" if suite <= 5 else "draft-barnes-sframe-iana-256",
        "aead": "AES-GCM" if params.nka is None else "AES-CTR-HMAC",
        "hash": params.hash_name,
        "Nh": params.nh,
        "Nka": params.nka,
        "Nk": params.nk,
        "Nn": params.nn,
        "Nt": params.nt,
        "sframe_key_label_prefix": SECRET_KEY_LABEL.hex(),
        "sframe_key_label_prefix_text": SECRET_KEY_LABEL.decode(),
        "sframe_salt_label_prefix": SECRET_SALT_LABEL.hex(),
        "sframe_salt_label_prefix_text": SECRET_SALT_LABEL.decode(),
    }


def _frame_inputs(inputs: Mapping[str, Any]) -> tuple[bytes, int, int, bytes, bytes]:
    return (
        from_hex(inputs["base_key"]),
        int(inputs["kid"]),
        int(inputs["ctr"]),
        from_hex(inputs["metadata"]),
        from_hex(inputs["pt"]),
    )


def _frame_intermediate(
    suite: CipherSuite, base_key: bytes, kid: int, ctr: int, metadata: bytes
) -> dict[str, str]:
    """Every value RFC 9605 §4.4.2-§4.4.3 computes on the way to one frame."""
    key = derive_frame_key(suite, base_key, kid)
    header = encode_header(kid, ctr)
    values = {
        "sframe_key_label": sframe_key_label(suite, kid),
        "sframe_salt_label": sframe_salt_label(suite, kid),
        "sframe_secret": sframe_secret(suite, base_key),
        "sframe_key": key.key,
        "sframe_salt": key.salt,
        "header": header,
        "nonce": key.nonce(ctr),
        "aad": header + metadata,
    }
    if suite_params(suite).nka is not None:
        values["enc_key"], values["auth_key"] = ctr_hmac_subkeys(suite, key.key)
    return {name: value.hex() for name, value in values.items()}


def _events(
    ct: bytes, metadata: bytes, pt: bytes, mutation: Mapping[str, Any], error: str
) -> list[dict[str, str]]:
    """The mutated frame fails with ``error``; the genuine frame then opens."""
    frame, seen = (
        (mutate(ct, mutation), metadata)
        if mutation["field"] == "ct"
        else (ct, mutate(metadata, mutation))
    )
    return [
        {"op": "open", "frame": frame.hex(), "metadata": seen.hex(), "expect": error},
        {
            "op": "open",
            "frame": ct.hex(),
            "metadata": metadata.hex(),
            "expect": "ok",
            "pt": pt.hex(),
        },
    ]


# --- Verifier ---------------------------------------------------------------------------


def _run_event(suite: CipherSuite, base_key: bytes, kid: int, event: Mapping[str, Any]) -> None:
    key = derive_frame_key(suite, base_key, kid)
    frame, metadata = from_hex(event["frame"]), from_hex(event["metadata"])
    try:
        pt = open_frame(key, frame, metadata)
    except ProtocolError as error:
        expect_equal("error code", error.code, event["expect"])
        return
    expect_equal("open result", "ok", event["expect"])
    expect_equal("opened pt", pt.hex(), event.get("pt"))


def _verify_frame(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    suite = CipherSuite(group["cipher_suite"])
    expect_equal("group", {k: v for k, v in group.items() if k != "tests"}, _group_fields(suite))
    base_key, kid, ctr, metadata, pt = _frame_inputs(test["inputs"])
    draws = [("base_key", base_key), ("metadata", metadata), ("pt", pt)]
    _replay_entropy(test["entropy"], draws)
    intermediate = _frame_intermediate(suite, base_key, kid, ctr, metadata)
    expect_equal("intermediate", intermediate, test["intermediate"])
    key = derive_frame_key(suite, base_key, kid)
    ct = encrypt_frame(key, ctr, metadata, pt)
    expect_equal("ct", ct.hex(), test["ct"])
    expect_equal("opened pt", open_frame(key, ct, metadata), pt)
    if test["result"] == "valid":
        return
    mutation = test["mutation"]
    expected = _events(ct, metadata, pt, mutation, test["events"][0]["expect"])
    expect_equal("events are the one mutation, then the genuine frame", test["events"], expected)
    for event in test["events"]:
        _run_event(suite, base_key, kid, event)


# The verifier refuses to ratchet further than the generator ever does.
_MAX_RATCHET_STEP: Final = 1024


def _ratchet_steps(
    suite: CipherSuite, key_generation: int, base_key: bytes, wanted: list[int]
) -> list[dict[str, Any]]:
    """Ratchet from step 0 and report the wanted steps (RFC 9605 §5.1)."""
    if wanted != sorted(set(wanted)) or not wanted or wanted[-1] > _MAX_RATCHET_STEP:
        raise VectorMismatch("ratchet steps must be ascending, distinct and at most 1024")
    steps = []
    for step in range(wanted[-1] + 1):
        if step in wanted:
            kid = sender_key_kid(key_generation, step, R)
            key = derive_frame_key(suite, base_key, kid)
            steps.append(
                {
                    "ratchet_step": step,
                    "base_key": base_key.hex(),
                    "kid": kid,
                    "sframe_key": key.key.hex(),
                    "sframe_salt": key.salt.hex(),
                }
            )
        base_key = ratchet_base_key(suite, base_key)
    return steps


def _verify_ratchet(test: Mapping[str, Any]) -> None:
    inputs = test["inputs"]
    suite, base_key = CipherSuite(inputs["cipher_suite"]), from_hex(inputs["base_key"])
    _replay_entropy(test["entropy"], [("base_key", base_key)])
    wanted = [int(step["ratchet_step"]) for step in test["steps"]]
    steps = _ratchet_steps(suite, int(inputs["key_generation"]), base_key, wanted)
    expect_equal("steps", steps, test["steps"])


def _kid_outputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    kid = sender_key_kid(inputs["key_generation"], inputs["ratchet_step"], R)
    return {"kid": kid, "header": encode_header(kid, inputs["ctr"]).hex()}


def _verify_kid(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    if test["result"] == "valid":
        outputs = _kid_outputs(test["inputs"])
        expect_equal("kid", outputs["kid"], test.get("kid"))
        expect_equal("header", outputs["header"], test.get("header"))
        expect_equal("header decodes", decode_header(from_hex(outputs["header"]))[0], test["kid"])
        return
    bases = [t for t in group["tests"] if t["tcId"] == test.get("mutation_of")]
    if len(bases) != 1 or bases[0]["result"] != "valid":
        raise VectorMismatch("mutation_of must name one valid test of the group")
    mutated = dict(bases[0]["inputs"])
    mutated["key_generation"] = mutate_int(mutated["key_generation"], test["mutation"])
    expect_equal("mutated inputs", mutated, test["inputs"])
    try:
        _kid_outputs(test["inputs"])
    except ProtocolError as error:
        expect_equal("error code", error.code, test.get("error"))
        return
    raise VectorMismatch("an out-of-range key generation was accepted")


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one test against protocol.media.sframe; raises VectorMismatch on any difference."""
    expect_equal("schema", schema_name, SCHEMA)
    verifiers: dict[str, Callable[[], None]] = {
        "SFrameFrame": lambda: _verify_frame(group, test),
        "SFrameSenderKeyRatchet": lambda: _verify_ratchet(test),
        "SFrameSenderKeyKid": lambda: _verify_kid(group, test),
    }
    verifiers[group["type"]]()


# --- Generator --------------------------------------------------------------------------

NOTES: Final = {
    "SmallestHeader": {
        "bugType": "EDGE_CASE",
        "description": "KID 0 and CTR 0: the 1-byte header 00.",
    },
    "EmptyPayload": {
        "bugType": "EDGE_CASE",
        "description": "Empty metadata and payload: ct is header || tag.",
    },
    "InlineMaximum": {
        "bugType": "EDGE_CASE",
        "description": "KID 7 and CTR 7, the largest values that fit in the config byte.",
    },
    "FirstExtended": {
        "bugType": "EDGE_CASE",
        "description": "KID 8 and CTR 8, the smallest values written after the config byte.",
    },
    "SenderKeyKid": {
        "bugType": "FUNCTIONALITY",
        "description": "A sender-key KID (key_generation << 8 | ratchet_step), a 1200-byte packet.",
    },
    "MaximumCounter": {
        "bugType": "EDGE_CASE",
        "description": "KID and CTR 2^64 - 1: the 17-byte header; the last counter is valid.",
    },
    "TamperedHeader": {
        "bugType": "MODIFIED_CIPHERTEXT",
        "description": "One CTR bit of the header flipped: the header is in the AAD and the CTR in "
        "the nonce, so AUTH_FAILED.",
    },
    "TamperedKid": {
        "bugType": "MODIFIED_CIPHERTEXT",
        "description": "One KID bit flipped: the frame names a key the receiver does not hold.",
    },
    "TamperedCiphertext": {
        "bugType": "MODIFIED_CIPHERTEXT",
        "description": "One ciphertext bit flipped.",
    },
    "TamperedTag": {"bugType": "MODIFIED_CIPHERTEXT", "description": "One tag bit flipped."},
    "TruncatedTag": {
        "bugType": "TRUNCATED_MESSAGE",
        "description": "The body after the header is shorter than Nt, so it holds no tag: "
        "MALFORMED_MESSAGE (spec/sframe.md §6.3).",
    },
    "TruncatedFrame": {
        "bugType": "TRUNCATED_MESSAGE",
        "description": "The last byte removed; the body still holds Nt bytes, read as a tag that "
        "does not verify: AUTH_FAILED.",
    },
    "TruncatedHeader": {
        "bugType": "TRUNCATED_MESSAGE",
        "description": "The frame ends inside the header.",
    },
    "NonMinimalHeader": {
        "bugType": "INVALID_ENCODING",
        "description": "The KID rewritten in 3 bytes with a leading zero: the same value, not "
        "minimally encoded, refused before any decryption (spec/sframe.md §2.2).",
    },
    "WrongMetadata": {
        "bugType": "MODIFIED_AAD",
        "description": "One bit of the metadata given to open differs from the sender's.",
    },
    "SenderKeyRatchet": {
        "bugType": "FUNCTIONALITY",
        "description": "RFC 9605 §5.1 base_key chain: HKDF-Expand(HKDF-Extract('', base_key), "
        "'SFrame 1.0 Ratchet', Nh); each step's KID, key and salt.",
    },
    "KidWrap": {
        "bugType": "EDGE_CASE",
        "description": "Step 256 has the KID of step 0 (step mod 2^8) under a different base_key.",
    },
    "KidPacking": {
        "bugType": "FUNCTIONALITY",
        "description": "KID = key_generation << 8 | step mod 2^8.",
    },
    "GenerationOverflow": {
        "bugType": "EDGE_CASE",
        "description": "key_generation 2^56 does not fit the top 56 bits of a 64-bit KID.",
    },
}

HEADER: Final = [
    "SFrame (RFC 9605) frames, sender-key ratchet chains (§5.1) and KID packing, spec/sframe.md.",
    "ct = header || AEAD.Encrypt(sframe_key, nonce, aad = header || metadata, pt); outputs (ct, "
    "errors) MUST match, intermediates SHOULD.",
    "kid and ctr are unsigned 64-bit integers (up to 2^64 - 1): parse them as big integers.",
    "entropy records the generator's draws of base_key, metadata and pt (in that order, empty "
    "values not drawn); they equal the inputs.",
    "Each open event uses a receiver holding only the key of inputs.kid; the mutated frame "
    "fails with the expected code, then the genuine frame opens.",
    "Suites 6-8 are draft-barnes-sframe-iana-256 registrations, not RFC 9605.",
    "Not in these vectors: the 16 MiB frame cap (a local limit, spec/sframe.md §7).",
]

_BASE_KID: Final = 0x0103  # sender-key KID of generation 1, step 3
_BASE_CTR: Final = 0x4567
# The header of the negative tests' frames is 99 01 03 45 67: config, KID, CTR.
_NEGATIVES: Final = (
    ("TamperedHeader", "AUTH_FAILED", {"field": "ct", "op": "xor", "offset": 4, "mask": "01"}),
    ("TamperedKid", "UNKNOWN_KEY_ID", {"field": "ct", "op": "xor", "offset": 2, "mask": "01"}),
    ("TamperedCiphertext", "AUTH_FAILED", {"field": "ct", "op": "xor", "offset": 5, "mask": "80"}),
    ("TamperedTag", "AUTH_FAILED", {"field": "ct", "op": "xor", "offset": -1, "mask": "01"}),
    ("TruncatedTag", "MALFORMED_MESSAGE", {"field": "ct", "op": "truncate"}),
    ("TruncatedFrame", "AUTH_FAILED", {"field": "ct", "op": "truncate", "length": -1}),
    ("TruncatedHeader", "MALFORMED_MESSAGE", {"field": "ct", "op": "truncate", "length": 4}),
    (
        "NonMinimalHeader",
        "MALFORMED_MESSAGE",
        {"field": "ct", "op": "replace", "offset": 0, "length": 3, "value": "a9000103"},
    ),
    ("WrongMetadata", "AUTH_FAILED", {"field": "metadata", "op": "xor", "offset": 0, "mask": "01"}),
)
_DESCRIPTIONS: Final = {
    "TamperedHeader": "bit 0 of the last CTR byte flipped (CTR 0x4567 -> 0x4566)",
    "TamperedKid": "bit 0 of the last KID byte flipped (KID 0x103 -> 0x102)",
    "TamperedCiphertext": "bit 7 of the first ciphertext byte flipped",
    "TamperedTag": "bit 0 of the last tag byte flipped",
    "TruncatedTag": "frame cut to header + Nt - 1 bytes",
    "TruncatedFrame": "last byte removed",
    "TruncatedHeader": "frame cut to 4 bytes, inside the 5-byte header",
    "NonMinimalHeader": "99 01 03 -> a9 00 01 03: KID in 3 bytes with a leading zero",
    "WrongMetadata": "bit 0 of the first metadata byte flipped",
}
# (comment, flags, kid, ctr, metadata length, pt length)
_VALID_CASES: Final = (
    ("KID 0, CTR 0, nothing to protect", ["SmallestHeader", "EmptyPayload"], 0, 0, 0, 0),
    ("KID 7, CTR 7", ["InlineMaximum"], 7, 7, 4, 1),
    ("KID 8, CTR 8", ["FirstExtended"], 8, 8, 12, 16),
    ("generation 1, step 3, a video packet", ["SenderKeyKid"], _BASE_KID, 0x4567, 12, 1200),
    ("KID and CTR 2^64 - 1", ["MaximumCounter"], MAX_CTR, MAX_CTR, 14, 33),
)


def _frame_test(
    tc_id: int, suite: CipherSuite, case: tuple[str, list[str], int, int, int, int]
) -> dict[str, Any]:
    comment, flags, kid, ctr, metadata_len, pt_len = case
    rng = RecordingRandom(drbg_for(FAMILY, tc_id))
    base_key = rng.draw("base_key", suite_params(suite).nh)
    metadata, pt = _draw(rng, "metadata", metadata_len), _draw(rng, "pt", pt_len)
    ct = encrypt_frame(derive_frame_key(suite, base_key, kid), ctr, metadata, pt)
    inputs = {"base_key": base_key, "kid": kid, "ctr": ctr, "metadata": metadata, "pt": pt}
    return {
        "tcId": tc_id,
        "comment": comment,
        "flags": flags,
        "entropy": entropy_list(rng.draws),
        "inputs": {k: v.hex() if isinstance(v, bytes) else v for k, v in inputs.items()},
        "intermediate": _frame_intermediate(suite, base_key, kid, ctr, metadata),
        "ct": ct.hex(),
        "result": "valid",
    }


def _resolve(mutation: Mapping[str, Any], ct: bytes) -> dict[str, Any]:
    """Negative offsets and lengths count from the end of the frame (-1: the last byte)."""
    resolved = dict(mutation)
    for name in ("offset", "length"):
        if resolved.get(name, 0) < 0:
            resolved[name] += len(ct)
    return resolved


def _negative_test(
    tc_id: int, suite: CipherSuite, flag: str, error: str, mutation: Mapping[str, Any]
) -> dict[str, Any]:
    case = (_DESCRIPTIONS[flag], [flag], _BASE_KID, _BASE_CTR, 12, 21)
    test = _frame_test(tc_id, suite, case)
    ct, inputs = from_hex(test["ct"]), test["inputs"]
    if flag == "TruncatedTag":
        mutation = {**mutation, "length": decode_header(ct)[2] + suite_params(suite).nt - 1}
    resolved = {**_resolve(mutation, ct), "description": _DESCRIPTIONS[flag]}
    metadata, pt = from_hex(inputs["metadata"]), from_hex(inputs["pt"])
    events = _events(ct, metadata, pt, resolved, error)
    del test["result"]
    return {**test, "mutation": resolved, "events": events, "result": "invalid"}


def _frame_group(ids: Iterator[int], suite: CipherSuite) -> dict[str, Any]:
    tests = [_frame_test(next(ids), suite, case) for case in _VALID_CASES]
    tests += [_negative_test(next(ids), suite, *negative) for negative in _NEGATIVES]
    return {**_group_fields(suite), "tests": tests}


def _ratchet_test(
    tc_id: int, suite: CipherSuite, steps: list[int], flags: list[str]
) -> dict[str, Any]:
    rng = RecordingRandom(drbg_for(FAMILY, tc_id))
    base_key = rng.draw("base_key", suite_params(suite).nh)
    generation = 1
    return {
        "tcId": tc_id,
        "comment": f"{suite.name}: generation {generation}, steps {steps}",
        "flags": flags,
        "entropy": entropy_list(rng.draws),
        "inputs": {
            "cipher_suite": int(suite),
            "key_generation": generation,
            "base_key": base_key.hex(),
        },
        "steps": _ratchet_steps(suite, generation, base_key, steps),
        "result": "valid",
    }


def _ratchet_group(ids: Iterator[int]) -> dict[str, Any]:
    tests = [
        _ratchet_test(next(ids), suite, [0, 1, 2, 3], ["SenderKeyRatchet"]) for suite in CipherSuite
    ]
    wrap = [0, 1, 255, 256]
    tests.append(_ratchet_test(next(ids), CipherSuite(4), wrap, ["SenderKeyRatchet", "KidWrap"]))
    return {
        "type": "SFrameSenderKeyRatchet",
        "ratchet_label": RATCHET_LABEL.hex(),
        "ratchet_label_text": RATCHET_LABEL.decode(),
        "R": R,
        "tests": tests,
    }


# (key_generation, ratchet_step, ctr)
_KID_CASES: Final = (
    (0, 0, 0),
    (0, 7, 1),
    (0, 8, 8),
    (1, 0, 0),
    (1, 255, 255),
    (1, 256, 256),
    (0x12, 0x34, 0x4567),
    ((1 << 56) - 1, 255, MAX_CTR),
)


def _kid_group(ids: Iterator[int]) -> dict[str, Any]:
    tests: list[dict[str, Any]] = []
    for generation, step, ctr in _KID_CASES:
        inputs = {"key_generation": generation, "ratchet_step": step, "ctr": ctr}
        comment = f"generation {generation:#x}, step {step}" + (" (mod 2^8)" if step > 255 else "")
        test = {"tcId": next(ids), "comment": comment, "flags": ["KidPacking"], "inputs": inputs}
        tests.append({**test, **_kid_outputs(inputs), "result": "valid"})
    largest = tests[-1]
    mutation = {
        "field": "key_generation",
        "op": "add",
        "addend": 1,
        "description": "the largest key generation plus one",
    }
    tests.append(
        {
            "tcId": next(ids),
            "comment": "key_generation 2^56",
            "flags": ["GenerationOverflow"],
            "inputs": {**largest["inputs"], "key_generation": 1 << 56},
            "error": "INVALID_ARGUMENT",
            "mutation_of": largest["tcId"],
            "mutation": mutation,
            "result": "invalid",
        }
    )
    return {"type": "SFrameSenderKeyKid", "R": R, "tests": tests}


def generate() -> list[VectorFile]:
    """The sframe family's one file, from per-test DRBGs only (identical on every run)."""
    ids = test_ids()
    groups = [_frame_group(ids, suite) for suite in CipherSuite]
    groups += [_ratchet_group(ids), _kid_group(ids)]
    document = envelope(
        algorithm="SFrame", schema=SCHEMA, header=HEADER, notes=NOTES, groups=groups
    )
    return [VectorFile(FILE, SCHEMA, document)]
