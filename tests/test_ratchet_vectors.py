"""The committed ratchet vectors replay against the library; a changed byte names its tcId."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from protocol.vectors import ratchet
from protocol.vectors.common import VectorMismatch

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
FILES = sorted(VECTORS.glob("ratchet_*_test.json"))


def _failures(document: dict[str, object]) -> list[int]:
    failed = []
    for group in document["testGroups"]:  # type: ignore[attr-defined]
        for test in group["tests"]:
            try:
                ratchet.verify_test(ratchet.SCHEMA, group, test)
            except (VectorMismatch, ProtocolError):
                failed.append(test["tcId"])
    return failed


def test_one_file_per_profile_is_committed() -> None:
    assert [f.name for f in FILES] == sorted(v.name for v in ratchet.generate())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_committed_ratchet_vectors_verify(path: Path) -> None:
    assert _failures(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_committed_ratchet_vectors_are_what_the_generator_writes(path: Path) -> None:
    from protocol.vectors.common import dump

    generated = {v.name: dump(v.document) for v in ratchet.generate()}
    assert generated[path.name] == path.read_bytes()


@pytest.mark.parametrize("field", ["message", "ciphertext", "plaintext"])
def test_a_changed_byte_fails_naming_the_test(field: str) -> None:
    document = json.loads(FILES[0].read_text())
    test = document["testGroups"][0]["tests"][1]
    message = test["messages"][0]
    value = bytearray.fromhex(message[field])
    value[-1] ^= 1
    message[field] = value.hex()
    assert _failures(document) == [test["tcId"]]


def test_a_changed_group_constant_fails_every_test_of_the_group() -> None:
    document = json.loads(FILES[0].read_text())
    group = document["testGroups"][0]
    group["kdf_rk_info_text"] += "x"
    assert _failures(document) == [test["tcId"] for test in group["tests"]]
