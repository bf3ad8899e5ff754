"""The relay: strict frames, mailbox ownership, one-time prekeys handed out once,
bounded queues at their limits, fan-out to call members only, persistence, capture."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.client.connection import LOOPBACK, RelayClient, connect_device
from protocol.client.inbox import Inbox
from protocol.errors import (
    AccessDenied,
    InvalidSignature,
    LimitExceeded,
    MalformedMessage,
    ProtocolError,
    UnknownDevice,
    UnsupportedVersion,
)
from protocol.prekeys import IdentityKeyPair
from protocol.randomness import DrbgRandom
from protocol.relay.capture import Kind, read_capture
from protocol.relay.framing import MAX_FRAME_LEN, decode_body, encode_frame
from protocol.relay.harness import running_relay
from protocol.relay.limits import RelayLimits
from protocol.relay.schema import (
    REQUESTS,
    Address,
    Envelope,
    Prekey,
    parse_push,
    parse_request,
    parse_response,
)
from protocol.relay.server import RelayServer

T = TypeVar("T")

ALICE, BOB, CAROL = Address("alice", 1), Address("bob", 1), Address("carol", 7)


def run(coro: Awaitable[T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def identity(name: str) -> IdentityKeyPair:
    return IdentityKeyPair.generate(DrbgRandom(name.encode()))


async def device(server: RelayServer, address: Address) -> RelayClient:
    return await connect_device(server.port, address.user, address.device, identity(address.user))


def with_relay(tmp_path: Path, body: Callable[[RelayServer], Awaitable[T]], **limits: Any) -> T:
    async def main() -> T:
        async with running_relay(tmp_path / "relay.db", limits=RelayLimits(**limits)) as server:
            return await body(server)

    return run(main())


async def raw_exchange(port: int, data: bytes) -> tuple[dict[str, Any] | None, bool]:
    """Send raw bytes; return the first response map (if any) and whether the relay closed."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(data)
    await writer.drain()
    response = None
    try:
        prefix = await asyncio.wait_for(reader.readexactly(4), 5)
        response = decode_body(await reader.readexactly(struct.unpack(">I", prefix)[0]))
        closed = await asyncio.wait_for(reader.read(1), 5) == b""
    except asyncio.IncompleteReadError:
        closed = True
    writer.close()
    return response, closed


def frame_of(value: object) -> bytes:
    data = msgpack.packb(value, use_bin_type=True)
    return struct.pack(">I", len(data)) + data


# --- Strict decoding (spec/relay.md §1-§2) ------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        msgpack.packb([1, 2]),  # not a map
        msgpack.packb({"op": "hello", "rid": 1, "args": {}}) + b"\x00",  # trailing byte
        msgpack.packb({1: 2}),  # non-string key
        msgpack.packb(msgpack.ExtType(1, b"x")),  # extension type
        b"\xc1",  # never-used msgpack byte
    ],
)
def test_frame_body_that_is_not_exactly_one_map_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_body(body)


@pytest.mark.parametrize(
    "request_map",
    [
        {"op": "hello", "rid": 1},  # missing args
        {"op": "hello", "rid": 1, "args": {}, "x": 1},  # extra key
        {"op": "nope", "rid": 1, "args": {}},  # unknown op
        {"op": "fetch", "rid": 1, "args": {"limit": 0}},  # below the bound
        {"op": "fetch", "rid": 1, "args": {"limit": True}},  # bool is not an int
        {"op": "fetch", "rid": -1, "args": {"limit": 1}},  # negative rid
        {"op": "devices", "rid": 1, "args": {"user": "Bob"}},  # outside the name alphabet
        {
            "op": "send",
            "rid": 1,
            "args": {"to_user": "bob", "to_device": 1, "mid": b"short", "body": b"x"},
        },
        {"op": "ack", "rid": 1, "args": {"ids": [1] * 257}},  # too many ids
    ],
)
def test_request_that_differs_from_its_shape_is_malformed(request_map: dict[str, Any]) -> None:
    with pytest.raises(MalformedMessage):
        parse_request(request_map)


def test_frame_encoder_refuses_a_body_above_the_frame_limit() -> None:
    with pytest.raises(LimitExceeded):
        encode_frame({"x": bytes(MAX_FRAME_LEN)})


# --- Misbehaving clients are cut off, others unaffected (spec/relay.md §2.4) ---------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (struct.pack(">I", MAX_FRAME_LEN + 1), "LIMIT_EXCEEDED"),
        (struct.pack(">I", 0), "MALFORMED_MESSAGE"),
        (frame_of([1, 2, 3]), "MALFORMED_MESSAGE"),
        (frame_of({"op": "fetch", "rid": 5, "args": {"limit": 1}}), "ACCESS_DENIED"),
        (frame_of({"op": "auth", "rid": 5, "args": {}}), "MALFORMED_MESSAGE"),
    ],
)
def test_misbehaving_client_gets_one_error_and_is_cut_off_while_others_continue(
    tmp_path: Path, data: bytes, code: str
) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        response, closed = await raw_exchange(server.port, data)
        assert response is not None and response["error"]["code"] == code
        assert closed
        await alice.send(BOB, b"still works", bytes(16))
        assert [e.body for e in await bob.fetch()] == [b"still works"]
        assert server.stats.cut_off == 1
        await alice.close()
        await bob.close()

    with_relay(tmp_path, body)


def test_silent_connection_is_cut_off_after_the_auth_timeout(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
        assert await asyncio.wait_for(reader.read(1), 5) == b""
        writer.close()
        assert server.stats.cut_off == 1

    with_relay(tmp_path, body, auth_timeout=0.2)


def test_relay_refuses_to_bind_a_non_loopback_address(tmp_path: Path) -> None:
    with pytest.raises(AccessDenied):
        RelayServer(tmp_path / "relay.db", host="0.0.0.0")


# --- Authentication (spec/relay.md §3) ----------------------------------------------


def test_first_identity_key_is_registered_and_a_different_one_is_refused(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        first = await device(server, ALICE)
        assert first.address == ALICE
        impostor = await RelayClient.connect(LOOPBACK, server.port)
        with pytest.raises(AccessDenied):
            await impostor.authenticate("alice", 1, identity("mallory"))
        await impostor.close()
        again = await RelayClient.connect(LOOPBACK, server.port)
        assert await again.authenticate("alice", 1, identity("alice")) is False
        await again.close()
        await first.close()

    with_relay(tmp_path, body)


def test_signature_over_another_challenge_or_device_is_refused(tmp_path: Path) -> None:
    from protocol.relay.auth import sign_challenge

    async def body(server: RelayServer) -> None:
        key = identity("alice")
        for user, device_id in (("alice", 2), ("bob", 1)):
            client = await RelayClient.connect(LOOPBACK, server.port)
            challenge = (await client.request("hello", {}))["challenge"]
            signature = sign_challenge(key.private, challenge, user, device_id)
            args = {"user": "alice", "device": 1, "identity_key": key.public, "endorsement": None}
            with pytest.raises(InvalidSignature):
                await client.request("auth", {**args, "signature": signature})
            await client.close()
        assert server.store.identity(ALICE) is None

    with_relay(tmp_path, body)


def test_only_the_owner_drains_a_mailbox(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob, carol = [await device(server, a) for a in (ALICE, BOB, CAROL)]
        message_id = await alice.send(BOB, b"for bob", bytes(16))
        assert await carol.fetch() == []
        assert await carol.ack([message_id]) == 0
        assert [e.id for e in await bob.fetch()] == [message_id]
        for client in (alice, bob, carol):
            await client.close()

    with_relay(tmp_path, body)


# --- Prekeys (spec/relay.md §2.2, §4.1) ---------------------------------------------


def test_concurrent_bundle_fetches_never_receive_the_same_one_time_prekey(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        bob = await device(server, BOB)
        await bob.put_bundle(b"signed part")
        await bob.add_prekeys("ec", [Prekey(i, bytes([i]) * 33) for i in range(20)])
        await bob.add_prekeys("kem", [Prekey(i, bytes([i]) * 40) for i in range(5)])
        fetchers = [await device(server, Address(f"user{i}", 1)) for i in range(30)]
        bundles = await asyncio.gather(*(f.get_bundle(BOB) for f in fetchers))
        ec_ids = [b.ec_prekey.id for b in bundles if b.ec_prekey is not None]
        kem_ids = [b.kem_prekey.id for b in bundles if b.kem_prekey is not None]
        assert sorted(ec_ids) == list(range(20))
        assert sorted(kem_ids) == list(range(5))
        assert all(b.bundle == b"signed part" for b in bundles)
        assert await bob.prekey_count() == {"ec": 0, "kem": 0}
        for client in (bob, *fetchers):
            await client.close()

    with_relay(tmp_path, body)


def test_store_hands_each_prekey_out_once_to_processes_sharing_the_database(
    tmp_path: Path,
) -> None:
    # Two stores on one file stand for two relay processes: the transaction,
    # not the single event loop, is what makes the hand-out atomic.
    import threading

    from protocol.relay.storage import RelayStore

    first = RelayStore(tmp_path / "relay.db", max_queued=10, max_prekeys=500)
    first.register(BOB, identity("bob").public)
    first.put_bundle(BOB, b"bundle")
    first.add_prekeys(BOB, "ec", [Prekey(i, b"k") for i in range(400)])
    taken: list[list[int]] = [[], []]

    def take(slot: int) -> None:
        store = RelayStore(tmp_path / "relay.db", max_queued=10, max_prekeys=500)
        for _ in range(250):
            prekey = store.take_bundle(BOB).ec_prekey
            if prekey is not None:
                taken[slot].append(prekey.id)
        store.close()

    threads = [threading.Thread(target=take, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(taken[0] + taken[1]) == list(range(400))
    first.close()


def test_prekey_store_limit_is_enforced_at_the_boundary_and_a_refused_upload_stores_nothing(
    tmp_path: Path,
) -> None:
    async def body(server: RelayServer) -> None:
        bob = await device(server, BOB)
        assert await bob.add_prekeys("ec", [Prekey(i, b"k") for i in range(4)]) == 4
        with pytest.raises(LimitExceeded):
            await bob.add_prekeys("ec", [Prekey(4, b"k"), Prekey(5, b"k")])
        assert await bob.add_prekeys("ec", [Prekey(4, b"k")]) == 5
        assert await bob.prekey_count() == {"ec": 5, "kem": 0}
        await bob.close()

    with_relay(tmp_path, body, max_prekeys=5)


def test_duplicate_prekey_id_refuses_the_whole_upload(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        bob = await device(server, BOB)
        await bob.add_prekeys("ec", [Prekey(1, b"k")])
        with pytest.raises(MalformedMessage):
            await bob.add_prekeys("ec", [Prekey(2, b"k"), Prekey(1, b"k")])
        assert server.store.prekey_count(BOB, "ec") == 1
        with pytest.raises(ConnectionError):  # and the relay cut the connection
            await bob.prekey_count()
        await bob.close()

    with_relay(tmp_path, body)


def test_bundle_of_an_unknown_device_is_unknown_device(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice = await device(server, ALICE)
        with pytest.raises(UnknownDevice):
            await alice.get_bundle(BOB)
        with pytest.raises(UnknownDevice):
            await alice.send(BOB, b"x", bytes(16))
        assert await alice.devices("alice") == [1]
        await alice.close()

    with_relay(tmp_path, body)


# --- Mailboxes (spec/relay.md §2.2, §4.2, §7) ---------------------------------------


def test_mailbox_limit_is_enforced_at_the_boundary_and_frees_after_ack(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        for n in range(3):
            await alice.send(BOB, b"m", bytes([n]) * 16)
        with pytest.raises(LimitExceeded):
            await alice.send(BOB, b"m", bytes([3]) * 16)
        first = (await bob.fetch(1))[0]
        assert await bob.ack([first.id]) == 1
        await alice.send(BOB, b"m", bytes([3]) * 16)
        assert server.store.queued(BOB) == 3
        await alice.close()
        await bob.close()

    with_relay(tmp_path, body, max_queued=3)


def test_resent_message_id_is_queued_once_and_inbox_hands_each_message_over_once(
    tmp_path: Path,
) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        first = await alice.send(BOB, b"one", b"\x01" * 16)
        assert await alice.send(BOB, b"one", b"\x01" * 16) == first
        await alice.send(BOB, b"two", b"\x02" * 16)
        handled: list[Envelope] = []
        # Fetch without acknowledging, as if the ack was lost: the next receive
        # sees the same messages again and must not hand them over twice.
        inbox = Inbox()
        await inbox.receive(bob, handled.append, limit=1)
        await bob.request("fetch", {"limit": 10})
        await inbox.receive(bob, handled.append)
        assert [e.body for e in handled] == [b"one", b"two"]
        assert server.store.queued(BOB) == 0
        await alice.close()
        await bob.close()

    with_relay(tmp_path, body)


def test_queued_messages_and_unused_prekeys_survive_a_restart(tmp_path: Path) -> None:
    async def before(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        await bob.put_bundle(b"bundle")
        await bob.add_prekeys("ec", [Prekey(1, b"a"), Prekey(2, b"b")])
        await alice.get_bundle(BOB)
        await alice.send(BOB, b"queued", bytes(16))
        await alice.close()
        await bob.close()

    async def after(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        assert [e.body for e in await bob.fetch()] == [b"queued"]
        bundle = await alice.get_bundle(BOB)
        assert bundle.ec_prekey == Prekey(2, b"b")
        await alice.close()
        await bob.close()

    with_relay(tmp_path, before)
    with_relay(tmp_path, after)


def test_mail_push_wakes_an_online_recipient(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)
        await alice.send(BOB, b"ping", bytes(16))
        await asyncio.wait_for(bob.mail.wait(), 5)
        await alice.close()
        await bob.close()

    with_relay(tmp_path, body)


# --- Calls (spec/relay.md §2.2) -------------------------------------------------------


def test_media_reaches_call_members_only_with_the_sender_the_relay_authenticated(
    tmp_path: Path,
) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob, carol = [await device(server, a) for a in (ALICE, BOB, CAROL)]
        assert await alice.join(b"call") == []
        assert await bob.join(b"call") == [ALICE]
        assert await alice.send_media(b"call", b"frame 1") == (1, 0)
        got = await asyncio.wait_for(bob.media.get(), 5)
        assert (got.sender, got.frame) == (ALICE, b"frame 1")
        assert carol.media.empty()
        with pytest.raises(AccessDenied):  # not a member: refused, connection kept
            await carol.send_media(b"call", b"forged")
        await bob.leave(b"call")
        assert await alice.send_media(b"call", b"frame 2") == (0, 0)
        events = [alice.call_events.get_nowait() for _ in range(2)]
        assert [(e.event, e.device) for e in events] == [("joined", BOB), ("left", BOB)]
        for client in (alice, bob, carol):
            await client.close()

    with_relay(tmp_path, body)


def test_call_size_limit_is_enforced_at_the_boundary(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob, carol = [await device(server, a) for a in (ALICE, BOB, CAROL)]
        await alice.join(b"c")
        await bob.join(b"c")
        with pytest.raises(LimitExceeded):
            await carol.join(b"c")
        await bob.close()
        await asyncio.wait_for(alice.call_events.get(), 5)  # joined
        await asyncio.wait_for(alice.call_events.get(), 5)  # left, on disconnect
        assert await carol.join(b"c") == [ALICE]
        await alice.close()
        await carol.close()

    with_relay(tmp_path, body, max_call_members=2)


# --- Capture (spec/relay.md §5) -------------------------------------------------------


def test_capture_holds_every_byte_in_both_directions(tmp_path: Path) -> None:
    capture = tmp_path / "relay.cap"

    async def main() -> RelayServer:
        async with running_relay(tmp_path / "relay.db", capture_path=capture) as server:
            alice, bob = await device(server, ALICE), await device(server, BOB)
            await alice.send(BOB, b"opaque body", bytes(16))
            await bob.fetch()
            await alice.close()
            await bob.close()
            await asyncio.sleep(0.05)
        return server

    server = run(main())
    records = list(read_capture(capture))
    received = b"".join(r.data for r in records if r.kind is Kind.RECEIVED)
    sent = b"".join(r.data for r in records if r.kind is Kind.SENT)
    assert len(received) == server.stats.bytes_received
    assert len(sent) == server.stats.bytes_sent
    assert received.count(b"opaque body") == 1 and sent.count(b"opaque body") == 1
    kinds = [r.kind for r in records if r.connection == 1]
    assert kinds[0] is Kind.OPEN and kinds[-1] is Kind.CLOSE


def test_truncated_capture_is_malformed(tmp_path: Path) -> None:
    capture = tmp_path / "relay.cap"
    capture.write_bytes(b"E2EECAP1" + struct.pack(">BIQI", 2, 1, 0, 10) + b"short")
    with pytest.raises(MalformedMessage):
        list(read_capture(capture))


def test_connection_beyond_the_limit_is_refused_and_closed(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        alice = await device(server, ALICE)
        response, closed = await raw_exchange(server.port, b"")
        assert response is not None and response["error"]["code"] == "LIMIT_EXCEEDED" and closed
        assert await alice.devices("alice") == [1]  # the first connection is unaffected
        await alice.close()

    with_relay(tmp_path, body, max_connections=1)


def test_a_device_that_reconnects_replaces_its_old_connection(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        old = await device(server, BOB)
        await old.join(b"call")
        new = await device(server, BOB)
        with pytest.raises(ConnectionError):
            for _ in range(50):  # the relay closes the old connection
                await old.devices("bob")
                await asyncio.sleep(0.01)
        assert await new.join(b"call") == []  # the old membership went with it
        await old.close()
        await new.close()

    with_relay(tmp_path, body)


def test_a_database_of_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from protocol.relay.storage import RelayStore

    database = sqlite3.connect(tmp_path / "relay.db")
    database.execute("PRAGMA user_version=99")
    database.close()
    with pytest.raises(UnsupportedVersion):
        RelayStore(tmp_path / "relay.db", max_queued=1, max_prekeys=1)


def test_a_frame_that_never_completes_is_cut_off_after_the_frame_timeout(tmp_path: Path) -> None:
    async def body(server: RelayServer) -> None:
        reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
        writer.write(struct.pack(">I", 100) + b"only part of it")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert server.stats.cut_off == 1

    with_relay(tmp_path, body, frame_timeout=0.2)


def test_media_for_a_receiver_that_stops_reading_is_dropped_and_others_still_get_it(
    tmp_path: Path,
) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob, carol = [await device(server, a) for a in (ALICE, BOB, CAROL)]
        for client in (alice, bob, carol):
            await client.join(b"call")
        carol._writer.transport.pause_reading()  # carol's device stops reading
        sent, dropped = 0, 0
        while dropped == 0 and sent < 400:
            delivered, dropped = await alice.send_media(b"call", bytes(100_000))
            sent += 1
            assert delivered + dropped == 2
            got = await asyncio.wait_for(bob.media.get(), 5)
            assert got.sender == ALICE
        assert dropped == 1 and server.stats.media_dropped >= 1
        assert await alice.devices("bob") == [1]  # the relay stays responsive
        for client in (alice, bob, carol):
            await client.close()

    with_relay(tmp_path, body, max_outbound_buffer=64 * 1024)


# --- Fuzzing: bad input raises only protocol errors ------------------------------------

SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
MSGPACK_VALUES = st.recursive(
    SCALARS | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
REQUEST_LIKE = st.fixed_dictionaries(
    {"op": st.sampled_from(sorted(REQUESTS)), "rid": MSGPACK_VALUES, "args": MSGPACK_VALUES}
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | MSGPACK_VALUES.map(lambda v: msgpack.packb(v, use_bin_type=True)))
def test_arbitrary_frame_bodies_decode_or_raise_a_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):  # anything else fails the test
        parse_request(decode_body(data))


@settings(max_examples=300, deadline=None)
@given(REQUEST_LIKE | st.dictionaries(st.text(max_size=8), MSGPACK_VALUES, max_size=4))
def test_arbitrary_maps_are_valid_requests_responses_pushes_or_malformed(
    body: dict[str, Any],
) -> None:
    for parse in (parse_request, parse_push, lambda b: parse_response(b, "fetch")):
        with contextlib.suppress(MalformedMessage):  # anything else fails the test
            parse(body)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3), st.binary(max_size=60)), max_size=12)
)
def test_observing_an_arbitrary_capture_never_crashes(
    records: list[tuple[int, int, bytes]],
) -> None:
    import tempfile

    from protocol.audit.observe import observe

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c"
        path.write_bytes(
            b"E2EECAP1" + b"".join(struct.pack(">BIQI", k, c, 0, len(d)) + d for k, c, d in records)
        )
        observe(path)


def test_frame_encoder_refuses_values_msgpack_cannot_carry() -> None:
    from protocol.errors import InvalidArgument

    with pytest.raises(InvalidArgument):
        encode_frame({"x": object()})
    with pytest.raises(InvalidArgument):
        encode_frame({"x": 2**70})


def test_an_internal_error_ends_only_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(server: RelayServer) -> None:
        alice, bob = await device(server, ALICE), await device(server, BOB)

        def failing_disk(*args: object) -> int:
            raise OSError("disk failure")

        monkeypatch.setattr(server.store, "ack", failing_disk)
        with pytest.raises(ConnectionError):
            await bob.ack([1])
        await alice.send(ALICE, b"to myself", bytes(16))  # the relay goes on
        assert [e.body for e in await alice.fetch()] == [b"to myself"]
        await alice.close()
        await bob.close()

    with_relay(tmp_path, body)
