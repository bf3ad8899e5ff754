"""``spqr`` vector group ``SpqrTranscript``: five SPQR epochs, two parties (spec/spqr.md §10).

One test: party ``a`` (A2B, the PQXDH initiator) and ``b`` (B2A) start from
``auth_key`` with the default chain limits and replay their recorded
``entropy`` (labels ``spqr_kem_seed`` and ``spqr_encaps_m``). ``events`` in
order:

* ``send``: the party's next message; ``field5`` and ``key`` (its SPQR
  message key) must match, and ``state`` is the party's Braid state after
  it (an intermediate); messages are numbered by ``message`` from 1.
* ``recv``: the party receives message ``message`` (``field5`` given only
  when it is a mutation of that message, with its ``mutation``; a message
  received twice is a replay); ``expect`` is ``ok`` (then the key equals the
  sent one, or there is none for epoch 1, index 0) or an error code, and
  ``state`` is the Braid state after it.

Some messages are never received (loss) and many arrive late (reordering);
every failing receive is followed by the genuine message's successful one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from protocol.errors import ProtocolError
from protocol.randomness import RecordingRandom, ScriptedRandom
from protocol.spqr import pq_ratchet as pr
from protocol.spqr.chain import ChainParams, Direction
from protocol.vectors.common import (
    ENTROPY_LIST,
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorMismatch,
    drbg_for,
    entropy_entries,
    entropy_list,
    expect_equal,
    from_hex,
    mutate,
    obj,
    to_hex,
)
from protocol.vectors.spqr_kem import FAMILY, MUTATION

_UINT: Final = {"type": "integer", "minimum": 0}
_EVENT: Final = obj(
    {
        "op": {"enum": ["send", "recv"]},
        "party": {"enum": ["a", "b"]},
        "message": {"type": "integer", "minimum": 1},
        "state": {"type": "string"},
    },
    {
        "field5": HEX_BYTES,
        "key": HEX_BYTES,
        "expect": {"oneOf": [{"const": "ok"}, ERROR_CODE]},
        "mutation": MUTATION,
    },
)
TRANSCRIPT_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "auth_key": HEX_BYTES,
        "entropy": obj({"a": ENTROPY_LIST, "b": ENTROPY_LIST}),
        "events": {"type": "array", "items": _EVENT},
    }
)
EPOCHS: Final = 5
_MUTATIONS: Final = (
    ({"op": "append", "value": "00"}, "trailing byte"),
    ({"op": "replace", "offset": 0, "length": 1, "value": "00"}, "version 0"),
    ({"op": "truncate", "length": 3}, "cut before the type"),
)


class _Parties:
    """Both parties' SPQR states, advanced only by successful operations."""

    def __init__(self, auth_key: bytes, rngs: Mapping[str, Any]) -> None:
        params = ChainParams()
        self.states = {
            "a": pr.initial_state(auth_key, Direction.A2B, params),
            "b": pr.initial_state(auth_key, Direction.B2A, params),
        }
        self.rngs = rngs

    def send(self, party: str) -> tuple[bytes, bytes]:
        self.states[party], field5, key = pr.send(self.states[party], self.rngs[party])
        return field5, key

    def recv(self, party: str, field5: bytes) -> tuple[str, bytes | None]:
        try:
            self.states[party], key = pr.recv(self.states[party], field5)
        except ProtocolError as exc:
            return exc.code, None
        return "ok", key

    def state(self, party: str) -> str:
        return str(self.states[party].braid.name)

    def epochs(self) -> int:
        return min(s.chain.current_epoch for s in self.states.values())


def _schedule(parties: _Parties, events: list[dict[str, Any]]) -> None:
    """Alternation with bursts, 5% loss and late delivery, until five epochs completed."""
    choice = drbg_for(FAMILY, "transcript-schedule")
    sent: list[tuple[str, bytes, bytes]] = []
    waiting: dict[str, list[int]] = {"a": [], "b": []}
    turn, mutations = 0, 0
    while parties.epochs() < EPOCHS:
        party = "ab"[turn % 2]
        turn += 1
        for _ in range(1 + choice.draw("burst", 1)[0] % 3):
            field5, key = parties.send(party)
            sent.append((party, field5, key))
            events.append(
                {"op": "send", "party": party, "message": len(sent), "state": parties.state(party)}
                | {"field5": to_hex(field5), "key": to_hex(key)}
            )
            if choice.draw("loss", 1)[0] >= 13:  # about 5% lost
                waiting["b" if party == "a" else "a"].append(len(sent))
        receiver = "b" if party == "a" else "a"
        queue = waiting[receiver]
        if len(queue) > 1 and choice.draw("late", 1)[0] % 4 == 0:
            queue.insert(0, queue.pop())  # the newest overtakes the others
        for number in queue:
            genuine = sent[number - 1][1]
            if choice.draw("mutate", 1)[0] % 40 == 0:
                op, comment = _MUTATIONS[mutations % len(_MUTATIONS)]
                mutations += 1
                mutation = {"field": "field5", **op, "description": comment}
                forged = mutate(genuine, mutation)
                code, _ = parties.recv(receiver, forged)
                events.append(
                    {"op": "recv", "party": receiver, "message": number}
                    | {"field5": to_hex(forged), "mutation": mutation}
                    | {"expect": code, "state": parties.state(receiver)}
                )
            code, received = parties.recv(receiver, genuine)
            if code != "ok" or received not in (None, sent[number - 1][2]):
                raise AssertionError(f"genuine message {number} failed: {code}")
            events.append(
                {"op": "recv", "party": receiver, "message": number, "expect": code}
                | {"state": parties.state(receiver)}
            )
            if choice.draw("replay", 1)[0] % 50 == 0:
                code, _ = parties.recv(receiver, genuine)  # a replay: refused by the chain
                events.append(
                    {"op": "recv", "party": receiver, "message": number, "expect": code}
                    | {"state": parties.state(receiver)}
                )
        queue.clear()


def transcript_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    auth_key = drbg_for(FAMILY, "transcript-auth").draw("auth_key", 32)
    rngs = {party: RecordingRandom(drbg_for(FAMILY, f"transcript-{party}")) for party in ("a", "b")}
    events: list[dict[str, Any]] = []
    _schedule(_Parties(auth_key, rngs), events)
    return [
        {
            "tcId": next(ids),
            "comment": f"{EPOCHS} epochs completed, with bursts, loss, reordering and mutations",
            "flags": ["Transcript"],
            "result": "valid",
            "auth_key": to_hex(auth_key),
            "entropy": {party: entropy_list(rng.draws) for party, rng in rngs.items()},
            "events": events,
        }
    ]


def verify_transcript(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    rngs = {party: ScriptedRandom(entropy_entries(test["entropy"][party])) for party in "ab"}
    parties = _Parties(from_hex(test["auth_key"]), rngs)
    sent: dict[int, tuple[bytes, bytes]] = {}
    for position, event in enumerate(test["events"]):
        where = f"event {position}"
        if event["op"] == "send":
            field5, key = parties.send(event["party"])
            expect_equal(f"{where} field5", to_hex(field5), event["field5"])
            expect_equal(f"{where} key", to_hex(key), event["key"])
            sent[event["message"]] = (field5, key)
        else:
            genuine, key = sent[event["message"]]
            field5 = genuine
            if "mutation" in event:
                field5 = mutate(genuine, event["mutation"])
                expect_equal(f"{where} mutated field5", to_hex(field5), event["field5"])
            code, got = parties.recv(event["party"], field5)
            expect_equal(f"{where} result {code}", code, event["expect"])
            if code == "ok" and got not in (None, key):
                raise VectorMismatch(f"{where}: received key differs from the sent key")
        expect_equal(f"{where} state", parties.state(event["party"]), event["state"])
    if parties.epochs() < EPOCHS or any(rng.remaining for rng in rngs.values()):
        raise VectorMismatch("transcript ends before five epochs or leaves entropy unused")
