"""The triple ratchet decrypts in libsignal's order (spec/spqr.md §13).

libsignal's ``TripleRatchet::decrypt`` (``triple_ratchet.rs``) finds the
Double Ratchet's message key first (``ensure_receiver_chain``,
``consume_message_key``: a replay is ``DuplicatedMessage``, a jump over the
limit "too far into the future"), then runs ``spqr::recv`` on field 5, then
derives the keys with SPQR's key as the salt and checks the MAC; both states
are committed only after. The order shows in the error of a message that
both ratchets would refuse: each test gives one field 5 that SPQR refuses
on a message the Double Ratchet accepts, and the Double Ratchet's code when
the same field 5 rides on a message the Double Ratchet refuses. Every
failure leaves the stored session byte for byte as it was, and the genuine
message then decrypts. The same replay is checked against libsignal itself
in tests/interop/test_live_libsignal_v4.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol import wire
from protocol.bench.session_pair import SessionPair
from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    MalformedMessage,
    ProtocolError,
    TooManySkipped,
)
from protocol.profiles import SIGNAL_V4
from protocol.protobuf import read_fields, write_fields
from protocol.session.records import SESSIONS
from protocol.spqr.chain import DEFAULT_MAX_JUMP, SESSION_PARAMS
from protocol.spqr.messages import Message, decode_message, encode_message
from protocol.store import dump_state

MAC_LEN = wire.SIGNAL_MAC_LEN
RECEIVER, SENDER = 0, 1


def _fields(data: bytes) -> dict[int, int | bytes]:
    return dict(read_fields(data[1:-MAC_LEN], wire.SIGNAL_V4_MESSAGE))


def _with_fields(data: bytes, **changes: int | bytes) -> bytes:
    """``data`` with SignalMessage fields changed (``f2`` is field 2) and its original MAC."""
    fields = _fields(data)
    fields.update({int(name[1:]): value for name, value in changes.items()})
    return data[:1] + write_fields(fields) + data[-MAC_LEN:]


def _epoch_out_of_range(data: bytes) -> bytes:
    """Field 5 naming an SPQR epoch five ahead of the sender's: SPQR refuses it (MALFORMED)."""
    field5 = _fields(data)[5]
    assert isinstance(field5, bytes)
    message = decode_message(field5)
    ahead = Message(message.epoch + 5, message.index, message.type, message.chunk)
    return _with_fields(data, f5=encode_message(ahead))


def _refused(pair: SessionPair, data: bytes, error: type[ProtocolError]) -> None:
    """``data`` is refused with exactly ``error`` and the stored session does not change."""
    before = pair.serialized(RECEIVER)
    with pytest.raises(ProtocolError) as refused:
        pair.decrypt(RECEIVER, data)
    assert type(refused.value) is error
    assert pair.serialized(RECEIVER) == before


def test_spqr_refuses_a_changed_field_5_on_a_message_the_double_ratchet_accepts() -> None:
    pair = SessionPair(SIGNAL_V4)
    genuine = pair.encrypt(SENDER, b"fresh")
    _refused(pair, _epoch_out_of_range(genuine), MalformedMessage)
    assert pair.decrypt(RECEIVER, genuine) == b"fresh"


def test_a_replay_with_field_5_changed_is_duplicate_message_as_in_libsignal() -> None:
    pair = SessionPair(SIGNAL_V4)
    delivered = pair.encrypt(SENDER, b"once")
    assert pair.decrypt(RECEIVER, delivered) == b"once"
    _refused(pair, _epoch_out_of_range(delivered), DuplicateMessage)
    _refused(pair, delivered, DuplicateMessage)
    assert pair.decrypt(RECEIVER, pair.encrypt(SENDER, b"next")) == b"next"


def test_a_jump_over_the_double_ratchets_limit_is_refused_before_spqr_reads_field_5() -> None:
    pair = SessionPair(SIGNAL_V4)
    genuine = pair.encrypt(SENDER, b"fresh")
    counter = _fields(genuine)[2]
    assert isinstance(counter, int)
    too_far = _with_fields(genuine, f2=counter + SIGNAL_V4.chains.max_skip + 1)
    _refused(pair, too_far, TooManySkipped)
    _refused(pair, _epoch_out_of_range(too_far), TooManySkipped)
    assert pair.decrypt(RECEIVER, genuine) == b"fresh"


def test_a_skipped_key_found_before_spqr_refuses_is_not_consumed() -> None:
    """The Double Ratchet's key lookup is pending until the message opens (libsignal's commit)."""
    pair = SessionPair(SIGNAL_V4)
    late, later = pair.encrypt(SENDER, b"late"), pair.encrypt(SENDER, b"later")
    assert pair.decrypt(RECEIVER, later) == b"later"  # the key of ``late`` is now a skipped key
    _refused(pair, _epoch_out_of_range(late), MalformedMessage)
    _refused(pair, late[:-1] + bytes([late[-1] ^ 1]), AuthFailed)
    assert pair.decrypt(RECEIVER, late) == b"late"
    _refused(pair, _epoch_out_of_range(late), DuplicateMessage)


def _with_spqr_index(data: bytes, index: int) -> bytes:
    """``data`` with the SPQR index of field 5 changed (the MAC no longer matches)."""
    field5 = _fields(data)[5]
    assert isinstance(field5, bytes)
    return _with_fields(data, f5=encode_message(replace(decode_message(field5), index=index)))


def test_a_record_stored_with_spqrs_unlimited_self_session_jump_uses_the_policys_limit() -> None:
    """A chain stored with ``max_jump`` 2^32 − 1 (libsignal's self-session limit, once ours).

    The record loads as it was stored. Its limit is the policy's 25,000:
    a field 5 one key beyond it is TOO_MANY_SKIPPED before any chain step
    (with the stored limit it would walk 25,001 keys and then fail the MAC),
    one exactly at it is walked and fails the MAC, and neither changes a
    stored byte; the next genuine message decrypts and the record is then
    written with the policy's limits.
    """
    pair = SessionPair(SIGNAL_V4)
    store, peer = pair.stores[RECEIVER], pair.addresses[SENDER]
    record = pair.managers[RECEIVER].session_record(peer)
    assert record is not None and record.current.pq is not None
    pq = record.current.pq
    assert pq.chain.params == SESSION_PARAMS and SESSION_PARAMS.max_jump == DEFAULT_MAX_JUMP
    unlimited = replace(SESSION_PARAMS, max_jump=2**32 - 1)
    old_pq = replace(pq, chain=replace(pq.chain, params=unlimited))
    old_bytes = dump_state(replace(record, current=replace(record.current, pq=old_pq)))
    with store.transaction() as txn:
        txn.put(SESSIONS, peer.key, old_bytes)
    loaded = pair.managers[RECEIVER].session_record(peer)
    assert loaded is not None and loaded.current.pq is not None
    assert loaded.current.pq.chain.params == unlimited

    genuine = pair.encrypt(SENDER, b"genuine")
    field5 = _fields(genuine)[5]
    assert isinstance(field5, bytes)
    epoch = decode_message(field5).epoch
    chain = old_pq.chain
    counter = chain.links[len(chain.links) - 1 - (chain.current_epoch - (epoch - 1))].recv.ctr
    for index, error in ((counter + DEFAULT_MAX_JUMP + 1, TooManySkipped),
                         (counter + DEFAULT_MAX_JUMP, AuthFailed)):  # fmt: skip
        with pytest.raises(ProtocolError) as refused:
            pair.decrypt(RECEIVER, _with_spqr_index(genuine, index))
        assert type(refused.value) is error
        assert store.get(SESSIONS, peer.key) == old_bytes
    assert pair.decrypt(RECEIVER, genuine) == b"genuine"
    after = pair.managers[RECEIVER].session_record(peer)
    assert after is not None and after.current.pq is not None
    assert after.current.pq.chain.params == SESSION_PARAMS
