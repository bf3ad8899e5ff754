"""The committed sframe vectors verify, are reproduced byte for byte, and any change is caught
naming its tcId (spec/sframe.md §10)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from protocol.vectors import INDEX, verify_file
from protocol.vectors.common import dump
from protocol.vectors.sframe import FILE, SCHEMA, SCHEMAS, generate

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
ENTRY: dict[str, Any] = next(
    entry for entry in json.loads((VECTORS / INDEX).read_text())["files"] if entry["file"] == FILE
)


def _copy(tmp_path: Path) -> dict[str, Any]:
    shutil.copytree(VECTORS, tmp_path, dirs_exist_ok=True)
    document: dict[str, Any] = json.loads((tmp_path / FILE).read_text())
    return document


def _failures_after(tmp_path: Path, document: dict[str, Any]) -> list[str]:
    (tmp_path / FILE).write_bytes(dump(document))
    return verify_file(tmp_path, {**ENTRY, "sha256": None})


def _test(document: dict[str, Any], tc_id: int) -> dict[str, Any]:
    tests = (test for group in document["testGroups"] for test in group["tests"])
    return next(test for test in tests if test["tcId"] == tc_id)


def test_committed_sframe_vectors_verify() -> None:
    assert verify_file(VECTORS, ENTRY) == []


def test_generator_reproduces_the_committed_file_byte_for_byte() -> None:
    (vector,) = generate()
    assert dump(vector.document) == (VECTORS / FILE).read_bytes()
    assert dump(SCHEMAS[SCHEMA]) == (VECTORS / "schemas" / SCHEMA).read_bytes()


@pytest.mark.parametrize(
    ("tc_id", "path"),
    [
        (4, ("ct",)),  # an output
        (4, ("intermediate", "nonce")),  # an intermediate
        (49, ("events", 0, "frame")),  # the mutated frame of a negative
        (113, ("steps", 2, "base_key")),  # a ratchet step
    ],
)
def test_a_changed_byte_fails_naming_the_tcid(
    tmp_path: Path, tc_id: int, path: tuple[str | int, ...]
) -> None:
    document = _copy(tmp_path)
    parent: Any = _test(document, tc_id)
    for key in path[:-1]:
        parent = parent[key]
    value = parent[path[-1]]
    parent[path[-1]] = value[:-2] + f"{int(value[-2:], 16) ^ 0x01:02x}"
    failures = _failures_after(tmp_path, document)
    assert any(line.startswith(f"{FILE}#{tc_id}:") for line in failures), failures


def test_a_wrong_expected_error_code_fails_naming_the_tcid(tmp_path: Path) -> None:
    document = _copy(tmp_path)
    test = _test(document, 49)
    assert test["events"][0]["expect"] == "UNKNOWN_KEY_ID"
    test["events"][0]["expect"] = "AUTH_FAILED"
    failures = _failures_after(tmp_path, document)
    assert any(line.startswith(f"{FILE}#49:") for line in failures), failures


def test_a_negative_without_the_genuine_frame_after_it_is_refused(tmp_path: Path) -> None:
    document = _copy(tmp_path)
    test = _test(document, 49)
    test["events"] = [test["events"][0], test["events"][0]]
    failures = _failures_after(tmp_path, document)
    assert any(line.startswith(f"{FILE}#49:") for line in failures), failures


def test_every_flag_has_a_note_and_every_negative_one_mutation() -> None:
    (vector,) = generate()
    document = vector.document
    tests = [test for group in document["testGroups"] for test in group["tests"]]
    assert {flag for test in tests for flag in test["flags"]} == set(document["notes"])
    negatives = [test for test in tests if test["result"] == "invalid"]
    assert len(negatives) == 9 * 8 + 1
    assert all(len(test["flags"]) == 1 and "mutation" in test for test in negatives)
