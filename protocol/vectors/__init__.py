"""Test-vector generator and verifier (vectors/README.md; spec/vectors.md §1).

``generate_all(out)`` writes every family's files, the JSON Schemas and the
``index.json`` manifest; the bytes are identical on every run.
``verify_all(folder)`` checks the manifest digests, validates each file
against its schema, and replays every test against the library, returning
one line per failure, each naming ``file#tcId``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from protocol.errors import ProtocolError
from protocol.progress import Progress, silent
from protocol.vectors.common import VectorFile, VectorMismatch, common_schema, dump

# Family modules under protocol.vectors, in the order their files are written.
FAMILIES: tuple[str, ...] = (
    "xeddsa",
    "handshake",
    "handshake_v4",
    "ratchet",
    "sframe",
    "accumulated",
    "session",
    "callkeys",
    "spqr",
    "sender_keys",
    "fingerprint",
)

INDEX = "index.json"
SCHEMA_DIR = "schemas"


def _families() -> Iterator[ModuleType]:
    for name in FAMILIES:
        yield importlib.import_module(f"protocol.vectors.{name}")


def generate_files(
    progress: Progress = silent,
) -> tuple[list[VectorFile], dict[str, dict[str, Any]]]:
    """Every vector file and every schema, in memory; ``progress`` after each family."""
    files: list[VectorFile] = []
    schemas: dict[str, dict[str, Any]] = {"common.json": common_schema()}
    for done, family in enumerate(_families(), start=1):
        files.extend(family.generate())
        schemas.update(family.SCHEMAS)
        progress(done, len(FAMILIES))
    return files, schemas


def generate_all(out: Path, progress: Progress = silent) -> list[Path]:
    """Write all vectors, schemas and the manifest under ``out``; return the paths."""
    files, schemas = generate_files(progress)
    (out / SCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas.items():
        path = out / SCHEMA_DIR / name
        path.write_bytes(dump(schema))
        written.append(path)
    index = []
    for vector in files:
        data = dump(vector.document)
        path = out / vector.name
        path.write_bytes(data)
        written.append(path)
        index.append(
            {
                "file": vector.name,
                "schema": f"{SCHEMA_DIR}/{vector.schema}",
                "algorithm": vector.document["algorithm"],
                "numberOfTests": vector.document["numberOfTests"],
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest = {"generator": "protocol.vectors", "files": index}
    (out / INDEX).write_bytes(dump(manifest))
    written.append(out / INDEX)
    return written


def _family_for(schema: str) -> ModuleType | None:
    for family in _families():
        if schema in family.SCHEMAS:
            return family
    return None


def _test_at(document: Mapping[str, Any], path: list[Any]) -> str:
    """Name the tcId a JSON-Schema error path points into, if any."""
    try:
        if path[0] == "testGroups" and path[2] == "tests":
            return str(document["testGroups"][path[1]]["tests"][path[3]]["tcId"])
    except (IndexError, KeyError, TypeError):
        pass
    return "-"


def _schema_failures(name: str, document: Any, schema: Mapping[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    failures = []
    for error in validator.iter_errors(document):
        # With oneOf/anyOf the top error sits on the group; its sub-errors reach the test.
        deepest = max(_error_tree(error), key=lambda e: len(e.absolute_path))
        where = _test_at(document, list(deepest.absolute_path))
        failures.append(f"{name}#{where}: schema: {deepest.message[:200]}")
    return failures


def _error_tree(error: Any) -> Iterator[Any]:
    yield error
    for child in error.context or ():
        yield from _error_tree(child)


def verify_file(folder: Path, entry: Mapping[str, Any]) -> list[str]:
    """Verify one manifest entry; returns failure lines."""
    name = str(entry.get("file"))
    path = folder / name
    try:
        data = path.read_bytes()
        document = json.loads(data)
    except (OSError, ValueError) as exc:
        return [f"{name}#-: cannot read: {exc.__class__.__name__}"]
    failures: list[str] = []
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        failures.append(f"{name}#-: sha256 differs from {INDEX}")
    schema_name = str(entry.get("schema", "")).removeprefix(f"{SCHEMA_DIR}/")
    family = _family_for(schema_name)
    if family is None or not isinstance(document, dict) or document.get("schema") != schema_name:
        return [*failures, f"{name}#-: unknown schema {schema_name!r}"]
    schema_errors = _schema_failures(name, document, family.SCHEMAS[schema_name])
    failures.extend(schema_errors)
    if schema_errors:
        return failures
    count = sum(len(group["tests"]) for group in document["testGroups"])
    if count != document["numberOfTests"]:
        failures.append(f"{name}#-: numberOfTests is {document['numberOfTests']}, found {count}")
    for group in document["testGroups"]:
        for test in group["tests"]:
            try:
                family.verify_test(schema_name, group, test)
            except (VectorMismatch, ProtocolError) as exc:
                failures.append(f"{name}#{test['tcId']}: {exc.__class__.__name__}: {exc}")
            except (KeyError, IndexError, TypeError, ValueError, StopIteration) as exc:
                # A test the schema lets through but the family cannot read.
                failures.append(f"{name}#{test['tcId']}: unreadable test: {exc.__class__.__name__}")
    return failures


def verify_all(folder: Path, progress: Progress = silent) -> list[str]:
    """Verify every file the manifest lists, and that every family schema has a file.

    ``progress`` is called after each file.
    """
    try:
        manifest = json.loads((folder / INDEX).read_bytes())
        entries = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return [f"{INDEX}#-: missing or malformed manifest"]
    failures: list[str] = []
    listed = {str(entry.get("schema", "")).removeprefix(f"{SCHEMA_DIR}/") for entry in entries}
    for family in _families():
        missing = sorted(set(family.SCHEMAS) - listed)
        failures.extend(f"{INDEX}#-: no file follows {name}" for name in missing)
    for done, entry in enumerate(entries, start=1):
        failures.extend(verify_file(folder, entry))
        progress(done, len(entries))
    return failures
