"""Requests, responses and pushes of the relay protocol (spec/relay.md §2).

Three envelopes, each decoded strictly with ``framing.check_shape``:

* request  ``{"op": str, "rid": int, "args": {...}}`` (client to server);
* response ``{"rid": int, "ok": true, "result": {...}}`` or
  ``{"rid": int, "ok": false, "error": {"code": str, "reason": str}}``;
* push     ``{"push": str, "data": {...}}`` (server to client, unsolicited).

``REQUESTS[op]`` and ``RESULTS[op]`` give the exact shape of ``args`` and
``result`` for each operation, ``PUSHES[kind]`` the shape of ``data``. The
server checks requests and the client checks responses and pushes: neither
side trusts the other's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from protocol.errors import ERROR_CODES, MalformedMessage, ProtocolError, error_for_code
from protocol.relay.framing import (
    MAX_FRAME_LEN,
    MAX_INT,
    NAME_ALPHABET,
    Bin,
    Bool,
    Int,
    Nil,
    Seq,
    Shape,
    Str,
    check_shape,
)

# --- Values carried in the maps ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """A device mailbox: (user name, device id)."""

    user: str
    device: int


@dataclass(frozen=True, slots=True)
class Prekey:
    """An opaque one-time prekey as uploaded: its id and encoded bytes."""

    id: int
    key: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A queued message: server id, sender, the sender's message id, opaque body."""

    id: int
    sender: Address
    mid: bytes
    body: bytes
    ts: int


@dataclass(frozen=True, slots=True)
class FetchedBundle:
    """A bundle as handed out: the signed part and at most one prekey of each kind."""

    bundle: bytes
    ec_prekey: Prekey | None
    kem_prekey: Prekey | None


# --- Field sizes (spec/relay.md §2.3) -----------------------------------------

MAX_USER_LEN: Final = 64
MAX_DEVICE: Final = 2**31 - 1
CHALLENGE_LEN: Final = 32
IDENTITY_KEY_LEN: Final = 32  # X25519 u-coordinate; XEdDSA verifies with it
SIGNATURE_LEN: Final = 64
MESSAGE_ID_LEN: Final = 16  # chosen at random by the sender; the dedup key
MAX_BUNDLE_LEN: Final = 8 * 1024  # a PQXDH bundle is about 1.4 KB
MAX_PREKEY_LEN: Final = 2 * 1024  # a signed one-time ML-KEM-768 prekey is about 1.3 KB
MAX_PREKEYS_PER_UPLOAD: Final = 100
MAX_BODY_LEN: Final = 260 * 1024  # profile max_message_size 256 KiB + header and tag
MAX_MEDIA_LEN: Final = 128 * 1024  # an SFrame frame: header + video frame + tag
MAX_CALL_ID_LEN: Final = 32
MAX_FETCH: Final = 256
MAX_DEVICES: Final = 64  # devices of one user a device list can name
MAX_REASON_LEN: Final = 200

USER = Str(MAX_USER_LEN, NAME_ALPHABET)
DEVICE = Int(1, MAX_DEVICE)
CALL_ID = Bin(1, MAX_CALL_ID_LEN)
PREKEY = Shape({"id": Int(0, 2**32 - 1), "key": Bin(1, MAX_PREKEY_LEN)})
KIND = Str(3, frozenset("eckm"))
ADDRESS = Shape({"user": USER, "device": DEVICE})
ENVELOPE = Shape(
    {
        "id": Int(1),
        "from_user": USER,
        "from_device": DEVICE,
        "mid": Bin(MESSAGE_ID_LEN, MESSAGE_ID_LEN),
        "body": Bin(1, MAX_BODY_LEN),
        "ts": Int(),
    }
)

EMPTY = Shape({})

# A further device of a user: signed by a device of that user already
# registered (spec/relay.md §3.1); nil for the first device of a user name.
ENDORSEMENT = Shape({"device": DEVICE, "signature": Bin(SIGNATURE_LEN, SIGNATURE_LEN)})

REQUESTS: Final[dict[str, Shape]] = {
    "hello": EMPTY,
    "auth": Shape(
        {
            "user": USER,
            "device": DEVICE,
            "identity_key": Bin(IDENTITY_KEY_LEN, IDENTITY_KEY_LEN),
            "signature": Bin(SIGNATURE_LEN, SIGNATURE_LEN),
            "endorsement": Nil(ENDORSEMENT),
        }
    ),
    "put_bundle": Shape({"bundle": Bin(1, MAX_BUNDLE_LEN)}),
    "add_prekeys": Shape({"kind": KIND, "prekeys": Seq(PREKEY, MAX_PREKEYS_PER_UPLOAD)}),
    "prekey_count": EMPTY,
    "get_bundle": ADDRESS,
    "devices": Shape({"user": USER}),
    "send": Shape(
        {
            "to_user": USER,
            "to_device": DEVICE,
            "mid": Bin(MESSAGE_ID_LEN, MESSAGE_ID_LEN),
            "body": Bin(1, MAX_BODY_LEN),
        }
    ),
    "fetch": Shape({"limit": Int(1, MAX_FETCH)}),
    "ack": Shape({"ids": Seq(Int(1), MAX_FETCH)}),
    "join": Shape({"call": CALL_ID}),
    "leave": Shape({"call": CALL_ID}),
    "media": Shape({"call": CALL_ID, "frame": Bin(1, MAX_MEDIA_LEN)}),
}

RESULTS: Final[dict[str, Shape]] = {
    "hello": Shape({"challenge": Bin(CHALLENGE_LEN, CHALLENGE_LEN)}),
    "auth": Shape({"registered": Bool()}),
    "put_bundle": EMPTY,
    "add_prekeys": Shape({"stored": Int()}),
    "prekey_count": Shape({"ec": Int(), "kem": Int()}),
    "get_bundle": Shape(
        {"bundle": Bin(1, MAX_BUNDLE_LEN), "ec_prekey": Nil(PREKEY), "kem_prekey": Nil(PREKEY)}
    ),
    "devices": Shape({"devices": Seq(DEVICE, MAX_DEVICES)}),
    "send": Shape({"id": Int(1)}),
    "fetch": Shape({"messages": Seq(ENVELOPE, MAX_FETCH)}),
    "ack": Shape({"removed": Int()}),
    "join": Shape({"members": Seq(ADDRESS, 1024)}),
    "leave": EMPTY,
    "media": Shape({"delivered": Int(), "dropped": Int()}),
}

PUSHES: Final[dict[str, Shape]] = {
    "mail": EMPTY,
    "joined": Shape({"call": CALL_ID, "user": USER, "device": DEVICE}),
    "left": Shape({"call": CALL_ID, "user": USER, "device": DEVICE}),
    "media": Shape(
        {"call": CALL_ID, "from_user": USER, "from_device": DEVICE, "frame": Bin(1, MAX_MEDIA_LEN)}
    ),
}

_ERROR = Shape(
    {
        "code": Str(32, frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")),
        "reason": Str(MAX_REASON_LEN, frozenset(map(chr, range(32, 127)))),
    }
)


# Request ids start at 1: a response with rid 0 answers no request but the
# connection itself (the relay refusing it, spec/relay.md §2.4).
CONNECTION_RID: Final = 0


def parse_request(body: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """Check a request envelope and its arguments; return ``(op, rid, args)``."""
    if set(body) != {"op", "rid", "args"}:
        raise MalformedMessage("request keys must be op, rid, args")
    op, rid = body["op"], body["rid"]
    check_shape(rid, Int(CONNECTION_RID + 1), "rid")
    if not isinstance(op, str) or op not in REQUESTS:
        raise MalformedMessage("unknown operation")
    check_shape(body["args"], REQUESTS[op], op)
    return op, rid, body["args"]


def parse_response(body: dict[str, Any], op: str) -> dict[str, Any] | ProtocolError:
    """Check a response to ``op``; return its result, or the error the relay refused with."""
    if body.get("ok") is True:
        check_shape(body, Shape({"rid": Int(), "ok": Bool(), "result": RESULTS[op]}), "response")
        result: dict[str, Any] = body["result"]
        return result
    return parse_refusal(body, op)


def parse_refusal(body: dict[str, Any], op: str) -> ProtocolError:
    """Check an error response; return the error the relay refused ``op`` with."""
    check_shape(body, Shape({"rid": Int(), "ok": Bool(), "error": _ERROR}), "response")
    code, reason = body["error"]["code"], body["error"]["reason"]
    if code not in ERROR_CODES:
        raise MalformedMessage("response carries an unknown error code")
    return error_for_code(code)(f"relay refused {op}: {reason}")


def parse_push(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check a push envelope; return ``(kind, data)``."""
    if set(body) != {"push", "data"} or body["push"] not in PUSHES:
        raise MalformedMessage("unknown push")
    kind: str = body["push"]
    check_shape(body["data"], PUSHES[kind], kind)
    data: dict[str, Any] = body["data"]
    return kind, data


def envelope_map(envelope: Envelope) -> dict[str, Any]:
    """An envelope as a fetch response carries it."""
    return {
        "id": envelope.id,
        "from_user": envelope.sender.user,
        "from_device": envelope.sender.device,
        "mid": envelope.mid,
        "body": envelope.body,
        "ts": envelope.ts,
    }


def envelope_from_map(m: dict[str, Any]) -> Envelope:
    sender = Address(m["from_user"], m["from_device"])
    return Envelope(m["id"], sender, m["mid"], m["body"], m["ts"])


def prekey_map(prekey: Prekey | None) -> dict[str, Any] | None:
    return None if prekey is None else {"id": prekey.id, "key": prekey.key}


def prekey_from_map(m: dict[str, Any] | None) -> Prekey | None:
    return None if m is None else Prekey(m["id"], m["key"])


def request(op: str, rid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"op": op, "rid": rid, "args": args}


def ok(rid: int, result: dict[str, Any]) -> dict[str, Any]:
    return {"rid": rid, "ok": True, "result": result}


def failure(rid: int, code: str, reason: str) -> dict[str, Any]:
    printable = "".join(c if 32 <= ord(c) < 127 else "?" for c in reason)[:MAX_REASON_LEN]
    return {"rid": rid, "ok": False, "error": {"code": code, "reason": printable or code}}


def push(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"push": kind, "data": data}


# The bytes a fetch response may spend on envelopes: the frame less the
# response around an empty list with the largest rid, less the two bytes by
# which a list of 16 or more items has a longer header (msgpack array 16).
FETCH_BUDGET: Final = (
    MAX_FRAME_LEN - len(msgpack.packb(ok(MAX_INT, {"messages": []}), use_bin_type=True)) - 2
)


def envelope_size(envelope: Envelope) -> int:
    """Bytes the envelope adds to a fetch response (spec/relay.md §2.2)."""
    return len(msgpack.packb(envelope_map(envelope), use_bin_type=True))
