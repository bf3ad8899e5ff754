"""SPQR's send and receive: the Braid state machine feeding the chain (spec/spqr.md §11).

As spqr ``src/lib.rs`` (``initial_state``, ``send``, ``recv``), DR-rev3
§5: each message carries one Braid payload
(field 5) and takes its message key from the SPQR chain.

* ``initial_state``: the Braid starts as ``init_a`` (A2B, the PQXDH
  initiator) or ``init_b`` (B2A), and the chain as ``chain_start`` from the
  same authentication key. spqr builds the chain lazily from its version
  negotiation record on the first send or receive; the result is the same.
* ``send``: the Braid's next payload; an epoch secret it produced is added to
  the chain first; the message key is the next sending key of epoch
  ``payload.epoch − 1``, and its index goes into field 5.
* ``recv``: version negotiation (never below V1), the strict decoder, the
  Braid, then the chain: an epoch secret the message completed is added,
  and the key is key ``index`` of epoch ``epoch − 1``, except that epoch 1
  with index 0 has no key.

Both are pure: on failure nothing changes, as libsignal's triple ratchet
requires (it commits SPQR's new state only once the message verified).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.randomness import Random
from protocol.ratchet_keys import MessageKey
from protocol.spqr import states
from protocol.spqr.chain import (
    Chain,
    ChainParams,
    Direction,
    chain_add_epoch,
    chain_recv_key,
    chain_send_key,
    chain_start,
)
from protocol.spqr.messages import Message, decode_message, encode_message, negotiate


@dataclass(frozen=True, slots=True, repr=False)
class PqRatchet:
    """spqr ``PqRatchetState`` after negotiation: the Braid and the chain."""

    braid: states.BraidState
    chain: Chain

    def __repr__(self) -> str:
        return f"PqRatchet({self.braid!r}, {self.chain!r})"


def initial_state(auth_key: bytes, direction: Direction, params: ChainParams) -> PqRatchet:
    """spqr ``initial_state`` with version V1 and min_version V1."""
    braid = states.init_a(auth_key) if direction == Direction.A2B else states.init_b(auth_key)
    return PqRatchet(braid, chain_start(auth_key, direction, params))


def send(state: PqRatchet, rng: Random) -> tuple[PqRatchet, bytes, MessageKey]:
    """spqr ``send``: returns (state, field 5, message key).

    The message key is what SPQR hands the Double Ratchet (the salt of its
    message-key derivation, spec/spqr.md §13), hence typed as one.
    """
    braid, payload, secret = states.send(state.braid, rng)
    chain = state.chain
    if secret is not None:
        chain = chain_add_epoch(chain, payload.epoch, secret)
    chain, index, key = chain_send_key(chain, payload.epoch - 1)
    message = Message(payload.epoch, index, payload.type, payload.chunk)
    return PqRatchet(braid, chain), encode_message(message), MessageKey(key)


def recv(state: PqRatchet, field5: bytes) -> tuple[PqRatchet, MessageKey | None]:
    """spqr ``recv``: returns (state, message key or None)."""
    if not negotiate(field5):
        return state, None  # a newer version than ours: ignored, as spqr does
    message = decode_message(field5)
    payload = states.Payload(message.epoch, message.type, message.chunk)
    completed_epoch = state.braid.epoch
    braid, secret = states.recv(state.braid, payload)
    chain = state.chain
    if secret is not None:
        chain = chain_add_epoch(chain, completed_epoch, secret)
    if message.epoch == 1 and message.index == 0:
        return PqRatchet(braid, chain), None
    chain, key = chain_recv_key(chain, message.epoch - 1, message.index)
    return PqRatchet(braid, chain), MessageKey(key)
