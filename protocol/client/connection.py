"""A device's connection to the relay (spec/relay.md §2, §3).

``RelayClient`` speaks the frame protocol to a relay: one background task
reads frames, checks every response and push strictly (the client trusts the
server no more than the server trusts it), resolves the waiting request by
its ``rid`` and queues pushes. Transport failures raise ``ConnectionError``;
a refusal by the relay raises the ``ProtocolError`` whose code it sent, also
when the relay refused the connection itself (rid 0, spec/relay.md §2.4).
A response that does not parse fails its request at once with
MALFORMED_MESSAGE and ends the connection.
``connect_device`` connects and proves the device's identity in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.errors import MalformedMessage, ProtocolError
from protocol.prekeys import IdentityKeyPair
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.relay.auth import Endorsement, sign_challenge
from protocol.relay.framing import LENGTH_PREFIX, decode_body, encode_frame, frame_length
from protocol.relay.schema import (
    CONNECTION_RID,
    MAX_FETCH,
    Address,
    Envelope,
    FetchedBundle,
    Prekey,
    envelope_from_map,
    parse_push,
    parse_refusal,
    parse_response,
    prekey_from_map,
    request,
)

# Pushed media frames kept for the application before further ones are dropped.
MAX_QUEUED_MEDIA = 4096
REQUEST_TIMEOUT = 30.0
LOOPBACK = "127.0.0.1"
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class MediaFrame:
    """An opaque media frame as the relay forwarded it, with the sender it names."""

    call: bytes
    sender: Address
    frame: bytes


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A device joined or left a call."""

    call: bytes
    event: str
    device: Address


class RelayClient:
    """One connection to a relay. Create with ``await RelayClient.connect(...)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._next_rid = 1
        self._failure: BaseException | None = None
        self._refusal: ProtocolError | None = None  # the relay refused the connection
        self.media: asyncio.Queue[MediaFrame] = asyncio.Queue(MAX_QUEUED_MEDIA)
        self.media_dropped = 0
        self.call_events: asyncio.Queue[CallEvent] = asyncio.Queue(MAX_QUEUED_MEDIA)
        self.mail = asyncio.Event()
        self.address: Address | None = None
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = 10.0) -> RelayClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_TIMEOUT)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # --- Frames ----------------------------------------------------------------

    async def request(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its checked result."""
        if self._refusal is not None:
            raise type(self._refusal)(str(self._refusal))
        if self._failure is not None:
            raise ConnectionError(f"connection failed: {self._failure}")
        rid, self._next_rid = self._next_rid, self._next_rid + 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (op, future)
        try:
            self._writer.write(encode_frame(request(op, rid, args)))
            await self._writer.drain()
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            raise ConnectionError(f"no response to {op}") from None
        finally:
            self._pending.pop(rid, None)

    async def _read_loop(self) -> None:
        try:
            while True:
                prefix = await self._reader.readexactly(LENGTH_PREFIX)
                body = decode_body(await self._reader.readexactly(frame_length(prefix)))
                self._dispatch(body)
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError) as error:
            self._fail(error)
            self._writer.close()

    def _dispatch(self, body: dict[str, Any]) -> None:
        if "push" in body:
            self._on_push(*parse_push(body))
            return
        rid = body.get("rid")
        if rid == CONNECTION_RID and body.get("ok") is False:
            self._refusal = parse_refusal(body, "the connection")
            raise self._refusal
        if not isinstance(rid, int) or rid not in self._pending:
            raise MalformedMessage("response to no pending request")
        op, future = self._pending.pop(rid)
        try:
            outcome = parse_response(body, op)
        except ProtocolError as error:
            future.set_exception(error)  # this request fails now; the read loop ends
            raise
        if isinstance(outcome, ProtocolError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _fail(self, error: BaseException) -> None:
        self._failure = error
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(
                    type(error)(str(error))
                    if error is self._refusal
                    else ConnectionError(f"connection failed: {error}")
                )
        self._pending.clear()
        self.mail.set()

    def _on_push(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "mail":
            self.mail.set()
        elif kind == "media":
            sender = Address(data["from_user"], data["from_device"])
            try:
                self.media.put_nowait(MediaFrame(data["call"], sender, data["frame"]))
            except asyncio.QueueFull:
                self.media_dropped += 1
        else:
            device = Address(data["user"], data["device"])
            with contextlib.suppress(asyncio.QueueFull):
                self.call_events.put_nowait(CallEvent(data["call"], kind, device))

    # --- Operations (spec/relay.md §2.2) ------------------------------------------

    async def authenticate(
        self,
        user: str,
        device: int,
        identity: IdentityKeyPair,
        rng: Random = SYSTEM_RANDOM,
        endorsement: Endorsement | None = None,
    ) -> bool:
        """hello + auth (spec/relay.md §3); True if this registered the device.

        A further device of a user registers only with an ``endorsement``
        from a registered device of that user (spec/relay.md §3.1).
        """
        challenge = (await self.request("hello", {}))["challenge"]
        signature = sign_challenge(identity.private, challenge, user, device, rng)
        args = {"user": user, "device": device, "identity_key": identity.public}
        endorsed = (
            None
            if endorsement is None
            else {"device": endorsement.device, "signature": endorsement.signature}
        )
        result = await self.request(
            "auth", {**args, "signature": signature, "endorsement": endorsed}
        )
        self.address = Address(user, device)
        return bool(result["registered"])

    async def put_bundle(self, bundle: bytes) -> None:
        await self.request("put_bundle", {"bundle": bundle})

    async def add_prekeys(self, kind: str, prekeys: Sequence[Prekey]) -> int:
        items = [{"id": p.id, "key": p.key} for p in prekeys]
        result = await self.request("add_prekeys", {"kind": kind, "prekeys": items})
        return int(result["stored"])

    async def prekey_count(self) -> dict[str, int]:
        return await self.request("prekey_count", {})

    async def get_bundle(self, address: Address) -> FetchedBundle:
        result = await self.request("get_bundle", {"user": address.user, "device": address.device})
        ec, kem = prekey_from_map(result["ec_prekey"]), prekey_from_map(result["kem_prekey"])
        return FetchedBundle(result["bundle"], ec, kem)

    async def devices(self, user: str) -> list[int]:
        return list((await self.request("devices", {"user": user}))["devices"])

    async def send(self, to: Address, body: bytes, mid: bytes) -> int:
        """Queue ``body`` for ``to``; resending the same ``mid`` returns the same id."""
        args = {"to_user": to.user, "to_device": to.device, "mid": mid, "body": body}
        return int((await self.request("send", args))["id"])

    async def fetch(self, limit: int = MAX_FETCH) -> list[Envelope]:
        result = await self.request("fetch", {"limit": limit})
        return [envelope_from_map(m) for m in result["messages"]]

    async def ack(self, ids: Sequence[int]) -> int:
        return int((await self.request("ack", {"ids": list(ids)}))["removed"])

    async def join(self, call: bytes) -> list[Address]:
        result = await self.request("join", {"call": call})
        return [Address(m["user"], m["device"]) for m in result["members"]]

    async def leave(self, call: bytes) -> None:
        await self.request("leave", {"call": call})

    async def send_media(self, call: bytes, frame: bytes) -> tuple[int, int]:
        """Forward a frame to the call; returns (delivered, dropped) receiver counts."""
        result = await self.request("media", {"call": call, "frame": frame})
        return int(result["delivered"]), int(result["dropped"])


async def connect_device(
    port: int,
    user: str,
    device: int,
    identity: IdentityKeyPair,
    rng: Random = SYSTEM_RANDOM,
    endorsement: Endorsement | None = None,
) -> RelayClient:
    """Connect to the relay on loopback and authenticate as (user, device)."""
    client = await RelayClient.connect(LOOPBACK, port)
    try:
        await client.authenticate(user, device, identity, rng, endorsement)
    except BaseException:
        await client.close()
        raise
    return client
