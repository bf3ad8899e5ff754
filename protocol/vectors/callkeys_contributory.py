"""The ``ContributoryCallSecret`` group of the callkeys vectors (spec/media.md §4, §9).

The 1:1 contributory agreement in the ``classic`` profile (X25519 only): the
CallOffer and CallAnswer bytes, the DH output and the HKDF info as
intermediates, and the two directional base keys. Each side's draws are
recorded as its ``entropy``. The ``pq-default`` agreement adds an ML-KEM
encapsulation, whose randomness pyca cannot take from outside, so it is
covered by the unit tests only.

A negative mutates tcId's ``answer`` once; completing the offer with it must
fail with ``error``, and completing it with the original answer (the
referenced valid test) must still succeed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from protocol.encoding import encode_ec
from protocol.media.contributory import (
    CALL_SECRET_LABELS,
    CallKeys,
    answer_offer,
    complete_offer,
    create_offer,
)
from protocol.media.messages import CALL_ID_LEN, decode_call_answer
from protocol.media.sframe import CipherSuite, suite_params
from protocol.primitives import X25519KeyPair, hkdf_sha256, x25519
from protocol.profiles import CLASSIC
from protocol.randomness import Random, RecordingRandom, ScriptedRandom
from protocol.vectors.callkeys_transcript import CALLKEYS_OPS, FAMILY
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
    outcome,
    to_hex,
)

GROUP_TYPE: Final = "ContributoryCallSecret"
LABEL: Final = CALL_SECRET_LABELS[CLASSIC.kem]

_VALID_FIELDS: Final = {
    "call_id": HEX_BYTES,
    "cipher_suite": {"type": "integer", "minimum": 1},
    "caller_ik": HEX_BYTES,
    "callee_ik": HEX_BYTES,
    "entropy": obj({"caller": ENTROPY_LIST, "callee": ENTROPY_LIST}),
    "offer": HEX_BYTES,
    "answer": HEX_BYTES,
    "intermediate": obj({"dh": HEX_BYTES, "info": HEX_BYTES}),
    "caller_base_key": HEX_BYTES,
    "callee_base_key": HEX_BYTES,
}
_TEST: Final = obj(
    dict(TEST_ENVELOPE),
    {
        **_VALID_FIELDS,
        "error": ERROR_CODE,
        "mutation_of": {"type": "integer", "minimum": 1},
        "mutation": obj(
            {
                "field": {"const": "answer"},
                "op": {"enum": list(CALLKEYS_OPS)},
                "description": {"type": "string"},
            },
            {"offset": {"type": "integer"}, "mask": HEX_BYTES, "value": HEX_BYTES},
        ),
    },
)
GROUP_SCHEMA: Final = obj(
    {
        "type": {"const": GROUP_TYPE},
        "profile": {"const": CLASSIC.name},
        "label": HEX_BYTES,
        "label_text": {"type": "string"},
        "tests": {"type": "array", "items": _TEST},
    }
)


def _agree(
    test: Mapping[str, Any], caller_rng: Random, callee_rng: Random
) -> tuple[bytes, bytes, CallKeys, CallKeys]:
    """Run offer, answer and completion; returns (offer, answer, caller keys, callee keys)."""
    caller_ik, callee_ik = from_hex(test["caller_ik"]), from_hex(test["callee_ik"])
    suite = CipherSuite(test["cipher_suite"])
    secret, offer = create_offer(CLASSIC, from_hex(test["call_id"]), suite=suite, rng=caller_rng)
    callee, answer = answer_offer(CLASSIC, offer, caller_ik, callee_ik, rng=callee_rng)
    caller = complete_offer(CLASSIC, secret, answer, caller_ik, callee_ik)
    return offer, answer, caller, callee


def _intermediate(test: Mapping[str, Any], answer: bytes) -> dict[str, str]:
    caller_private = entropy_entries(test["entropy"]["caller"])[0][1]
    dh = x25519(caller_private, decode_call_answer(answer).x25519_pub)
    info = LABEL + encode_ec(from_hex(test["caller_ik"])) + encode_ec(from_hex(test["callee_ik"]))
    return {"dh": to_hex(dh), "info": to_hex(info)}


def _valid_test(tc_id: int, comment: str, suite: CipherSuite) -> dict[str, Any]:
    rng = drbg_for(FAMILY, tc_id)
    caller_ik = X25519KeyPair.from_private(rng.draw("caller_identity", 32)).public
    callee_ik = X25519KeyPair.from_private(rng.draw("callee_identity", 32)).public
    test: dict[str, Any] = {
        "tcId": tc_id,
        "comment": comment,
        "flags": ["Contributory"],
        "result": "valid",
        "call_id": to_hex(rng.draw("call_id", CALL_ID_LEN)),
        "cipher_suite": int(suite),
        "caller_ik": to_hex(caller_ik),
        "callee_ik": to_hex(callee_ik),
    }
    caller_rng, callee_rng = RecordingRandom(rng), RecordingRandom(rng)
    offer, answer, caller, callee = _agree(test, caller_rng, callee_rng)
    if (caller.send_base_key, caller.receive_base_key) != (
        callee.receive_base_key,
        callee.send_base_key,
    ):
        raise VectorMismatch("generator: the two sides disagree")
    test["entropy"] = {
        "caller": entropy_list(caller_rng.draws),
        "callee": entropy_list(callee_rng.draws),
    }
    test |= {"offer": to_hex(offer), "answer": to_hex(answer)}
    test["intermediate"] = _intermediate(test, answer)
    test["caller_base_key"] = to_hex(caller.send_base_key)
    test["callee_base_key"] = to_hex(caller.receive_base_key)
    return test


def _negative(
    tc_id: int, valid: Mapping[str, Any], comment: str, error: str, **mutation: Any
) -> dict[str, Any]:
    mutation = {"field": "answer", **mutation, "description": comment}
    test = {
        "tcId": tc_id,
        "comment": comment,
        "flags": ["TamperedAnswer"],
        "result": "invalid",
        "mutation_of": valid["tcId"],
        "mutation": mutation,
        "answer": to_hex(mutate(from_hex(valid["answer"]), mutation)),
        "error": error,
    }
    expect_equal("generator: negative", _complete_with(valid, from_hex(test["answer"])), error)
    return test


def _complete_with(valid: Mapping[str, Any], answer: bytes) -> str:
    """Complete the valid test's offer with ``answer``; "ok" or the error code."""
    caller_rng = ScriptedRandom(entropy_entries(valid["entropy"]["caller"]))
    caller_ik, callee_ik = from_hex(valid["caller_ik"]), from_hex(valid["callee_ik"])
    suite = CipherSuite(valid["cipher_suite"])
    secret, _ = create_offer(CLASSIC, from_hex(valid["call_id"]), suite=suite, rng=caller_rng)
    return outcome(lambda: complete_offer(CLASSIC, secret, answer, caller_ik, callee_ik))[1]


def contributory_group(ids: Iterator[int]) -> dict[str, Any]:
    """The group's tests, numbered by ``ids``."""
    tests = [
        _valid_test(next(ids), "classic profile, suite 4: two 32-byte keys", CipherSuite(4)),
        _valid_test(next(ids), "classic profile, suite 5: two 64-byte keys", CipherSuite(5)),
    ]
    answer = from_hex(tests[0]["answer"])
    # An answer is 93 01 03 c4 10 <call_id> c4 20 <x25519_pub> c0.
    low_order = to_hex(answer[:-33] + bytes(32) + answer[-1:])
    comment = "the answer's X25519 key replaced by 0 (low order)"
    tests.append(
        _negative(next(ids), tests[0], comment, "INVALID_PUBLIC_KEY", op="replace", value=low_order)
    )
    comment = "one bit of the answer's call id flipped"
    tests.append(
        _negative(next(ids), tests[0], comment, "NOT_IN_CALL", op="xor", offset=5, mask="01")
    )
    return {
        "type": GROUP_TYPE,
        "profile": CLASSIC.name,
        "label": to_hex(LABEL),
        "label_text": LABEL.decode(),
        "tests": tests,
    }


def verify_contributory(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one ContributoryCallSecret test (spec/media.md §4)."""
    if test["result"] == "invalid":
        valid = next(t for t in group["tests"] if t["tcId"] == test["mutation_of"])
        mutated = mutate(from_hex(valid["answer"]), test["mutation"])
        expect_equal("mutated answer", mutated, from_hex(test["answer"]))
        expect_equal("error", _complete_with(valid, mutated), test["error"])
        expect_equal("original answer", _complete_with(valid, from_hex(valid["answer"])), "ok")
        return
    entropy = test["entropy"]
    caller_rng = ScriptedRandom(entropy_entries(entropy["caller"]))
    callee_rng = ScriptedRandom(entropy_entries(entropy["callee"]))
    offer, answer, caller, callee = _agree(test, caller_rng, callee_rng)
    expect_equal("offer", offer, from_hex(test["offer"]))
    expect_equal("answer", answer, from_hex(test["answer"]))
    expect_equal("intermediate", _intermediate(test, answer), test["intermediate"])
    info = from_hex(test["intermediate"]["info"])
    nh = suite_params(test["cipher_suite"]).nh
    secret = hkdf_sha256(from_hex(test["intermediate"]["dh"]), None, info, 2 * nh)
    expect_equal("caller_base_key", secret[:nh], from_hex(test["caller_base_key"]))
    expect_equal("callee_base_key", secret[nh:], from_hex(test["callee_base_key"]))
    expect_equal(
        "caller's keys", (caller.send_base_key, caller.receive_base_key), (secret[:nh], secret[nh:])
    )
    expect_equal(
        "callee's keys", (callee.send_base_key, callee.receive_base_key), (secret[nh:], secret[:nh])
    )
