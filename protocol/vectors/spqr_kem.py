"""``spqr`` vector groups for the KEMs: Kyber1024 via ML-KEM-1024 and incremental ML-KEM-768.

Groups of ``spqr_test.json`` (spec/spqr.md §2, §4; vectors/README.md §7):

* ``Kyber1024Wrap``: an ML-KEM-1024 key from ``seed``, an encapsulation
  from the message ``m`` (FIPS 203 ML-KEM.Encaps_internal, which is Kyber's
  encapsulation after its m = H(coins)), ML-KEM's ``k_bar`` and Kyber's
  ``shared_secret`` = SHAKE-256(k_bar ‖ SHA3-256(ciphertext))[:32];
  ``encoded_public_key`` and ``encoded_ciphertext`` carry libsignal's type
  byte 0x08. Negatives mutate one of them (INVALID_PUBLIC_KEY,
  MALFORMED_MESSAGE) or the ciphertext, whose decapsulation then gives the
  listed, different, implicit-rejection secret.
* ``IncrementalMlKem768``: keys from ``seed`` split into ``hdr`` (ρ ‖ H(ek))
  and ``ek`` (the 1152-byte vector), ``ct1`` from the header and ``m``,
  ``ct2`` from ``ek``, and the ``shared_secret``; ``r`` is an intermediate.
  Negatives: a key vector that does not match the header
  (INVALID_PUBLIC_KEY), a truncated header (MALFORMED_MESSAGE), a mutated
  ct2 (another secret).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from protocol import kyber1024
from protocol.errors import ProtocolError
from protocol.primitives import kem_decapsulate
from protocol.spqr import incremental_mlkem768 as im
from protocol.spqr import kpke
from protocol.vectors.common import (
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    VectorMismatch,
    drbg_for,
    expect_equal,
    from_hex,
    mutate,
    obj,
    to_hex,
)

FAMILY: Final = "spqr"
MUTATION: Final = obj(
    {"field": {"type": "string"}, "op": {"type": "string"}},
    {
        "offset": {"type": "integer", "minimum": 0},
        "mask": HEX_BYTES,
        "length": {"type": "integer", "minimum": 0},
        "value": HEX_BYTES,
        "description": {"type": "string"},
    },
)
_NEGATIVE: Final = {"mutation_of": {"type": "integer", "minimum": 1}, "mutation": MUTATION}

KYBER_TEST: Final = obj(
    TEST_ENVELOPE,
    {
        "seed": HEX_BYTES,
        "m": HEX_BYTES,
        "public_key": HEX_BYTES,
        "encoded_public_key": HEX_BYTES,
        "ciphertext": HEX_BYTES,
        "encoded_ciphertext": HEX_BYTES,
        "k_bar": HEX_BYTES,
        "shared_secret": HEX_BYTES,
        "error": ERROR_CODE,
        **_NEGATIVE,
    },
)
INCREMENTAL_TEST: Final = obj(
    TEST_ENVELOPE,
    {
        "seed": HEX_BYTES,
        "m": HEX_BYTES,
        "hdr": HEX_BYTES,
        "ek": HEX_BYTES,
        "r": HEX_BYTES,
        "ct1": HEX_BYTES,
        "ct2": HEX_BYTES,
        "shared_secret": HEX_BYTES,
        "error": ERROR_CODE,
        **_NEGATIVE,
    },
)


def _code(call: Callable[[], object]) -> str:
    try:
        call()
    except ProtocolError as exc:
        return exc.code
    return "ok"


def negative(
    ids: Iterator[int], original: Mapping[str, Any], comment: str, mutation: dict[str, Any]
) -> dict[str, Any]:
    """A negative test: ``mutation`` applied to ``original[mutation['field']]``."""
    field = mutation["field"]
    return {
        "tcId": next(ids),
        "comment": comment,
        "flags": ["Mutation"],
        "result": "invalid",
        "mutation_of": original["tcId"],
        "mutation": mutation,
        field: to_hex(mutate(from_hex(original[field]), mutation)),
    }


def original_of(group: Mapping[str, Any], test: Mapping[str, Any]) -> dict[str, Any]:
    """The valid test a negative names, after checking that its mutation gives the field."""
    original: dict[str, Any] = next(t for t in group["tests"] if t["tcId"] == test["mutation_of"])
    field = test["mutation"]["field"]
    expect_equal(
        "mutated field", mutate(from_hex(original[field]), test["mutation"]), from_hex(test[field])
    )
    return original


# --- Kyber1024Wrap ---------------------------------------------------------------------


def _kyber_valid(tc_id: int) -> dict[str, Any]:
    drbg = drbg_for(FAMILY, f"kyber-{tc_id}")
    seed, m = drbg.draw("kyber_seed", 64), drbg.draw("kyber_m", 32)
    public = kyber1024.public_key(seed)
    k_bar, ciphertext = kpke.encaps_internal(kpke.ML_KEM_1024, public, m)
    return {
        "tcId": tc_id,
        "comment": "Kyber1024 encapsulation and decapsulation through ML-KEM-1024",
        "flags": ["Valid"],
        "result": "valid",
        "seed": to_hex(seed),
        "m": to_hex(m),
        "public_key": to_hex(public),
        "encoded_public_key": to_hex(kyber1024.encode_public(public)),
        "ciphertext": to_hex(ciphertext),
        "encoded_ciphertext": to_hex(kyber1024.encode_ciphertext(ciphertext)),
        "k_bar": to_hex(k_bar),
        "shared_secret": to_hex(kyber1024.kyber_shared_secret(k_bar, ciphertext)),
    }


def _kyber_error(test: Mapping[str, Any]) -> str:
    field = test["mutation"]["field"]
    value = from_hex(test[field])
    if field == "encoded_public_key":
        return _code(lambda: kyber1024.decode_public(value))
    return _code(lambda: kyber1024.decode_ciphertext(value))


def kyber_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    valid = [_kyber_valid(next(ids)) for _ in range(2)]
    first = valid[0]
    tests = [*valid]
    one_byte = {"op": "replace", "offset": 0, "length": 1}
    for comment, mutation in (
        (
            "type byte 0x0A (ML-KEM-1024), not 0x08",
            {"field": "encoded_public_key", **one_byte, "value": "0a"},
        ),
        (
            "type byte 0x07 (Kyber768), not 0x08",
            {"field": "encoded_ciphertext", **one_byte, "value": "07"},
        ),
        (
            "public key one byte short",
            {"field": "encoded_public_key", "op": "truncate", "length": 1568},
        ),
    ):
        test = negative(ids, first, comment, mutation)
        test["error"] = _kyber_error(test)
        tests.append(test)
    flip = {"field": "ciphertext", "op": "xor", "offset": 100, "mask": "01"}
    test = negative(ids, first, "ciphertext bit flipped: implicit rejection, another secret", flip)
    rejected = kyber1024.decapsulate(from_hex(first["seed"]), from_hex(test["ciphertext"]))
    test["shared_secret"] = to_hex(rejected)
    tests.append(test)
    return tests


def verify_kyber(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    if test["result"] == "valid":
        seed, m = from_hex(test["seed"]), from_hex(test["m"])
        public, ciphertext = from_hex(test["public_key"]), from_hex(test["ciphertext"])
        expect_equal("public_key", kyber1024.public_key(seed), public)
        expect_equal(
            "encaps",
            kpke.encaps_internal(kpke.ML_KEM_1024, public, m),
            (from_hex(test["k_bar"]), ciphertext),
        )
        expect_equal(
            "k_bar", kem_decapsulate("ML-KEM-1024", seed, ciphertext), from_hex(test["k_bar"])
        )
        expect_equal(
            "shared_secret",
            kyber1024.decapsulate(seed, ciphertext),
            from_hex(test["shared_secret"]),
        )
        expect_equal(
            "encoded_public_key",
            kyber1024.decode_public(from_hex(test["encoded_public_key"])),
            public,
        )
        expect_equal(
            "encoded_ciphertext",
            kyber1024.decode_ciphertext(from_hex(test["encoded_ciphertext"])),
            ciphertext,
        )
        return
    original = original_of(group, test)
    field = test["mutation"]["field"]
    if field == "ciphertext":
        secret = kyber1024.decapsulate(from_hex(original["seed"]), from_hex(test["ciphertext"]))
        expect_equal("rejection secret", secret, from_hex(test["shared_secret"]))
        if secret == from_hex(original["shared_secret"]):
            raise VectorMismatch("a mutated ciphertext gave the original secret")
        return
    expect_equal("error", _kyber_error(test), test["error"])


# --- IncrementalMlKem768 ---------------------------------------------------------------


def _incremental_valid(tc_id: int) -> dict[str, Any]:
    drbg = drbg_for(FAMILY, f"incremental-{tc_id}")
    seed, m = drbg.draw("spqr_kem_seed", 64), drbg.draw("spqr_encaps_m", 32)
    keys = im.keys_from_seed(seed)
    ct1, state, shared = im.encaps1_derand(keys.hdr, m)
    return {
        "tcId": tc_id,
        "comment": "header, key vector, ct1 from the header alone, ct2 from the key vector",
        "flags": ["Valid"],
        "result": "valid",
        "seed": to_hex(seed),
        "m": to_hex(m),
        "hdr": to_hex(keys.hdr),
        "ek": to_hex(keys.ek),
        "r": to_hex(state.r),
        "ct1": to_hex(ct1),
        "ct2": to_hex(im.encaps2(keys.ek, state)),
        "shared_secret": to_hex(shared),
    }


def _incremental_error(original: Mapping[str, Any], test: Mapping[str, Any]) -> str:
    hdr = from_hex(test.get("hdr", original["hdr"]))
    ek = from_hex(test.get("ek", original["ek"]))

    def run() -> None:
        im.encaps1_derand(hdr, from_hex(original["m"]))
        im.require_matching_ek(ek, hdr)

    return _code(run)


def incremental_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    valid = [_incremental_valid(next(ids)) for _ in range(3)]
    first = valid[0]
    tests = [*valid]
    for comment, mutation in (
        (
            "key vector does not match H(ek) in the header",
            {"field": "ek", "op": "xor", "offset": 7, "mask": "01"},
        ),
        ("header one byte short", {"field": "hdr", "op": "truncate", "length": 63}),
    ):
        test = negative(ids, first, comment, mutation)
        test["error"] = _incremental_error(first, test)
        tests.append(test)
    test = negative(
        ids,
        first,
        "ct2 bit flipped: implicit rejection, another secret",
        {"field": "ct2", "op": "xor", "offset": 0, "mask": "80"},
    )
    test["shared_secret"] = to_hex(
        im.decaps(from_hex(first["seed"]), from_hex(first["ct1"]), from_hex(test["ct2"]))
    )
    tests.append(test)
    return tests


def verify_incremental(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    if test["result"] == "valid":
        seed, m = from_hex(test["seed"]), from_hex(test["m"])
        keys = im.keys_from_seed(seed)
        expect_equal("hdr", keys.hdr, from_hex(test["hdr"]))
        expect_equal("ek", keys.ek, from_hex(test["ek"]))
        ct1, state, shared = im.encaps1_derand(from_hex(test["hdr"]), m)
        expect_equal("r", state.r, from_hex(test["r"]))
        expect_equal("ct1", ct1, from_hex(test["ct1"]))
        expect_equal("shared_secret", shared, from_hex(test["shared_secret"]))
        ek = im.require_matching_ek(from_hex(test["ek"]), from_hex(test["hdr"]))
        expect_equal("ct2", im.encaps2(ek, state), from_hex(test["ct2"]))
        expect_equal("decaps", im.decaps(seed, ct1, from_hex(test["ct2"])), shared)
        return
    original = original_of(group, test)
    if test["mutation"]["field"] == "ct2":
        secret = im.decaps(
            from_hex(original["seed"]), from_hex(original["ct1"]), from_hex(test["ct2"])
        )
        expect_equal("rejection secret", secret, from_hex(test["shared_secret"]))
        if secret == from_hex(original["shared_secret"]):
            raise VectorMismatch("a mutated ct2 gave the original secret")
        return
    expect_equal("error", _incremental_error(original, test), test["error"])
