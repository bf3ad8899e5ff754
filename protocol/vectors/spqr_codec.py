"""``spqr`` vector groups for the erasure code and field 5 (spec/spqr.md §5, §8).

* ``SpqrErasure``: a ``message`` (one of SPQR's four payload sizes), the
  ``chunks`` at the listed indexes, and ``subsets``: lists of chunk indexes,
  each of which must decode to the message. Negatives give ``decode`` a
  chunk list built from a valid test as ``mutation.description`` says
  (a repeated index, a short chunk, one chunk too many) and expect its error.
* ``SpqrMessage``: ``encoded`` field-5 bytes and their fields; version
  negotiation first (``negotiation``: ``process``, ``ignore`` or an error
  code), then the strict decoder. Negatives mutate ``encoded``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from protocol.errors import ProtocolError
from protocol.spqr import erasure
from protocol.spqr.messages import Chunk, Message, MessageType, decode_message, encode_message
from protocol.spqr.messages import negotiate as negotiate_version
from protocol.vectors.common import (
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorMismatch,
    drbg_for,
    expect_equal,
    from_hex,
    obj,
    to_hex,
)
from protocol.vectors.spqr_kem import FAMILY, MUTATION, negative, original_of

_UINT: Final = {"type": "integer", "minimum": 0}
_CHUNK: Final = obj({"index": _UINT, "data": HEX_BYTES})
ERASURE_TEST: Final = obj(
    {**TEST_ENVELOPE, "length": _UINT, "chunks": {"type": "array", "items": _CHUNK}},
    {
        "message": HEX_BYTES,
        "subsets": {"type": "array", "items": {"type": "array", "items": _UINT}},
        "error": ERROR_CODE,
        "mutation_of": {"type": "integer", "minimum": 1},
        "mutation": MUTATION,
    },
)
MESSAGE_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "encoded": HEX_BYTES,
        "negotiation": {"oneOf": [{"enum": ["process", "ignore"]}, ERROR_CODE]},
    },
    {
        "epoch": _UINT,
        "index": _UINT,
        "type": {"enum": [t.name for t in MessageType]},
        "chunk_index": _UINT,
        "chunk": HEX_BYTES,
        "error": ERROR_CODE,
        "mutation_of": {"type": "integer", "minimum": 1},
        "mutation": MUTATION,
    },
)

# --- SpqrErasure ---------------------------------------------------------------------

_PAYLOADS: Final = (
    (96, "header ‖ MAC"),
    (1152, "encapsulation-key vector"),
    (960, "ct1"),
    (160, "ct2 ‖ MAC"),
)


def _chunk_list(test: Mapping[str, Any]) -> list[tuple[int, bytes]]:
    return [(c["index"], from_hex(c["data"])) for c in test["chunks"]]


def erasure_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for length, what in _PAYLOADS:
        message = drbg_for(FAMILY, f"erasure-{length}").draw("message", length)
        n = erasure.chunks_needed(length)
        subsets = [
            list(range(n)),
            list(range(n, 2 * n)),
            list(range(1, 2 * n, 2)),
            [65535 - i for i in range(n)],
        ]
        indexes = sorted({i for subset in subsets for i in subset})
        chunks = [{"index": i, "data": to_hex(erasure.encode_chunk(message, i))} for i in indexes]
        tests.append(
            {
                "tcId": next(ids),
                "comment": f"{what}: {length} bytes in {n} chunks; four subsets decode",
                "flags": ["Valid"],
                "result": "valid",
                "length": length,
                "message": to_hex(message),
                "chunks": chunks,
                "subsets": subsets,
            }
        )
    base = tests[0]  # 96 bytes, 3 chunks
    first: list[dict[str, Any]] = base["chunks"][:3]
    cases = [
        ("chunk 1 given twice", first[:1] + first[1:2] * 2, "DUPLICATE_MESSAGE"),
        (
            "chunk 2 one byte short",
            [*first[:2], {**first[2], "data": first[2]["data"][:-2]}],
            "MALFORMED_MESSAGE",
        ),
        ("four chunks where three decode", base["chunks"][:4], "LIMIT_EXCEEDED"),
    ]
    for comment, chunks, error in cases:
        mutation = {"field": "chunks", "op": "replace", "description": comment}
        test = {
            "tcId": next(ids),
            "comment": comment,
            "flags": ["Mutation"],
            "result": "invalid",
            "length": base["length"],
            "chunks": chunks,
            "error": error,
            "mutation_of": base["tcId"],
            "mutation": mutation,
        }
        expect_equal("generated error", _decode_code(test), error)
        tests.append(test)
    return tests


def _decode_code(test: Mapping[str, Any]) -> str:
    try:
        erasure.decode(test["length"], _chunk_list(test))
    except ProtocolError as exc:
        return exc.code
    return "ok"


def verify_erasure(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    if test["result"] != "valid":
        original_index = {
            c["index"]
            for c in next(t for t in group["tests"] if t["tcId"] == test["mutation_of"])["chunks"]
        }
        if not {c["index"] for c in test["chunks"]} <= original_index:
            raise VectorMismatch("a negative uses chunk indexes its original does not have")
        expect_equal("error", _decode_code(test), test["error"])
        return
    message = from_hex(test["message"])
    chunks = dict(_chunk_list(test))
    for index, data in chunks.items():
        expect_equal(f"chunk {index}", erasure.encode_chunk(message, index), data)
    for subset in test["subsets"]:
        decoded = erasure.decode(test["length"], [(i, chunks[i]) for i in subset])
        expect_equal(f"decode from {subset[:3]}...", decoded, message)


# --- SpqrMessage ---------------------------------------------------------------------


def _negotiate(encoded: bytes) -> str:
    try:
        return "process" if negotiate_version(encoded) else "ignore"
    except ProtocolError as exc:
        return exc.code


def _fields(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "epoch": message.epoch,
        "index": message.index,
        "type": message.type.name,
    }
    if message.chunk is not None:
        out |= {"chunk_index": message.chunk.index, "chunk": to_hex(message.chunk.data)}
    return out


def message_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    drbg = drbg_for(FAMILY, "message")
    messages = [
        Message(1, 1, MessageType.NONE),
        Message(1, 1, MessageType.HDR, Chunk(0, drbg.draw("chunk", 32))),
        Message(3, 300, MessageType.CT1_ACK),
        Message(200, 2**32 - 1, MessageType.CT2, Chunk(65535, drbg.draw("chunk", 32))),
        Message(2**64 - 1, 0, MessageType.EK, Chunk(128, drbg.draw("chunk", 32))),
    ]
    tests = []
    for message in messages:
        encoded = encode_message(message)
        test = {"tcId": next(ids), "comment": f"{message.type.name} message", "flags": ["Valid"]}
        tests.append(
            test
            | {"result": "valid", "encoded": to_hex(encoded), "negotiation": "process"}
            | _fields(message)
        )
    base = tests[1]
    for comment, mutation in (
        ("trailing byte", {"op": "append", "value": "00"}),
        ("chunk one byte short", {"op": "truncate", "length": 36}),
        ("type 7", {"op": "replace", "offset": 3, "length": 1, "value": "07"}),
        ("epoch 0", {"op": "replace", "offset": 1, "length": 1, "value": "00"}),
        ("non-minimal varint index", {"op": "replace", "offset": 2, "length": 1, "value": "8100"}),
        (
            "version 0: below the minimum V1",
            {"op": "replace", "offset": 0, "length": 1, "value": "00"},
        ),
        (
            "version 2: newer than ours, ignored",
            {"op": "replace", "offset": 0, "length": 1, "value": "02"},
        ),
        ("empty field 5: version 0", {"op": "truncate", "length": 0}),
    ):
        test = negative(ids, base, comment, {"field": "encoded", **mutation})
        test |= _outcome(from_hex(test["encoded"]))
        tests.append(test)
    return tests


def _outcome(encoded: bytes) -> dict[str, str]:
    negotiation = _negotiate(encoded)
    if negotiation != "process":
        return {"negotiation": negotiation}
    try:
        decode_message(encoded)
    except ProtocolError as exc:
        return {"negotiation": negotiation, "error": exc.code}
    raise VectorMismatch("a mutated message decoded")


def verify_message(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    encoded = from_hex(test["encoded"])
    if test["result"] == "valid":
        expect_equal("negotiation", _negotiate(encoded), test["negotiation"])
        message = decode_message(encoded)
        expect_equal("fields", _fields(message), {k: test[k] for k in _fields(message)})
        expect_equal("encoded", encode_message(message), encoded)
        return
    original_of(group, test)
    expected = {k: test[k] for k in ("negotiation", "error") if k in test}
    expect_equal("outcome", _outcome(encoded), expected)
