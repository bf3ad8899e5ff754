"""SPQR's symmetric chain: message keys per epoch and direction (spec/spqr.md §6).

As spqr ``src/chain.rs`` (``Chain``, ``ChainEpoch``, ``ChainEpochDirection``,
``KeyHistory``), the "KDF chain" half of the Sparse Post-Quantum Ratchet
(DR-rev3 §5 "The Sparse Post-Quantum Ratchet", which keys KDF chains by the
epoch secrets of an SCKA, Braid §1.1). Every function is
pure: it takes a frozen ``Chain`` and returns a new one.

* ``chain_start`` (``Chain::new``): HKDF-SHA256(salt = 0^32, ikm = the
  PQXDH SPQR authentication key, info = "Signal PQ Ratchet V1 Chain  Start",
  two spaces) → root 32 ‖ A→B chain 32 ‖ B→A chain 32; epoch 0.
* ``chain_add_epoch`` (``Chain::add_epoch``): HKDF-SHA256(salt = the previous
  root, ikm = the epoch secret, info = "Signal PQ Ratchet V1 Chain Add
  Epoch") → the same three values for the next epoch.
* ``chain_next`` (``ChainEpochDirection::next_key_internal``): with ctr the
  new counter, HKDF-SHA256(salt = 0^32, ikm = next, info = be32(ctr) ‖
  "Signal PQ Ratchet V1 Chain Next") → next 32 ‖ message key 32. Counters
  start at 0; the first key has index 1.
* Limits (``ChainParams``): a receiver derives at most ``max_jump`` keys ahead
  in one step (25,000, in a session with oneself too: see ``chain_params``)
  and keeps skipped keys at most ``max_ooo_keys`` (2,000) behind its counter.
* ``chain_send_key``: when the sending epoch advances, every epoch but the one
  just before it is dropped (``EPOCHS_TO_KEEP_PRIOR_TO_SEND_EPOCH`` = 1) and
  the older epochs' sending chains are erased.

Errors, each leaving the chain unchanged (the function returns no new chain):
an index more than ``max_jump`` ahead TOO_MANY_SKIPPED (spqr ``KeyJump``);
an index more than ``max_ooo_keys`` behind MESSAGE_KEY_EVICTED
(``KeyTrimmed``); an index already used DUPLICATE_MESSAGE
(``KeyAlreadyRequested``); an epoch not kept MESSAGE_KEY_EVICTED and an
epoch not yet reached MALFORMED_MESSAGE (both ``EpochOutOfRange``); a caller
sending in an older epoch or adding an epoch out of order INVALID_ARGUMENT
(``SendKeyEpochDecreased``; spqr asserts).

Note that spqr keeps skipped keys in a byte list it garbage-collects only
when it exceeds 2,201 entries, but refuses on lookup any key more than
``max_ooo_keys`` behind, so dropping those keys at once, as we do, gives the
same answers to every request. A key that would be dropped at once is never
derived either: a receiver walking past it computes only the next chain key
(``chain_next_key``, the same bytes in one HMAC fewer), so a forged index
costs one HKDF of 32 bytes per key walked (spec/security.md §3.13).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Annotated, Final

from protocol.errors import (
    DuplicateMessage,
    InvalidArgument,
    MalformedMessage,
    MessageKeyEvicted,
    TooManySkipped,
)
from protocol.primitives import hkdf_sha256
from protocol.secrecy import SECRET

CHAIN_START_INFO: Final = b"Signal PQ Ratchet V1 Chain  Start"
CHAIN_ADD_EPOCH_INFO: Final = b"Signal PQ Ratchet V1 Chain Add Epoch"
CHAIN_NEXT_INFO: Final = b"Signal PQ Ratchet V1 Chain Next"
DEFAULT_MAX_JUMP: Final = 25_000
DEFAULT_MAX_OOO_KEYS: Final = 2_000
EPOCHS_TO_KEEP_PRIOR_TO_SEND_EPOCH: Final = 1
_ZERO_SALT: Final = bytes(32)
_U32_MAX: Final = 2**32 - 1


class Direction(enum.IntEnum):
    """spqr ``Direction``: A2B for the PQXDH initiator, B2A for the responder."""

    A2B = 0
    B2A = 1


@dataclass(frozen=True, slots=True)
class ChainParams:
    """spqr ``ChainParams``."""

    max_jump: int = DEFAULT_MAX_JUMP
    max_ooo_keys: int = DEFAULT_MAX_OOO_KEYS


@dataclass(frozen=True, slots=True, repr=False)
class ChainDirection:
    """One direction of one epoch (``ChainEpochDirection``); ``skipped`` maps index → key."""

    ctr: int
    # Empty once erased (a sending chain of an epoch before the sending epoch).
    next: Annotated[bytes, SECRET]
    skipped: Annotated[tuple[tuple[int, bytes], ...], SECRET] = ()

    def __post_init__(self) -> None:
        if len(self.next) not in (0, 32) or any(len(key) != 32 for _, key in self.skipped):
            raise ValueError("SPQR chain key of the wrong length")

    def __repr__(self) -> str:
        return (
            f"ChainDirection(ctr={self.ctr}, next=<redacted>, skipped=<{len(self.skipped)} keys>)"
        )


@dataclass(frozen=True, slots=True, repr=False)
class ChainEpoch:
    """The sending and receiving chains of one epoch."""

    send: ChainDirection
    recv: ChainDirection

    def __repr__(self) -> str:
        return f"ChainEpoch(send={self.send!r}, recv={self.recv!r})"


@dataclass(frozen=True, slots=True, repr=False)
class Chain:
    """spqr ``Chain``; ``links`` hold epochs current_epoch − len(links) + 1 .. current_epoch."""

    direction: int  # a Direction value
    current_epoch: int
    send_epoch: int
    links: tuple[ChainEpoch, ...]
    next_root: Annotated[bytes, SECRET]
    params: ChainParams

    def __post_init__(self) -> None:
        """A loaded chain is refused (ValueError) unless its shape is one ``chain.py`` makes."""
        Direction(self.direction)
        if len(self.next_root) != 32 or not self.links:
            raise ValueError("SPQR chain root or links malformed")
        if (
            not 0 <= self.send_epoch <= self.current_epoch
            or len(self.links) > self.current_epoch + 1
        ):
            raise ValueError("SPQR chain epochs inconsistent")

    def __repr__(self) -> str:
        return (
            f"Chain(direction={Direction(self.direction).name}, epoch={self.current_epoch}, "
            f"send_epoch={self.send_epoch}, links={len(self.links)}, next_root=<redacted>)"
        )


SESSION_PARAMS: Final = ChainParams()
"""The limits of every session's SPQR chain, with oneself or not (``chain_params``)."""


def chain_params(self_session: bool) -> ChainParams:
    """libsignal ``ratchet.rs`` ``spqr_chain_params``, with the Double Ratchet's limit kept.

    Note that libsignal lifts ``max_jump`` to u32::MAX in a session with
    oneself, together with its Double Ratchet's jump limit
    (``session_cipher.rs``, ``MAX_FORWARD_JUMPS`` unless ``session_with_self``).
    Our Double Ratchet keeps its 25,000 there (spec/session.md §7.1), so a
    message more than 25,000 keys ahead is refused after SPQR anyway: an
    unlimited SPQR jump would let no further message through and would let
    a forged one cost up to 2^32 − 1 chain steps before its MAC fails. The
    self-session limit is therefore the Double Ratchet's, 25,000
    (spec/security.md §3.13).
    """
    del self_session  # the same limits either way; kept to show where libsignal differs
    return SESSION_PARAMS


def _split(genr8r: bytes, direction: int) -> ChainEpoch:
    """``ced_for_direction``: A→B is bytes 32..64, B→A 64..96."""
    a2b = ChainDirection(0, genr8r[32:64])
    b2a = ChainDirection(0, genr8r[64:96])
    return ChainEpoch(send=a2b, recv=b2a) if direction == Direction.A2B else ChainEpoch(b2a, a2b)


def chain_start_kdf(auth_key: bytes) -> bytes:
    """``Chain::new``'s HKDF: root ‖ A→B ‖ B→A, 96 bytes."""
    return hkdf_sha256(auth_key, _ZERO_SALT, CHAIN_START_INFO, 96)


def chain_add_epoch_kdf(next_root: bytes, epoch_secret: bytes) -> bytes:
    """``Chain::add_epoch``'s HKDF: root ‖ A→B ‖ B→A, 96 bytes."""
    return hkdf_sha256(epoch_secret, next_root, CHAIN_ADD_EPOCH_INFO, 96)


def chain_next(next_key: bytes, ctr: int) -> tuple[bytes, bytes]:
    """``next_key_internal`` for the new counter ``ctr``: returns (next, message key)."""
    out = hkdf_sha256(next_key, _ZERO_SALT, ctr.to_bytes(4, "big") + CHAIN_NEXT_INFO, 64)
    return out[:32], out[32:]


def chain_next_key(next_key: bytes, ctr: int) -> bytes:
    """``next_key_internal``'s next chain key alone, for the new counter ``ctr``.

    Note that an HKDF output is a prefix of every longer output with the same
    inputs (RFC 5869 §2.3: T(1) does not depend on L), so the first 32 bytes
    of ``chain_next``'s 64 are derived here in one HMAC fewer. Used for keys
    a receiver walks past and would drop at once (``max_ooo_keys``).
    """
    return hkdf_sha256(next_key, _ZERO_SALT, ctr.to_bytes(4, "big") + CHAIN_NEXT_INFO, 32)


def chain_start(auth_key: bytes, direction: Direction, params: ChainParams) -> Chain:
    """Implements ``Chain::new``: epoch 0 from the PQXDH authentication key."""
    if not isinstance(auth_key, bytes) or not auth_key:
        raise InvalidArgument("SPQR chain needs the authentication key")
    genr8r = chain_start_kdf(auth_key)
    return Chain(direction, 0, 0, (_split(genr8r, direction),), genr8r[:32], params)


def chain_add_epoch(chain: Chain, epoch: int, epoch_secret: bytes) -> Chain:
    """Implements ``Chain::add_epoch``: epoch must be ``current_epoch + 1``."""
    if epoch != chain.current_epoch + 1:
        raise InvalidArgument("SPQR epochs are added one at a time, in order")
    genr8r = chain_add_epoch_kdf(chain.next_root, epoch_secret)
    return replace(
        chain,
        current_epoch=epoch,
        next_root=genr8r[:32],
        links=(*chain.links, _split(genr8r, chain.direction)),
    )


def _epoch_index(chain: Chain, epoch: int) -> int:
    """``Chain::epoch_idx``."""
    if epoch > chain.current_epoch:
        raise MalformedMessage("SPQR epoch not in valid range")
    back = chain.current_epoch - epoch
    if back >= len(chain.links):
        raise MessageKeyEvicted("SPQR epoch no longer kept")
    return len(chain.links) - 1 - back


def _next_key(direction: ChainDirection) -> tuple[ChainDirection, int, bytes]:
    ctr = direction.ctr + 1
    if ctr > _U32_MAX or len(direction.next) != 32:
        raise InvalidArgument("SPQR chain exhausted or erased")
    next_key, key = chain_next(direction.next, ctr)
    return replace(direction, ctr=ctr, next=next_key), ctr, key


def chain_send_key(chain: Chain, epoch: int) -> tuple[Chain, int, bytes]:
    """Implements ``Chain::send_key``: returns (chain, index, message key) of ``epoch``."""
    if epoch < chain.send_epoch:
        raise InvalidArgument("SPQR send epoch decreased")
    index = _epoch_index(chain, epoch)
    links = list(chain.links)
    if epoch != chain.send_epoch:
        drop = max(0, index - EPOCHS_TO_KEEP_PRIOR_TO_SEND_EPOCH)
        links = links[drop:]
        index -= drop
        for i in range(index):
            links[i] = replace(links[i], send=replace(links[i].send, next=b""))
    send, ctr, key = _next_key(links[index].send)
    links[index] = replace(links[index], send=send)
    return replace(chain, send_epoch=epoch, links=tuple(links)), ctr, key


def _recv_key(
    direction: ChainDirection, at: int, params: ChainParams
) -> tuple[ChainDirection, bytes]:
    """Implements ``ChainEpochDirection::key`` and ``KeyHistory::get``."""
    if at < direction.ctr:
        if at + params.max_ooo_keys < direction.ctr:
            raise MessageKeyEvicted("SPQR message key trimmed")
        kept = dict(direction.skipped)
        if at not in kept:
            raise DuplicateMessage("SPQR message key already requested")
        key = kept.pop(at)
        return replace(direction, skipped=tuple(kept.items())), key
    if at == direction.ctr:
        raise DuplicateMessage("SPQR message key already requested")
    if at - direction.ctr > params.max_jump:
        raise TooManySkipped("SPQR key jump too large")
    if at > _U32_MAX:
        raise MalformedMessage("SPQR index does not fit in u32")
    if len(direction.next) != 32:
        raise InvalidArgument("SPQR chain exhausted or erased")
    horizon = at - params.max_ooo_keys  # keys below it can never be asked for again
    skipped = [(i, k) for i, k in direction.skipped if i >= horizon]
    ctr, next_key = direction.ctr, direction.next
    while ctr + 1 < horizon:  # walked past and dropped at once: no message key
        ctr += 1
        next_key = chain_next_key(next_key, ctr)
    while ctr + 1 < at:
        ctr += 1
        next_key, key = chain_next(next_key, ctr)
        skipped.append((ctr, key))
    next_key, key = chain_next(next_key, at)
    return ChainDirection(at, next_key, tuple(skipped)), key


def chain_recv_key(chain: Chain, epoch: int, index: int) -> tuple[Chain, bytes]:
    """Implements ``Chain::recv_key``: the message key ``index`` of ``epoch``."""
    position = _epoch_index(chain, epoch)
    link = chain.links[position]
    recv, key = _recv_key(link.recv, index, chain.params)
    links = list(chain.links)
    links[position] = replace(link, recv=recv)
    return replace(chain, links=tuple(links)), key
