"""Session and state-serialization vectors (spec/session.md §8, spec/storage.md §8).

``session_<profile>_test.json``: two devices made from recorded entropy, the
initiator's session from the responder's first prekey bundle, and the first
messages both ways through ``SessionManager`` (prekey messages until the
responder answers, out-of-order delivery, then normal messages). Negative
tests change one message by one recorded ``mutation``; the failing receive
is followed by a successful one, which proves that nothing was consumed.

``state_serialization_test.json``: a stored ``SessionRecord`` (with skipped
message keys) and a ``DeviceRecord`` as bytes; loading them back must give
the same next decrypt and encrypt outputs and the same bytes again. Negative
tests: a corrupted byte and a truncation (STATE_CORRUPT) and another format
version (UNSUPPORTED_VERSION), each followed by a successful load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from protocol import pqxdh, triple_ratchet, wire
from protocol.prekeys import KemPrekey
from protocol.profiles import PROFILES, SIGNAL_V4, Profile, get_profile
from protocol.protobuf import read_fields, write_field
from protocol.randomness import Random, RecordingRandom, ScriptedRandom
from protocol.session import Address, SessionManager
from protocol.session.records import DEVICE, KEM_PREKEYS, SESSIONS, DeviceRecord, SessionRecord
from protocol.store import FORMAT_VERSION, MemoryStore, dump_state, load_state
from protocol.vectors import kem_pins
from protocol.vectors.common import (
    ACTORS,
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
    file_schema,
    from_hex,
    mutate,
    obj,
    outcome,
    plaintext_of,
    test_ids,
)
from protocol.vectors.kem_pins import Encapsulator

FAMILY: Final = "session"
SESSION_SCHEMA: Final = "session_transcript_schema_v1.json"
STATE_SCHEMA: Final = "state_serialization_schema_v3.json"
PINS_FILE: Final = Path(__file__).with_name("session_kem_pins.json")
ADDRESSES: Final = {"initiator": Address("initiator", 1), "responder": Address("responder", 1)}
ONE_TIME_PREKEYS: Final = 2
KEM_ONE_TIME_PREKEYS: Final = 1
NOW: Final = 0

# --- Schemas ------------------------------------------------------------------------------

_ADDRESS = obj({"user": {"type": "string"}, "device": {"type": "integer", "minimum": 0}})
_OFFSET: Final = {"type": "integer", "minimum": 0}
_MESSAGE_MUTATION = obj(
    {"field": {"const": "bytes"}, "op": {"enum": ["xor", "truncate", "replace"]}},
    {"offset": _OFFSET, "mask": HEX_BYTES, "length": _OFFSET, "value": HEX_BYTES},
)
# The profiles with session transcripts: every Double Ratchet profile and signal-v4.
SESSION_PROFILES: Final = (*PROFILES.values(), SIGNAL_V4)
_STATE_MUTATION = obj(
    {"field": {"const": "bytes"}, "op": {"enum": ["xor", "truncate", "replace"]}},
    {"offset": _OFFSET, "mask": HEX_BYTES, "length": _OFFSET, "value": HEX_BYTES},
)
_MESSAGE = obj(
    {
        "id": {"type": "string"},
        "sender": {"enum": list(ACTORS)},
        "plaintext": HEX_BYTES,
        "kind": {"enum": ["prekey", "normal"]},
        "bytes": HEX_BYTES,
    },
    {"mutation_of": {"type": "string"}, "mutation": _MESSAGE_MUTATION},
)
_SESSION_EVENT = obj(
    {"op": {"enum": ["send", "recv"]}, "actor": {"enum": list(ACTORS)}, "msg": {"type": "string"}},
    {"expect": {"anyOf": [{"const": "ok"}, ERROR_CODE]}},
)
_SESSION_TEST = obj(
    {
        **TEST_ENVELOPE,
        "entropy": obj({actor: ENTROPY_LIST for actor in ACTORS}),
        "kem_encapsulation": {
            "anyOf": [{"type": "null"}, obj({"kem_ct": HEX_BYTES, "kem_ss": HEX_BYTES})]
        },
        "bundle": HEX_BYTES,
        "identity_keys": obj({actor: HEX_BYTES for actor in ACTORS}),
        "safety_number": {"type": "string", "pattern": "^[0-9]{60}$"},
        "messages": {"type": "array", "items": _MESSAGE},
        "events": {"type": "array", "items": _SESSION_EVENT},
    }
)
_SESSION_GROUP = {
    "type": {"const": "SessionTranscript"},
    "profile": {"enum": sorted(p.name for p in SESSION_PROFILES)},
    "handshake": {"enum": ["X3DH", "PQXDH"]},
    "kem": {"anyOf": [{"type": "null"}, {"type": "string"}]},
    "aead": {"type": "string"},
    "wire": {"type": "string"},
    "initiator": _ADDRESS,
    "responder": _ADDRESS,
    "responder_one_time_prekeys": {"type": "integer"},
    "responder_kem_one_time_prekeys": {"type": "integer"},
    "now": {"type": "integer"},
}
_STATE_EVENT = obj(
    {"op": {"enum": ["load", "decrypt", "encrypt", "dump"]}},
    {
        "state": {"type": "string"},
        "expect": {"anyOf": [{"const": "ok"}, ERROR_CODE]},
        "message": HEX_BYTES,
        "plaintext": HEX_BYTES,
        "entropy": ENTROPY_LIST,
        "bytes": HEX_BYTES,
    },
)
_STATE_TEST = obj(
    {
        **TEST_ENVELOPE,
        "kind": {"enum": ["SessionRecord", "DeviceRecord"]},
        "states": {"type": "object", "additionalProperties": HEX_BYTES},
        "events": {"type": "array", "items": _STATE_EVENT},
    },
    {"mutation": _STATE_MUTATION},
)
_STATE_GROUP = {
    "type": {"const": "StateSerialization"},
    "profile": {"enum": sorted(p.name for p in SESSION_PROFILES)},
    "format_version": {"const": FORMAT_VERSION},
    "envelope": {"type": "string"},
}

SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    SESSION_SCHEMA: file_schema("Session transcripts", _SESSION_GROUP, _SESSION_TEST),
    STATE_SCHEMA: file_schema("State serialization", _STATE_GROUP, _STATE_TEST),
}

NOTES: Final = {
    "TamperedInitialMessage": {
        "bugType": "AUTH_BYPASS",
        "description": "A flipped ciphertext byte in the first prekey message must fail "
        "authentication without consuming the one-time prekeys; the intact message then works.",
    },
    "ReplayedInitialMessage": {
        "bugType": "AUTH_BYPASS",
        "description": "A prekey message delivered twice names the existing session by its base "
        "key and is a duplicate there; it must not create a second session.",
    },
    "WrongVersion": {
        "bugType": "MALFORMED_INPUT",
        "description": "Another version byte is UNSUPPORTED_VERSION, never AUTH_FAILED.",
    },
    "Truncated": {"bugType": "MALFORMED_INPUT", "description": "A truncated input is refused."},
    "CorruptState": {
        "bugType": "MALFORMED_INPUT",
        "description": "A stored state with a changed byte is refused whole (STATE_CORRUPT).",
    },
    "UnknownStateVersion": {
        "bugType": "MALFORMED_INPUT",
        "description": "A stored state of another format version is UNSUPPORTED_VERSION.",
    },
}
# The signal-v4 file's notes: NOTES and its own flags.
V4_NOTES: Final = {
    **NOTES,
    "TamperedPqRatchet": {
        "bugType": "AUTH_BYPASS",
        "description": "signal-v4: a changed byte of SignalMessage field 5 (pq_ratchet, the SPQR "
        "message) must fail, SPQR's state included unchanged; the genuine message then works.",
    },
    "StrippedSpqr": {
        "bugType": "MALFORMED_INPUT",
        "description": "signal-v4: a message whose field 5 was removed is refused (SPQR is "
        "mandatory); the genuine message then works.",
    },
    "ReplayedWithChangedPqRatchet": {
        "bugType": "MALFORMED_INPUT",
        "description": "signal-v4: field 5 changed to an SPQR epoch out of range is SPQR's "
        "refusal (MALFORMED_MESSAGE) on a message not yet delivered, and the same bytes after "
        "the genuine message are DUPLICATE_MESSAGE: the Double Ratchet's key is looked up "
        "before SPQR reads field 5, in libsignal's order (spec/spqr.md §13).",
    },
}

# --- Session transcripts: generation --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    flag: str | None
    comment: str
    events: tuple[str, ...]
    mutations: Mapping[str, tuple[str, str]]  # mutated id -> (original id, mutation kind)


_BASE: Final = (
    "send initiator a0",
    "send initiator a1",
    "recv responder a1",
    "recv responder a0",
    "send responder b0",
    "recv initiator b0",
    "send initiator a2",
    "recv responder a2",
)
CASES: Final = (
    Case(None, "handshake, two prekey messages delivered in reverse, answers both ways", _BASE, {}),
    Case(
        "TamperedInitialMessage",
        "a ciphertext byte of the first prekey message flipped",
        ("send initiator a0", "recv responder a0x", "recv responder a0", *_BASE[4:6]),
        {"a0x": ("a0", "xor")},
    ),
    Case(
        "ReplayedInitialMessage",
        "the first prekey message delivered twice",
        (
            "send initiator a0",
            "recv responder a0",
            "recv responder a0",
            "send initiator a1",
            "recv responder a1",
        ),
        {},
    ),
    Case(
        "WrongVersion",
        "the version byte of the first prekey message changed",
        ("send initiator a0", "recv responder a0v", "recv responder a0"),
        {"a0v": ("a0", "version")},
    ),
    Case(
        "Truncated",
        "the last byte of the first prekey message removed",
        ("send initiator a0", "recv responder a0t", "recv responder a0"),
        {"a0t": ("a0", "truncate")},
    ),
)
# Cases of the libsignal framing only, after the shared ones (spec/wire.md §3.4):
# what other honest libsignal writers send must be accepted.
SIGNAL_CASES: Final = (
    Case(
        None,
        "the first prekey message with its fields in the order 5, 1, 6, 2, 3, 4, as "
        "libsignal-protocol-javascript writes them (the mask is the xor of the two orders)",
        ("send initiator a0", "recv responder a0r", *_BASE[4:6]),
        {"a0r": ("a0", "reorder")},
    ),
    Case(
        None,
        "the first prekey message with version byte 0x34, as libsignal 0.2x writes it",
        ("send initiator a0", "recv responder a0w", *_BASE[4:6]),
        {"a0w": ("a0", "version34")},
    ),
)
# Cases of signal-v4 only (spec/spqr.md §13): five SPQR epochs of strict
# alternation (an epoch completes about every 87 messages), then the SPQR
# field tampered with and stripped, each followed by the genuine message.
_V4_ROUNDS: Final = 240
V4_CASES: Final = (
    Case(
        None,
        "480 strictly alternating messages: SPQR epochs advance to 6 (five completed)",
        tuple(
            line
            for n in range(_V4_ROUNDS)
            for line in (
                f"send initiator a{n}",
                f"recv responder a{n}",
                f"send responder b{n}",
                f"recv initiator b{n}",
            )
        ),
        {},
    ),
    Case(
        "TamperedPqRatchet",
        "the last byte of field 5 (an SPQR chunk) of a normal message flipped",
        (*_BASE[:6], "send initiator a2", "recv responder a2p", "recv responder a2"),
        {"a2p": ("a2", "pq_ratchet")},
    ),
    Case(
        "StrippedSpqr",
        "field 5 removed from a normal message (the MAC left as sent)",
        (*_BASE[:6], "send initiator a2", "recv responder a2s", "recv responder a2"),
        {"a2s": ("a2", "strip_spqr")},
    ),
    Case(
        "ReplayedWithChangedPqRatchet",
        "field 5's SPQR epoch changed from 1 to 5 (the MAC left as sent): refused by SPQR "
        "before the genuine message, a duplicate after it",
        (
            *_BASE[:6],
            "send initiator a2",
            "recv responder a2e",
            "recv responder a2",
            "recv responder a2d",
            "send initiator a3",
            "recv responder a3",
        ),
        {"a2e": ("a2", "pq_epoch"), "a2d": ("a2", "pq_epoch_replayed")},
    ),
)
# The result each mutation must produce (spec/session.md §5); a repeated
# delivery of an unchanged message is DUPLICATE_MESSAGE.
_EXPECTED: Final = {
    "xor": "AUTH_FAILED",
    "version": "UNSUPPORTED_VERSION",
    "truncate": "MALFORMED_MESSAGE",
    "reorder": "ok",
    "version34": "ok",
    "pq_ratchet": "AUTH_FAILED",
    "strip_spqr": "MALFORMED_MESSAGE",
    "pq_epoch": "MALFORMED_MESSAGE",
    "pq_epoch_replayed": "DUPLICATE_MESSAGE",
}
# libsignal-protocol-javascript's PreKeyWhisperMessage declaration order.
JAVASCRIPT_FIELD_ORDER: Final = (5, 1, 6, 2, 3, 4)


def _mutation(profile: Profile, data: bytes, kind: str) -> dict[str, Any]:
    """One documented change to a message (vectors/README.md §4)."""
    if kind == "truncate":
        return {"field": "bytes", "op": "truncate", "length": len(data) - 1}
    if kind == "version":
        return {"field": "bytes", "op": "xor", "offset": 0, "mask": "7f"}
    if kind == "version34":
        return {"field": "bytes", "op": "xor", "offset": 0, "mask": "07"}
    if kind in ("pq_ratchet", "strip_spqr", "pq_epoch", "pq_epoch_replayed"):
        pq = read_fields(data[1 : -wire.SIGNAL_MAC_LEN], wire.SIGNAL_V4_MESSAGE)[5]
        field = write_field(5, pq)
        start = data.index(field)
        if kind == "pq_ratchet":
            return {"field": "bytes", "op": "xor", "offset": start + len(field) - 1, "mask": "01"}
        if kind != "strip_spqr":  # the epoch, field 5's second byte (spec/spqr.md §8): 1 → 5
            assert isinstance(pq, bytes) and pq[1] == 1
            offset = start + len(field) - len(pq) + 1
            return {"field": "bytes", "op": "xor", "offset": offset, "mask": "04"}
        return {
            "field": "bytes",
            "op": "replace",
            "offset": start,
            "length": len(field),
            "value": "",
        }
    if kind == "reorder":
        fields = read_fields(data[1:], wire.PREKEY_SIGNAL_MESSAGE)
        order = [n for n in JAVASCRIPT_FIELD_ORDER if n in fields]
        reordered = data[:1] + b"".join(write_field(n, fields[n]) for n in order)
        mask = bytes(a ^ b for a, b in zip(data, reordered, strict=True))
        return {"field": "bytes", "op": "xor", "offset": 0, "mask": mask.hex()}
    inner = wire.decode_prekey_message(profile, data).message
    offset = data.index(inner) + len(inner) - 12  # inside the AEAD ciphertext or the MAC
    return {"field": "bytes", "op": "xor", "offset": offset, "mask": "01"}


class _Pair:
    """An initiator and a responder device, and the responder's bundle."""

    def __init__(
        self, profile: Profile, rngs: Mapping[str, Random], pin: str, kem: Encapsulator
    ) -> None:
        self.stores = {actor: MemoryStore() for actor in ACTORS}
        self.managers = {
            actor: SessionManager.create(
                self.stores[actor], ADDRESSES[actor], profile, now=NOW, rng=rngs[actor]
            )
            for actor in ACTORS
        }
        responder = self.managers["responder"]
        responder.generate_one_time_prekeys(ONE_TIME_PREKEYS)
        if profile.kem is not None:
            responder.generate_kem_prekeys(KEM_ONE_TIME_PREKEYS)
        self.bundle = responder.prekey_bundles()[0]
        self.kem_pair = None if profile.kem is None else kem(pin, self.kem_prekey())

    def kem_prekey(self) -> KemPrekey:
        assert self.bundle.kem_prekey is not None
        data = self.stores["responder"].get(KEM_PREKEYS, str(self.bundle.kem_prekey.prekey_id))
        assert data is not None
        return load_state(KemPrekey, data)

    def initiate(self) -> None:
        self.managers["initiator"].initiate(
            ADDRESSES["responder"], self.bundle, kem_encapsulation=self.kem_pair
        )

    def recv(self, actor: str, data: bytes) -> tuple[str, bytes | None]:
        plaintext, code = outcome(
            lambda: self.managers[actor].decrypt(ADDRESSES[_peer(actor)], data)
        )
        return code, plaintext


def _session_test(
    profile: Profile, case: Case, tc_id: int, encapsulator: Encapsulator
) -> dict[str, Any]:
    rngs = {a: RecordingRandom(drbg_for(FAMILY, f"{profile.name} {tc_id} {a}")) for a in ACTORS}
    pair = _Pair(profile, rngs, f"{profile.name}#{tc_id}", encapsulator)
    pair.initiate()
    messages: dict[str, dict[str, Any]] = {}
    received: set[str] = set()
    events = []
    for line in case.events:
        op, actor, msg = line.split()
        event: dict[str, Any] = {"op": op, "actor": actor, "msg": msg}
        if op == "send":
            data = pair.managers[actor].encrypt(ADDRESSES[_peer(actor)], plaintext_of(msg))
            messages[msg] = _message(profile, msg, actor, data)
        else:
            if msg in case.mutations and msg not in messages:
                original, kind = case.mutations[msg]
                messages[msg] = _mutated_message(profile, messages[original], msg, kind)
            event["expect"] = _intended(case, msg, received)
            result, _ = pair.recv(actor, from_hex(messages[msg]["bytes"]))
            if result != event["expect"]:
                raise VectorMismatch(f"generator: {case.comment}: {msg} gave {result}")
            received.add(msg)
        events.append(event)
    initiator, responder = pair.managers["initiator"], pair.managers["responder"]
    return {
        "tcId": tc_id,
        "comment": case.comment,
        "flags": [case.flag] if case.flag else [],
        "result": "invalid" if case.flag else "valid",
        "entropy": {actor: entropy_list(rngs[actor].draws) for actor in ACTORS},
        "kem_encapsulation": None
        if pair.kem_pair is None
        else {"kem_ct": pair.kem_pair[0].hex(), "kem_ss": pair.kem_pair[1].hex()},
        "bundle": pair.bundle.to_bytes().hex(),
        "identity_keys": {a: pair.managers[a].identity_key.hex() for a in ACTORS},
        "safety_number": initiator.safety_number(responder.address),
        "messages": list(messages.values()),
        "events": events,
    }


def _intended(case: Case, msg: str, received: set[str]) -> str:
    """The result the case is built to produce for receiving ``msg``."""
    if msg in case.mutations:
        return _EXPECTED[case.mutations[msg][1]]
    return "DUPLICATE_MESSAGE" if msg in received else "ok"


def _peer(actor: str) -> str:
    return "initiator" if actor == "responder" else "responder"


def _message(profile: Profile, message_id: str, sender: str, data: bytes) -> dict[str, Any]:
    kind = "prekey" if _is_prekey(profile, data) else "normal"
    return {
        "id": message_id,
        "sender": sender,
        "plaintext": plaintext_of(message_id).hex(),
        "kind": kind,
        "bytes": data.hex(),
    }


def _mutated_message(
    profile: Profile, original: Mapping[str, Any], message_id: str, kind: str
) -> dict[str, Any]:
    data = from_hex(original["bytes"])
    mutation = _mutation(profile, data, kind)
    return {
        **original,
        "id": message_id,
        "bytes": mutate(data, mutation).hex(),
        "mutation_of": original["id"],
        "mutation": mutation,
    }


def _is_prekey(profile: Profile, data: bytes) -> bool:
    return outcome(lambda: wire.decode_prekey_message(profile, data))[1] == "ok"


def _session_group(profile: Profile, encapsulator: Encapsulator) -> dict[str, Any]:
    cases = CASES + (SIGNAL_CASES if profile.framing.name == "signal-v3" else ())
    cases += V4_CASES if profile.spqr else ()
    ids = test_ids()
    tests = [_session_test(profile, case, next(ids), encapsulator) for case in cases]
    return {**_session_group_fields(profile), "tests": tests}


def _session_group_fields(profile: Profile) -> dict[str, Any]:
    return {
        "type": "SessionTranscript",
        "profile": profile.name,
        "handshake": profile.agreement.handshake.upper(),
        "kem": profile.kem,
        "aead": profile.cipher.name,
        "wire": profile.framing.name,
        "initiator": {"user": "initiator", "device": 1},
        "responder": {"user": "responder", "device": 1},
        "responder_one_time_prekeys": ONE_TIME_PREKEYS,
        "responder_kem_one_time_prekeys": KEM_ONE_TIME_PREKEYS if profile.kem else 0,
        "now": NOW,
    }


# --- State serialization: generation --------------------------------------------------------


# signal-v4's stored session is taken mid-epoch: after this many alternating round trips
# the first SPQR epoch has completed (about every 87 messages, spec/spqr.md §13) and the
# second is under way, so the record holds a Braid state with chunks in flight.
V4_STATE_ROUNDS: Final = 60


def _stored_states(
    profile: Profile, encapsulator: Encapsulator
) -> tuple[bytes, bytes, list[bytes]]:
    """The responder's device and session records after a2 arrived before a0 and a1.

    For an SPQR profile, ``V4_STATE_ROUNDS`` round trips come first (plaintexts ``w<n>``
    and ``v<n>``), so that a0-a2 are normal messages in the middle of an SPQR epoch.
    """
    rngs = {a: drbg_for(FAMILY, f"state {profile.name} {a}") for a in ACTORS}
    pair = _Pair(profile, rngs, f"state {profile.name}", encapsulator)
    pair.initiate()
    initiator, responder = pair.managers["initiator"], pair.managers["responder"]
    for n in range(V4_STATE_ROUNDS if profile.spqr else 0):
        warm = initiator.encrypt(ADDRESSES["responder"], plaintext_of(f"w{n}"))
        responder.decrypt(ADDRESSES["initiator"], warm)
        answer = responder.encrypt(ADDRESSES["initiator"], plaintext_of(f"v{n}"))
        initiator.decrypt(ADDRESSES["responder"], answer)
    sent = [initiator.encrypt(ADDRESSES["responder"], plaintext_of(f"a{i}")) for i in range(3)]
    responder.decrypt(ADDRESSES["initiator"], sent[2])
    store = pair.stores["responder"]
    device, session = store.get(DEVICE, "self"), store.get(SESSIONS, ADDRESSES["initiator"].key)
    assert device is not None and session is not None
    return device, session, sent


def _behaviour(profile: Profile, session: bytes, first: bytes) -> list[dict[str, Any]]:
    """What the loaded session must do next: decrypt the skipped a0, answer, dump again."""
    record = load_state(SessionRecord, session)
    inner = _ratchet_message(profile, first)
    rng = RecordingRandom(drbg_for(FAMILY, f"state {profile.name} reply"))
    after, plaintext, reply = _run_behaviour(record, inner, rng)
    return [
        {"op": "load", "state": "session", "expect": "ok"},
        {"op": "dump", "bytes": session.hex()},
        {"op": "decrypt", "message": inner.hex(), "plaintext": plaintext.hex()},
        {
            "op": "encrypt",
            "plaintext": _REPLY.hex(),
            "entropy": entropy_list(rng.draws),
            "message": reply.hex(),
        },
        {"op": "dump", "bytes": dump_state(after).hex()},
    ]


_REPLY: Final = b"reply"


def _ratchet_message(profile: Profile, data: bytes) -> bytes:
    """The ratchet message of ``data``: a prekey message's inner message, or ``data``."""
    if wire.message_kind(profile, data) == "prekey":
        return wire.decode_prekey_message(profile, data).message
    return data


def _run_behaviour(
    record: SessionRecord, message: bytes, rng: Random
) -> tuple[SessionRecord, bytes, bytes]:
    """Decrypt ``message`` then encrypt the reply with the current session's (triple) ratchet."""
    record, plaintext = _with_triple(record, triple_ratchet.decrypt, message, rng)
    record, reply = _with_triple(record, triple_ratchet.encrypt, _REPLY, rng)
    return record, plaintext, reply


_Step = Callable[
    [triple_ratchet.TripleRatchetState, bytes, bytes, Random],
    tuple[triple_ratchet.TripleRatchetState, bytes],
]


def _with_triple(
    record: SessionRecord, step: _Step, data: bytes, rng: Random
) -> tuple[SessionRecord, bytes]:
    """Run one triple-ratchet ``step`` on the current session (for a profile without SPQR
    the Double Ratchet alone, spec/spqr.md §13) and put both states back."""
    state = record.current
    after, output = step(state.triple, data, state.ad, rng)
    current = dataclasses.replace(state, ratchet=after.ratchet, pq=after.pq)
    return dataclasses.replace(record, current=current), output


# The stored envelope is msgpack ["e2ee-state", version, ...]: fixarray 0x95, the
# fixstr header 0xaa ‖ "e2ee-state", then the version as a positive fixint.
_VERSION_OFFSET: Final = 12


def _state_tests(
    profile: Profile, ids: Iterator[int], encapsulator: Encapsulator
) -> list[dict[str, Any]]:
    device, session, sent = _stored_states(profile, encapsulator)
    corrupt = {"field": "bytes", "op": "xor", "offset": len(session) - 40, "mask": "01"}
    truncate = {"field": "bytes", "op": "truncate", "length": len(session) - 1}
    version = {
        "field": "bytes",
        "op": "replace",
        "offset": _VERSION_OFFSET,
        "length": 1,
        "value": (FORMAT_VERSION + 1).to_bytes(1, "big").hex(),
    }
    tests = [
        _state_test(
            "SessionRecord",
            None,
            f"a session with skipped keys{_spqr_state(session)} reloads and behaves the same",
            {"session": session},
            _behaviour(profile, session, sent[0]),
        ),
        _state_test(
            "DeviceRecord",
            None,
            "a device record reloads to the same bytes",
            {"device": device},
            [
                {"op": "load", "state": "device", "expect": "ok"},
                {"op": "dump", "bytes": device.hex()},
            ],
        ),
    ]
    for flag, mutation, code, what in (
        ("CorruptState", corrupt, "STATE_CORRUPT", "xor"),
        ("CorruptState", truncate, "STATE_CORRUPT", "truncate"),
        ("UnknownStateVersion", version, "UNSUPPORTED_VERSION", "another format version"),
    ):
        states = {"session": session, "mutated": mutate(session, mutation)}
        events = [
            {"op": "load", "state": "mutated", "expect": code},
            {"op": "load", "state": "session", "expect": "ok"},
        ]
        test = _state_test("SessionRecord", flag, f"{what} of a stored session", states, events)
        tests.append({**test, "mutation": mutation})
    return [{"tcId": next(ids), **test} for test in tests]


def _spqr_state(session: bytes) -> str:
    """Where the stored session's SPQR is, for a test comment (nothing without SPQR)."""
    pq = load_state(SessionRecord, session).current.pq
    return "" if pq is None else f", in SPQR epoch {pq.braid.epoch} ({pq.braid.name}),"


def _state_test(
    kind: str,
    flag: str | None,
    comment: str,
    states: Mapping[str, bytes],
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "comment": comment,
        "flags": [flag] if flag else [],
        "result": "invalid" if flag else "valid",
        "kind": kind,
        "states": {name: value.hex() for name, value in states.items()},
        "events": events,
    }


def _state_group_fields(profile: Profile) -> dict[str, Any]:
    return {
        "type": "StateSerialization",
        "profile": profile.name,
        "format_version": FORMAT_VERSION,
        "envelope": 'msgpack ["e2ee-state", version, kind, body, sha256(body)]',
    }


# --- Files ----------------------------------------------------------------------------------

HEADER: Final = (
    "Sessions through SessionManager per spec/session.md; stored state per spec/storage.md.",
)
STATE_HEADER: Final = (
    *HEADER,
    "Schema v2 (was v1): another format version is the mutation replace of the version byte "
    "(vectors/README.md §4), where v1 had its own op set_version; every state byte is that "
    "of v1.",
    "Schema v3 (was v2): a fourth group, signal-v4, whose stored session is taken in the middle "
    "of an SPQR epoch (its SPQR state included); decrypt and encrypt events run the triple "
    "ratchet, which is the Double Ratchet alone for the other profiles. The first three "
    "groups are byte for byte those of v2.",
)


def _generate(encapsulator: Encapsulator) -> list[VectorFile]:
    files = []
    for profile in SESSION_PROFILES:
        group = _session_group(profile, encapsulator)
        document = envelope(
            algorithm="Session",
            schema=SESSION_SCHEMA,
            header=HEADER,
            notes=V4_NOTES if profile.spqr else NOTES,
            groups=[group],
        )
        files.append(VectorFile(f"session_{profile.name}_test.json", SESSION_SCHEMA, document))
    ids = test_ids()
    groups = [
        {**_state_group_fields(profile), "tests": _state_tests(profile, ids, encapsulator)}
        for profile in SESSION_PROFILES
    ]
    document = envelope(
        algorithm="StateSerialization",
        schema=STATE_SCHEMA,
        header=STATE_HEADER,
        notes=NOTES,
        groups=groups,
    )
    files.append(VectorFile("state_serialization_test.json", STATE_SCHEMA, document))
    return files


def generate() -> list[VectorFile]:
    """Every session and state file, byte-identical on every run."""
    return _generate(kem_pins.pinned(PINS_FILE))


# --- Verification ---------------------------------------------------------------------------


def verify_test(schema_name: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one session transcript or state-serialization test against the library."""
    profile = get_profile(str(group["profile"]))
    fields = {key: value for key, value in group.items() if key != "tests"}
    if schema_name == SESSION_SCHEMA:
        expect_equal("group parameters", fields, _session_group_fields(profile))
        _verify_session(profile, test)
    elif schema_name == STATE_SCHEMA:
        expect_equal("group parameters", fields, _state_group_fields(profile))
        _verify_state(profile, test)
    else:
        raise VectorMismatch(f"unknown schema {schema_name!r}")


def _recorded_pair(test: Mapping[str, Any]) -> Encapsulator:
    def replay(key: str, prekey: KemPrekey) -> tuple[bytes, bytes]:
        pair = test["kem_encapsulation"]
        if pair is None:
            raise VectorMismatch("a KEM profile needs kem_encapsulation")
        ciphertext, shared = from_hex(pair["kem_ct"]), from_hex(pair["kem_ss"])
        if pqxdh.decapsulate(prekey.kem, prekey, ciphertext) != shared:
            raise VectorMismatch("kem_ct does not decapsulate to kem_ss")
        return ciphertext, shared

    return replay


def _verify_session(profile: Profile, test: Mapping[str, Any]) -> None:
    rngs = {a: ScriptedRandom(entropy_entries(test["entropy"][a])) for a in ACTORS}
    pair = _Pair(profile, rngs, "", _recorded_pair(test))
    expect_equal("bundle", pair.bundle.to_bytes().hex(), test["bundle"])
    expect_equal(
        "identity keys",
        {a: pair.managers[a].identity_key.hex() for a in ACTORS},
        test["identity_keys"],
    )
    pair.initiate()
    messages = {m["id"]: m for m in test["messages"]}
    for index, event in enumerate(test["events"]):
        message = messages[event["msg"]]
        if "mutation" in message:
            original = from_hex(messages[message["mutation_of"]]["bytes"])
            expect_equal(
                f"mutated {message['id']}",
                mutate(original, message["mutation"]).hex(),
                message["bytes"],
            )
        if event["op"] == "send":
            sent = pair.managers[event["actor"]].encrypt(
                ADDRESSES[_peer(event["actor"])], from_hex(message["plaintext"])
            )
            expect_equal(f"event {index} send {message['id']}", sent.hex(), message["bytes"])
            continue
        result, plaintext = pair.recv(event["actor"], from_hex(message["bytes"]))
        expect_equal(f"event {index} result", result, event.get("expect"))
        if plaintext is not None:
            expect_equal(f"event {index} plaintext", plaintext.hex(), message["plaintext"])
    for actor in ACTORS:
        number = pair.managers[actor].safety_number(ADDRESSES[_peer(actor)])
        expect_equal(f"{actor} safety number", number, test["safety_number"])
    for actor in ACTORS:
        rngs[actor].assert_exhausted()


_KINDS: Final[dict[str, type[Any]]] = {"SessionRecord": SessionRecord, "DeviceRecord": DeviceRecord}


def _verify_state(profile: Profile, test: Mapping[str, Any]) -> None:
    kind = _KINDS[test["kind"]]
    states = {name: from_hex(value) for name, value in test["states"].items()}
    if "mutation" in test:
        expect_equal(
            "mutated state", mutate(states["session"], test["mutation"]), states["mutated"]
        )
    loaded: Any = None
    for index, event in enumerate(test["events"]):
        op = event["op"]
        if op == "load":
            loaded = _load_result(kind, states[event["state"]], event["expect"], index)
        elif op == "dump":
            expect_equal(f"event {index} dump", dump_state(loaded).hex(), event["bytes"])
        elif op == "decrypt":
            no_draws = ScriptedRandom([])  # a skipped key: any draw is a mismatch
            message = from_hex(event["message"])
            loaded, plaintext = _with_triple(loaded, triple_ratchet.decrypt, message, no_draws)
            expect_equal(f"event {index} plaintext", plaintext.hex(), event["plaintext"])
        else:
            rng = ScriptedRandom(entropy_entries(event["entropy"]))
            plaintext = from_hex(event["plaintext"])
            loaded, message = _with_triple(loaded, triple_ratchet.encrypt, plaintext, rng)
            rng.assert_exhausted()
            expect_equal(f"event {index} message", message.hex(), event["message"])


def _load_result(kind: type[Any], data: bytes, expect: str, index: int) -> Any:
    value, code = outcome(lambda: load_state(kind, data))
    expect_equal(f"event {index} load", code, expect)
    return value


if __name__ == "__main__":
    fresh = kem_pins.record(PINS_FILE, _generate)
    print(f"recorded {fresh} new ML-KEM encapsulations in {PINS_FILE.name}")
