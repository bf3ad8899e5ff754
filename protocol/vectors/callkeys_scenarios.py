"""The callkeys vectors' content: MediaKey encodings and transcript scenarios (spec/media.md §9).

Every transcript is built by running the library through ``CallActors``;
each event's result must be the one the scenario intends, or generation
fails. Every random byte comes from ``drbg_for("callkeys", ...)`` and is
recorded as the senders' ``entropy``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, Final

import msgpack

from protocol.media.limits import DEFAULT_MEDIA_LIMITS, DEFAULT_R
from protocol.media.messages import CALL_ID_LEN, MediaKey, decode_media_key, encode_media_key
from protocol.media.sender import BASE_KEY_LABEL
from protocol.media.sframe import DEFAULT_SUITE, MAX_CTR, CipherSuite, suite_params
from protocol.randomness import RecordingRandom
from protocol.vectors.callkeys_contributory import contributory_group
from protocol.vectors.callkeys_transcript import (
    ENCODING,
    FAMILY,
    FILE,
    SCHEMA,
    CallActors,
    frame_entry,
    key_fields,
    mutated,
)
from protocol.vectors.common import (
    VectorFile,
    VectorMismatch,
    drbg_for,
    entropy_list,
    envelope,
    from_hex,
    mutate,
    test_ids,
    to_hex,
)

# --- Generator --------------------------------------------------------------------------------

TRANSCRIPT_GROUP: Final[dict[str, Any]] = {
    "type": "CallKeyTranscript",
    "cipher_suite": int(DEFAULT_SUITE),
    "r": DEFAULT_R,
    "limits": asdict(DEFAULT_MEDIA_LIMITS),
}


class _Builder:
    """Builds one transcript by running the library; each result must be the intended one."""

    def __init__(self, tc_id: int, comment: str, flags: list[str], members: list[str]) -> None:
        self.tc_id = tc_id
        self.test: dict[str, Any] = {
            "tcId": tc_id,
            "comment": comment,
            "flags": flags,
            "result": "valid",
            "call_id": to_hex(drbg_for(FAMILY, tc_id).draw("call_id", CALL_ID_LEN)),
            "receiver": "bob",
            "members": members,
        }
        self.rngs: dict[str, RecordingRandom] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.frames: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.call = CallActors(TRANSCRIPT_GROUP, self.test, self.rngs)

    def _key_id(self, message: bytes) -> str:
        for entry in self.keys.values():
            if entry["encoded"] == to_hex(message):
                return str(entry["id"])
        key_id = f"k{len(self.keys)}"
        self.keys[key_id] = {"id": key_id, **key_fields(decode_media_key(message))}
        self.keys[key_id]["encoded"] = to_hex(message)
        return key_id

    def sender(self, op: str, actor: str, at: float = 0, **extra: list[str]) -> None:
        """Run a sender's start, join or leave and record the MediaKeys it delivers."""
        seed = drbg_for(FAMILY, f"{self.tc_id} {actor}")
        self.rngs.setdefault(actor, RecordingRandom(seed))
        event: dict[str, Any] = {"op": op, "at": at, "actor": actor, **extra}
        deliveries = self.call.sender_event(event)
        event["deliveries"] = [{"device": d, "media_key": self._key_id(m)} for d, m in deliveries]
        self.events.append(event)

    def key(self, sender: str, generation: int, step: int = 0) -> str:
        """The id of ``sender``'s MediaKey of ``generation`` at ``step``."""
        return next(
            str(k["id"])
            for k in self.keys.values()
            if (k["sender_device"], k["generation"], k["step"]) == (sender, generation, step)
            and "mutation_of" not in k
        )

    def frame(
        self, sender: str, generation: int, step: int, ctr: int, metadata: bytes = b""
    ) -> str:
        frame_id = f"f{len(self.frames)}"
        plaintext = f"frame {frame_id} of {sender}".encode()
        position = (generation, step, ctr)
        entry = frame_entry(frame_id, sender, position, (metadata, plaintext), self.keys, DEFAULT_R)
        self.frames[frame_id] = entry
        return frame_id

    def mutate(self, of: str, **mutation: Any) -> str:
        """A frame or MediaKey entry with one documented mutation."""
        entries = self.frames if of in self.frames else self.keys
        entry_id = f"{of}x{len(entries)}"
        entries[entry_id] = mutated(entries[of], entry_id, mutation)
        return entry_id

    def _expect(self, event: dict[str, Any], code: str, expect: str) -> None:
        if code != expect:
            raise VectorMismatch(f"generator: tcId {self.tc_id} got {code}, meant {expect}")
        event["expect"] = expect
        self.events.append(event)
        if expect != "ok":
            self.test["result"] = "invalid"

    def install(self, sender: str, key_id: str, at: float = 0, expect: str = "ok") -> None:
        message = from_hex(self.keys[key_id]["encoded"])
        code = self.call.install(sender, message, at)
        event = {"op": "install", "at": at, "from": sender, "media_key": key_id}
        self._expect(event, code, expect)

    def recv(self, sender: str, frame_id: str, at: float = 0, expect: str = "ok") -> None:
        code, _ = self.call.recv(sender, self.frames[frame_id], at)
        self._expect({"op": "recv", "at": at, "from": sender, "frame": frame_id}, code, expect)

    def build(self) -> dict[str, Any]:
        last = self.events[-1]
        if self.test["result"] == "invalid" and last.get("expect") != "ok":
            raise VectorMismatch(f"generator: tcId {self.tc_id} ends with a failure")
        return {
            **self.test,
            "entropy": {actor: entropy_list(rng.draws) for actor, rng in self.rngs.items()},
            "media_keys": list(self.keys.values()),
            "frames": list(self.frames.values()),
            "events": self.events,
        }


# --- Transcript scenarios ---------------------------------------------------------------------

_ALICE_CAROL: Final = ["alice", "carol"]


def _alice_keyed(b: _Builder) -> None:
    """alice starts sending to bob and carol; bob installs her generation 0."""
    b.sender("start", "alice", members=["bob", "carol"])
    b.install("alice", b.key("alice", 0))


def _reorder(b: _Builder) -> None:
    _alice_keyed(b)
    frames = [b.frame("alice", 0, 0, ctr) for ctr in range(4)]
    for index in (3, 0, 2, 1):
        b.recv("alice", frames[index])


def _duplicate(b: _Builder) -> None:
    _alice_keyed(b)
    first, second = b.frame("alice", 0, 0, 0), b.frame("alice", 0, 0, 1)
    b.recv("alice", first)
    b.recv("alice", first, expect="FRAME_REPLAY")
    b.recv("alice", second)


def _window_edge(b: _Builder) -> None:
    _alice_keyed(b)
    window = DEFAULT_MEDIA_LIMITS.replay_window
    top, inside, below, next_ = (
        b.frame("alice", 0, 0, c) for c in (200, 200 - window + 1, 200 - window, 201)
    )
    b.recv("alice", top)
    b.recv("alice", inside)
    b.recv("alice", below, expect="FRAME_REPLAY")
    b.recv("alice", next_)


def _last_counter(b: _Builder) -> None:
    _alice_keyed(b)
    for position in ((0, 0, MAX_CTR), (0, 0, MAX_CTR - 1), (0, 1, 0)):
        b.recv("alice", b.frame("alice", *position))


def _catch_up(b: _Builder) -> None:
    _alice_keyed(b)
    limit = DEFAULT_MEDIA_LIMITS.max_catch_up
    for step in (0, limit, limit - 2):
        b.recv("alice", b.frame("alice", 0, step, 0))


def _catch_up_limit(b: _Builder) -> None:
    _alice_keyed(b)
    limit = DEFAULT_MEDIA_LIMITS.max_catch_up
    b.recv("alice", b.frame("alice", 0, 0, 0))
    beyond = b.frame("alice", 0, limit + 1, 0)
    b.recv("alice", beyond, expect="LIMIT_EXCEEDED")
    b.recv("alice", b.frame("alice", 0, limit, 0))
    b.recv("alice", beyond)


def _retention(b: _Builder) -> None:
    _alice_keyed(b)
    retained = DEFAULT_MEDIA_LIMITS.max_retained_steps
    b.recv("alice", b.frame("alice", 0, 0, 0))
    b.recv("alice", b.frame("alice", 0, retained, 0))
    b.recv("alice", b.frame("alice", 0, 0, 1), expect="UNKNOWN_KEY_ID")
    b.recv("alice", b.frame("alice", 0, 1, 0))


def _unknown_generation(b: _Builder) -> None:
    _alice_keyed(b)
    b.sender("leave", "alice", devices=["carol"])
    early = b.frame("alice", 1, 0, 0)
    b.recv("alice", early, at=5, expect="UNKNOWN_KEY_ID")
    b.install("alice", b.key("alice", 1), at=5)
    b.recv("alice", early, at=5)


def _tampered(field: str, where: str, length: int | None = None) -> Any:
    def scenario(b: _Builder) -> None:
        _alice_keyed(b)
        frame = b.frame("alice", 0, 0, 0x10, metadata=b"video key frame")
        data = from_hex(b.frames[frame]["frame"])
        if length is not None:
            bad = b.mutate(frame, field=field, op="truncate", length=length, description=where)
            error = "MALFORMED_MESSAGE"
        else:
            offset = {"header": 1, "tag": len(data) - 1, "metadata": 0}[where]
            mutation = {"op": "xor", "offset": offset, "mask": "01", "description": where}
            bad = b.mutate(frame, field=field, **mutation)
            error = "AUTH_FAILED"
        b.recv("alice", bad, expect=error)
        b.recv("alice", frame)

    return scenario


def _removed_member(b: _Builder) -> None:
    _alice_keyed(b)
    b.sender("leave", "alice", devices=["bob"])
    b.recv("alice", b.frame("alice", 1, 0, 0), at=5, expect="UNKNOWN_KEY_ID")
    b.recv("alice", b.frame("alice", 0, 0, 7), at=1)


def _wrong_sender(b: _Builder) -> None:
    _alice_keyed(b)
    b.sender("start", "carol", members=["alice", "bob"])
    b.install("carol", b.key("carol", 0))
    frame = b.frame("alice", 0, 0, 0)
    b.recv("carol", frame, expect="AUTH_FAILED")
    b.recv("alice", frame)


def _outsider_key(b: _Builder) -> None:
    b.sender("start", "mallory", members=["bob"])
    b.install("mallory", b.key("mallory", 0), expect="NOT_IN_CALL")
    _alice_keyed(b)
    b.recv("alice", b.frame("alice", 0, 0, 0))


def _relayed_key(b: _Builder) -> None:
    b.sender("start", "alice", members=["bob", "carol"])
    b.install("carol", b.key("alice", 0), expect="NOT_IN_CALL")
    b.install("alice", b.key("alice", 0))
    b.recv("alice", b.frame("alice", 0, 0, 0))


def _other_call(b: _Builder) -> None:
    b.sender("start", "alice", members=["bob", "carol"])
    original = b.key("alice", 0)
    mutation = {"op": "xor", "offset": 0, "mask": "01", "description": "another call's id"}
    b.install("alice", b.mutate(original, field="call_id", **mutation), expect="NOT_IN_CALL")
    b.install("alice", original)
    b.recv("alice", b.frame("alice", 0, 0, 0))


def _installed_twice(b: _Builder) -> None:
    _alice_keyed(b)
    b.install("alice", b.key("alice", 0), expect="DUPLICATE_MESSAGE")
    b.recv("alice", b.frame("alice", 0, 0, 0))


def _grace_period(b: _Builder) -> None:
    _alice_keyed(b)
    b.sender("leave", "alice", devices=["carol"])
    b.install("alice", b.key("alice", 1))
    switch = DEFAULT_MEDIA_LIMITS.rotation_delay
    end = switch + DEFAULT_MEDIA_LIMITS.grace_period
    b.recv("alice", b.frame("alice", 1, 0, 0), at=switch)
    b.recv("alice", b.frame("alice", 0, 0, 0), at=end - 0.5)
    b.recv("alice", b.frame("alice", 0, 0, 1), at=end, expect="UNKNOWN_KEY_ID")
    b.recv("alice", b.frame("alice", 1, 0, 1), at=end)


def _joiner(b: _Builder) -> None:
    b.sender("start", "alice", members=["carol"])
    b.sender("join", "alice", devices=["bob"])
    b.install("alice", b.key("alice", 0, step=1))
    b.recv("alice", b.frame("alice", 0, 0, 7), expect="UNKNOWN_KEY_ID")
    b.recv("alice", b.frame("alice", 0, 1, 0))


def _join_while_pending(b: _Builder) -> None:
    b.sender("start", "alice", members=["carol", "dave"])
    b.sender("leave", "alice", at=0, devices=["dave"])
    b.sender("join", "alice", at=1, devices=["bob"])
    b.install("alice", b.key("alice", 0, step=1), at=1)
    b.install("alice", b.key("alice", 1), at=1)
    b.recv("alice", b.frame("alice", 0, 1, 0), at=2)
    b.recv("alice", b.frame("alice", 1, 0, 0), at=6)


SCENARIOS: Final = [
    ("frames reordered within the window all decrypt", ["Reorder"], _reorder),
    ("a frame delivered twice is a replay", ["Replay"], _duplicate),
    (
        "the oldest counter inside the window passes, the first below it does not",
        ["ReplayWindow"],
        _window_edge,
    ),
    (
        "counter 2^64-1, then the step the sender moves to when counters run out",
        ["CounterLimit"],
        _last_counter,
    ),
    (
        "catch-up of exactly max_catch_up ratchet steps, then a retained earlier step",
        ["CatchUp"],
        _catch_up,
    ),
    (
        "catch-up one step beyond max_catch_up, refused without advancing",
        ["CatchUpLimit"],
        _catch_up_limit,
    ),
    ("a step older than the retained steps is an unknown key", ["StepRetention"], _retention),
    (
        "a frame whose generation has not arrived, then after its MediaKey",
        ["UnknownKeyId"],
        _unknown_generation,
    ),
    ("one bit of the header's counter flipped", ["TamperedHeader"], _tampered("frame", "header")),
    ("one bit of the tag flipped", ["TamperedTag"], _tampered("frame", "tag")),
    ("metadata differing from the sender's", ["WrongMetadata"], _tampered("metadata", "metadata")),
    (
        "a frame cut to less than its tag",
        ["TruncatedFrame"],
        _tampered("frame", "truncated", length=10),
    ),
    (
        "a member removed by a leave cannot decrypt the new generation",
        ["RemovedMember"],
        _removed_member,
    ),
    ("a frame of alice presented as carol's", ["WrongSender"], _wrong_sender),
    ("a MediaKey from a device outside the call", ["NotInCall"], _outsider_key),
    ("alice's MediaKey arriving over carol's session", ["NotInCall"], _relayed_key),
    ("a MediaKey for another call id", ["NotInCall"], _other_call),
    ("a generation is installed only once", ["DuplicateKey"], _installed_twice),
    (
        "the old generation lasts grace_period after the new one's first frame",
        ["GracePeriod"],
        _grace_period,
    ),
    ("a joiner holds the new step only, not frames from before its join", ["Join"], _joiner),
    ("a join while a rotation is pending delivers both keys", ["Join"], _join_while_pending),
]


# --- MediaKey encoding tests ------------------------------------------------------------------


def _valid_keys() -> list[tuple[str, list[str], MediaKey]]:
    def key(tc_id: int, suite: int, r: int, generation: int, step: int) -> MediaKey:
        rng = drbg_for(FAMILY, tc_id)
        call_id = rng.draw("call_id", CALL_ID_LEN)
        base_key = rng.draw(BASE_KEY_LABEL, suite_params(suite).nh)
        return MediaKey(call_id, "alice.1", CipherSuite(suite), r, generation, step, base_key)

    return [
        ("generation 0, step 0, the default suite", [], key(1, 4, 8, 0, 0)),
        (
            "suite 5: a 64-byte base key, and the last step 2^R - 1",
            ["LastStep"],
            key(2, 5, 8, 3, 255),
        ),
        (
            "the largest generation for R = 8: 2^56 - 1",
            ["LastGeneration"],
            key(3, 1, 8, 2**56 - 1, 0),
        ),
        ("R = 4: KID = (5 << 4) | 15 = 0x5f", ["SmallR"], key(4, 4, 4, 5, 15)),
    ]


def _replaced(key: MediaKey, index: int, value: Any) -> bytes:
    fields_ = [1, 1, key.call_id, key.sender_device, int(key.cipher_suite), key.r]
    fields_ += [key.generation, key.step, key.base_key]
    fields_[index] = value
    return bytes(msgpack.packb(fields_, use_bin_type=True))


def _negative_mutations(key: MediaKey, encoded: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """(comment, error, mutation) of tcId 1's encoding, one change each."""

    def xor(offset: int, mask: str) -> dict[str, Any]:
        return {"op": "xor", "offset": offset, "mask": mask}

    def replace(value: bytes) -> dict[str, Any]:
        return {"op": "replace", "value": to_hex(value)}

    return [
        ("version 2", "UNSUPPORTED_VERSION", xor(1, "03")),
        ("type tag 2 (a CallOffer's)", "MALFORMED_MESSAGE", xor(2, "03")),
        ("array of 8 elements, base key unread", "MALFORMED_MESSAGE", xor(0, "01")),
        ("last byte missing", "MALFORMED_MESSAGE", {"op": "truncate", "length": len(encoded) - 1}),
        ("one trailing byte", "MALFORMED_MESSAGE", {"op": "append", "value": "00"}),
        (
            "step 0 as uint8 0xcc00, not a fixint",
            "MALFORMED_MESSAGE",
            replace(encoded[:-35] + b"\xcc\x00" + encoded[-34:]),
        ),
        (
            "call id as a msgpack str, not bin",
            "MALFORMED_MESSAGE",
            replace(_replaced(key, 2, key.call_id.decode("latin-1"))),
        ),
        (
            "base key of 31 bytes",
            "MALFORMED_MESSAGE",
            replace(_replaced(key, 8, key.base_key[:31])),
        ),
        ("step 256 = 2^R", "MALFORMED_MESSAGE", replace(_replaced(key, 7, 256))),
        ("cipher suite 0 (reserved)", "MALFORMED_MESSAGE", replace(_replaced(key, 4, 0))),
        ("generation as boolean true", "MALFORMED_MESSAGE", replace(_replaced(key, 6, True))),
    ]


def _encoding_group(ids: Iterator[int]) -> dict[str, Any]:
    tests: list[dict[str, Any]] = []
    for comment, flags, key in _valid_keys():
        tests.append(
            {
                "tcId": next(ids),
                "comment": comment,
                "flags": flags,
                "result": "valid",
                "media_key": key_fields(key),
                "kid": key.kid,
                "encoded": to_hex(encode_media_key(key)),
            }
        )
    first = _valid_keys()[0][2]
    encoded = encode_media_key(first)
    for comment, error, mutation in _negative_mutations(first, encoded):
        tests.append(
            {
                "tcId": next(ids),
                "comment": comment,
                "flags": ["NonCanonical" if error == "MALFORMED_MESSAGE" else "Version"],
                "result": "invalid",
                "encoded": to_hex(mutate(encoded, {**mutation, "field": "encoded"})),
                "error": error,
                "mutation_of": tests[0]["tcId"],
                "mutation": {"field": "encoded", **mutation, "description": comment},
            }
        )
    return {"type": "MediaKeyEncoding", "encoding": ENCODING, "tests": tests}


def _transcript_group(ids: Iterator[int]) -> dict[str, Any]:
    tests = []
    for comment, flags, scenario in SCENARIOS:
        builder = _Builder(next(ids), comment, flags, list(_ALICE_CAROL))
        scenario(builder)
        tests.append(builder.build())
    return {**TRANSCRIPT_GROUP, "tests": tests}


HEADER: Final = [
    "Call keys over Double Ratchet sessions: RFC 9605 §5.1 sender keys (spec/media.md).",
    "KID = (generation << R) | step; frames are RFC 9605 §4 SFrame ciphertexts.",
    "Counters (ctr) and KIDs are JSON integers up to 2^64 - 1: parse them as big integers.",
    "Times (at) are seconds on the receiver's clock; entropy lists each sender's draws in order.",
]

NOTES: Final = {
    "Reorder": {
        "bugType": "FUNCTIONALITY",
        "description": "Frames arrive out of order within the replay window.",
    },
    "Replay": {
        "bugType": "AUTH_BYPASS",
        "description": "A frame delivered twice is refused the second time.",
    },
    "ReplayWindow": {
        "bugType": "EDGE_CASE",
        "description": "Counters at the replay window's lower edge.",
    },
    "CounterLimit": {
        "bugType": "EDGE_CASE",
        "description": "The largest SFrame counter, 2^64 - 1.",
    },
    "CatchUp": {
        "bugType": "EDGE_CASE",
        "description": "The receiver ratchets forward by exactly max_catch_up steps.",
    },
    "CatchUpLimit": {
        "bugType": "EDGE_CASE",
        "description": "A KID one step beyond max_catch_up is refused and changes nothing.",
    },
    "StepRetention": {
        "bugType": "EDGE_CASE",
        "description": "Only the newest max_retained_steps steps keep their frame keys.",
    },
    "UnknownKeyId": {
        "bugType": "FUNCTIONALITY",
        "description": "A KID with no installed key; it decrypts once the MediaKey arrives.",
    },
    "TamperedHeader": {
        "bugType": "AUTH_BYPASS",
        "description": "The header is authenticated: a changed counter fails.",
    },
    "TamperedTag": {"bugType": "AUTH_BYPASS", "description": "A changed tag fails."},
    "WrongMetadata": {"bugType": "AUTH_BYPASS", "description": "The metadata is authenticated."},
    "TruncatedFrame": {
        "bugType": "MALFORMED",
        "description": "A body shorter than the tag is malformed, not an authentication failure.",
    },
    "RemovedMember": {
        "bugType": "CONFIDENTIALITY",
        "description": "A device removed by a leave never receives the new generation.",
    },
    "WrongSender": {
        "bugType": "AUTH_BYPASS",
        "description": "Keys are per sender device: a frame fails under another sender's key.",
    },
    "NotInCall": {
        "bugType": "AUTH_BYPASS",
        "description": "A MediaKey for another call, from a non-member, or from another session.",
    },
    "DuplicateKey": {
        "bugType": "FUNCTIONALITY",
        "description": "A generation is installed once; later steps come only from the ratchet.",
    },
    "GracePeriod": {
        "bugType": "EDGE_CASE",
        "description": "An old generation expires grace_period s after the new one's first frame.",
    },
    "Join": {
        "bugType": "CONFIDENTIALITY",
        "description": "A joiner receives the ratcheted step and cannot decrypt earlier frames.",
    },
    "LastStep": {
        "bugType": "EDGE_CASE",
        "description": "The last ratchet step of a generation, 2^R - 1.",
    },
    "LastGeneration": {
        "bugType": "EDGE_CASE",
        "description": "The largest generation that fits 64 - R bits.",
    },
    "SmallR": {"bugType": "FUNCTIONALITY", "description": "KID packing with R other than 8."},
    "NonCanonical": {
        "bugType": "MALFORMED",
        "description": "Anything but the canonical msgpack encoding is refused.",
    },
    "Contributory": {
        "bugType": "FUNCTIONALITY",
        "description": "The 1:1 call secret from the offer and answer (spec/media.md §4).",
    },
    "TamperedAnswer": {
        "bugType": "AUTH_BYPASS",
        "description": "A CallAnswer with a low-order key or another call id is refused.",
    },
    "Version": {
        "bugType": "FUNCTIONALITY",
        "description": "An unknown version is UNSUPPORTED_VERSION, not MALFORMED_MESSAGE.",
    },
}


def generate() -> list[VectorFile]:
    """The callkeys vector file (deterministic: DRBG seeded by family and tcId)."""
    ids = test_ids()
    encoding = _encoding_group(ids)
    transcripts = _transcript_group(ids)
    contributory = contributory_group(ids)
    document = envelope(
        algorithm="SFrame sender keys over Double Ratchet sessions",
        schema=SCHEMA,
        header=HEADER,
        notes=NOTES,
        groups=[encoding, transcripts, contributory],
    )
    return [VectorFile(FILE, SCHEMA, document)]
