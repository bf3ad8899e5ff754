"""The ``callkeys`` vector family: MediaKey encodings and call-key transcripts (spec/media.md §9).

One file, ``callkeys_test.json`` (schema ``callkeys_schema_v1.json``), with
three groups:

* ``MediaKeyEncoding``: MediaKey messages and their exact bytes; negatives
  are one documented ``mutation`` of a valid test's ``encoded`` bytes.
* ``CallKeyTranscript``: one receiving device and its senders. Sender events
  (``start``, ``join``, ``leave``) replay the senders with their recorded
  ``entropy`` and must deliver exactly the listed MediaKeys; receiver events
  (``install``, ``recv``) must give the listed result at the listed time.
  ``frames`` are SFrame ciphertexts at explicit counters under the sender's
  RFC 9605 §5.1 key chain, with ``base_key`` and ``header`` as
  intermediates. A mutated frame or key names the entry it came from
  (``mutation_of``) and its one ``mutation``. A failing event is always
  followed by a succeeding one, which shows the failure changed nothing.
* ``ContributoryCallSecret``: the 1:1 agreement of spec/media.md §4, in
  ``protocol/vectors/callkeys_contributory.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Final

from protocol.media.limits import MediaLimits
from protocol.media.messages import decode_media_key, encode_media_key
from protocol.media.sender import KeyDelivery
from protocol.randomness import ScriptedRandom
from protocol.vectors import callkeys_contributory as contributory
from protocol.vectors.callkeys_scenarios import generate
from protocol.vectors.callkeys_transcript import (
    CALLKEYS_OPS,
    ENCODING,
    SCHEMA,
    SENDER_OPS,
    CallActors,
    frame_entry,
    media_key,
    mutated,
)
from protocol.vectors.common import (
    ENTROPY_LIST,
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorMismatch,
    entropy_entries,
    expect_equal,
    file_schema,
    from_hex,
    mutate,
    obj,
    outcome,
    to_hex,
)

# --- Schema -------------------------------------------------------------------------------

_UINT: Final = {"type": "integer", "minimum": 0}
_TIME: Final = {"type": "number", "minimum": 0}
_DEVICE: Final = {"type": "string", "minLength": 1}
_EXPECT: Final = {"oneOf": [{"const": "ok"}, ERROR_CODE]}
_MEDIA_KEY_FIELDS: Final = {
    "call_id": HEX_BYTES,
    "sender_device": _DEVICE,
    "cipher_suite": _UINT,
    "r": _UINT,
    "generation": _UINT,
    "step": _UINT,
    "base_key": HEX_BYTES,
}
MUTATION: Final = obj(
    {
        "field": {"enum": ["encoded", "call_id", "frame", "metadata"]},
        "op": {"enum": list(CALLKEYS_OPS)},
        "description": {"type": "string"},
    },
    {
        "offset": _UINT,
        "mask": HEX_BYTES,
        "length": _UINT,
        "value": HEX_BYTES,
    },
)
_ENCODING_TEST: Final = obj(
    {**TEST_ENVELOPE, "encoded": HEX_BYTES},
    {
        "media_key": obj(_MEDIA_KEY_FIELDS),
        "kid": _UINT,
        "error": ERROR_CODE,
        "mutation_of": {"type": "integer", "minimum": 1},
        "mutation": MUTATION,
    },
)
_MUTATED: Final = {"mutation_of": {"type": "string"}, "mutation": MUTATION}
_KEY_ENTRY: Final = obj(
    {"id": {"type": "string"}, **_MEDIA_KEY_FIELDS, "encoded": HEX_BYTES}, _MUTATED
)
_FRAME_ENTRY: Final = obj(
    {
        "id": {"type": "string"},
        "sender_device": _DEVICE,
        "generation": _UINT,
        "step": _UINT,
        "ctr": _UINT,
        "kid": _UINT,
        "metadata": HEX_BYTES,
        "plaintext": HEX_BYTES,
        "base_key": HEX_BYTES,
        "header": HEX_BYTES,
        "frame": HEX_BYTES,
    },
    _MUTATED,
)
_DELIVERY: Final = obj({"device": _DEVICE, "media_key": {"type": "string"}})
_EVENT: Final = obj(
    {"op": {"enum": ["start", "join", "leave", "install", "recv"]}, "at": _TIME},
    {
        "actor": _DEVICE,
        "members": {"type": "array", "items": _DEVICE},
        "devices": {"type": "array", "items": _DEVICE},
        "deliveries": {"type": "array", "items": _DELIVERY},
        "from": _DEVICE,
        "media_key": {"type": "string"},
        "frame": {"type": "string"},
        "expect": _EXPECT,
    },
)
_TRANSCRIPT_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "call_id": HEX_BYTES,
        "receiver": _DEVICE,
        "members": {"type": "array", "items": _DEVICE},
        "entropy": {"type": "object", "additionalProperties": ENTROPY_LIST},
        "media_keys": {"type": "array", "items": _KEY_ENTRY},
        "frames": {"type": "array", "items": _FRAME_ENTRY},
        "events": {"type": "array", "items": _EVENT},
    }
)
_LIMITS: Final = obj({f.name: {"type": "number", "minimum": 0} for f in fields(MediaLimits)})


def _schema() -> dict[str, Any]:
    encoding_group = {"type": {"const": "MediaKeyEncoding"}, "encoding": {"const": ENCODING}}
    schema = file_schema("Call key vectors", encoding_group, _ENCODING_TEST)
    transcript_group = obj(
        {
            "type": {"const": "CallKeyTranscript"},
            "cipher_suite": _UINT,
            "r": _UINT,
            "limits": _LIMITS,
            "tests": {"type": "array", "items": _TRANSCRIPT_TEST},
        }
    )
    groups = schema["properties"]["testGroups"]
    groups["items"] = {"oneOf": [groups["items"], transcript_group, contributory.GROUP_SCHEMA]}
    return schema


SCHEMAS: Final[dict[str, dict[str, Any]]] = {SCHEMA: _schema()}

# --- Verifier ---------------------------------------------------------------------------------


def _verify_encoding(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    encoded = from_hex(test["encoded"])
    if test["result"] == "valid":
        key = media_key(test["media_key"])
        expect_equal("encoded", encode_media_key(key), encoded)
        expect_equal("decoded", decode_media_key(encoded), key)
        expect_equal("kid", key.kid, test["kid"])
        return
    original = next(t for t in group["tests"] if t["tcId"] == test["mutation_of"])
    mutated = mutate(from_hex(original["encoded"]), test["mutation"])
    expect_equal("mutated encoding", mutated, encoded)
    expect_equal("error", outcome(lambda: decode_media_key(encoded))[1], test["error"])


def _check_entries(test: Mapping[str, Any], r: int) -> None:
    """Every MediaKey and frame entry is exactly what its inputs produce."""
    keys = {k["id"]: k for k in test["media_keys"]}
    for entry in keys.values():
        expected = dict(entry)
        if "mutation_of" in entry:
            expected = mutated(keys[entry["mutation_of"]], entry["id"], entry["mutation"])
        expected["encoded"] = to_hex(encode_media_key(media_key(expected)))
        expect_equal(f"media key {entry['id']}", entry, expected)
    frames = {f["id"]: f for f in test["frames"]}
    for entry in frames.values():
        if "mutation_of" in entry:
            expected = mutated(frames[entry["mutation_of"]], entry["id"], entry["mutation"])
        else:
            position = (entry["generation"], entry["step"], entry["ctr"])
            payload = (from_hex(entry["metadata"]), from_hex(entry["plaintext"]))
            expected = frame_entry(entry["id"], entry["sender_device"], position, payload, keys, r)
        expect_equal(f"frame {entry['id']}", entry, expected)


def _verify_transcript(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    rngs = {actor: ScriptedRandom(entropy_entries(e)) for actor, e in test["entropy"].items()}
    call = CallActors(group, test, rngs)
    _check_entries(test, call.r)
    keys = {k["id"]: from_hex(k["encoded"]) for k in test["media_keys"]}
    frames = {f["id"]: f for f in test["frames"]}
    for index, event in enumerate(test["events"]):
        if event["op"] in SENDER_OPS:
            wanted = [KeyDelivery(d["device"], keys[d["media_key"]]) for d in event["deliveries"]]
            expect_equal(f"event {index} deliveries", call.sender_event(event), wanted)
        elif event["op"] == "install":
            code = call.install(event["from"], keys[event["media_key"]], float(event["at"]))
            expect_equal(f"event {index} result {code}", code, event["expect"])
        else:
            frame = frames[event["frame"]]
            code, plaintext = call.recv(event["from"], frame, float(event["at"]))
            expect_equal(f"event {index} result {code}", code, event["expect"])
            if code == "ok":
                expect_equal(f"event {index} plaintext", plaintext, from_hex(frame["plaintext"]))
    for actor, rng in rngs.items():
        if rng.remaining:
            raise VectorMismatch(f"entropy of {actor} is not fully used")


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one callkeys test against the library (spec/media.md §9)."""
    if schema_name != SCHEMA:
        raise VectorMismatch(f"unknown schema {schema_name!r}")
    if group["type"] == "MediaKeyEncoding":
        _verify_encoding(group, test)
    elif group["type"] == contributory.GROUP_TYPE:
        contributory.verify_contributory(group, test)
    else:
        _verify_transcript(group, test)


__all__ = ["SCHEMAS", "generate", "verify_test"]
