"""The spqr vector family: the committed file replays, and a changed expected value is caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from protocol.errors import ProtocolError
from protocol.vectors import spqr
from protocol.vectors.common import VectorMismatch

_DOC: dict[str, Any] = json.loads((Path(__file__).parents[2] / "vectors" / spqr.FILE).read_text())

# One output per group whose change the verifier must notice: (group type, test index, key path).
_TAMPER = [
    ("Kyber1024Wrap", 0, ["shared_secret"]),
    ("Kyber1024Wrap", 0, ["k_bar"]),
    ("IncrementalMlKem768", 0, ["ct1"]),
    ("IncrementalMlKem768", 0, ["ct2"]),
    ("IncrementalMlKem768", 3, ["error"]),
    ("SpqrChainKdf", 0, ["b2a"]),
    ("SpqrChainKdf", 2, ["message_key"]),
    ("SpqrChainTranscript", 0, ["events", 3, "key"]),
    ("SpqrChainTranscript", 0, ["events", 4, "expect"]),
    ("SpqrAuthenticator", 1, ["mac"]),
    ("SpqrErasure", 1, ["chunks", 40, "data"]),
    ("SpqrMessage", 1, ["encoded"]),
    ("SpqrMessage", 5, ["error"]),
    ("SpqrTranscript", 0, ["events", 0, "field5"]),
    ("SpqrTranscript", 0, ["events", 0, "key"]),
    ("SpqrTranscript", 0, ["events", 3, "expect"]),
    ("SpqrTranscript", 0, ["events", 27, "expect"]),
    ("SpqrTranscript", 0, ["events", 3, "state"]),
    ("SpqrTranscript", 0, ["entropy", "a", 0, "bytes"]),
]


def _group(document: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(g for g in document["testGroups"] if g["type"] == kind)


def test_committed_file_replays() -> None:
    for group in _DOC["testGroups"]:
        for test in group["tests"]:
            spqr.verify_test(spqr.SCHEMA, group, test)


def test_every_negative_names_its_one_mutation() -> None:
    for group in _DOC["testGroups"]:
        for test in group["tests"]:
            if test["result"] == "invalid":
                assert test["mutation"]["field"] and test["mutation_of"] < test["tcId"]


@pytest.mark.parametrize(("kind", "position", "path"), _TAMPER)
def test_a_changed_expected_value_is_caught(kind: str, position: int, path: list[Any]) -> None:
    document = copy.deepcopy(_DOC)
    group = _group(document, kind)
    holder: Any = group["tests"][position]
    for key in path[:-1]:
        holder = holder[key]
    value = holder[path[-1]]
    if path[-1] in ("error", "expect"):
        holder[path[-1]] = "AUTH_FAILED" if value != "AUTH_FAILED" else "MALFORMED_MESSAGE"
    else:
        holder[path[-1]] = ("00" if value[:2] != "00" else "01") + value[2:]
    with pytest.raises((VectorMismatch, ProtocolError)):
        spqr.verify_test(spqr.SCHEMA, group, group["tests"][position])
