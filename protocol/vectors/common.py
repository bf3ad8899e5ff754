"""Shared machinery of the vector families (vectors/README.md §2-§4, spec/vectors.md).

A family is a module of ``protocol.vectors`` with three names:

* ``SCHEMAS``: ``{schema file name: JSON Schema}`` for the files it writes;
* ``generate() -> list[VectorFile]``: every file, from a seeded DRBG only, so
  the bytes are identical on every run;
* ``verify_test(schema, group, test) -> None``: replays one test against the
  library and raises ``VectorMismatch`` (or any ``ProtocolError`` the test
  did not expect) when anything differs.

The envelope is Wycheproof's (``algorithm``, ``schema``, ``numberOfTests``,
``header``, ``notes``, ``testGroups[].tests[]`` with ``tcId``, ``comment``,
``flags``, ``result``); bytes are lowercase hex.

What a new family reuses from here rather than redefines:

* test ids: every file numbers its tests 1, 2, ... in file order, across
  its groups. A generator takes them from ``test_ids()`` (it needs a test's
  id before the test exists, to seed the test's DRBG with ``drbg_for``), and
  ``envelope`` refuses a file numbered any other way;
* mutations: ``mutate`` (byte fields), ``mutate_int`` (integer fields) and
  ``mutate_flag`` (boolean fields) implement the one vocabulary
  ``MUTATION_OPS`` of vectors/README.md §4; ``flip_last_bit`` is its most
  common instance;
* transcripts: the two parties ``ACTORS``, the plaintext of a message id
  (``plaintext_of``) and ``outcome``, which turns a ProtocolError into the
  error code a vector records.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from protocol import __version__
from protocol.errors import ERROR_CODES, ProtocolError
from protocol.randomness import DrbgRandom

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")

ACTORS: Final = ("initiator", "responder")
"""The two parties of every transcript, named by their handshake roles."""

MUTATION_OPS: Final = ("xor", "truncate", "append", "replace", "add", "toggle")
"""Every mutation operation a vector may record (vectors/README.md §4)."""

_T = TypeVar("_T")


class VectorMismatch(Exception):
    """The library's result differs from what the vector records."""


@dataclass(frozen=True, slots=True)
class VectorFile:
    """One generated file: its name, the schema it follows and its content."""

    name: str
    schema: str
    document: dict[str, Any]


def to_hex(data: bytes) -> str:
    return data.hex()


def from_hex(text: object) -> bytes:
    """Strict lowercase, even-length hex (vectors/README.md §2)."""
    if not isinstance(text, str) or not _HEX.match(text):
        raise VectorMismatch(f"not lowercase hex: {str(text)[:40]!r}")
    return bytes.fromhex(text)


def drbg_for(family: str, tc_id: int | str) -> DrbgRandom:
    """The DRBG that generates one test: seeded by family name and tcId only."""
    return DrbgRandom(f"e2ee-reference vectors v1 {family} {tc_id}".encode())


def entropy_list(draws: Iterable[tuple[str, bytes]]) -> list[dict[str, str]]:
    return [{"label": label, "bytes": value.hex()} for label, value in draws]


def entropy_entries(items: object) -> list[tuple[str, bytes]]:
    """Parse an ``entropy`` list back into ``(label, bytes)`` pairs."""
    if not isinstance(items, list):
        raise VectorMismatch("entropy must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"label", "bytes"}:
            raise VectorMismatch("entropy item must be {label, bytes}")
        out.append((str(item["label"]), from_hex(item["bytes"])))
    return out


def test_ids() -> Iterator[int]:
    """The tcIds of one file, in file order across its groups: 1, 2, 3, ..."""
    return itertools.count(1)


def plaintext_of(message_id: str) -> bytes:
    """The plaintext of transcript message ``message_id``: ASCII ``"message " ‖ id``."""
    return f"message {message_id}".encode()


def outcome(action: Callable[[], _T]) -> tuple[_T | None, str]:
    """Run ``action``: its result and ``"ok"``, or None and the ProtocolError's code."""
    try:
        return action(), "ok"
    except ProtocolError as exc:
        return None, exc.code


def flip_last_bit(value: bytes) -> bytes:
    """``value`` with the low bit of its last byte flipped: ``xor`` mask 01 at len - 1."""
    return mutate(value, {"op": "xor", "offset": len(value) - 1, "mask": "01"})


def mutate(value: bytes, mutation: Mapping[str, Any]) -> bytes:
    """Apply one recorded mutation to a byte field (vectors/README.md §4).

    ``xor`` a ``mask`` at an ``offset``; ``truncate`` to a shorter
    ``length``; ``append`` a ``value``; ``replace`` the whole field with
    ``value``, or, with an ``offset`` and a ``length``, that range; ``add`` a
    little-endian ``addend`` to the field read as a little-endian integer,
    without overflow. A mutation that does not fit the field is a
    VectorMismatch.
    """
    op = mutation.get("op")
    try:
        if op == "xor":
            offset, mask = int(mutation["offset"]), from_hex(mutation["mask"])
            if offset + len(mask) > len(value):
                raise VectorMismatch("mutation mask reaches past the field")
            middle = bytes(a ^ b for a, b in zip(value[offset:], mask, strict=False))
            return value[:offset] + middle + value[offset + len(mask) :]
        if op == "truncate":
            length = int(mutation["length"])
            if not 0 <= length < len(value):
                raise VectorMismatch("truncation does not shorten the field")
            return value[:length]
        if op == "append":
            return value + from_hex(mutation["value"])
        if op == "replace" and "offset" not in mutation:
            return from_hex(mutation["value"])
        if op == "replace":
            start, end = int(mutation["offset"]), int(mutation["offset"]) + int(mutation["length"])
            if end > len(value):
                raise VectorMismatch("replaced range reaches past the field")
            return value[:start] + from_hex(mutation["value"]) + value[end:]
        if op == "add":
            total = int.from_bytes(value, "little") + int.from_bytes(
                from_hex(mutation["addend"]), "little"
            )
            if total >= 2 ** (8 * len(value)):
                raise VectorMismatch("mutation addition overflows the field")
            return total.to_bytes(len(value), "little")
    except KeyError as missing:
        raise VectorMismatch(f"mutation {op!r} needs {missing}") from None
    raise VectorMismatch(f"unknown mutation {op!r}")


def mutate_int(value: int, mutation: Mapping[str, Any]) -> int:
    """Apply ``add`` (an integer ``addend``) to an integer field (vectors/README.md §4)."""
    addend = mutation.get("addend")
    if mutation.get("op") != "add" or not isinstance(addend, int) or isinstance(addend, bool):
        raise VectorMismatch("an integer field takes only add with an integer addend")
    return value + addend


def mutate_flag(value: bool, mutation: Mapping[str, Any]) -> bool:
    """Apply ``toggle`` to a boolean field (vectors/README.md §4)."""
    if mutation.get("op") != "toggle":
        raise VectorMismatch("a boolean field can only be toggled")
    return not value


def expect_equal(what: str, actual: object, expected: object) -> None:
    if actual != expected:
        raise VectorMismatch(f"{what} differs")


def envelope(
    *,
    algorithm: str,
    schema: str,
    header: Sequence[str],
    notes: Mapping[str, Mapping[str, str]],
    groups: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Build a Wycheproof envelope; refuses tests not numbered 1..N in file order."""
    numbers = [test["tcId"] for group in groups for test in group["tests"]]
    if numbers != list(range(1, len(numbers) + 1)):
        raise VectorMismatch(f"{schema}: tcIds must run 1..N in file order")
    count = len(numbers)
    return {
        "algorithm": algorithm,
        "schema": schema,
        "generatorVersion": __version__,
        "numberOfTests": count,
        "header": list(header),
        "notes": {name: dict(note) for name, note in notes.items()},
        "testGroups": [dict(group) for group in groups],
    }


def dump(document: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a vector file: 2-space JSON, insertion order, final newline."""
    return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode()


# --- JSON Schema building blocks (inlined into each schema) -------------------------

HEX_BYTES: dict[str, Any] = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
ERROR_CODE: dict[str, Any] = {"enum": sorted(ERROR_CODES)}
RESULT: dict[str, Any] = {"enum": ["valid", "invalid", "acceptable"]}
FLAGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
ENTROPY_LIST: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["label", "bytes"],
        "properties": {"label": {"type": "string"}, "bytes": HEX_BYTES},
    },
}
NOTE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["bugType", "description"],
    "properties": {"bugType": {"type": "string"}, "description": {"type": "string"}},
}


def obj(required: Mapping[str, Any], optional: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A closed JSON object schema (``additionalProperties: false``)."""
    properties = {**required, **(optional or {})}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": properties,
    }


def file_schema(
    title: str, group_required: Mapping[str, Any], test_schema: Mapping[str, Any]
) -> dict[str, Any]:
    """The schema of one vector file: the envelope around a family's groups and tests."""
    group = obj({**group_required, "tests": {"type": "array", "items": test_schema}})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **obj(
            {
                "algorithm": {"type": "string"},
                "schema": {"type": "string"},
                "generatorVersion": {"type": "string"},
                "numberOfTests": {"type": "integer", "minimum": 0},
                "header": {"type": "array", "items": {"type": "string"}},
                "notes": {"type": "object", "additionalProperties": NOTE},
                "testGroups": {"type": "array", "items": group},
            }
        ),
    }


def typed_groups_schema(title: str, groups: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A file schema whose groups differ by ``type``, each with its own test schema."""
    variants = [
        obj({"type": {"const": name}, "tests": {"type": "array", "items": test_schema}})
        for name, test_schema in groups.items()
    ]
    schema = file_schema(title, {"type": {"type": "string"}}, {})
    schema["properties"]["testGroups"]["items"] = {"oneOf": variants}
    return schema


TEST_ENVELOPE: dict[str, Any] = {
    "tcId": {"type": "integer", "minimum": 1},
    "comment": {"type": "string"},
    "flags": FLAGS,
    "result": RESULT,
}


def common_schema() -> dict[str, Any]:
    """``schemas/common.json``: the shared definitions, for consumers' reference."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Definitions shared by every vector schema (inlined in each)",
        "$defs": {
            "HexBytes": HEX_BYTES,
            "ErrorCode": ERROR_CODE,
            "Result": RESULT,
            "Flags": FLAGS,
            "EntropyList": ENTROPY_LIST,
            "Note": NOTE,
        },
    }
