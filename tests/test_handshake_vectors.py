"""The committed X3DH/PQXDH vectors verify, regenerate byte for byte, and catch any change."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from protocol.vectors import INDEX, verify_file
from protocol.vectors.common import dump
from protocol.vectors.handshake import generate

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
FILES = ["x3dh_x25519_sha256_test.json", "pqxdh_x25519_mlkem768_sha256_test.json"]


def entry_for(folder: Path, name: str) -> dict[str, Any]:
    entries = json.loads((folder / INDEX).read_text())["files"]
    found: dict[str, Any] = next(e for e in entries if e["file"] == name)
    return found


@pytest.mark.parametrize("name", FILES)
def test_committed_handshake_vectors_verify_against_the_library(name: str) -> None:
    assert verify_file(VECTORS, entry_for(VECTORS, name)) == []


def test_generator_reproduces_the_committed_files_byte_for_byte() -> None:
    generated = {vector.name: dump(vector.document) for vector in generate()}
    assert sorted(generated) == sorted(FILES)
    for name, data in generated.items():
        assert data == (VECTORS / name).read_bytes(), name


@pytest.mark.parametrize(
    ("name", "group", "test", "path"),
    [
        (FILES[0], 0, 0, ("outputs", "sk")),
        (FILES[0], 1, 2, ("bundle", "spk_sig")),
        (FILES[1], 0, 4, ("intermediate", "kem_ss")),
        (FILES[1], 0, 9, ("events", 0, "initial_message")),
    ],
)
def test_one_changed_byte_fails_verification_naming_the_tcid(
    tmp_path: Path, name: str, group: int, test: int, path: tuple[Any, ...]
) -> None:
    shutil.copytree(VECTORS, tmp_path, dirs_exist_ok=True)
    document = json.loads((tmp_path / name).read_text())
    case = document["testGroups"][group]["tests"][test]
    node = case
    for key in path[:-1]:
        node = node[key]
    value = node[path[-1]]
    node[path[-1]] = value[:-2] + format(int(value[-2:], 16) ^ 0x01, "02x")
    data = dump(document)
    (tmp_path / name).write_bytes(data)
    entry = {**entry_for(tmp_path, name), "sha256": hashlib.sha256(data).hexdigest()}

    failures = verify_file(tmp_path, entry)

    assert failures
    assert all(line.startswith(f"{name}#{case['tcId']}:") for line in failures)
