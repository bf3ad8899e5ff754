"""What the relay saw, rebuilt from its capture (spec/relay.md §9.1).

``observe(path)`` replays a capture: it rebuilds each connection's two byte
streams, decodes them with the relay's own strict framing, and collects
everything the server could learn from them — who connected when, which
identity key each device proved, the bundles and prekeys it stored, every
message with its sender, recipient, size and time, the call joins, leaves
and media frames. Nothing here needs a key; this is the server's view.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import ProtocolError
from protocol.relay.capture import Kind, Record, read_capture
from protocol.relay.framing import LENGTH_PREFIX, decode_body, frame_length
from protocol.relay.schema import Address, parse_push, parse_request, parse_response


@dataclass(frozen=True, slots=True)
class Message:
    time_us: int
    sender: Address
    recipient: Address
    body: bytes


@dataclass(frozen=True, slots=True)
class MediaFrame:
    time_us: int
    call: bytes
    sender: Address
    frame: bytes
    receivers: int


@dataclass(frozen=True, slots=True)
class CallEvent:
    time_us: int
    call: bytes
    device: Address
    event: str  # "join" or "leave" (a closed connection leaves its calls)


@dataclass
class Connection:
    number: int
    peer: str = ""
    opened_us: int = 0
    closed_us: int = 0
    closed_reason: str = ""
    device: Address | None = None
    identity_key: bytes = b""
    malformed: bool = False


@dataclass
class Observation:
    """The server's knowledge, as facts extracted from the bytes it saw."""

    connections: dict[int, Connection] = field(default_factory=dict)
    identity_keys: dict[Address, bytes] = field(default_factory=dict)
    endorsements: dict[Address, Address] = field(default_factory=dict)
    bundles: dict[Address, list[bytes]] = field(default_factory=dict)
    prekeys: dict[Address, list[tuple[str, bytes]]] = field(default_factory=dict)
    bundle_fetches: list[tuple[int, Address, Address]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    media: list[MediaFrame] = field(default_factory=list)
    calls: list[CallEvent] = field(default_factory=list)
    public_values: set[bytes] = field(default_factory=set)
    streams: list[bytes] = field(default_factory=list)


class _Stream:
    """One direction of one connection: bytes in, whole frames out."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.all = bytearray()

    def feed(self, data: bytes) -> Iterator[dict[str, Any] | None]:
        self.buffer += data
        self.all += data
        while len(self.buffer) >= LENGTH_PREFIX:
            try:
                length = frame_length(bytes(self.buffer[:LENGTH_PREFIX]))
            except ProtocolError:
                yield None
                self.buffer.clear()
                return
            if len(self.buffer) < LENGTH_PREFIX + length:
                return
            body = bytes(self.buffer[LENGTH_PREFIX : LENGTH_PREFIX + length])
            del self.buffer[: LENGTH_PREFIX + length]
            try:
                yield decode_body(body)
            except ProtocolError:
                yield None


class _Replay:
    def __init__(self) -> None:
        self.seen = Observation()
        self._streams: dict[tuple[int, Kind], _Stream] = {}
        self._pending: dict[tuple[int, int], tuple[str, dict[str, Any]]] = {}
        self._joined: dict[int, set[bytes]] = {}

    def record(self, record: Record) -> None:
        conn = self.seen.connections.setdefault(record.connection, Connection(record.connection))
        if record.kind is Kind.OPEN:
            conn.peer, conn.opened_us = record.data.decode("ascii", "replace"), record.time_us
        elif record.kind is Kind.CLOSE:
            conn.closed_us, conn.closed_reason = (
                record.time_us,
                record.data.decode("ascii", "replace"),
            )
            self._close(conn, record.time_us)
        else:
            stream = self._streams.setdefault((record.connection, record.kind), _Stream())
            for body in stream.feed(record.data):
                self._frame(conn, record, body)

    def _frame(self, conn: Connection, record: Record, body: dict[str, Any] | None) -> None:
        try:
            if body is None:
                raise ProtocolError("malformed frame")
            if record.kind is Kind.RECEIVED:
                op, rid, args = parse_request(body)
                self._pending[(conn.number, rid)] = (op, args)
            elif "push" not in body:
                op, args = self._pending.pop((conn.number, body.get("rid", -1)))
                result = parse_response(body, op)
                if not isinstance(result, ProtocolError):
                    self._learn(conn, record.time_us, op, args, result)
            else:
                parse_push(body)
        except (ProtocolError, KeyError):
            conn.malformed = True

    def _learn(
        self, conn: Connection, time_us: int, op: str, args: dict[str, Any], result: dict[str, Any]
    ) -> None:
        """Facts from a request the relay carried out (its response said ok)."""
        seen, me = self.seen, conn.device
        if op == "auth":
            conn.device, conn.identity_key = (
                Address(args["user"], args["device"]),
                args["identity_key"],
            )
            seen.identity_keys[conn.device] = conn.identity_key
            seen.public_values.add(conn.identity_key)
            if args["endorsement"] is not None and result["registered"]:
                endorser = Address(conn.device.user, args["endorsement"]["device"])
                seen.endorsements[conn.device] = endorser
        elif me is None:
            return
        elif op == "put_bundle":
            seen.bundles.setdefault(me, []).append(args["bundle"])
        elif op == "add_prekeys":
            items = [(args["kind"], p["key"]) for p in args["prekeys"]]
            seen.prekeys.setdefault(me, []).extend(items)
        elif op == "get_bundle":
            seen.bundle_fetches.append((time_us, me, Address(args["user"], args["device"])))
        elif op == "send":
            recipient = Address(args["to_user"], args["to_device"])
            seen.messages.append(Message(time_us, me, recipient, args["body"]))
        elif op in ("join", "leave"):
            self._call(conn, time_us, args["call"], op)
        elif op == "media":
            receivers = result["delivered"]
            seen.media.append(MediaFrame(time_us, args["call"], me, args["frame"], receivers))

    def _call(self, conn: Connection, time_us: int, call: bytes, op: str) -> None:
        assert conn.device is not None
        joined = self._joined.setdefault(conn.number, set())
        if op == "join" and call not in joined:
            joined.add(call)
            self.seen.calls.append(CallEvent(time_us, call, conn.device, "join"))
        elif op == "leave" and call in joined:
            joined.discard(call)
            self.seen.calls.append(CallEvent(time_us, call, conn.device, "leave"))

    def finish(self) -> Observation:
        """Close what the capture left open (a relay killed mid-connection)."""
        for number in sorted({number for number, _ in self._streams}):
            self._close(self.seen.connections[number], 0)
        return self.seen

    def _close(self, conn: Connection, time_us: int) -> None:
        for call in sorted(self._joined.pop(conn.number, set())):
            assert conn.device is not None
            self.seen.calls.append(CallEvent(time_us, call, conn.device, "leave"))
        for kind in (Kind.RECEIVED, Kind.SENT):
            stream = self._streams.pop((conn.number, kind), None)
            if stream is not None:
                self.seen.streams.append(bytes(stream.all))


def observe(path: Path | str) -> Observation:
    """Replay a capture file into what the server learned."""
    replay = _Replay()
    for record in read_capture(path):
        replay.record(record)
    return replay.finish()
