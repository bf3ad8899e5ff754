"""Ratchet transcript vectors, one file per profile (spec/ratchet.md §8; vectors/README.md §7).

A test is a scenario between an initiator and a responder set up from
``setup`` (SK, AD, the responder's ratchet private key). ``entropy`` lists
every random byte each party draws, in order. ``messages`` holds every
message that exists in the scenario with its intermediates (chain and
message keys, header, AEAD associated data); mutated copies name the message
they were made from and the one ``mutation`` applied. ``events`` are sends,
receives (with the expected result and, on a DH step, its intermediates) and
drops. After a failing receive, a later receive succeeds: failures change
nothing. The second group of each file uses small test-only limits so that
``max_skip`` and ``max_stored_skipped`` are reached at their boundary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from protocol.cipher import AesCbcHmacCipher
from protocol.primitives import GCM_TAG_LEN, X25519KeyPair, hmac_sha256, x25519
from protocol.profiles import PROFILES, Profile, get_profile, with_limits
from protocol.randomness import Random, RecordingRandom, ScriptedRandom
from protocol.ratchet import (
    RatchetState,
    header_subkey,
    hencrypt,
    init_initiator,
    init_responder,
    kdf_ck,
    kdf_rk,
    message_keys,
    ratchet_decrypt,
    ratchet_encrypt,
)
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
    mutate_int,
    obj,
    outcome,
    plaintext_of,
    test_ids,
)
from protocol.wire import (
    SIGNAL_MAC_LEN,
    Header,
    RatchetMessage,
    decode_message,
    encode_header,
    encode_message,
    encode_signal_message,
)

FAMILY: Final = "ratchet"
SCHEMA: Final = "ratchet_transcript_schema_v2.json"
# Test-only limits of the second group: small enough to reach every boundary
# in a few messages (spec/ratchet.md §6 explains the profiles' real values).
SMALL_LIMITS: Final = {"max_skip": 4, "max_stored_skipped": 6, "max_receiving_chains": 2}

# --- Schema ---------------------------------------------------------------------------

_KEYS = obj(
    {
        "ck_in": HEX_BYTES,
        "mk": HEX_BYTES,
        "ck_out": HEX_BYTES,
        "enc_key": HEX_BYTES,
        "nonce": HEX_BYTES,
    },
    {"auth_key": HEX_BYTES, "hk": HEX_BYTES, "header_subkey": HEX_BYTES},
)
_MUTATION = obj(
    {
        "field": {
            "enum": ["ciphertext", "header", "header.n", "header.dh", "ad", "tag", "version"]
        },
        "op": {"enum": ["xor", "truncate", "replace", "add"]},
        "description": {"type": "string"},
    },
    {
        "offset": {"type": "integer", "minimum": 0},
        "mask": HEX_BYTES,
        "length": {"type": "integer", "minimum": 0},
        "value": HEX_BYTES,
        "addend": {"type": "integer"},
    },
)
_MESSAGE = obj(
    {"id": {"type": "string"}, "sender": {"enum": list(ACTORS)}, "message": HEX_BYTES},
    {
        "plaintext": HEX_BYTES,
        "header": obj({"dh": HEX_BYTES, "pn": {"type": "integer"}, "n": {"type": "integer"}}),
        "header_bytes": HEX_BYTES,
        "enc_header": HEX_BYTES,
        "aead_ad": HEX_BYTES,
        "keys": _KEYS,
        "ciphertext": HEX_BYTES,
        "mutation_of": {"type": "string"},
        "mutation": _MUTATION,
        "ad": HEX_BYTES,
    },
)
_DH_RATCHET = obj(
    {
        "dh_recv": HEX_BYTES,
        "rk_in": HEX_BYTES,
        "dh_out_recv": HEX_BYTES,
        "rk_mid": HEX_BYTES,
        "ckr": HEX_BYTES,
        "dhs_pub": HEX_BYTES,
        "dh_out_send": HEX_BYTES,
        "rk_out": HEX_BYTES,
        "cks": HEX_BYTES,
    },
    {"nhkr": HEX_BYTES, "nhks": HEX_BYTES},
)
_EVENT = obj(
    {"op": {"enum": ["send", "recv", "drop"]}, "msg": {"type": "string"}},
    {
        "actor": {"enum": list(ACTORS)},
        "expect": {"anyOf": [{"const": "ok"}, ERROR_CODE]},
        "dh_ratchet": _DH_RATCHET,
        "used_skipped_key": {"type": "boolean"},
        "skipped_stored": {"type": "integer"},
    },
)
_TEST = obj(
    {
        **TEST_ENVELOPE,
        "setup": obj({"sk": HEX_BYTES, "ad": HEX_BYTES, "responder_ratchet_priv": HEX_BYTES}),
        "entropy": obj({actor: ENTROPY_LIST for actor in ACTORS}),
        "messages": {"type": "array", "items": _MESSAGE},
        "events": {"type": "array", "items": _EVENT},
    }
)
_TEXT = {"type": "string"}
_GROUP = {
    "type": {"const": "RatchetTranscript"},
    "profile": {"enum": list(PROFILES)},
    "dh": {"const": "X25519"},
    "kdf_rk": _TEXT,
    "kdf_rk_info": HEX_BYTES,
    "kdf_rk_info_text": _TEXT,
    "kdf_ck": _TEXT,
    "message_keys_info": HEX_BYTES,
    "message_keys_info_text": _TEXT,
    "initial_keys": _TEXT,
    "initial_keys_info": HEX_BYTES,
    "initial_keys_info_text": _TEXT,
    "header_keys_info": HEX_BYTES,
    "header_keys_info_text": _TEXT,
    "aead": _TEXT,
    "header_encoding": _TEXT,
    "pn_semantics": {"enum": ["count", "last-index"]},
    "initial_chains": {"enum": ["spec", "libsignal"]},
    "max_skip": {"type": "integer"},
    "max_stored_skipped": {"type": "integer"},
    "max_receiving_chains": {"type": "integer"},
}
SCHEMAS: dict[str, dict[str, Any]] = {
    SCHEMA: file_schema("Double Ratchet transcripts (spec/ratchet.md §8)", _GROUP, _TEST)
}

NOTES: Final = {
    "Ktv": {"bugType": "BASIC", "description": "A valid transcript: every message decrypts."},
    "OutOfOrder": {
        "bugType": "FUNCTIONALITY",
        "description": "Messages arrive out of order; skipped keys are stored and used.",
    },
    "DelayedAcrossDhStep": {
        "bugType": "FUNCTIONALITY",
        "description": "A message of an earlier chain arrives after a DH ratchet step.",
    },
    "BothSend": {
        "bugType": "FUNCTIONALITY",
        "description": "Both parties send before either receives.",
    },
    "MaxSkip": {"bugType": "EDGE_CASE", "description": "Exactly max_skip keys skipped: accepted."},
    "TamperedCiphertext": {"bugType": "AUTH_BYPASS", "description": "One ciphertext bit flipped."},
    "TamperedHeader": {"bugType": "AUTH_BYPASS", "description": "One header bit flipped."},
    "WrongAd": {"bugType": "AUTH_BYPASS", "description": "The receiver's AD differs in one bit."},
    "TruncatedTag": {"bugType": "AUTH_BYPASS", "description": "The tag or MAC lost its last byte."},
    "Replay": {"bugType": "AUTH_BYPASS", "description": "A delivered message is delivered again."},
    "ReplayOfSkipped": {
        "bugType": "AUTH_BYPASS",
        "description": "A message decrypted with a stored skipped key is delivered again.",
    },
    "TooManySkipped": {"bugType": "EDGE_CASE", "description": "n = Nr + max_skip + 1: refused."},
    "TooManySkippedViaPn": {
        "bugType": "EDGE_CASE",
        "description": "At a DH step, PN - Nr = max_skip + 1 keys of the old chain: refused.",
    },
    "EvictedSkippedKey": {
        "bugType": "EDGE_CASE",
        "description": "Key evicted at max_stored_skipped: MESSAGE_KEY_EVICTED, not a replay.",
    },
    "ForgottenChain": {
        "bugType": "EDGE_CASE",
        "description": "A chain older than max_receiving_chains is forgotten: AUTH_FAILED.",
    },
    "LowOrderRatchetKey": {
        "bugType": "DEFINED",
        "description": "The header's ratchet key is a low-order point (u = 0).",
    },
}

# --- Scenarios -------------------------------------------------------------------------
# A step is ("send", actor, id), ("recv", actor, id, expect), ("drop", id) or
# ("mutate", new id, original id, field). The expected results are part of
# the scenario; the generator refuses to write a file the library disagrees with.

Step = tuple[str, ...]
A, B = "initiator", "responder"


def _exchange(sender: str, receiver: str, ids: list[str]) -> list[Step]:
    return [("send", sender, i) for i in ids] + [("recv", receiver, i, "ok") for i in ids]


def _start() -> list[Step]:
    """a0 from the initiator, received: afterwards both parties may send."""
    return _exchange(A, B, ["a0"])


def _ping_pong(profile: Profile) -> list[Step]:
    return [
        *_start(),
        *_exchange(B, A, ["b0", "b1"]),
        *_exchange(A, B, ["a1"]),
        *_exchange(B, A, ["b2"]),
        *_exchange(A, B, ["a2", "a3"]),
    ]


def _reversed(profile: Profile) -> list[Step]:
    ids = ["a0", "a1", "a2", "a3"]
    return [("send", A, i) for i in ids] + [("recv", B, i, "ok") for i in reversed(ids)]


def _delayed(profile: Profile) -> list[Step]:
    return [
        ("send", A, "a0"),
        ("send", A, "a1"),
        ("send", A, "a2"),
        ("recv", B, "a0", "ok"),
        *_exchange(B, A, ["b0"]),
        *_exchange(A, B, ["a3"]),
        ("recv", B, "a2", "ok"),
        ("recv", B, "a1", "ok"),
    ]


def _both_send(profile: Profile) -> list[Step]:
    if profile.chains.initial_chains == "libsignal":  # the responder may send on SK's chain at once
        return [
            ("send", B, "b0"),
            ("send", A, "a0"),
            ("recv", A, "b0", "ok"),
            ("recv", B, "a0", "ok"),
        ]
    return [
        *_start(),
        ("send", B, "b0"),
        ("send", A, "a1"),
        ("recv", A, "b0", "ok"),
        ("recv", B, "a1", "ok"),
    ]


def _negative(field: str, code: str) -> Callable[[Profile], list[Step]]:
    def scenario(profile: Profile) -> list[Step]:
        return [
            ("send", A, "a0"),
            ("mutate", "a0x", "a0", field),
            ("recv", B, "a0x", code),
            ("recv", B, "a0", "ok"),
        ]

    return scenario


def _truncated(profile: Profile) -> list[Step]:
    code = "MALFORMED_MESSAGE" if profile.framing.name == "signal-v3" else "AUTH_FAILED"
    return _negative("tag", code)(profile)


def _replay(profile: Profile) -> list[Step]:
    return [
        *_exchange(A, B, ["a0", "a1"]),
        ("recv", B, "a1", "DUPLICATE_MESSAGE"),
        *_exchange(A, B, ["a2"]),
    ]


def _replay_skipped(profile: Profile) -> list[Step]:
    return [
        ("send", A, "a0"),
        ("send", A, "a1"),
        ("recv", B, "a1", "ok"),
        ("recv", B, "a0", "ok"),
        ("recv", B, "a0", "DUPLICATE_MESSAGE"),
        *_exchange(A, B, ["a2"]),
    ]


def _ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def _max_skip(profile: Profile) -> list[Step]:
    ids = _ids("a", SMALL_LIMITS["max_skip"] + 1)
    return [*(("send", A, i) for i in ids), ("recv", B, ids[-1], "ok"), ("recv", B, ids[0], "ok")]


def _too_many_skipped(profile: Profile) -> list[Step]:
    ids = _ids("a", SMALL_LIMITS["max_skip"] + 2)
    return [
        *(("send", A, i) for i in ids),
        ("recv", B, ids[-1], "TOO_MANY_SKIPPED"),
        ("recv", B, ids[-2], "ok"),
        ("recv", B, ids[-1], "ok"),
    ]


def _too_many_skipped_via_pn(profile: Profile) -> list[Step]:
    old = _ids("a", SMALL_LIMITS["max_skip"] + 2)
    return [
        *(("send", A, i) for i in old),
        ("recv", B, "a0", "ok"),
        *_exchange(B, A, ["b0"]),
        ("send", A, "c0"),
        ("recv", B, "c0", "TOO_MANY_SKIPPED"),
        ("recv", B, old[-2], "ok"),
        ("recv", B, "c0", "ok"),
        ("drop", old[-1]),
    ]


def _evicted(profile: Profile) -> list[Step]:
    ids = _ids("a", SMALL_LIMITS["max_skip"] + 1)
    more = _ids("c", SMALL_LIMITS["max_skip"])
    return [
        *(("send", A, i) for i in ids),
        ("recv", B, ids[-1], "ok"),
        *_exchange(B, A, ["b0"]),
        *(("send", A, i) for i in more),
        ("recv", B, more[-1], "ok"),
        ("recv", B, "a0", "MESSAGE_KEY_EVICTED"),
        ("recv", B, ids[-2], "ok"),
        ("recv", B, "c0", "ok"),
    ]


def _forgotten_chain(profile: Profile) -> list[Step]:
    """max_receiving_chains + 1 DH turns on, the first chain is forgotten; the second is not.

    The initiator sends two messages on each of its first two chains, of
    which the responder receives one, then one message on each of
    max_receiving_chains further chains, each answered so that it is a new
    chain; the held messages then arrive.
    """
    turns = [chr(ord("d") + i) for i in range(profile.chains.max_receiving_chains)]
    steps: list[Step] = [
        ("send", A, "a0"),
        ("send", A, "a1"),
        ("recv", B, "a0", "ok"),
        *_exchange(B, A, ["b0"]),
        ("send", A, "c0"),
        ("send", A, "c1"),
        ("recv", B, "c0", "ok"),
    ]
    for index, chain in enumerate(turns, start=1):
        steps += [*_exchange(B, A, [f"b{index}"]), *_exchange(A, B, [f"{chain}0"])]
    return [*steps, ("recv", B, "a1", "AUTH_FAILED"), ("recv", B, "c1", "ok")]


def _version_byte_34(profile: Profile) -> list[Step]:
    return [
        ("send", A, "a0"),
        ("send", A, "a1"),
        ("mutate", "a1w", "a1", "version"),
        ("recv", B, "a0", "ok"),
        ("recv", B, "a1w", "ok"),
        *_exchange(B, A, ["b0"]),
    ]


def _low_order(profile: Profile) -> list[Step]:
    return _negative("header_dh", "INVALID_PUBLIC_KEY")(profile)


Scenario = tuple[str, list[str], Callable[[Profile], list[Step]]]

DEFAULT_SCENARIOS: Final[list[Scenario]] = [
    ("in-order ping-pong over several DH turns", ["Ktv"], _ping_pong),
    ("one chain delivered in reverse order", ["OutOfOrder"], _reversed),
    ("messages of an old chain delivered after a DH step", ["DelayedAcrossDhStep"], _delayed),
    ("both parties send before either receives", ["BothSend"], _both_send),
    ("a ciphertext bit flipped", ["TamperedCiphertext"], _negative("ciphertext", "AUTH_FAILED")),
    ("a header bit flipped", ["TamperedHeader"], _negative("header", "AUTH_FAILED")),
    ("the receiver's AD differs", ["WrongAd"], _negative("ad", "AUTH_FAILED")),
    ("the tag loses its last byte", ["TruncatedTag"], _truncated),
    ("a delivered message replayed", ["Replay"], _replay),
    ("a message decrypted from the skipped store replayed", ["ReplayOfSkipped"], _replay_skipped),
    ("the header's ratchet key replaced by u = 0", ["LowOrderRatchetKey"], _low_order),
]
SMALL_SCENARIOS: Final[list[Scenario]] = [
    ("exactly max_skip keys skipped", ["MaxSkip"], _max_skip),
    ("n = Nr + max_skip + 1", ["TooManySkipped"], _too_many_skipped),
    ("evicted key at max_stored_skipped, then the rest", ["EvictedSkippedKey"], _evicted),
    ("a chain beyond max_receiving_chains is forgotten", ["ForgottenChain"], _forgotten_chain),
]


LIBSIGNAL_VERSION_BYTE: Final[Scenario] = (
    "a message written with version byte 0x34 decrypts",
    ["LibsignalVersionByte"],
    _version_byte_34,
)
LIBSIGNAL_NOTES: Final = {
    "LibsignalVersionByte": {
        "bugType": "FUNCTIONALITY",
        "description": "libsignal 0.2x writes 0x34 in v3 sessions; the high nibble is the "
        "session version and the byte is MACed as received (spec/wire.md §3.1).",
    },
}


def _scenarios(profile: Profile, small: bool) -> list[Scenario]:
    if not small:
        return DEFAULT_SCENARIOS
    if profile.chains.initial_chains == "libsignal":  # appended, so that earlier tcIds stay
        return [*SMALL_SCENARIOS, LIBSIGNAL_VERSION_BYTE]
    if profile.chains.pn_semantics == "count":  # libsignal never skips by PN
        via_pn = (
            "PN - Nr = max_skip + 1 at a DH step",
            ["TooManySkippedViaPn"],
            _too_many_skipped_via_pn,
        )
        return [*SMALL_SCENARIOS, via_pn]
    return SMALL_SCENARIOS


# --- Intermediates (computed from the states before and after an event) ---------------


def _message_record(
    profile: Profile,
    before: RatchetState,
    after: RatchetState,
    plaintext: bytes,
    data: bytes,
    ad: bytes,
) -> dict[str, Any]:
    """The send intermediates: header, chain and message keys, AEAD input."""
    assert before.cks is not None
    ck_out, mk = kdf_ck(profile, before.cks)
    if ck_out != after.cks:
        raise VectorMismatch("sending chain key differs from KDF_CK")
    keys = message_keys(profile, mk)
    header = Header(before.dhs.public, before.pn, before.ns)
    parsed = decode_message(profile, data)
    record_keys = {
        "ck_in": before.cks,
        "mk": mk,
        "ck_out": ck_out,
        "enc_key": keys.enc_key,
        "nonce": keys.nonce,
    }
    if keys.auth_key:
        record_keys["auth_key"] = keys.auth_key
    out: dict[str, Any] = {
        "plaintext": plaintext,
        "header": {"dh": header.dh.hex(), "pn": header.pn, "n": header.n},
        "header_bytes": encode_header(header),
    }
    if profile.headers.encrypted:
        assert before.hks is not None
        out["enc_header"] = parsed.authenticated
        record_keys["hk"] = before.hks
        record_keys["header_subkey"] = header_subkey(profile, before.hks, parsed.authenticated[:16])
    signal = profile.framing.name == "signal-v3"
    prefix = AesCbcHmacCipher.mac_prefix(ad, before.role == "initiator") if signal else ad
    out |= {
        "aead_ad": prefix + parsed.authenticated,
        "keys": _hexed(record_keys),
        "ciphertext": parsed.ciphertext,
    }
    return _hexed(out)


def _dh_record(
    profile: Profile, before: RatchetState, after: RatchetState
) -> dict[str, str] | None:
    """DH ratchet step intermediates, or None when the receive made no step."""
    if after.rk == before.rk or after.dhr is None:
        return None
    dh_out_recv = x25519(before.dhs.private, after.dhr)
    rk_mid, ckr, nhkr = kdf_rk(profile, before.rk, dh_out_recv)
    dh_out_send = x25519(after.dhs.private, after.dhr)
    rk_out, cks, nhks = kdf_rk(profile, rk_mid, dh_out_send)
    if (rk_out, cks) != (after.rk, after.cks):
        raise VectorMismatch("DH ratchet step differs from KDF_RK")
    record = {
        "dh_recv": after.dhr,
        "rk_in": before.rk,
        "dh_out_recv": dh_out_recv,
        "rk_mid": rk_mid,
        "ckr": ckr,
        "dhs_pub": after.dhs.public,
        "dh_out_send": dh_out_send,
        "rk_out": rk_out,
        "cks": cks,
    }
    if nhkr is not None and nhks is not None:
        record |= {"nhkr": nhkr, "nhks": nhks}
    return _hexed(record)


def _hexed(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.hex() if isinstance(v, bytes) else v for k, v in values.items()}


def _recv_record(before: RatchetState, after: RatchetState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    step = _dh_record(before.profile, before, after)
    if step is not None:
        out["dh_ratchet"] = step
    used = after.mkskipped != before.mkskipped and (after.ckr, after.old_chains) == (
        before.ckr,
        before.old_chains,
    )
    return out | {"used_skipped_key": used, "skipped_stored": len(after.mkskipped)}


# --- Mutations (spec/ratchet.md §8: one per negative test; vectors/README.md §4) -------

_MUTATION_SALT: Final = bytes(16)
_LOW_ORDER_DESCRIPTION: Final = (
    "ratchet key replaced by u = 0; an encrypted header is sealed again under HKs "
    "with r = 16 zero bytes (not the original r: a subkey never seals two headers)"
)


def _mutation_record(
    profile: Profile, kind: str, parsed: RatchetMessage, ad: bytes
) -> dict[str, Any]:
    """The recorded mutation of a scenario's ``kind`` (a field of the message or the AD)."""
    signal = profile.framing.name == "signal-v3"
    tag_len = len(parsed.mac) if signal else GCM_TAG_LEN
    records: dict[str, dict[str, Any]] = {
        "ad": {"field": "ad", "op": "xor", "offset": len(ad) - 1, "mask": "01"},
        "tag": {"field": "tag", "op": "truncate", "length": tag_len - 1},
        "ciphertext": {"field": "ciphertext", "op": "xor", "offset": 0, "mask": "01"},
        "header": {"field": "header.n", "op": "add", "addend": 1}
        if signal
        else {
            "field": "header",
            "op": "xor",
            "offset": len(parsed.authenticated) - 1,
            "mask": "01",
        },
        "header_dh": {"field": "header.dh", "op": "replace", "value": bytes(32).hex()},
        "version": {"field": "version", "op": "replace", "value": "34"},
    }
    descriptions = {
        "ad": "the receiver's AD with the low bit of its last byte flipped",
        "tag": "the last byte of the AEAD tag (signal-v3: of the MAC) removed",
        "ciphertext": "the low bit of the first ciphertext byte flipped",
        "header": "the counter n + 1, MAC unchanged"
        if signal
        else "the low bit of the last byte of the header field h flipped",
        "header_dh": _LOW_ORDER_DESCRIPTION,
        "version": _VERSION_34_TEXT,
    }
    return {**records[kind], "description": descriptions[kind]}


_VERSION_34_TEXT: Final = (
    "version byte 0x34, as libsignal 0.2x writes it in a v3 session, and the MAC "
    "computed again over it with the message's auth_key (a genuine message, not a forgery)"
)


def _rewritten_as_0x34(
    profile: Profile, sender: RatchetState, parsed: RatchetMessage, ad: bytes
) -> bytes:
    """The message as a libsignal 0.2x sender writes it: 0x34 ‖ protobuf ‖ MAC over both."""
    assert sender.cks is not None
    body = b"\x34" + parsed.authenticated[1:]
    keys = message_keys(profile, kdf_ck(profile, sender.cks)[1])
    return (
        body
        + hmac_sha256(
            keys.auth_key, AesCbcHmacCipher.mac_prefix(ad, sender.role == "initiator") + body
        )[:SIGNAL_MAC_LEN]
    )


def _mutate(
    profile: Profile, sender: RatchetState, data: bytes, kind: str, ad: bytes
) -> tuple[bytes, dict[str, Any], bytes]:
    """Apply one documented mutation; returns (message, mutation, receiver's AD)."""
    parsed = decode_message(profile, data)
    mutation = _mutation_record(profile, kind, parsed, ad)
    header, body, ct, mac = parsed.header, parsed.authenticated, parsed.ciphertext, parsed.mac
    signal = profile.framing.name == "signal-v3"
    if kind == "version":
        return _rewritten_as_0x34(profile, sender, parsed, ad), mutation, ad
    if kind == "ad":
        return data, mutation, mutate(ad, mutation)
    if kind == "tag" and signal:
        mac = mutate(mac, mutation)
    elif kind == "tag":
        ct = ct[:-GCM_TAG_LEN] + mutate(ct[-GCM_TAG_LEN:], mutation)
    elif kind == "ciphertext":
        ct = mutate(ct, mutation)
    elif kind == "header" and signal:
        assert header is not None
        header = header._replace(n=mutate_int(header.n, mutation))
    elif kind == "header":
        body = mutate(body, mutation)
    else:  # header_dh: a low-order ratchet key, in an otherwise well-formed header
        low = Header(mutate(sender.dhs.public, mutation), sender.pn, sender.ns)
        if profile.headers.encrypted:
            assert sender.hks is not None
            salt = ScriptedRandom([("header_nonce", _MUTATION_SALT)])
            body = hencrypt(profile, sender.hks, encode_header(low), salt)
        elif not signal:
            body = encode_header(low)
        header = low
    if signal:
        assert header is not None
        return encode_signal_message(header, ct) + mac, mutation, ad
    return encode_message(body, ct), mutation, ad


# --- Replaying one test (shared by the generator and the verifier) ----------------------


@dataclasses.dataclass
class _Run:
    """The two parties of one test and the messages created so far."""

    profile: Profile
    ad: bytes
    states: dict[str, RatchetState]
    rngs: Mapping[str, Random]
    sent: dict[str, RatchetState] = dataclasses.field(default_factory=dict)  # sender before


def _setup(profile: Profile, setup: Mapping[str, bytes], rngs: Mapping[str, Random]) -> _Run:
    spk = X25519KeyPair.from_private(setup["responder_ratchet_priv"])
    states = {
        A: init_initiator(profile, setup["sk"], spk.public, rngs[A]),
        B: init_responder(profile, setup["sk"], spk),
    }
    return _Run(profile, setup["ad"], states, rngs)


def _send(run: _Run, actor: str, message_id: str, plaintext: bytes) -> tuple[bytes, dict[str, Any]]:
    before = run.states[actor]
    after, data = ratchet_encrypt(before, plaintext, run.ad, run.rngs[actor])
    run.states[actor], run.sent[message_id] = after, before
    return data, _message_record(run.profile, before, after, plaintext, data, run.ad)


def _recv(run: _Run, actor: str, data: bytes, ad: bytes) -> tuple[dict[str, Any], bytes | None]:
    before = run.states[actor]
    result, code = outcome(lambda: ratchet_decrypt(before, data, ad, run.rngs[actor]))
    if result is None:
        return {"expect": code}, None
    run.states[actor], plaintext = result
    return {"expect": "ok", **_recv_record(before, result[0])}, plaintext


# --- Generation -------------------------------------------------------------------------


def _generate_test(
    profile: Profile, tc_id: int, comment: str, flags: list[str], steps: list[Step]
) -> dict[str, Any]:
    drbg = drbg_for(FAMILY, f"{profile.name}-{tc_id}")
    ik_a, ik_b = (X25519KeyPair.from_private(drbg.draw("identity_key", 32)) for _ in ACTORS)
    setup = {
        "sk": drbg.draw("sk", profile.agreement.sk_len),
        "ad": b"\x05" + ik_a.public + b"\x05" + ik_b.public,
        "responder_ratchet_priv": drbg.draw("responder_ratchet_key", 32),
    }
    recorders = {actor: RecordingRandom(drbg) for actor in ACTORS}
    run = _setup(profile, setup, recorders)
    messages: dict[str, dict[str, Any]] = {}
    wire: dict[str, tuple[bytes, bytes]] = {}  # id -> (message, receiver's AD)
    events: list[dict[str, Any]] = []
    invalid = False
    for step in steps:
        if step[0] == "send":
            _, actor, mid = step
            data, record = _send(run, actor, mid, plaintext_of(mid))
            messages[mid] = {"id": mid, "sender": actor, **record, "message": data.hex()}
            wire[mid] = (data, run.ad)
            events.append({"op": "send", "actor": actor, "msg": mid})
        elif step[0] == "mutate":
            _, mid, original, field = step
            data, mutation, ad = _mutate(
                profile, run.sent[original], wire[original][0], field, run.ad
            )
            entry = {
                "id": mid,
                "sender": messages[original]["sender"],
                "mutation_of": original,
                "mutation": mutation,
            }
            messages[mid] = {
                **entry,
                "message": data.hex(),
                **({"ad": ad.hex()} if ad != run.ad else {}),
            }
            wire[mid] = (data, ad)
        elif step[0] == "recv":
            _, actor, mid, expect = step
            outcome, plaintext = _recv(run, actor, *wire[mid])
            original = messages[mid].get("mutation_of", mid)
            if outcome["expect"] != expect or (
                plaintext is not None and plaintext != plaintext_of(original)
            ):
                raise VectorMismatch(
                    f"{profile.name} tcId {tc_id}: {mid} gave {outcome['expect']}, not {expect}"
                )
            invalid |= expect != "ok"
            events.append({"op": "recv", "actor": actor, "msg": mid, **outcome})
        else:
            events.append({"op": "drop", "msg": step[1]})
    return {
        "tcId": tc_id,
        "comment": comment,
        "flags": flags,
        "setup": _hexed(setup),
        "entropy": {actor: entropy_list(recorders[actor].draws) for actor in ACTORS},
        "messages": list(messages.values()),
        "events": events,
        "result": "invalid" if invalid else "valid",
    }


_AEAD_TEXT: Final = {
    "AES-256-GCM": (
        "AES-256-GCM; enc_key ‖ nonce = HKDF-SHA256(salt=0, ikm=mk, info=message_keys_info, 44); "
        "aead_ad = AD ‖ header_bytes (or enc_header)"
    ),
    "AES-256-CBC-HMAC-SHA256-64": (
        "AES-256-CBC PKCS#7; enc_key ‖ auth_key ‖ nonce(IV) = HKDF-SHA256(salt=0, "
        "ikm=mk, info=message_keys_info, 80); MAC = HMAC-SHA256(auth_key, aead_ad)[0:8], "
        "aead_ad = Encode(IK_sender) ‖ Encode(IK_receiver) ‖ 0x33 ‖ protobuf"
    ),
}


def _initial_keys_text(profile: Profile) -> str:
    if profile.chains.initial_chains == "libsignal":
        return (
            "RK = SK[0:32]; CK = SK[32:64]: the responder's first sending chain "
            "and the initiator's first receiving chain"
        )
    if profile.headers.encrypted:
        return (
            "RK ‖ shared_hka ‖ shared_nhkb = "
            "HKDF-SHA256(salt=0, ikm=SK, info=initial_keys_info, 96)"
        )
    return "RK = HKDF-SHA256(salt=0, ikm=SK, info=initial_keys_info, 32)"


def _header_text(profile: Profile) -> str:
    plain = "header_bytes = dh(32) ‖ pn(u32be) ‖ n(u32be)"
    if profile.framing.name == "signal-v3":
        return "0x33 ‖ protobuf SignalMessage {1: 0x05 ‖ dh, 2: n, 3: pn, 4: ciphertext} ‖ MAC(8)"
    if profile.headers.encrypted:
        return (
            f"{plain}; enc_header = r(16) ‖ AES-256-GCM(HKDF-Expand(hk, header_keys_info ‖ r, 32), "
            "zero nonce, header_bytes); "
            "message = 0x01 ‖ 0x01 ‖ msgpack {h: enc_header, c: ciphertext}"
        )
    return f"{plain}; message = 0x01 ‖ 0x01 ‖ msgpack {{h: header_bytes, c: ciphertext}}"


def _group(profile: Profile, tests: list[dict[str, Any]]) -> dict[str, Any]:
    nhk = " ‖ nhk" if profile.headers.encrypted else ""
    return {
        "type": "RatchetTranscript",
        "profile": profile.name,
        "dh": "X25519",
        "kdf_rk": f"HKDF-SHA256(salt=rk, ikm=dh_out, info=kdf_rk_info) -> rk ‖ ck{nhk}",
        "kdf_rk_info": profile.chains.kdf_rk_info.hex(),
        "kdf_rk_info_text": profile.chains.kdf_rk_info.decode(),
        "kdf_ck": "mk = HMAC-SHA256(ck, 0x01); ck' = HMAC-SHA256(ck, 0x02)",
        "message_keys_info": profile.cipher.message_keys_info.hex(),
        "message_keys_info_text": profile.cipher.message_keys_info.decode(),
        "initial_keys": _initial_keys_text(profile),
        "initial_keys_info": profile.chains.initial_keys_info.hex(),
        "initial_keys_info_text": profile.chains.initial_keys_info.decode(),
        "header_keys_info": profile.headers.header_keys_info.hex(),
        "header_keys_info_text": profile.headers.header_keys_info.decode(),
        "aead": _AEAD_TEXT[profile.cipher.name],
        "header_encoding": _header_text(profile),
        "pn_semantics": profile.chains.pn_semantics,
        "initial_chains": profile.chains.initial_chains,
        "max_skip": profile.chains.max_skip,
        "max_stored_skipped": profile.chains.max_stored_skipped,
        "max_receiving_chains": profile.chains.max_receiving_chains,
        "tests": tests,
    }


def _small(profile: Profile) -> dict[str, int]:
    """The second group's limits; libsignal's chain count is small enough to test as it is."""
    if profile.chains.initial_chains == "libsignal":
        return {**SMALL_LIMITS, "max_receiving_chains": profile.chains.max_receiving_chains}
    return SMALL_LIMITS


def _file(profile: Profile) -> VectorFile:
    groups, ids = [], test_ids()
    for group_profile, small in ((profile, False), (_with_limits(profile, _small(profile)), True)):
        tests = [
            _generate_test(group_profile, next(ids), comment, flags, scenario(group_profile))
            for comment, flags, scenario in _scenarios(profile, small)
        ]
        groups.append(_group(group_profile, tests))
    header = [
        f"Double Ratchet transcripts, profile {profile.name}",
        "Algorithms: spec/ratchet.md, spec/header-encryption.md, spec/wire.md.",
        "The second group uses small test-only limits to reach max_skip and max_stored_skipped.",
        *_chain_count_note(profile),
        "Schema v2 (was v1): a mutation names its op (vectors/README.md §4); the messages, keys "
        "and every other byte are those of v1.",
    ]
    notes = {**NOTES, **LIBSIGNAL_NOTES} if profile.chains.initial_chains == "libsignal" else NOTES
    document = envelope(
        algorithm="DoubleRatchet", schema=SCHEMA, header=header, notes=notes, groups=groups
    )
    return VectorFile(f"ratchet_{profile.name}_test.json", SCHEMA, document)


def _chain_count_note(profile: Profile) -> list[str]:
    if profile.chains.initial_chains != "libsignal":
        return []
    return [
        "max_receiving_chains counts the old receiving chains beside the current one: 4 here, "
        "libsignal's MAX_RECEIVER_CHAINS = 5 with the current chain (state/session.rs "
        "add_receiver_chain). Earlier files kept 5 old chains, one more than libsignal; "
        "ForgottenChain now tests libsignal's count itself."
    ]


def generate() -> list[VectorFile]:
    """One file per profile, from per-test DRBGs only."""
    return [_file(profile) for profile in PROFILES.values()]


# --- Verification -----------------------------------------------------------------------


def _with_limits(profile: Profile, limits: Mapping[str, Any]) -> Profile:
    return with_limits(
        profile,
        max_skip=int(limits["max_skip"]),
        max_stored_skipped=int(limits["max_stored_skipped"]),
        max_receiving_chains=int(limits["max_receiving_chains"]),
    )


def _group_profile(group: Mapping[str, Any]) -> Profile:
    return _with_limits(get_profile(group["profile"]), group)


def verify_test(schema: str, group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    """Replay one transcript against the library; any difference raises VectorMismatch."""
    profile = _group_profile(group)
    expected = _group(profile, [])
    for name, value in group.items():
        if name != "tests":
            expect_equal(f"group {name}", value, expected[name])
    setup = {name: from_hex(value) for name, value in test["setup"].items()}
    rngs = {actor: ScriptedRandom(entropy_entries(test["entropy"][actor])) for actor in ACTORS}
    run = _setup(profile, setup, rngs)
    messages = {m["id"]: m for m in test["messages"]}
    for index, event in enumerate(test["events"]):
        where = f"event {index} ({event['op']} {event['msg']})"
        message = messages[event["msg"]]
        if event["op"] == "send":
            sent = from_hex(message["plaintext"])
            data, record = _send(run, event["actor"], event["msg"], sent)
            expect_equal(f"{where} message", data.hex(), message["message"])
            expect_equal(f"{where} intermediates", record, {k: message.get(k) for k in record})
        elif event["op"] == "recv":
            if "mutation_of" in message:
                _check_mutation(run, message, messages[message["mutation_of"]])
            ad = from_hex(message["ad"]) if "ad" in message else run.ad
            outcome, received = _recv(run, event["actor"], from_hex(message["message"]), ad)
            expect_equal(f"{where} result", outcome, {k: event.get(k) for k in outcome})
            original = messages[message.get("mutation_of", event["msg"])]
            if received is not None:
                expect_equal(f"{where} plaintext", received.hex(), original["plaintext"])
    for rng in rngs.values():
        if rng.remaining:
            raise VectorMismatch("entropy left unused")


_KIND_OF_FIELD: Final = {"header.n": "header", "header.dh": "header_dh"}


def _check_mutation(run: _Run, message: Mapping[str, Any], original: Mapping[str, Any]) -> None:
    """The recorded mutation, applied to the original message, gives the recorded bytes."""
    field = message["mutation"]["field"]
    sender = run.sent[original["id"]]
    data, mutation, ad = _mutate(
        run.profile, sender, from_hex(original["message"]), _KIND_OF_FIELD.get(field, field), run.ad
    )
    expect_equal(f"mutation of {message['id']}", mutation, message["mutation"])
    expect_equal(f"mutated {message['id']}", data.hex(), message["message"])
    expect_equal(f"AD of {message['id']}", ad.hex(), message.get("ad", run.ad.hex()))
