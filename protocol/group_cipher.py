"""Sender keys over a store: create, process and use them (spec/sender-keys.md §5).

libsignal ``rust/protocol/src/group_cipher.rs``. Each (sender address,
distribution id) has one ``SenderKeyRecord`` in the store table
``sender_key``; every call is one store transaction, so a call that raises
writes nothing. Handing the distribution message to the members is the
application's job: it encrypts the bytes over its 1:1 session with each
member device, like any other message (``tests/test_sender_keys.py``
shows it).
"""

from __future__ import annotations

from typing import Final

from protocol import sender_keys
from protocol.errors import InvalidArgument, NoSession
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.sender_key_messages import (
    DISTRIBUTION_ID_LEN,
    decode_distribution_message,
    decode_message,
    encode_distribution_message,
)
from protocol.sender_keys import EMPTY_RECORD, SenderKeyRecord
from protocol.session import Address
from protocol.store import Store, Transaction, dump_state, load_state

SENDER_KEYS: Final = "sender_key"
"""Store table of sender key records (spec/storage.md §5)."""


def _record_key(sender: Address, distribution_id: bytes) -> str:
    """``<distribution id hex>:<device>:<user>``."""
    if not isinstance(sender, Address):
        raise InvalidArgument("a sender is an Address")
    if not isinstance(distribution_id, bytes) or len(distribution_id) != DISTRIBUTION_ID_LEN:
        raise InvalidArgument("a distribution id is 16 bytes (a UUID)")
    return f"{distribution_id.hex()}:{sender.key}"


def _load(txn: Transaction, key: str) -> SenderKeyRecord | None:
    data = txn.get(SENDER_KEYS, key)
    return None if data is None else load_state(SenderKeyRecord, data)


def create_distribution_message(
    store: Store, sender: Address, distribution_id: bytes, rng: Random = SYSTEM_RANDOM
) -> bytes:
    """Implements libsignal ``create_sender_key_distribution_message``: our chain, to hand out.

    Creates the chain on first use (``sender_keys.create_state``); later calls
    describe the same chain at its current iteration, so a member added
    later cannot read earlier messages.
    """
    key = _record_key(sender, distribution_id)
    with store.transaction() as txn:
        record = _load(txn, key)
        if record is None:
            record = SenderKeyRecord((sender_keys.create_state(rng),))
            txn.put(SENDER_KEYS, key, dump_state(record))
    message = sender_keys.distribution_message(distribution_id, record.states[0])
    return encode_distribution_message(message)


def process_distribution_message(store: Store, sender: Address, data: bytes) -> None:
    """Implements libsignal ``process_sender_key_distribution_message`` for ``sender``'s message.

    ``sender`` is the device the application received it from over a 1:1
    session; the chain is stored under it (``sender_keys.add_state``).
    """
    message = decode_distribution_message(data)
    key = _record_key(sender, message.distribution_id)
    with store.transaction() as txn:
        record = _load(txn, key) or EMPTY_RECORD
        state = sender_keys.state_from_distribution(message)
        txn.put(SENDER_KEYS, key, dump_state(sender_keys.add_state(record, state)))


def group_encrypt(
    store: Store,
    sender: Address,
    distribution_id: bytes,
    plaintext: bytes,
    rng: Random = SYSTEM_RANDOM,
) -> bytes:
    """Implements libsignal ``group_encrypt``: a SenderKeyMessage on our current chain.

    NO_SESSION until ``create_distribution_message`` made the chain.
    """
    key = _record_key(sender, distribution_id)
    with store.transaction() as txn:
        record = _load(txn, key)
        if record is None or not record.states:
            raise NoSession("no sender key for this distribution id: create one first")
        state, message = sender_keys.encrypt(distribution_id, record.states[0], plaintext, rng)
        txn.put(SENDER_KEYS, key, dump_state(SenderKeyRecord((state, *record.states[1:]))))
    return message


def group_decrypt(store: Store, sender: Address, data: bytes) -> bytes:
    """Implements libsignal ``group_decrypt`` of ``sender``'s SenderKeyMessage.

    NO_SESSION for an unknown distribution id or chain id; then the errors of
    ``sender_keys.decrypt`` (INVALID_SIGNATURE, DUPLICATE_MESSAGE,
    TOO_MANY_SKIPPED, AUTH_FAILED), each leaving the record unchanged.
    """
    message = decode_message(data)
    key = _record_key(sender, message.distribution_id)
    with store.transaction() as txn:
        record = _load(txn, key)
        state = None if record is None else record.state_for_chain(message.chain_id)
        if record is None or state is None:
            raise NoSession("no sender key for this sender, distribution id and chain id")
        after, plaintext = sender_keys.decrypt(state, message)
        states = tuple(after if s is state else s for s in record.states)
        txn.put(SENDER_KEYS, key, dump_state(SenderKeyRecord(states)))
    return plaintext
