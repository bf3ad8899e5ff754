"""spec/vectors.md §2-§3 are enough to reproduce accumulated.json.

This module re-implements the DRBG, the transcript choices, the tampering,
the shuffle and the absorption from the text of spec/vectors.md with
``hashlib`` alone. It imports neither ``protocol.randomness`` nor
``protocol.vectors``: the only library code it calls is the three profiles'
Double Ratchet (RatchetInitAlice/Bob, RatchetEncrypt, RatchetDecrypt), which
the ratchet vectors check on their own, and it hands that code its own DRBG.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from protocol.errors import ProtocolError
from protocol.primitives import X25519KeyPair
from protocol.profiles import get_profile
from protocol.ratchet import (
    RatchetState,
    init_initiator,
    init_responder,
    ratchet_decrypt,
    ratchet_encrypt,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


class SpecDrbg:
    """spec/vectors.md §2, as written."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.counter = seed, 0

    def draw(self, label: str, length: int) -> bytes:
        name = label.encode()
        data = (
            b"e2ee-reference DRBG v1"
            + len(self.seed).to_bytes(2, "big")
            + self.seed
            + self.counter.to_bytes(8, "big")
            + len(name).to_bytes(2, "big")
            + name
            + length.to_bytes(4, "big")
        )
        self.counter += 1
        return hashlib.shake_128(data).digest(length)

    def small(self, bound: int) -> int:
        return self.draw("choice", 1)[0] % bound


class SpecDigest:
    """spec/vectors.md §3.4: u32be(length) ‖ item into one SHAKE-128."""

    def __init__(self) -> None:
        self.xof = hashlib.shake_128()

    def absorb(self, item: bytes) -> None:
        self.xof.update(len(item).to_bytes(4, "big") + item)


def _turn(
    sender: RatchetState, receiver: RatchetState, ad: bytes, rng: SpecDrbg, digest: SpecDigest
) -> tuple[RatchetState, RatchetState]:
    """spec/vectors.md §3.3."""
    sent = []
    for _ in range(1 + rng.small(4)):
        plaintext = rng.draw("plaintext", 1 + rng.small(48))
        sender, message = ratchet_encrypt(sender, plaintext, ad, rng)
        digest.absorb(message)
        sent.append(message)
    extra = rng.small(4)
    if extra == 1:
        victim = sent[rng.small(len(sent))]
        position = rng.small(len(victim))
        tampered = bytearray(victim)
        tampered[position] ^= 0x20
        sent.append(bytes(tampered))
    elif extra == 2:
        sent.append(sent[rng.small(len(sent))])
    for i in range(len(sent) - 1, 0, -1):
        j = rng.small(i + 1)
        sent[i], sent[j] = sent[j], sent[i]
    for message in sent:
        try:
            receiver, plaintext = ratchet_decrypt(receiver, message, ad, rng)
        except ProtocolError as exc:
            digest.absorb(exc.code.encode("ascii"))
        else:
            digest.absorb(plaintext)
    return sender, receiver


def spec_digest(seed: bytes, count: int) -> bytes:
    """spec/vectors.md §3.2 repeated ``count`` times on one DRBG."""
    rng, digest = SpecDrbg(seed), SpecDigest()
    for _ in range(count):
        profile = get_profile(("pq-default", "classic", "signal-v3")[rng.small(3)])
        sk = rng.draw("sk", 64 if profile.name == "signal-v3" else 32)
        spk = X25519KeyPair.from_private(rng.draw("spk", 32))
        ad = rng.draw("ad", 66)
        parties = [init_initiator(profile, sk, spk.public, rng), init_responder(profile, sk, spk)]
        for turn in range(1 + rng.small(4)):
            who = turn % 2
            parties[who], parties[1 - who] = _turn(parties[who], parties[1 - who], ad, rng, digest)
    return digest.xof.digest(32)


def test_the_drbg_of_the_spec_text_is_the_generators_drbg() -> None:
    from protocol.randomness import DrbgRandom  # the implementation the text describes

    ours, text = DrbgRandom(b"seed"), SpecDrbg(b"seed")
    for label, length in [("a", 1), ("ratchet_key", 32), ("plaintext", 200), ("a", 1)]:
        assert ours.draw(label, length) == text.draw(label, length)


def test_accumulated_digest_reproduced_from_the_spec_text_alone() -> None:
    document = json.loads((VECTORS / "accumulated.json").read_text())
    group = document["testGroups"][0]
    first = next(test for test in group["tests"] if test["n"] == 100)
    assert spec_digest(bytes.fromhex(group["seed"]), 100).hex() == first["digest"]


def _results(events: list[dict[str, object]]) -> list[object]:
    """The outcome each receiving event expects, in order (sends and drops have none)."""
    keys = ("expect", "result", "error")
    return [
        next(event[key] for key in keys if key in event)
        for event in events
        if any(key in event for key in keys)
    ]


def test_a_failure_is_followed_by_a_success_except_a_replay_of_a_consumed_prekey() -> None:
    """vectors/README.md §4: a failure changes no state, shown by a later success."""
    checked = 0
    for path in sorted(VECTORS.glob("*_test.json")):
        for group in json.loads(path.read_text())["testGroups"]:
            for test in group["tests"]:
                outcomes = _results(test.get("events", []))
                failures = [i for i, result in enumerate(outcomes) if result != "ok"]
                if not failures:
                    continue
                checked += 1
                if "ok" in outcomes[failures[-1] + 1 :]:
                    continue
                replays = (["ReusedOpk"], ["ReusedOneTimeKemPrekey"])
                assert test["flags"] in replays, f"{path.name}#{test['tcId']}"
                assert outcomes[: failures[-1]] == ["ok"] * failures[-1]
    assert checked > 100
