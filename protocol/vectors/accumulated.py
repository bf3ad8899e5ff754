"""Accumulated ratchet test: one digest over many random transcripts (spec/vectors.md §3).

In the style of CCTV's accumulated ML-KEM vectors: a ``DrbgRandom`` seeded
with ``seed`` drives N random two-party transcripts over all three profiles
(random lengths, random reordering within the profile's window, random DH
turns, tampered and replayed deliveries), and a running SHAKE-128 absorbs
every output: each wire message, each plaintext and each error code, every
item as u32be(length) ‖ bytes. The file records the seed, N and the 32-byte
digest for N = 100 and N = 10,000. An implementation that matches the digest
agrees with this one on every byte of every transcript. spec/vectors.md §2-§3
specifies the DRBG, every choice and the absorption, in the order below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cryptography.hazmat.primitives import hashes

from protocol.errors import ProtocolError
from protocol.primitives import X25519KeyPair
from protocol.profiles import get_profile
from protocol.randomness import DrbgRandom
from protocol.ratchet import (
    RatchetState,
    init_initiator,
    init_responder,
    ratchet_decrypt,
    ratchet_encrypt,
)
from protocol.vectors.common import (
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorFile,
    envelope,
    expect_equal,
    file_schema,
    test_ids,
)

SCHEMA: Final = "accumulated_schema_v1.json"
SEED: Final = b"e2ee-reference accumulated ratchet v1"
COUNTS: Final = (100, 10_000)
DIGEST_LEN: Final = 32
# Note that the list is pinned, not taken from protocol.profiles: a transcript
# picks its profile by index into it, so a profile added to the library would
# otherwise change both published digests. A new profile gets transcripts of
# its own (tests of their own in accumulated.json) and never a place here.
TRANSCRIPT_PROFILES: Final = ("pq-default", "classic", "signal-v3")

SCHEMAS: dict[str, dict[str, Any]] = {
    SCHEMA: file_schema(
        "Accumulated ratchet digest (spec/ratchet.md §8.3)",
        {
            "type": {"const": "AccumulatedRatchet"},
            "hash": {"const": "SHAKE-128"},
            "seed": HEX_BYTES,
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": [*TEST_ENVELOPE, "n", "digest"],
            "properties": {**TEST_ENVELOPE, "n": {"type": "integer"}, "digest": HEX_BYTES},
        },
    )
}


class _Digest:
    """The running SHAKE-128 that absorbs every output, length-prefixed."""

    def __init__(self) -> None:
        self._hash = hashes.Hash(hashes.SHAKE128(DIGEST_LEN))

    def absorb(self, data: bytes) -> None:
        self._hash.update(len(data).to_bytes(4, "big") + data)

    def finalize(self) -> bytes:
        return self._hash.finalize()


def _small(rng: DrbgRandom, bound: int) -> int:
    """A number in [0, bound) from one drawn byte (bound <= 256; bias is irrelevant here)."""
    return rng.draw("choice", 1)[0] % bound


def _shuffled(rng: DrbgRandom, items: list[bytes]) -> list[bytes]:
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = _small(rng, i + 1)
        out[i], out[j] = out[j], out[i]
    return out


def _deliver(
    state: RatchetState, message: bytes, ad: bytes, rng: DrbgRandom, digest: _Digest
) -> RatchetState:
    try:
        state, plaintext = ratchet_decrypt(state, message, ad, rng)
    except ProtocolError as exc:
        digest.absorb(exc.code.encode())
        return state
    digest.absorb(plaintext)
    return state


def _turn(
    sender: RatchetState, receiver: RatchetState, ad: bytes, rng: DrbgRandom, digest: _Digest
) -> tuple[RatchetState, RatchetState]:
    """One sending burst of 1-4 messages, delivered shuffled, one maybe tampered or replayed."""
    messages = []
    for _ in range(1 + _small(rng, 4)):
        plaintext = rng.draw("plaintext", 1 + _small(rng, 48))
        sender, message = ratchet_encrypt(sender, plaintext, ad, rng)
        digest.absorb(message)
        messages.append(message)
    extra = _small(rng, 4)
    if extra == 1:  # tampered copy of one message: AUTH_FAILED or a parse error
        victim = messages[_small(rng, len(messages))]
        position = _small(rng, len(victim))
        messages.append(
            victim[:position] + bytes([victim[position] ^ 0x20]) + victim[position + 1 :]
        )
    elif extra == 2:  # a replay: DUPLICATE_MESSAGE
        messages.append(messages[_small(rng, len(messages))])
    for message in _shuffled(rng, messages):
        receiver = _deliver(receiver, message, ad, rng, digest)
    return sender, receiver


def _transcript(rng: DrbgRandom, digest: _Digest) -> None:
    profile = get_profile(TRANSCRIPT_PROFILES[_small(rng, len(TRANSCRIPT_PROFILES))])
    sk = rng.draw("sk", profile.agreement.sk_len)
    spk = X25519KeyPair.from_private(rng.draw("spk", 32))
    ad = rng.draw("ad", 66)
    parties = [init_initiator(profile, sk, spk.public, rng), init_responder(profile, sk, spk)]
    for turn in range(1 + _small(rng, 4)):
        who = turn % 2  # the initiator sends first: the spec's responder cannot
        parties[who], parties[1 - who] = _turn(parties[who], parties[1 - who], ad, rng, digest)


def accumulated_digest(seed: bytes, count: int) -> bytes:
    """The digest over ``count`` random transcripts drawn from ``DrbgRandom(seed)``."""
    rng = DrbgRandom(seed)
    digest = _Digest()
    for _ in range(count):
        _transcript(rng, digest)
    return digest.finalize()


def generate() -> list[VectorFile]:
    ids = test_ids()
    tests: list[dict[str, Any]] = [
        {
            "tcId": next(ids),
            "comment": f"{count} random transcripts",
            "flags": [],
            "n": count,
            "digest": accumulated_digest(SEED, count).hex(),
            "result": "valid",
        }
        for count in COUNTS
    ]
    group = {"type": "AccumulatedRatchet", "hash": "SHAKE-128", "seed": SEED.hex(), "tests": tests}
    header = [
        "Accumulated Double Ratchet digest over random transcripts of all three profiles.",
        "Algorithm: protocol/vectors/accumulated.py and spec/ratchet.md §8.3.",
    ]
    document = envelope(
        algorithm="DoubleRatchetAccumulated", schema=SCHEMA, header=header, notes={}, groups=[group]
    )
    return [VectorFile("accumulated.json", SCHEMA, document)]


def verify_test(schema: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Recompute the digest for the test's N."""
    seed = bytes.fromhex(group["seed"])
    expect_equal(
        f"digest over {test['n']} transcripts",
        accumulated_digest(seed, test["n"]).hex(),
        test["digest"],
    )
