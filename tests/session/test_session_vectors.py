"""Committed session and state vectors verify, are reproduced exactly, and catch changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from protocol.vectors import INDEX, verify_file
from protocol.vectors.common import dump
from protocol.vectors.session import SCHEMAS, generate

VECTORS = Path(__file__).parents[2] / "vectors"
FILES = {vector.name: vector for vector in generate()}


def entry(name: str) -> dict[str, object]:
    manifest = json.loads((VECTORS / INDEX).read_text())
    return next(item for item in manifest["files"] if item["file"] == name)


@pytest.mark.parametrize("name", sorted(FILES))
def test_committed_file_verifies_against_the_library(name: str) -> None:
    assert verify_file(VECTORS, entry(name)) == []


@pytest.mark.parametrize("name", sorted(FILES))
def test_generator_reproduces_the_committed_file_byte_for_byte(name: str) -> None:
    assert (VECTORS / name).read_bytes() == dump(FILES[name].document)


def test_committed_schemas_are_the_generated_ones() -> None:
    for schema_name, schema in SCHEMAS.items():
        assert (VECTORS / "schemas" / schema_name).read_bytes() == dump(schema)


@pytest.mark.parametrize(
    ("name", "field"),
    [("session_classic_test.json", "bytes"), ("state_serialization_test.json", "states")],
)
def test_a_changed_byte_makes_verify_fail_naming_the_test(
    name: str, field: str, tmp_path: Path
) -> None:
    shutil.copytree(VECTORS, tmp_path / "vectors")
    document = json.loads((tmp_path / "vectors" / name).read_text())
    test = document["testGroups"][0]["tests"][0]
    if field == "bytes":
        message = test["messages"][0]
        message["bytes"] = message["bytes"][:-2] + format(int(message["bytes"][-2:], 16) ^ 1, "02x")
    else:
        state = next(iter(test["states"]))
        value = test["states"][state]
        test["states"][state] = value[:-2] + format(int(value[-2:], 16) ^ 1, "02x")
    (tmp_path / "vectors" / name).write_bytes(dump(document))
    failures = verify_file(tmp_path / "vectors", entry(name))
    assert any(line.startswith(f"{name}#{test['tcId']}:") for line in failures), failures
