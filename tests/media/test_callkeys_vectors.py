"""The committed callkeys vectors verify, are reproduced byte for byte, and any change is
caught naming its tcId (spec/media.md §9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from protocol.vectors import INDEX, verify_file
from protocol.vectors.callkeys import SCHEMAS, verify_test
from protocol.vectors.callkeys_scenarios import generate
from protocol.vectors.callkeys_transcript import FILE, SCHEMA
from protocol.vectors.common import VectorMismatch, dump

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
ENTRY: dict[str, Any] = next(
    entry for entry in json.loads((VECTORS / INDEX).read_text())["files"] if entry["file"] == FILE
)
DOCUMENT: dict[str, Any] = json.loads((VECTORS / FILE).read_text())
ENCODING, TRANSCRIPTS, CONTRIBUTORY = DOCUMENT["testGroups"]


def _test(document: dict[str, Any], tc_id: int) -> dict[str, Any]:
    tests = (test for group in document["testGroups"] for test in group["tests"])
    return next(test for test in tests if test["tcId"] == tc_id)


def _by_flag(flag: str) -> dict[str, Any]:
    tests = TRANSCRIPTS["tests"] + CONTRIBUTORY["tests"]
    return next(test for test in tests if flag in test["flags"])


def test_committed_callkeys_vectors_verify() -> None:
    assert verify_file(VECTORS, ENTRY) == []


def test_generator_reproduces_the_committed_file_byte_for_byte() -> None:
    (vector,) = generate()
    assert dump(vector.document) == (VECTORS / FILE).read_bytes()
    assert dump(SCHEMAS[SCHEMA]) == (VECTORS / "schemas" / SCHEMA).read_bytes()


def _path_in(test: dict[str, Any], flag_path: tuple[str | int, ...]) -> tuple[Any, str | int]:
    node: Any = test
    for step in flag_path[:-1]:
        node = node[step]
    return node, flag_path[-1]


@pytest.mark.parametrize(
    ("flag", "path"),
    [
        ("Reorder", ("frames", 2, "frame")),  # a frame's ciphertext
        ("Reorder", ("media_keys", 0, "encoded")),  # a MediaKey's bytes
        ("TamperedTag", ("frames", 1, "frame")),  # the mutated frame of a negative
        ("CatchUp", ("frames", 1, "base_key")),  # an intermediate: a ratcheted base key
        ("Join", ("entropy", "alice", 0, "bytes")),  # a sender's recorded randomness
        ("Contributory", ("callee_base_key",)),  # a 1:1 call key
        ("Contributory", ("intermediate", "dh")),  # its DH intermediate
        ("TamperedAnswer", ("answer",)),  # the mutated answer of a negative
    ],
)
def test_a_changed_byte_fails_naming_the_tcid(
    tmp_path: Path, flag: str, path: tuple[str | int, ...]
) -> None:
    shutil.copytree(VECTORS, tmp_path, dirs_exist_ok=True)
    document = json.loads((tmp_path / FILE).read_text())
    tc_id = _by_flag(flag)["tcId"]
    node, key = _path_in(_test(document, tc_id), path)
    value = node[key]
    node[key] = f"{int(value[:2], 16) ^ 0x01:02x}{value[2:]}"
    (tmp_path / FILE).write_bytes(dump(document))
    failures = verify_file(tmp_path, {**ENTRY, "sha256": None})
    assert failures, "the changed byte went unnoticed"
    assert all(f"{FILE}#{tc_id}:" in line for line in failures if "sha256" not in line)


def test_a_changed_expected_result_fails() -> None:
    test = json.loads(json.dumps(_by_flag("Replay")))
    failing = next(event for event in test["events"] if event.get("expect", "ok") != "ok")
    failing["expect"] = "ok"
    with pytest.raises(VectorMismatch):
        verify_test(SCHEMA, TRANSCRIPTS, test)


def test_every_negative_transcript_fails_once_then_succeeds() -> None:
    for test in TRANSCRIPTS["tests"]:
        results = [event["expect"] for event in test["events"] if "expect" in event]
        failures = [i for i, result in enumerate(results) if result != "ok"]
        assert len(failures) == (test["result"] == "invalid"), test["tcId"]
        assert results[-1] == "ok", test["tcId"]
        mutated = [e for e in test["media_keys"] + test["frames"] if "mutation_of" in e]
        assert len(mutated) <= 1, test["tcId"]


@pytest.mark.parametrize(("group", "field"), [(ENCODING, "encoded"), (CONTRIBUTORY, "answer")])
def test_every_negative_encoding_is_one_mutation_of_a_valid_test(
    group: dict[str, Any], field: str
) -> None:
    valid = {test["tcId"] for test in group["tests"] if test["result"] == "valid"}
    negatives = [test for test in group["tests"] if test["result"] == "invalid"]
    assert negatives
    for test in negatives:
        assert test["mutation_of"] in valid and test["mutation"]["field"] == field


@pytest.mark.parametrize(
    "flag",
    ["ReplayWindow", "CatchUpLimit", "CounterLimit", "GracePeriod", "StepRetention"],
)
def test_each_limit_is_exercised_at_its_boundary(flag: str) -> None:
    # The files record the limits they were generated with; a boundary test
    # names values exactly at and just beyond the limit.
    limits = TRANSCRIPTS["limits"]
    test = _by_flag(flag)
    positions = {(f["step"], f["ctr"]) for f in test["frames"]}
    times = {event["at"] for event in test["events"]}
    expected = {
        "ReplayWindow": {
            (0, 200),
            (0, 200 - limits["replay_window"] + 1),
            (0, 200 - limits["replay_window"]),
        },
        "CatchUpLimit": {(limits["max_catch_up"], 0), (limits["max_catch_up"] + 1, 0)},
        "CounterLimit": {(0, 2**64 - 1), (1, 0)},
        "StepRetention": {(limits["max_retained_steps"], 0), (0, 1)},
    }
    if flag == "GracePeriod":
        assert limits["rotation_delay"] + limits["grace_period"] in times
    else:
        assert expected[flag] <= positions
