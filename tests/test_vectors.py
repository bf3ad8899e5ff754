"""The committed vectors verify, and any changed byte fails naming the file and tcId."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from protocol.vectors import INDEX, verify_file

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
MANIFEST = json.loads((VECTORS / INDEX).read_text())["files"]
# Replaying accumulated.json recomputes 10,000 transcripts (about a minute). It is
# checked by tests/test_accumulated.py (100 by default, all 10,000 under -m slow) and
# by `e2ee vectors verify vectors` in CI, so the per-file tests here leave it out.
ENTRIES = [pytest.param(e, id=e["file"]) for e in MANIFEST if e["file"] != "accumulated.json"]


def _first_hex_value(node: Any, path: list[Any]) -> list[Any] | None:
    """The path of the first non-empty hex string inside a test."""
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        if isinstance(node, str) and len(node) >= 2 and all(c in "0123456789abcdef" for c in node):
            return path
        return None
    for key, child in items:
        found = _first_hex_value(child, [*path, key])
        if found:
            return found
    return None


def test_manifest_lists_files_that_exist() -> None:
    assert MANIFEST, "index.json lists no vector files"
    for entry in MANIFEST:
        assert (VECTORS / entry["file"]).is_file()
        assert (VECTORS / entry["schema"]).is_file()


@pytest.mark.parametrize("entry", ENTRIES)
def test_committed_file_verifies_against_the_library(entry: dict[str, str]) -> None:
    assert verify_file(VECTORS, entry) == []


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_every_file_validates_against_its_schema(entry: dict[str, str]) -> None:
    schema = json.loads((VECTORS / entry["schema"]).read_text())
    document = json.loads((VECTORS / entry["file"]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_changed_byte_in_a_test_fails_naming_its_tcid(
    entry: dict[str, str], tmp_path: Path
) -> None:
    shutil.copytree(VECTORS, tmp_path, dirs_exist_ok=True)
    document = json.loads((tmp_path / entry["file"]).read_text())
    for group in document["testGroups"]:
        for test in group["tests"]:
            if test.get("result") != "valid":
                continue  # a mutated negative may fail for the same reason it already did
            path = _first_hex_value({k: v for k, v in test.items() if k != "comment"}, [])
            if path is None:
                continue
            parent = test
            for key in path[:-1]:
                parent = parent[key]
            value = parent[path[-1]]
            parent[path[-1]] = ("1" if value[0] != "1" else "2") + value[1:]
            (tmp_path / entry["file"]).write_text(json.dumps(document, indent=2) + "\n")
            failures = verify_file(tmp_path, entry)
            assert any(f"{entry['file']}#{test['tcId']}:" in line for line in failures), failures
            return
    pytest.skip("no hex field in any test")


def test_an_unknown_field_is_refused(tmp_path: Path) -> None:
    shutil.copytree(VECTORS, tmp_path, dirs_exist_ok=True)
    entry = MANIFEST[0]
    document = json.loads((tmp_path / entry["file"]).read_text())
    test = document["testGroups"][0]["tests"][0]
    test["unexpected_field"] = "00"
    (tmp_path / entry["file"]).write_text(json.dumps(document, indent=2) + "\n")
    failures = verify_file(tmp_path, entry)
    assert any(f"#{test['tcId']}: schema" in line for line in failures), failures
