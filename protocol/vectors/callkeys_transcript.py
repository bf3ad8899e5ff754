"""Transcript machinery shared by the callkeys vector generator and verifier (spec/media.md §9).

``CallActors`` runs a transcript's sender and receiver events through the
library; the generator records what happens, the verifier compares it with
the file. ``frame_entry`` and ``mutated`` build the ``frames`` and
``media_keys`` entries, so both sides derive them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from protocol.media.limits import MediaLimits
from protocol.media.messages import MediaKey, encode_media_key
from protocol.media.receiver import ReceiverState, decrypt_frame, new_receiver, receive_media_key
from protocol.media.sender import KeyDelivery, SenderState, sender_join, sender_leave, start_sender
from protocol.media.sframe import (
    CipherSuite,
    derive_frame_key,
    encode_header,
    encrypt_frame,
    ratchet_base_key,
    sender_key_kid,
)
from protocol.randomness import Random
from protocol.vectors.common import VectorMismatch, from_hex, mutate, outcome, to_hex

FAMILY: Final = "callkeys"
FILE: Final = "callkeys_test.json"
SCHEMA: Final = "callkeys_schema_v1.json"
ENCODING: Final = (
    "msgpack array [1, 1, call_id, sender_device, cipher_suite, r, generation, step, base_key]"
)

SENDER_OPS: Final = ("start", "join", "leave")
CALLKEYS_OPS: Final = ("xor", "truncate", "append", "replace")
"""The operations of the common mutation vocabulary (common.MUTATION_OPS) this family uses."""


def media_key(entry: Mapping[str, Any]) -> MediaKey:
    return MediaKey(
        from_hex(entry["call_id"]),
        entry["sender_device"],
        CipherSuite(entry["cipher_suite"]),
        entry["r"],
        entry["generation"],
        entry["step"],
        from_hex(entry["base_key"]),
    )


def key_fields(key: MediaKey) -> dict[str, Any]:
    return {
        "call_id": to_hex(key.call_id),
        "sender_device": key.sender_device,
        "cipher_suite": int(key.cipher_suite),
        "r": key.r,
        "generation": key.generation,
        "step": key.step,
        "base_key": to_hex(key.base_key),
    }


def frame_entry(
    entry_id: str,
    sender: str,
    position: tuple[int, int, int],
    payload: tuple[bytes, bytes],
    keys: Mapping[str, Mapping[str, Any]],
    r: int,
) -> dict[str, Any]:
    """A frame at (generation, step, ctr) under its sender's RFC 9605 §5.1 key chain.

    The chain starts at the sender's MediaKey of that generation with the
    lowest step; the base_key is ratcheted forward to the frame's step.
    """
    generation, step, ctr = position
    metadata, plaintext = payload
    chain = [
        k
        for k in keys.values()
        if "mutation_of" not in k
        and (k["sender_device"], k["generation"]) == (sender, generation)
        and k["step"] <= step
    ]
    if not chain:
        raise VectorMismatch(f"{entry_id}: no MediaKey starts its key chain")
    start = min(chain, key=lambda k: int(k["step"]))
    suite = CipherSuite(start["cipher_suite"])
    base_key = from_hex(start["base_key"])
    for _ in range(step - start["step"]):
        base_key = ratchet_base_key(suite, base_key)
    kid = sender_key_kid(generation, step, r)
    frame = encrypt_frame(derive_frame_key(suite, base_key, kid), ctr, metadata, plaintext)
    return {
        "id": entry_id,
        "sender_device": sender,
        "generation": generation,
        "step": step,
        "ctr": ctr,
        "kid": kid,
        "metadata": to_hex(metadata),
        "plaintext": to_hex(plaintext),
        "base_key": to_hex(base_key),
        "header": to_hex(encode_header(kid, ctr)),
        "frame": to_hex(frame),
    }


def mutated(
    original: Mapping[str, Any], entry_id: str, mutation: Mapping[str, Any]
) -> dict[str, Any]:
    """``original`` with one field mutated; a MediaKey's ``encoded`` follows its fields."""
    field = mutation["field"]
    entry = {**original, "id": entry_id, field: to_hex(mutate(from_hex(original[field]), mutation))}
    if "encoded" in original and field != "encoded":
        entry["encoded"] = to_hex(encode_media_key(media_key(entry)))
    return {**entry, "mutation_of": original["id"], "mutation": dict(mutation)}


class CallActors:
    """One transcript's actors: senders by name and the one receiver.

    The generator and the verifier both run events through this class; the
    generator records what happened, the verifier compares it.
    """

    def __init__(
        self, group: Mapping[str, Any], test: Mapping[str, Any], rngs: Mapping[str, Random]
    ) -> None:
        self.suite, self.r = CipherSuite(group["cipher_suite"]), int(group["r"])
        self.limits = MediaLimits(**group["limits"])
        self.call_id = from_hex(test["call_id"])
        self.rngs = rngs
        self.senders: dict[str, SenderState] = {}
        self.receiver: ReceiverState = new_receiver(
            self.call_id, test["receiver"], test["members"], r=self.r, limits=self.limits
        )

    def sender_event(self, event: Mapping[str, Any]) -> list[KeyDelivery]:
        actor, now = event["actor"], float(event["at"])
        rng = self.rngs[actor]
        if event["op"] == "start":
            state, deliveries = start_sender(
                self.call_id,
                actor,
                event["members"],
                rng=rng,
                suite=self.suite,
                r=self.r,
                limits=self.limits,
            )
        elif event["op"] == "join":
            state, deliveries = sender_join(self.senders[actor], event["devices"], now, rng)
        else:
            state, deliveries = sender_leave(self.senders[actor], event["devices"], now, rng)
        self.senders[actor] = state
        return deliveries

    def install(self, sender: str, message: bytes, now: float) -> str:
        state, code = outcome(lambda: receive_media_key(self.receiver, sender, message, now))
        self.receiver = state or self.receiver
        return code

    def recv(self, sender: str, frame: Mapping[str, Any], now: float) -> tuple[str, bytes | None]:
        data, metadata = from_hex(frame["frame"]), from_hex(frame["metadata"])
        result, code = outcome(lambda: decrypt_frame(self.receiver, sender, data, metadata, now))
        if result is None:
            return code, None
        self.receiver, plaintext = result
        return code, plaintext
