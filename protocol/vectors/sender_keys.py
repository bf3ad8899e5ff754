"""The ``sender_keys`` vector family: libsignal's group messages (spec/sender-keys.md §7).

One file, ``sender_keys_test.json`` (schema ``sender_keys_schema_v1.json``):

* ``SenderKeyChain``: one chain step: from ``chain_key`` the message key
  ``seed``, its ``iv`` and ``cipher_key`` ("WhisperGroup") and the
  ``next_chain_key`` (spec/sender-keys.md §2).
* ``SenderKeyTranscript``: one sender and one member. The sender's draws
  are ``entropy`` (``sender_chain_id``, ``sender_chain_key``,
  ``sender_signing_key``, one ``xeddsa_z`` per message), replayed in order;
  ``events`` run in order: ``create`` (the sender's distribution message for
  ``distribution_id``, which must equal ``distribution``), ``send`` (the
  sender's SenderKeyMessage, which must equal ``message``), ``process``
  (the member processes ``distribution``) and ``recv`` (the member decrypts
  ``message``: ``plaintext`` or the ``expect``-ed error code). A ``recv`` or
  ``process`` whose bytes are one documented mutation of an earlier event's
  names it in ``of_event`` with the ``mutation``; one the sender could not
  produce in a short transcript (a message thousands of iterations ahead,
  signed by the sender's key) says so in ``description``. Every failing
  event is followed by a succeeding one, which shows the failure changed
  nothing.

These values pin this implementation; the live tests (tests/interop/) show
that libsignal reads what it writes and the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, Final

from protocol import sender_keys
from protocol.errors import ProtocolError
from protocol.group_cipher import (
    SENDER_KEYS,
    create_distribution_message,
    group_decrypt,
    group_encrypt,
    process_distribution_message,
)
from protocol.randomness import RecordingRandom, ScriptedRandom
from protocol.sender_keys import MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS, SenderChainKey
from protocol.session import Address
from protocol.store import MemoryStore, load_state
from protocol.vectors.common import (
    ENTROPY_LIST,
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorFile,
    VectorMismatch,
    drbg_for,
    entropy_entries,
    entropy_list,
    envelope,
    expect_equal,
    from_hex,
    mutate,
    obj,
    test_ids,
    to_hex,
    typed_groups_schema,
)

FAMILY: Final = "sender_keys"
FILE: Final = "sender_keys_test.json"
SCHEMA: Final = "sender_keys_schema_v1.json"
SENDER: Final = Address("sender", 1)

_UINT: Final = {"type": "integer", "minimum": 0}
_MUTATION: Final = obj(
    {"field": {"type": "string"}, "op": {"type": "string"}},
    {"offset": _UINT, "mask": HEX_BYTES, "length": _UINT, "value": HEX_BYTES},
)
CHAIN_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "iteration": _UINT,
        "chain_key": HEX_BYTES,
        "seed": HEX_BYTES,
        "iv": HEX_BYTES,
        "cipher_key": HEX_BYTES,
        "next_chain_key": HEX_BYTES,
    }
)
_EVENT: Final = obj(
    {"op": {"enum": ["create", "send", "process", "recv"]}},
    {
        "distribution_id": HEX_BYTES,
        "distribution": HEX_BYTES,
        "plaintext": HEX_BYTES,
        "message": HEX_BYTES,
        "expect": {"oneOf": [{"const": "ok"}, ERROR_CODE]},
        "of_event": _UINT,
        "mutation": _MUTATION,
        "description": {"type": "string"},
    },
)
TRANSCRIPT_TEST: Final = obj(
    {**TEST_ENVELOPE, "entropy": ENTROPY_LIST, "events": {"type": "array", "items": _EVENT}}
)
_GROUPS: Final = {"SenderKeyChain": CHAIN_TEST, "SenderKeyTranscript": TRANSCRIPT_TEST}

HEADER: Final = [
    "libsignal sender keys (group messages), version byte 0x33: see spec/sender-keys.md",
    "and vectors/README.md. Bytes are lowercase hex.",
]
NOTES: Final = {
    "Valid": {"bugType": "FUNCTIONALITY", "description": "a valid computation"},
    "Transcript": {
        "bugType": "FUNCTIONALITY",
        "description": "events in order; a failing event is followed by a succeeding one",
    },
}


# --- SenderKeyChain -----------------------------------------------------------------------


def _chain_output(chain_key: bytes, iteration: int) -> dict[str, str]:
    chain = SenderChainKey(iteration, chain_key)
    message_key = chain.message_key()
    iv, cipher_key = message_key.keys()
    return {
        "seed": to_hex(message_key.seed),
        "iv": to_hex(iv),
        "cipher_key": to_hex(cipher_key),
        "next_chain_key": to_hex(chain.next().chain_key),
    }


def chain_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    drbg = drbg_for(FAMILY, "chain")
    tests = []
    for iteration in (0, 1, 2**32 - 2):
        chain_key = drbg.draw("sender_chain_key", 32)
        test: dict[str, Any] = {
            "tcId": next(ids),
            "comment": f"one chain step at iteration {iteration}",
            "flags": ["Valid"],
            "result": "valid",
            "iteration": iteration,
            "chain_key": to_hex(chain_key),
        }
        tests.append(test | _chain_output(chain_key, iteration))
    return tests


def verify_chain(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    for name, value in _chain_output(from_hex(test["chain_key"]), test["iteration"]).items():
        expect_equal(name, value, test[name])


# --- SenderKeyTranscript --------------------------------------------------------------------


class _Pair:
    """A sender and a member, each with its own store, under one source of draws."""

    def __init__(self, rng: Any) -> None:
        self.rng = rng
        self.sender, self.member = MemoryStore(), MemoryStore()

    def run(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Run one event; the outputs it produced (bytes as hex) and its result code."""
        op = event["op"]
        if op == "create":
            dist_id = from_hex(event["distribution_id"])
            data = create_distribution_message(self.sender, SENDER, dist_id, self.rng)
            return {"distribution": to_hex(data)}
        if op == "send":
            dist_id, plaintext = from_hex(event["distribution_id"]), from_hex(event["plaintext"])
            data = group_encrypt(self.sender, SENDER, dist_id, plaintext, self.rng)
            return {"message": to_hex(data)}
        try:
            if op == "process":
                process_distribution_message(self.member, SENDER, from_hex(event["distribution"]))
                return {"expect": "ok"}
            plaintext = group_decrypt(self.member, SENDER, from_hex(event["message"]))
            return {"expect": "ok", "plaintext": to_hex(plaintext)}
        except ProtocolError as exc:
            return {"expect": exc.code}


class _Script:
    """Builds one transcript test by running its events."""

    def __init__(self, name: str) -> None:
        self.recording = RecordingRandom(drbg_for(FAMILY, name))
        self.extra = drbg_for(FAMILY, f"{name} crafted")  # draws of crafted messages only
        self.pair = _Pair(self.recording)
        self.events: list[dict[str, Any]] = []

    def add(self, event: dict[str, Any]) -> dict[str, Any]:
        event |= self.pair.run(event)
        self.events.append(event)
        return event

    def create(self, dist_id: bytes) -> dict[str, Any]:
        return self.add({"op": "create", "distribution_id": to_hex(dist_id)})

    def send(self, dist_id: bytes, plaintext: bytes) -> dict[str, Any]:
        return self.add(
            {"op": "send", "distribution_id": to_hex(dist_id), "plaintext": to_hex(plaintext)}
        )

    def process(self, distribution: str, **extra: Any) -> dict[str, Any]:
        return self.add({"op": "process", "distribution": distribution, **extra})

    def recv(self, message: str, **extra: Any) -> dict[str, Any]:
        return self.add({"op": "recv", "message": message, **extra})

    def mutated(self, of: dict[str, Any], mutation: dict[str, Any]) -> dict[str, Any]:
        field = mutation["field"]
        value = to_hex(mutate(from_hex(of[field]), mutation))
        index = self.events.index(of)
        op = "recv" if field == "message" else "process"
        return self.add({"op": op, field: value, "of_event": index, "mutation": mutation})

    def crafted_ahead(self, dist_id: bytes, jump: int) -> dict[str, Any]:
        """A message signed by the sender's key, ``jump`` iterations past its chain."""
        data = self.pair.sender.get(SENDER_KEYS, self.pair.sender.keys(SENDER_KEYS)[0])
        assert data is not None
        state = load_state(sender_keys.SenderKeyRecord, data).states[0]
        chain = state.chain
        for _ in range(jump):
            chain = chain.next()
        ahead = dataclasses.replace(state, chain=chain)
        _, message = sender_keys.encrypt(dist_id, ahead, b"ahead", self.extra)
        description = f"signed by the sender at {jump} iterations past its chain"
        return self.recv(to_hex(message), description=description)

    def test(self, tc_id: int, comment: str) -> dict[str, Any]:
        return {
            "tcId": tc_id,
            "comment": comment,
            "flags": ["Transcript"],
            "result": "valid",
            "entropy": entropy_list(self.recording.draws),
            "events": self.events,
        }


_GROUP_ID: Final = bytes.fromhex("d1d1d1d1700011ebb32a33b8a8a487a6")
_OTHER_ID: Final = bytes.fromhex("00000000000040008000000000000001")


def _in_any_order(s: _Script) -> str:
    distribution = s.create(_GROUP_ID)["distribution"]
    s.process(distribution)
    sent = [s.send(_GROUP_ID, f"group message {i}".encode())["message"] for i in range(3)]
    for i in (2, 0, 1):
        s.recv(sent[i])
    return "three messages received out of order (2, 0, 1)"


def _replay(s: _Script) -> str:
    s.process(s.create(_GROUP_ID)["distribution"])
    first = s.send(_GROUP_ID, b"once")["message"]
    s.recv(first)
    s.recv(first)
    s.recv(s.send(_GROUP_ID, b"next")["message"])
    return "ReplayedMessage: the first message twice (DUPLICATE_MESSAGE), then the next"


def _bad_signature(s: _Script) -> str:
    s.process(s.create(_GROUP_ID)["distribution"])
    sent = s.send(_GROUP_ID, b"signed")
    length = len(from_hex(sent["message"]))
    s.mutated(sent, {"field": "message", "op": "xor", "offset": length - 1, "mask": "01"})
    s.mutated(sent, {"field": "message", "op": "xor", "offset": length - 70, "mask": "80"})
    s.recv(sent["message"])
    return "BadSignature: a signature byte, then a ciphertext byte flipped, then the genuine one"


def _too_far_ahead(s: _Script) -> str:
    s.process(s.create(_GROUP_ID)["distribution"])
    s.crafted_ahead(_GROUP_ID, MAX_FORWARD_JUMPS + 1)
    s.crafted_ahead(_GROUP_ID, MAX_FORWARD_JUMPS)
    return "TooFarAhead: 25,001 iterations ahead (TOO_MANY_SKIPPED), then exactly 25,000"


def _unknown_distribution(s: _Script) -> str:
    s.process(s.create(_GROUP_ID)["distribution"])
    s.create(_OTHER_ID)
    s.recv(s.send(_OTHER_ID, b"another group")["message"])
    s.recv(s.send(_GROUP_ID, b"this group")["message"])
    return "UnknownDistributionId: a message for a distribution never processed (NO_SESSION)"


def _stored_keys(s: _Script) -> str:
    s.process(s.create(_GROUP_ID)["distribution"])
    oldest, kept = (s.send(_GROUP_ID, p)["message"] for p in (b"oldest", b"kept"))
    s.crafted_ahead(_GROUP_ID, MAX_MESSAGE_KEYS - 1)  # iteration 2001: keys 1..2000 kept
    s.recv(oldest)
    s.recv(kept)
    return "StoredKeysBound: 2,000 skipped keys kept; the oldest reads as DUPLICATE_MESSAGE"


def _bad_distribution(s: _Script) -> str:
    created = s.create(_GROUP_ID)
    s.mutated(
        created, {"field": "distribution", "op": "replace", "offset": 0, "length": 1, "value": "44"}
    )
    s.mutated(created, {"field": "distribution", "op": "truncate", "length": 95})
    s.process(created["distribution"])
    s.recv(s.send(_GROUP_ID, b"after")["message"])
    return "BadDistribution: version 0x44 (UNSUPPORTED_VERSION), truncated (MALFORMED_MESSAGE)"


_SCENARIOS: Final = (
    _in_any_order,
    _replay,
    _bad_signature,
    _too_far_ahead,
    _unknown_distribution,
    _stored_keys,
    _bad_distribution,
)


def transcript_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    tests = []
    for scenario in _SCENARIOS:
        tc_id = next(ids)
        script = _Script(f"transcript {tc_id}")
        comment = scenario(script)
        tests.append(script.test(tc_id, comment))
    return tests


def verify_transcript(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    rng = ScriptedRandom(entropy_entries(test["entropy"]))
    pair = _Pair(rng)
    events = test["events"]
    for position, event in enumerate(events):
        if "of_event" in event:
            original = events[event["of_event"]]
            field = event["mutation"]["field"]
            expected = mutate(from_hex(original[field]), event["mutation"])
            expect_equal(f"event {position} mutated {field}", from_hex(event[field]), expected)
        for name, value in pair.run(event).items():
            expect_equal(f"event {position} {name}", value, event.get(name))
    rng.assert_exhausted()


# --- The family ------------------------------------------------------------------------------


SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    SCHEMA: typed_groups_schema("libsignal sender-key vectors", _GROUPS)
}


def generate() -> list[VectorFile]:
    """The sender_keys family's one file (identical on every run)."""
    ids = test_ids()
    groups = [
        {"type": "SenderKeyChain", "tests": chain_tests(ids)},
        {"type": "SenderKeyTranscript", "tests": transcript_tests(ids)},
    ]
    document = envelope(
        algorithm="SENDER-KEYS-LIBSIGNAL-V3",
        schema=SCHEMA,
        header=HEADER,
        notes=NOTES,
        groups=groups,
    )
    return [VectorFile(FILE, SCHEMA, document)]


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one sender_keys test against the library."""
    if schema_name != SCHEMA or group.get("type") not in _GROUPS:
        raise VectorMismatch(f"unknown schema or group {schema_name!r}")
    (verify_chain if group["type"] == "SenderKeyChain" else verify_transcript)(group, test)


__all__ = ["SCHEMAS", "generate", "verify_test"]
