"""Committed session and state vectors verify, are reproduced exactly, and catch changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from protocol import wire
from protocol.profiles import SIGNAL_V4
from protocol.session.records import SessionRecord
from protocol.spqr.messages import Message, MessageType, decode_message
from protocol.store import load_state
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


def _flip_last_byte(value: str) -> str:
    return value[:-2] + format(int(value[-2:], 16) ^ 1, "02x")


@pytest.mark.parametrize(
    "path",
    [
        ("states", "session"),
        ("events", 2, "plaintext"),
        ("events", 3, "message"),
        ("events", 4, "bytes"),
    ],
)
def test_a_changed_value_of_the_signal_v4_stored_session_makes_verify_fail(
    path: tuple[str | int, ...], tmp_path: Path
) -> None:
    """The mid-epoch signal-v4 record, the skipped message's plaintext, the reply sent after
    reloading and the state dumped after it: a flipped byte in any of them fails its test."""
    name = "state_serialization_test.json"
    shutil.copytree(VECTORS, tmp_path / "vectors")
    document = json.loads((tmp_path / "vectors" / name).read_text())
    group = next(g for g in document["testGroups"] if g["profile"] == "signal-v4")
    test = group["tests"][0]
    node = test
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _flip_last_byte(node[path[-1]])
    (tmp_path / "vectors" / name).write_bytes(dump(document))

    failures = verify_file(tmp_path / "vectors", entry(name))

    assert any(line.startswith(f"{name}#{test['tcId']}:") for line in failures), failures


def test_the_signal_v4_stored_session_is_in_the_middle_of_an_spqr_epoch() -> None:
    """spec/storage.md §8: the record holds SPQR in epoch 2 (HeaderSent) after one completed
    epoch; the skipped message it decrypts carries a Ct1 chunk, its reply an Ek chunk."""
    document = json.loads((VECTORS / "state_serialization_test.json").read_text())
    group = next(g for g in document["testGroups"] if g["profile"] == "signal-v4")
    test = group["tests"][0]
    record = load_state(SessionRecord, bytes.fromhex(test["states"]["session"]))
    events = {event["op"]: event for event in test["events"]}

    def field5(data: str) -> Message:
        header = wire.decode_message(SIGNAL_V4, bytes.fromhex(data)).header
        assert header is not None
        return decode_message(header.pq_ratchet)

    pq = record.current.pq
    assert pq is not None
    assert (pq.braid.epoch, pq.braid.name, pq.chain.current_epoch) == (2, "HeaderSent", 1)
    assert len(record.current.ratchet.mkskipped) == 2
    received, sent = field5(events["decrypt"]["message"]), field5(events["encrypt"]["message"])
    assert (received.epoch, received.type) == (2, MessageType.CT1)
    assert (sent.epoch, sent.type) == (2, MessageType.EK)
