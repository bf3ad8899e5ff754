"""``spqr`` vector groups for the chain and the authenticator (spec/spqr.md §6-§7).

* ``SpqrChainKdf``: one KDF each: ``chain_start`` (auth_key → root, a2b,
  b2a), ``chain_add_epoch`` (next_root, epoch_secret → root, a2b, b2a),
  ``chain_next`` (next, ctr → next_out, message_key).
* ``SpqrChainTranscript``: an A2B chain and a B2A chain started from one
  ``auth_key`` under the group's limits; ``events`` add epochs to both,
  send from one side (``index`` and ``key`` must match) and receive on the
  other (``key`` or an error code). Each failing receive is followed by a
  successful one, which shows the failure changed nothing.
* ``SpqrAuthenticator``: ``authenticator_start(auth_key)`` then ``updates``
  (epoch, k) in order, giving ``root_key`` and ``mac_key``, and the 32-byte
  MAC of ``data`` under ``label`` (``hdr`` or ``ct``) at ``epoch``. Negatives
  mutate ``mac`` or ``data``: AUTH_FAILED.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from protocol.errors import ProtocolError
from protocol.spqr import authenticator as au
from protocol.spqr.chain import (
    Chain,
    ChainParams,
    Direction,
    chain_add_epoch,
    chain_add_epoch_kdf,
    chain_next,
    chain_recv_key,
    chain_send_key,
    chain_start,
    chain_start_kdf,
)
from protocol.vectors.common import (
    ERROR_CODE,
    HEX_BYTES,
    TEST_ENVELOPE,
    drbg_for,
    expect_equal,
    from_hex,
    obj,
    to_hex,
)
from protocol.vectors.spqr_kem import FAMILY, MUTATION, negative, original_of

_UINT: Final = {"type": "integer", "minimum": 0}
KDF_TEST: Final = obj(
    {**TEST_ENVELOPE, "function": {"enum": ["chain_start", "chain_add_epoch", "chain_next"]}},
    {
        name: HEX_BYTES
        for name in (
            "auth_key",
            "next_root",
            "epoch_secret",
            "next",
            "root",
            "a2b",
            "b2a",
            "next_out",
            "message_key",
        )
    }
    | {"ctr": _UINT},
)
_EVENT: Final = obj(
    {"op": {"enum": ["add_epoch", "send", "recv"]}, "epoch": _UINT},
    {
        "side": {"enum": ["a2b", "b2a"]},
        "epoch_secret": HEX_BYTES,
        "index": _UINT,
        "key": HEX_BYTES,
        "expect": {"oneOf": [{"const": "ok"}, ERROR_CODE]},
    },
)
TRANSCRIPT_TEST: Final = obj(
    {**TEST_ENVELOPE, "auth_key": HEX_BYTES, "events": {"type": "array", "items": _EVENT}}
)
AUTH_TEST: Final = obj(
    {
        **TEST_ENVELOPE,
        "auth_key": HEX_BYTES,
        "updates": {
            "type": "array",
            "items": obj({"epoch": _UINT, "k": HEX_BYTES}),
        },
        "label": {"enum": ["hdr", "ct"]},
        "epoch": _UINT,
        "data": HEX_BYTES,
        "mac": HEX_BYTES,
    },
    {
        "root_key": HEX_BYTES,
        "mac_key": HEX_BYTES,
        "error": ERROR_CODE,
        "mutation_of": {"type": "integer", "minimum": 1},
        "mutation": MUTATION,
    },
)
TRANSCRIPT_PARAMS: Final = ChainParams(max_jump=8, max_ooo_keys=4)

# --- SpqrChainKdf ------------------------------------------------------------------


def _kdf_output(test: Mapping[str, Any]) -> dict[str, str]:
    function = test["function"]
    if function == "chain_next":
        next_out, key = chain_next(from_hex(test["next"]), test["ctr"])
        return {"next_out": to_hex(next_out), "message_key": to_hex(key)}
    if function == "chain_start":
        out = chain_start_kdf(from_hex(test["auth_key"]))
    else:
        out = chain_add_epoch_kdf(from_hex(test["next_root"]), from_hex(test["epoch_secret"]))
    return {"root": to_hex(out[:32]), "a2b": to_hex(out[32:64]), "b2a": to_hex(out[64:])}


def kdf_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    drbg = drbg_for(FAMILY, "chain-kdf")
    inputs: list[dict[str, Any]] = [
        {"function": "chain_start", "auth_key": to_hex(drbg.draw("auth_key", 32))},
        {
            "function": "chain_add_epoch",
            "next_root": to_hex(drbg.draw("next_root", 32)),
            "epoch_secret": to_hex(drbg.draw("epoch_secret", 32)),
        },
        {"function": "chain_next", "next": to_hex(drbg.draw("next", 32)), "ctr": 1},
        {"function": "chain_next", "next": to_hex(drbg.draw("next", 32)), "ctr": 25_000},
        {"function": "chain_next", "next": to_hex(drbg.draw("next", 32)), "ctr": 2**32 - 1},
    ]
    tests = []
    for case in inputs:
        test = {"tcId": next(ids), "comment": case["function"], "flags": ["Valid"]}
        test |= {"result": "valid", **case}
        tests.append(test | _kdf_output(test))
    return tests


def verify_kdf(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    for name, value in _kdf_output(test).items():
        expect_equal(name, value, test[name])


# --- SpqrChainTranscript -------------------------------------------------------------


def _apply(chains: dict[str, Chain], event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run one event on the chains (changed in place only on success)."""
    if event["op"] == "add_epoch":
        secret = from_hex(event["epoch_secret"])
        for side in chains:
            chains[side] = chain_add_epoch(chains[side], event["epoch"], secret)
        return "ok", {}
    side = event["side"]
    try:
        if event["op"] == "send":
            chains[side], index, key = chain_send_key(chains[side], event["epoch"])
            return "ok", {"index": index, "key": to_hex(key)}
        chains[side], key = chain_recv_key(chains[side], event["epoch"], event["index"])
        return "ok", {"key": to_hex(key)}
    except ProtocolError as exc:
        return exc.code, {}


def _start(auth_key: bytes, params: ChainParams) -> dict[str, Chain]:
    return {
        "a2b": chain_start(auth_key, Direction.A2B, params),
        "b2a": chain_start(auth_key, Direction.B2A, params),
    }


# (op, side, epoch, index or None): sends by a2b, receives by b2a, and back.
_SCRIPT: Final = [
    ("send", "a2b", 0, None),
    ("send", "a2b", 0, None),
    ("send", "a2b", 0, None),
    ("recv", "b2a", 0, 3),  # out of order: 1 and 2 kept
    ("recv", "b2a", 0, 3),  # replay
    ("recv", "b2a", 0, 1),
    ("recv", "b2a", 0, 12),  # a jump of 9 > max_jump 8
    ("recv", "b2a", 0, 2),
    ("add_epoch", None, 1, None),
    ("send", "b2a", 1, None),
    ("recv", "a2b", 1, 1),
    ("recv", "a2b", 2, 1),  # an epoch not reached
    ("recv", "b2a", 1, 9),  # a jump of 9 > max_jump 8
    ("recv", "b2a", 1, 8),  # a jump of 8: allowed
    ("recv", "b2a", 1, 3),  # 5 behind: trimmed (max_ooo_keys 4)
    ("recv", "b2a", 1, 4),  # exactly 4 behind: kept
    ("add_epoch", None, 2, None),
    ("add_epoch", None, 3, None),
    ("send", "a2b", 3, None),  # a2b keeps epochs 2 and 3 only
    ("recv", "a2b", 0, 1),  # epoch 0 dropped
    ("send", "b2a", 2, None),
    ("recv", "a2b", 2, 1),
]


def transcript_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    drbg = drbg_for(FAMILY, "chain-transcript")
    auth_key = drbg.draw("auth_key", 32)
    chains = _start(auth_key, TRANSCRIPT_PARAMS)
    events = []
    sent: dict[tuple[str, int, int | None], str] = {}
    for op, side, epoch, index in _SCRIPT:
        event: dict[str, Any] = {"op": op, "epoch": epoch}
        if op == "add_epoch":
            event["epoch_secret"] = to_hex(drbg.draw("epoch_secret", 32))
        else:
            event["side"] = side
        if index is not None:
            event["index"] = index
        code, out = _apply(chains, event)
        if op == "send":
            sent[(str(side), epoch, out["index"])] = out["key"]
        peer = "b2a" if side == "a2b" else "a2b"
        if (
            op == "recv"
            and code == "ok"
            and (peer, epoch, index) in sent
            and out["key"] != sent[(peer, epoch, index)]
        ):
            raise AssertionError("a received key differs from the key sent")
        event |= {**out, "expect": code}
        events.append(event)
    return [
        {
            "tcId": next(ids),
            "comment": "two chains: out of order, replay, jump, trim, epochs dropped",
            "flags": ["Transcript"],
            "result": "valid",
            "auth_key": to_hex(auth_key),
            "events": events,
        }
    ]


def verify_transcript(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    params = ChainParams(group["max_jump"], group["max_ooo_keys"])
    chains = _start(from_hex(test["auth_key"]), params)
    for position, event in enumerate(test["events"]):
        code, out = _apply(chains, event)
        expect_equal(f"event {position} result {code}", code, event["expect"])
        for name, value in out.items():
            expect_equal(f"event {position} {name}", value, event[name])


# --- SpqrAuthenticator ---------------------------------------------------------------


def _authenticator(test: Mapping[str, Any]) -> au.Authenticator:
    auth = au.authenticator_start(from_hex(test["auth_key"]))
    for update in test["updates"]:
        auth = au.authenticator_update(auth, update["epoch"], from_hex(update["k"]))
    return auth


def _mac(auth: au.Authenticator, test: Mapping[str, Any]) -> bytes:
    mac = au.mac_hdr if test["label"] == "hdr" else au.mac_ct
    return mac(auth, test["epoch"], from_hex(test["data"]))


def auth_tests(ids: Iterator[int]) -> list[dict[str, Any]]:
    drbg = drbg_for(FAMILY, "authenticator")
    auth_key = to_hex(drbg.draw("auth_key", 32))
    cases = [
        ("hdr", 1, [], 64),
        ("ct", 1, [(1, drbg.draw("epoch_secret", 32))], 1088),
        ("hdr", 2, [(1, drbg.draw("epoch_secret", 32))], 64),
    ]
    tests = []
    for label, epoch, updates, size in cases:
        test: dict[str, Any] = {
            "tcId": next(ids),
            "comment": f"{label} MAC at epoch {epoch} after {len(updates)} update(s)",
            "flags": ["Valid"],
            "result": "valid",
            "auth_key": auth_key,
            "updates": [{"epoch": e, "k": to_hex(k)} for e, k in updates],
            "label": label,
            "epoch": epoch,
            "data": to_hex(drbg.draw("data", size)),
        }
        auth = _authenticator(test)
        test |= {"root_key": to_hex(auth.root_key), "mac_key": to_hex(auth.mac_key)}
        tests.append(test | {"mac": to_hex(_mac(auth, test))})
    for comment, mutation in (
        ("MAC bit flipped", {"field": "mac", "op": "xor", "offset": 31, "mask": "01"}),
        ("data bit flipped", {"field": "data", "op": "xor", "offset": 0, "mask": "80"}),
    ):
        test = negative(ids, tests[1], comment, mutation)
        keep = ("auth_key", "updates", "label", "epoch", "data", "mac")
        test = {k: test.get(k, tests[1][k]) for k in keep} | test
        tests.append(test | {"error": "AUTH_FAILED"})
    return tests


def verify_auth(group: Mapping[str, Any], test: Mapping[str, Any]) -> None:
    auth = _authenticator(test)
    verify = au.verify_hdr if test["label"] == "hdr" else au.verify_ct
    code = "ok"
    try:
        verify(auth, test["epoch"], from_hex(test["data"]), from_hex(test["mac"]))
    except ProtocolError as exc:
        code = exc.code
    if test["result"] == "valid":
        expect_equal("root_key", to_hex(auth.root_key), test["root_key"])
        expect_equal("mac_key", to_hex(auth.mac_key), test["mac_key"])
        expect_equal("mac", to_hex(_mac(auth, test)), test["mac"])
        expect_equal("verify", code, "ok")
        return
    original = original_of(group, test)
    for name in ("auth_key", "updates", "label", "epoch", "data", "mac"):
        if name != test["mutation"]["field"]:
            expect_equal(f"unmutated {name}", test[name], original[name])
    expect_equal("error", code, test["error"])
