"""The untrusted relay: an asyncio TCP server on loopback (spec/relay.md §2-§6).

One coroutine serves each connection: it reads a frame, checks it strictly,
runs the operation against ``RelayStore`` (one committed transaction per
request) and answers. Media frames are not stored: they are written to the
other members of the call that are connected now. The server holds no
private key and never parses a bundle, prekey, message body or media frame;
the only cryptography it does is checking the challenge signature
(``auth.verify_challenge``).

A connection that sends a malformed frame, an oversized length, or fails to
authenticate gets one error response and is closed (spec/relay.md §2.4);
nothing it sent reaches the store, and other connections are unaffected. A
refused request allocates nothing. Buffers are bounded in total
(``RelayLimits.memory_bound``): pushes to a member that falls behind, or
beyond the relay's total, are dropped, never queued (spec/relay.md §6.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from protocol.errors import (
    AccessDenied,
    LimitExceeded,
    MalformedMessage,
    ProtocolError,
    UnknownDevice,
)
from protocol.primitives import check_x25519_public
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.relay.auth import verify_challenge, verify_endorsement
from protocol.relay.capture import CaptureWriter, Kind
from protocol.relay.framing import LENGTH_PREFIX, decode_body, encode_frame, frame_length
from protocol.relay.limits import RelayLimits
from protocol.relay.schema import (
    CHALLENGE_LEN,
    CONNECTION_RID,
    Address,
    Prekey,
    envelope_map,
    failure,
    ok,
    parse_request,
    prekey_map,
    push,
)
from protocol.relay.storage import RelayStore

log = logging.getLogger("protocol.relay")

# Errors after which an authenticated connection stays open: the request was
# well formed and allowed, the state of the world refused it.
_KEEP_OPEN = (LimitExceeded, UnknownDevice, AccessDenied)


@dataclass
class RelayStats:
    """Counters the demo prints; no content, only sizes and counts."""

    bytes_received: int = 0
    bytes_sent: int = 0
    connections: int = 0
    cut_off: int = 0
    refused_connections: int = 0
    messages_queued: int = 0
    media_forwarded: int = 0
    media_dropped: int = 0


@dataclass(eq=False)
class _Connection:
    number: int
    peer: str
    writer: asyncio.StreamWriter
    deadline: float  # loop time by which it must have authenticated
    challenge: bytes | None = None
    address: Address | None = None
    calls: set[bytes] = field(default_factory=set)


class _CutOff(Exception):
    """Ends a connection after its error response has been written."""


def require_loopback(host: str) -> str:
    """The relay speaks plain TCP: it binds loopback addresses only."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise AccessDenied("the relay binds only loopback addresses")
    return host


class RelayServer:
    """The relay. ``await start()``, then ``port``; ``await stop()`` always."""

    def __init__(
        self,
        db_path: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: RelayLimits | None = None,
        capture_path: Path | str | None = None,
        rng: Random = SYSTEM_RANDOM,
    ) -> None:
        self.limits = limits or RelayLimits()
        self._host = require_loopback(host)
        self._port = port
        self._db_path = db_path
        self._rng = rng
        self._capture_path = capture_path
        self.stats = RelayStats()
        self._store: RelayStore | None = None
        self._capture: CaptureWriter | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[int, _Connection] = {}
        self._unauthenticated = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._online: dict[Address, _Connection] = {}
        self._calls: dict[bytes, dict[Address, _Connection]] = {}
        self._next_connection = 1
        self._ops: dict[str, Callable[[_Connection, dict[str, Any]], Awaitable[dict[str, Any]]]]
        self._ops = {
            "hello": self._hello,
            "auth": self._auth,
            "put_bundle": self._put_bundle,
            "add_prekeys": self._add_prekeys,
            "prekey_count": self._prekey_count,
            "get_bundle": self._get_bundle,
            "devices": self._devices,
            "send": self._send,
            "fetch": self._fetch,
            "ack": self._ack,
            "join": self._join,
            "leave": self._leave,
            "media": self._media,
        }

    # --- Lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Bind, then open the store and the capture: a port in use creates no file."""
        server = await asyncio.start_server(self._accept, self._host, self._port)
        try:
            self._store = RelayStore(
                self._db_path,
                self.limits.max_queued,
                self.limits.max_prekeys,
                self.limits.max_devices_per_user,
            )
            if self._capture_path is not None:
                self._capture = CaptureWriter(self._capture_path)
        except BaseException:
            server.close()
            if self._store is not None:
                self._store.close()
            raise
        # Note that no connection is accepted before this point: nothing
        # above awaits after the bind, so the loop has not run ``_accept``.
        self._server = server
        self._port = server.sockets[0].getsockname()[1]
        log.info("relay listening on %s:%d", self._host, self._port)

    @property
    def port(self) -> int:
        return self._port

    async def stop(self) -> None:
        """Close the listener and every connection, then the store and capture."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            self._store.close()
        if self._capture is not None:
            self._capture.close()

    @property
    def rooms(self) -> int:
        """Calls the relay is routing now (rooms with at least one member)."""
        return len(self._calls)

    @property
    def store(self) -> RelayStore:
        if self._store is None:
            raise AccessDenied("the relay is not started")
        return self._store

    # --- Connections -------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        deadline = asyncio.get_running_loop().time() + self.limits.auth_timeout
        conn = _Connection(self._next_connection, f"{peer[0]}:{peer[1]}", writer, deadline)
        self._next_connection += 1
        self.stats.connections += 1
        self._record(Kind.OPEN, conn, conn.peer.encode())
        reason = "closed by peer"
        try:
            refusal = self._admission()
            if refusal is not None:
                self.stats.refused_connections += 1
                await self._refuse(conn, CONNECTION_RID, LimitExceeded(refusal))
            self._connections[conn.number] = conn
            self._unauthenticated += 1
            await self._serve(conn, reader)
        except _CutOff as cut:
            reason = f"cut off: {cut}"
            self.stats.cut_off += 1
            log.warning("connection %d (%s) %s", conn.number, conn.peer, reason)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            reason = "relay stopping"
        except Exception:  # a bug or a failing disk: this connection ends, the relay goes on
            reason = "internal error"
            log.exception("connection %d (%s): internal error", conn.number, conn.peer)
        finally:
            self._forget(conn)
            self._record(Kind.CLOSE, conn, reason.encode("ascii", "replace"))
            writer.close()
            self._tasks.discard(task)

    def _admission(self) -> str | None:
        """Why a new connection cannot be served now, or None."""
        if len(self._connections) >= self.limits.max_connections:
            return "too many connections"
        if self._unauthenticated >= self.limits.max_unauthenticated:
            return "too many connections that have not authenticated"
        return None

    def _forget(self, conn: _Connection) -> None:
        if self._connections.pop(conn.number, None) is not None and conn.address is None:
            self._unauthenticated -= 1
        for call in list(conn.calls):
            self._part(conn, call)
        if conn.address is not None and self._online.get(conn.address) is conn:
            del self._online[conn.address]

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        while True:
            prefix = await self._read(conn, reader, LENGTH_PREFIX, self.limits.idle_timeout)
            try:
                length = frame_length(prefix)
            except ProtocolError as error:
                await self._refuse(conn, CONNECTION_RID, error)
            body = await self._read(conn, reader, length, self.limits.frame_timeout)
            await self._handle(conn, body)

    def _timeout(self, conn: _Connection, timeout: float) -> float:
        """``timeout``, cut short by the authentication deadline until the device authenticated.

        Note that the deadline counts from the accept and nothing moves it:
        a connection that keeps sending ``hello`` is closed like a silent one.
        """
        if conn.address is not None:
            return timeout
        left = conn.deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise _CutOff("did not authenticate in time")
        return min(timeout, left)

    async def _read(
        self, conn: _Connection, reader: asyncio.StreamReader, n: int, timeout: float
    ) -> bytes:
        try:
            data = await asyncio.wait_for(reader.readexactly(n), self._timeout(conn, timeout))
        except asyncio.IncompleteReadError as short:
            self._record(Kind.RECEIVED, conn, short.partial)
            raise
        except TimeoutError:
            raise _CutOff("timed out") from None
        self._record(Kind.RECEIVED, conn, data)
        return data

    async def _handle(self, conn: _Connection, data: bytes) -> None:
        rid = 0
        try:
            op, rid, args = parse_request(decode_body(data))
            if conn.address is None and op not in ("hello", "auth"):
                raise AccessDenied("authenticate first")
            result = await self._ops[op](conn, args)
        except _KEEP_OPEN as error:
            if conn.address is None:
                await self._refuse(conn, rid, error)
            await self._respond(conn, failure(rid, error.code, str(error)))
            return
        except ProtocolError as error:
            await self._refuse(conn, rid, error)
        await self._respond(conn, ok(rid, result))

    async def _refuse(self, conn: _Connection, rid: int, error: ProtocolError) -> NoReturn:
        """Answer with the error, then cut the connection off."""
        await self._respond(conn, failure(rid, error.code, str(error)))
        raise _CutOff(error.code)

    # --- Writing -------------------------------------------------------------------

    def _write(self, conn: _Connection, frame: bytes) -> None:
        self._record(Kind.SENT, conn, frame)
        conn.writer.write(frame)

    async def _respond(self, conn: _Connection, body: dict[str, Any]) -> None:
        self._write(conn, encode_frame(body))
        try:
            await asyncio.wait_for(conn.writer.drain(), self.limits.frame_timeout)
        except TimeoutError:
            raise _CutOff("does not read its responses") from None

    def _push(self, conn: _Connection, frame: bytes) -> bool:
        """Write a push unless its receiver is already too far behind.

        Implements the buffer bound of spec/relay.md §6.1: a push is written
        only while the receiver's buffer is within ``max_outbound_buffer``
        (so it exceeds it by one frame at most); otherwise it is dropped, and
        a slow member loses frames instead of growing the relay.
        """
        if conn.writer.is_closing():
            return False
        if conn.writer.transport.get_write_buffer_size() > self.limits.max_outbound_buffer:
            return False
        self._write(conn, frame)
        return True

    def _record(self, kind: Kind, conn: _Connection, data: bytes) -> None:
        if kind is Kind.RECEIVED:
            self.stats.bytes_received += len(data)
        elif kind is Kind.SENT:
            self.stats.bytes_sent += len(data)
        if self._capture is not None:
            self._capture.record(kind, conn.number, data)

    # --- Operations (spec/relay.md §2.2) -------------------------------------------

    async def _hello(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        if conn.address is not None:
            raise MalformedMessage("already authenticated")
        conn.challenge = self._rng.draw("relay_challenge", CHALLENGE_LEN)
        return {"challenge": conn.challenge}

    async def _auth(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        challenge, conn.challenge = conn.challenge, None
        if challenge is None or conn.address is not None:
            raise MalformedMessage("auth must follow hello, once")
        address = Address(args["user"], args["device"])
        key = check_x25519_public(args["identity_key"])
        verify_challenge(key, challenge, address.user, address.device, args["signature"])
        registered = self.store.register(address, key, self._endorser(address, key, args))
        previous = self._online.get(address)
        if previous is not None:  # the device reconnected: the old connection is stale
            previous.writer.close()
        conn.address = address
        self._unauthenticated -= 1
        self._online[address] = conn
        return {"registered": registered}

    def _endorser(self, address: Address, key: bytes, args: dict[str, Any]) -> Address | None:
        """The registered device of the same user whose signature vouches for this one, if any.

        Implements the check of spec/relay.md §3.1; the store decides whether
        the device needs one.
        """
        endorsement = args["endorsement"]
        if endorsement is None or self.store.identity(address) is not None:
            return None
        endorser = Address(address.user, endorsement["device"])
        endorser_key = self.store.identity(endorser)
        if endorser_key is None:
            raise AccessDenied("the endorsing device is not registered")
        verify_endorsement(
            endorser_key, address.user, address.device, key, endorsement["signature"]
        )
        return endorser

    def _me(self, conn: _Connection) -> Address:
        assert conn.address is not None  # _handle refuses unauthenticated requests
        return conn.address

    async def _put_bundle(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        self.store.put_bundle(self._me(conn), args["bundle"])
        return {}

    async def _add_prekeys(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        if args["kind"] not in ("ec", "kem"):
            raise MalformedMessage("prekey kind is ec or kem")
        prekeys = [Prekey(item["id"], item["key"]) for item in args["prekeys"]]
        return {"stored": self.store.add_prekeys(self._me(conn), args["kind"], prekeys)}

    async def _prekey_count(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        me = self._me(conn)
        return {kind: self.store.prekey_count(me, kind) for kind in ("ec", "kem")}

    async def _get_bundle(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        fetched = self.store.take_bundle(Address(args["user"], args["device"]))
        return {
            "bundle": fetched.bundle,
            "ec_prekey": prekey_map(fetched.ec_prekey),
            "kem_prekey": prekey_map(fetched.kem_prekey),
        }

    async def _devices(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        return {"devices": self.store.devices(args["user"])}

    async def _send(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        recipient = Address(args["to_user"], args["to_device"])
        now_ms = time.time_ns() // 1_000_000
        message_id = self.store.enqueue(
            recipient, self._me(conn), args["mid"], args["body"], now_ms
        )
        self.stats.messages_queued += 1
        online = self._online.get(recipient)
        if online is not None:
            self._push(online, encode_frame(push("mail", {})))
        return {"id": message_id}

    async def _fetch(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        envelopes = self.store.fetch(self._me(conn), args["limit"])
        return {"messages": [envelope_map(e) for e in envelopes]}

    async def _ack(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        return {"removed": self.store.ack(self._me(conn), args["ids"])}

    async def _join(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        call, me = args["call"], self._me(conn)
        members = self._calls.get(call, {})
        if call not in conn.calls:
            # Note that every check precedes the first change: a refused join
            # leaves no room behind (spec/relay.md §2.4).
            if len(members) >= self.limits.max_call_members:
                raise LimitExceeded(f"a call holds at most {self.limits.max_call_members} devices")
            if len(conn.calls) >= self.limits.max_calls_per_connection:
                raise LimitExceeded("too many calls on one connection")
            self._announce(call, me, "joined")
            members = self._calls.setdefault(call, members)
            members[me] = conn
            conn.calls.add(call)
        return {"members": [{"user": a.user, "device": a.device} for a in members if a != me]}

    async def _leave(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        if args["call"] not in conn.calls:
            raise AccessDenied("not in this call")
        self._part(conn, args["call"])
        return {}

    def _part(self, conn: _Connection, call: bytes) -> None:
        conn.calls.discard(call)
        members = self._calls.get(call, {})
        if members.get(self._me(conn)) is not conn:
            return  # the device rejoined on a newer connection
        del members[self._me(conn)]
        if not members:
            del self._calls[call]
        self._announce(call, self._me(conn), "left")

    def _announce(self, call: bytes, who: Address, event: str) -> None:
        frame = encode_frame(push(event, {"call": call, "user": who.user, "device": who.device}))
        for member in self._calls.get(call, {}).values():
            self._push(member, frame)

    async def _media(self, conn: _Connection, args: dict[str, Any]) -> dict[str, Any]:
        call, me = args["call"], self._me(conn)
        if call not in conn.calls:
            raise AccessDenied("not in this call")
        data = {
            "call": call,
            "from_user": me.user,
            "from_device": me.device,
            "frame": args["frame"],
        }
        frame = encode_frame(push("media", data))
        delivered = dropped = 0
        for address, member in self._calls[call].items():
            if address != me:
                if self._push(member, frame):
                    delivered += 1
                else:
                    dropped += 1
        self.stats.media_forwarded += delivered
        self.stats.media_dropped += dropped
        return {"delivered": delivered, "dropped": dropped}
