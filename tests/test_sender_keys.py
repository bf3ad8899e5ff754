"""Sender keys: group messages between devices, their limits and bad input (spec/sender-keys.md).

Every failure is a ProtocolError with a stable code and leaves the store
exactly as it was; the genuine message still decrypts afterwards.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import sender_keys
from protocol.errors import (
    DuplicateMessage,
    InvalidArgument,
    InvalidSignature,
    MalformedMessage,
    NoSession,
    ProtocolError,
    StateCorrupt,
    TooManySkipped,
    UnsupportedVersion,
)
from protocol.group_cipher import (
    SENDER_KEYS,
    create_distribution_message,
    group_decrypt,
    group_encrypt,
    process_distribution_message,
)
from protocol.profiles import PQ_DEFAULT
from protocol.randomness import DrbgRandom
from protocol.sender_key_messages import (
    decode_distribution_message,
    decode_message,
    encode_distribution_message,
)
from protocol.sender_keys import (
    MAX_FORWARD_JUMPS,
    MAX_MESSAGE_KEYS,
    MAX_SENDER_KEY_STATES,
    SenderKeyRecord,
    add_state,
)
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore, Store, dump_state, load_state

ALICE, BOB, CAROL = Address("alice", 1), Address("bob", 1), Address("carol", 2)
GROUP = bytes.fromhex("d1d1d1d1700011ebb32a33b8a8a487a6")  # libsignal protocol.rs test uuid


def snapshot(store: Store) -> dict[str, bytes | None]:
    return {k: store.get(SENDER_KEYS, k) for k in store.keys(SENDER_KEYS)}


class Group:
    """A sender (alice) and two members, each with its own store."""

    def __init__(self, seed: bytes = b"group") -> None:
        self.rng = DrbgRandom(seed)
        self.stores = {a: MemoryStore() for a in (ALICE, BOB, CAROL)}
        self.distribution = create_distribution_message(self.stores[ALICE], ALICE, GROUP, self.rng)
        for member in (BOB, CAROL):
            process_distribution_message(self.stores[member], ALICE, self.distribution)

    def send(self, plaintext: bytes) -> bytes:
        return group_encrypt(self.stores[ALICE], ALICE, GROUP, plaintext, self.rng)

    def receive(self, member: Address, data: bytes) -> bytes:
        return group_decrypt(self.stores[member], ALICE, data)


def refused(group: Group, member: Address, data: bytes, error: type[ProtocolError]) -> None:
    before = snapshot(group.stores[member])
    with pytest.raises(error):
        group.receive(member, data)
    assert snapshot(group.stores[member]) == before


def test_members_read_the_senders_messages_in_order_and_out_of_order() -> None:
    group = Group()
    messages = [group.send(f"message {i}".encode()) for i in range(6)]
    for i, message in enumerate(messages):
        assert group.receive(BOB, message) == f"message {i}".encode()
    for i in (5, 0, 3, 1, 4, 2):
        assert group.receive(CAROL, messages[i]) == f"message {i}".encode()


def test_a_replay_is_a_duplicate_and_changes_nothing() -> None:
    group = Group()
    first, second = group.send(b"one"), group.send(b"two")
    assert group.receive(BOB, second) == b"two"
    refused(group, BOB, second, DuplicateMessage)
    assert group.receive(BOB, first) == b"one"  # a stored key, used once
    refused(group, BOB, first, DuplicateMessage)


def test_a_bad_signature_is_refused_before_the_chain_moves() -> None:
    group = Group()
    message = group.send(b"signed")
    for position in (1, len(message) // 2, len(message) - 1):  # protobuf, ciphertext, signature
        forged = bytearray(message)
        forged[position] ^= 0x01
        refused(group, BOB, bytes(forged), (InvalidSignature, MalformedMessage))  # type: ignore[arg-type]
    assert group.receive(BOB, message) == b"signed"


def test_a_message_from_a_forged_signing_key_is_refused() -> None:
    group = Group()
    impostor = Group(b"impostor")
    forged = impostor.send(b"hello")  # a valid message, signed by another key
    refused(group, BOB, forged, NoSession)  # another chain id
    record = sender_keys.create_state(DrbgRandom(b"impostor key"))
    alice_state = _own_state(group)
    same_chain = dataclasses.replace(record, chain_id=alice_state.chain_id, chain=alice_state.chain)
    _, message = sender_keys.encrypt(GROUP, same_chain, b"forged", DrbgRandom(b"z"))
    refused(group, BOB, message, InvalidSignature)
    assert group.receive(BOB, group.send(b"genuine")) == b"genuine"


def _own_state(group: Group) -> sender_keys.SenderKeyState:
    from protocol.store import load_state

    data = group.stores[ALICE].get(SENDER_KEYS, group.stores[ALICE].keys(SENDER_KEYS)[0])
    assert data is not None
    return load_state(SenderKeyRecord, data).states[0]


def test_unknown_distribution_ids_and_chain_ids_are_no_session() -> None:
    group = Group()
    other_group = group_encrypt_after_create(group, bytes(16))
    refused(group, BOB, other_group, NoSession)
    stranger = MemoryStore()
    with pytest.raises(NoSession):
        group_decrypt(stranger, ALICE, group.send(b"to no one"))
    assert snapshot(stranger) == {}
    with pytest.raises(NoSession):
        group_encrypt(group.stores[BOB], BOB, GROUP, b"no chain yet")
    assert group.receive(BOB, group.send(b"still fine")) == b"still fine"


def group_encrypt_after_create(group: Group, distribution_id: bytes) -> bytes:
    create_distribution_message(group.stores[ALICE], ALICE, distribution_id, group.rng)
    return group_encrypt(group.stores[ALICE], ALICE, distribution_id, b"other group", group.rng)


def _advanced(group: Group, jump: int) -> bytes:
    """A message ``jump`` iterations past the member's chain, signed by the real sender."""
    state = _own_state(group)
    chain = state.chain
    for _ in range(jump):
        chain = chain.next()
    _, message = sender_keys.encrypt(
        GROUP, dataclasses.replace(state, chain=chain), b"far", group.rng
    )
    return message


def test_a_message_too_far_ahead_is_refused_and_the_limit_itself_is_accepted() -> None:
    group = Group()
    refused(group, BOB, _advanced(group, MAX_FORWARD_JUMPS + 1), TooManySkipped)
    assert group.receive(BOB, _advanced(group, MAX_FORWARD_JUMPS)) == b"far"
    assert group.receive(CAROL, group.send(b"next")) == b"next"


def test_only_the_newest_skipped_keys_are_kept() -> None:
    group = Group()
    oldest, kept = group.send(b"oldest"), group.send(b"kept")
    # The message is at iteration 2 + 1999 = 2001: bob skips 0..2000 and keeps 1..2000.
    assert group.receive(BOB, _advanced(group, MAX_MESSAGE_KEYS - 1)) == b"far"
    refused(group, BOB, oldest, DuplicateMessage)  # dropped from the store: reads as a replay
    assert group.receive(BOB, kept) == b"kept"


@pytest.mark.parametrize(
    ("byte", "error"), [(0x44, UnsupportedVersion), (0x23, UnsupportedVersion)]
)
def test_other_versions_are_unsupported(byte: int, error: type[ProtocolError]) -> None:
    group = Group()
    message = group.send(b"v")
    refused(group, BOB, bytes([byte]) + message[1:], UnsupportedVersion)
    with pytest.raises(UnsupportedVersion):
        decode_distribution_message(bytes([byte]) + group.distribution[1:])
    assert group.receive(BOB, message) == b"v"


def test_the_version_byte_is_signed_so_a_low_nibble_change_fails_the_signature() -> None:
    group = Group()
    message = group.send(b"v")
    assert message[0] == group.distribution[0] == 0x33
    refused(group, BOB, b"\x34" + message[1:], InvalidSignature)  # libsignal reads 0x34 as 3


def test_a_repeated_distribution_does_not_reset_the_chain() -> None:
    group = Group()
    first = group.send(b"first")
    assert group.receive(BOB, first) == b"first"
    process_distribution_message(group.stores[BOB], ALICE, group.distribution)
    refused(group, BOB, first, DuplicateMessage)
    again = create_distribution_message(group.stores[ALICE], ALICE, GROUP, group.rng)
    assert decode_distribution_message(again).iteration == 1  # the current iteration
    process_distribution_message(CAROL_STORE := MemoryStore(), ALICE, again)
    with pytest.raises(DuplicateMessage):  # a later member cannot read earlier messages
        group_decrypt(CAROL_STORE, ALICE, first)


def test_states_follow_libsignals_add_sender_key_state() -> None:
    rng = DrbgRandom(b"states")
    states = [sender_keys.create_state(rng) for _ in range(MAX_SENDER_KEY_STATES + 1)]
    record = SenderKeyRecord(())
    for state in states:
        record = add_state(record, state)
    assert [s.chain_id for s in record.states] == [s.chain_id for s in states[::-1][:5]]
    moved = dataclasses.replace(states[2], chain=states[2].chain.next())
    again = add_state(record, moved)  # same chain id and key: kept as it was, moved first
    assert again.states[0] == states[2] and len(again.states) == MAX_SENDER_KEY_STATES
    replaced = dataclasses.replace(states[3], signing_key=states[0].signing_key)
    swapped = add_state(record, replaced)  # same chain id, another key: replaced
    assert swapped.states[0] == replaced
    assert [s.chain_id for s in swapped.states].count(states[3].chain_id) == 1


def test_distribution_messages_round_trip_byte_for_byte() -> None:
    group = Group()
    decoded = decode_distribution_message(group.distribution)
    assert encode_distribution_message(decoded) == group.distribution
    assert len(group.distribution) in (95, 96) and group.distribution[0] == 0x33
    assert decoded.distribution_id == GROUP
    message = decode_message(group.send(b"abc"))
    assert (message.distribution_id, message.chain_id, message.iteration) == (
        GROUP,
        decoded.chain_id,
        0,
    )


def test_reprs_hold_no_secret() -> None:
    group = Group()
    state = _own_state(group)
    decoded = decode_distribution_message(group.distribution)
    texts = [repr(state), repr(state.chain), repr(state.chain.message_key()), repr(decoded)]
    secrets = [state.chain.chain_key, state.signing_private, state.chain.message_key().seed]
    for text, secret in itertools.product(texts, secrets):
        assert secret is not None and secret.hex() not in text


def test_distribution_fans_out_over_one_to_one_sessions() -> None:
    """The application sends the distribution over each 1:1 session, the group message once."""
    rng = DrbgRandom(b"fan-out")
    managers = {
        a: SessionManager.create(MemoryStore(), a, PQ_DEFAULT, now=0, rng=rng)
        for a in (ALICE, BOB, CAROL)
    }
    group_stores = {a: MemoryStore() for a in managers}
    for member in (BOB, CAROL):
        managers[member].generate_kem_prekeys(1)
        managers[ALICE].initiate(member, managers[member].prekey_bundles()[0])
    distribution = create_distribution_message(group_stores[ALICE], ALICE, GROUP, rng)
    for member in (BOB, CAROL):
        wire = managers[ALICE].encrypt(member, distribution)
        received = managers[member].decrypt(ALICE, wire)
        process_distribution_message(group_stores[member], ALICE, received)
    once = group_encrypt(group_stores[ALICE], ALICE, GROUP, b"to everyone", rng)
    for member in (BOB, CAROL):
        assert group_decrypt(group_stores[member], ALICE, once) == b"to everyone"


# --- Bad input -------------------------------------------------------------------------------

_GROUP = Group(b"fuzz")
_MESSAGE = _GROUP.send(b"fuzzed message")


def _mutated(source: bytes) -> Callable[[int, int, int], bytes]:
    def mutate(at: int, value: int, cut: int) -> bytes:
        at %= len(source)
        return (source[:at] + bytes([value]) + source[at + 1 :])[: len(source) - cut]

    return mutate


def _inputs(source: bytes) -> st.SearchStrategy[bytes]:
    mutation = st.builds(
        _mutated(source), st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 4)
    )
    prefixed = st.builds(lambda tail: source[:1] + tail, st.binary(max_size=150))
    return st.one_of(st.binary(max_size=200), mutation, prefixed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_inputs(_MESSAGE))
def test_bad_sender_key_messages_raise_only_protocol_errors_and_change_nothing(data: bytes) -> None:
    store = MemoryStore()
    process_distribution_message(store, ALICE, _GROUP.distribution)
    before = snapshot(store)
    try:
        plaintext = group_decrypt(store, ALICE, data)
    except ProtocolError as error:
        assert error.code in {
            "MALFORMED_MESSAGE",
            "UNSUPPORTED_VERSION",
            "NO_SESSION",
            "INVALID_SIGNATURE",
        }
        assert snapshot(store) == before
    else:  # only the genuine message decrypts, once
        assert data == _MESSAGE and plaintext == b"fuzzed message"


@settings(max_examples=300, deadline=None)
@given(data=_inputs(_GROUP.distribution))
def test_bad_distribution_messages_raise_only_protocol_errors(data: bytes) -> None:
    store = MemoryStore()
    try:
        process_distribution_message(store, ALICE, data)
    except ProtocolError as error:
        assert error.code in {"MALFORMED_MESSAGE", "UNSUPPORTED_VERSION", "INVALID_PUBLIC_KEY"}
        assert snapshot(store) == {}


def _unchecked(value: Any, **values: object) -> Any:
    """A copy of a state or record with ``values``, built without its own checks,
    as a store written by something else could hold it."""
    copy = object.__new__(type(value))
    for f in dataclasses.fields(value):
        object.__setattr__(copy, f.name, values.get(f.name, getattr(value, f.name)))
    return copy


def test_stored_records_are_bounded_as_libsignal_bounds_them() -> None:
    # libsignal consts.rs: MAX_SENDER_KEY_STATES = 5 states of MAX_MESSAGE_KEYS = 2000 keys.
    rng = DrbgRandom(b"bounds")
    keys = tuple(sender_keys.SenderMessageKey(i, bytes(32)) for i in range(MAX_MESSAGE_KEYS))
    full = [
        dataclasses.replace(sender_keys.create_state(rng), message_keys=keys)
        for _ in range(MAX_SENDER_KEY_STATES)
    ]
    largest = SenderKeyRecord(tuple(full))
    assert load_state(SenderKeyRecord, dump_state(largest)) == largest
    extra_key = (*keys, sender_keys.SenderMessageKey(MAX_MESSAGE_KEYS, bytes(32)))
    with pytest.raises(InvalidArgument):
        dataclasses.replace(full[0], message_keys=extra_key)
    with pytest.raises(InvalidArgument):
        SenderKeyRecord((*full, sender_keys.create_state(rng)))


@pytest.mark.parametrize("grown", ["states", "keys"])
def test_a_stored_record_beyond_the_bounds_is_refused_and_changes_nothing(grown: str) -> None:
    group = Group(b"grown")
    message = group.send(b"to the group")
    (key,) = group.stores[BOB].keys(SENDER_KEYS)
    record = load_state(SenderKeyRecord, group.stores[BOB].get(SENDER_KEYS, key) or b"")
    state = record.states[0]
    if grown == "states":
        more = tuple(sender_keys.create_state(DrbgRandom(bytes([i]))) for i in range(5))
        bad = _unchecked(record, states=(state, *more))
    else:
        seeds = tuple(sender_keys.SenderMessageKey(i, bytes(32)) for i in range(2001))
        bad = _unchecked(record, states=(_unchecked(state, message_keys=seeds),))
    with group.stores[BOB].transaction() as txn:
        txn.put(SENDER_KEYS, key, dump_state(bad))
    refused(group, BOB, message, StateCorrupt)
