"""The chunked ML-KEM Braid state machine of SPQR (spec/spqr.md §10).

As spqr ``src/v1/chunked/states.rs`` (``States::send``, ``States::recv``)
with ``send_ek.rs`` and ``send_ct.rs`` of ``v1/chunked`` and ``v1/unchunked``:
one epoch of the ML-KEM Braid (Braid §2.1), in which one side sends an
encapsulation key and the other a ciphertext, each in erasure-coded 32-byte
chunks, one per message; the sides swap roles every epoch. The 11 states:

* sending the key (``send_ek``): KEYS_UNSAMPLED → KEYS_SAMPLED (sending the
  header ‖ MAC) → HEADER_SENT (first ct1 chunk received: sending the key
  vector, receiving ct1) → CT1_RECEIVED (ct1 complete: still sending the key
  vector, acknowledging ct1) → EK_SENT_CT1_RECEIVED (first ct2 chunk: only
  acknowledging) → the epoch secret, and NO_HEADER_RECEIVED of epoch + 1;
* sending the ciphertext (``send_ct``): NO_HEADER_RECEIVED (receiving the
  header) → HEADER_RECEIVED (header MAC verified) → CT1_SAMPLED (encaps1
  done, epoch secret out: sending ct1, receiving the key vector) →
  EK_RECEIVED_CT1_SAMPLED (key vector complete, waiting for the ct1
  acknowledgement) or CT1_ACKNOWLEDGED (acknowledged, key vector incomplete)
  → CT2_SAMPLED (sending ct2 ‖ MAC) → KEYS_UNSAMPLED of epoch + 1 once a
  message of epoch + 1 arrives.

``send(state, rng)`` returns the new state, the message payload (epoch,
type, chunk) and the epoch secret, if this send produced one; ``recv(state,
message)`` returns the new state and the epoch secret, if this message
completed one. Both are pure; a failure raises and changes nothing.

Note that a chunk whose index the decoder already holds is ignored here, as
spqr's decoder does; a replayed message is refused by the chain instead.
The epoch secret is ``HKDF(0^32, K, "Signal_PQCKA_V1_MLKEM768:SCKA Key" ‖
be64(epoch), 32)`` (spqr ``send_ct1``, ``recv_ct2``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Final

from protocol.errors import MalformedMessage
from protocol.primitives import hkdf_sha256
from protocol.randomness import Random
from protocol.secrecy import SECRET
from protocol.spqr import erasure
from protocol.spqr import incremental_mlkem768 as im
from protocol.spqr.authenticator import (
    MAC_LEN,
    Authenticator,
    authenticator_start,
    authenticator_update,
    mac_ct,
    mac_hdr,
    verify_ct,
    verify_hdr,
)
from protocol.spqr.messages import Chunk, MessageType

SCKA_KEY_INFO: Final = b"Signal_PQCKA_V1_MLKEM768:SCKA Key"
HDR_PAYLOAD_LEN: Final = im.HEADER_LEN + MAC_LEN  # 96 bytes, 3 chunks
CT2_PAYLOAD_LEN: Final = im.CIPHERTEXT2_LEN + MAC_LEN  # 160 bytes, 5 chunks


class StateName(enum.StrEnum):
    """spqr ``States``; a ``BraidState`` holds the value, a plain string once loaded."""

    KEYS_UNSAMPLED = "KeysUnsampled"
    KEYS_SAMPLED = "KeysSampled"
    HEADER_SENT = "HeaderSent"
    CT1_RECEIVED = "Ct1Received"
    EK_SENT_CT1_RECEIVED = "EkSentCt1Received"
    NO_HEADER_RECEIVED = "NoHeaderReceived"
    HEADER_RECEIVED = "HeaderReceived"
    CT1_SAMPLED = "Ct1Sampled"
    EK_RECEIVED_CT1_SAMPLED = "EkReceivedCt1Sampled"
    CT1_ACKNOWLEDGED = "Ct1Acknowledged"
    CT2_SAMPLED = "Ct2Sampled"


@dataclass(frozen=True, slots=True)
class Sending:
    """A payload being sent chunk by chunk (spqr ``PolyEncoder``)."""

    payload: bytes
    next_index: int = 0

    def next_chunk(self) -> tuple[Sending, Chunk]:
        chunk = Chunk(self.next_index, erasure.encode_chunk(self.payload, self.next_index))
        return replace(self, next_index=self.next_index + 1), chunk


@dataclass(frozen=True, slots=True, repr=False)
class BraidState:
    """One of the 11 states; the fields a state does not use are empty."""

    name: str  # a StateName value
    epoch: int
    auth: Authenticator
    seed: Annotated[bytes, SECRET] = b""  # our decapsulation key (sending the key)
    hdr: bytes = b""  # the peer's header (sending the ciphertext)
    ek: bytes = b""  # the peer's key vector, once complete
    ct1: bytes = b""
    encaps: im.EncapsulationState | None = None
    sending: Sending | None = None
    receiving: erasure.Decoder | None = None

    def __post_init__(self) -> None:
        StateName(self.name)  # ValueError for a name that is not a state
        if self.epoch < 1:
            raise ValueError("SPQR epochs start at 1")

    def __repr__(self) -> str:
        return f"BraidState({self.name}, epoch={self.epoch}, <secrets redacted>)"


@dataclass(frozen=True, slots=True)
class Payload:
    """What ``send`` puts in a message (spqr ``Message``), before the chain index."""

    epoch: int
    type: MessageType
    chunk: Chunk | None = None


def init_a(auth_key: bytes) -> BraidState:
    """spqr ``States::init_a``: the PQXDH initiator starts sending a key in epoch 1."""
    return BraidState(StateName.KEYS_UNSAMPLED, 1, authenticator_start(auth_key))


def init_b(auth_key: bytes) -> BraidState:
    """spqr ``States::init_b``: the responder waits for the header of epoch 1."""
    return _no_header_received(1, authenticator_start(auth_key))


def _no_header_received(epoch: int, auth: Authenticator) -> BraidState:
    receiving = erasure.Decoder(HDR_PAYLOAD_LEN)
    return BraidState(StateName.NO_HEADER_RECEIVED, epoch, auth, receiving=receiving)


def epoch_secret(shared_secret: bytes, epoch: int) -> bytes:
    """The SCKA key of an epoch: HKDF(0^32, K, "…:SCKA Key" ‖ be64(epoch), 32)."""
    return hkdf_sha256(shared_secret, bytes(32), SCKA_KEY_INFO + epoch.to_bytes(8, "big"), 32)


def _chunk_from(state: BraidState) -> tuple[BraidState, Chunk]:
    assert state.sending is not None
    sending, chunk = state.sending.next_chunk()
    return replace(state, sending=sending), chunk


def send(state: BraidState, rng: Random) -> tuple[BraidState, Payload, bytes | None]:
    """Implements ``States::send``: (state, payload, epoch secret or None)."""
    name, epoch = state.name, state.epoch
    if name == StateName.KEYS_UNSAMPLED:
        keys = im.generate(rng)
        sending = Sending(keys.hdr + mac_hdr(state.auth, epoch, keys.hdr))
        sampled = replace(state, name=StateName.KEYS_SAMPLED, seed=keys.seed, ek=keys.ek)
        new, chunk = _chunk_from(replace(sampled, sending=sending))
        return new, Payload(epoch, MessageType.HDR, chunk), None
    if name == StateName.HEADER_RECEIVED:
        ct1, encaps, shared = im.encaps1(state.hdr, rng)
        secret = epoch_secret(shared, epoch)
        auth = authenticator_update(state.auth, epoch, secret)
        sampled = replace(state, name=StateName.CT1_SAMPLED, auth=auth, ct1=ct1, encaps=encaps)
        new, chunk = _chunk_from(replace(sampled, sending=Sending(ct1)))
        return new, Payload(epoch, MessageType.CT1, chunk), secret
    kinds: dict[str, MessageType] = {
        StateName.KEYS_SAMPLED: MessageType.HDR,
        StateName.HEADER_SENT: MessageType.EK,
        StateName.CT1_RECEIVED: MessageType.EK_CT1_ACK,
        StateName.CT1_SAMPLED: MessageType.CT1,
        StateName.EK_RECEIVED_CT1_SAMPLED: MessageType.CT1,
        StateName.CT2_SAMPLED: MessageType.CT2,
    }
    if name in kinds:
        new, chunk = _chunk_from(state)
        return new, Payload(epoch, kinds[name], chunk), None
    if name == StateName.EK_SENT_CT1_RECEIVED:
        return state, Payload(epoch, MessageType.CT1_ACK), None
    return state, Payload(epoch, MessageType.NONE), None  # NO_HEADER_RECEIVED, CT1_ACKNOWLEDGED


def _add(decoder: erasure.Decoder | None, chunk: Chunk) -> erasure.Decoder:
    assert decoder is not None
    if any(index == chunk.index for index, _ in decoder.chunks):
        return decoder  # spqr keeps the first copy of a chunk index
    return decoder.add_chunk(chunk.index, chunk.data)


def recv(state: BraidState, payload: Payload) -> tuple[BraidState, bytes | None]:
    """Implements ``States::recv``: (state, epoch secret or None)."""
    if payload.epoch > state.epoch:
        if state.name == StateName.CT2_SAMPLED and payload.epoch == state.epoch + 1:
            # Ct2Sampled -> KeysUnsampled: the peer has finished the epoch; roles swap.
            return BraidState(StateName.KEYS_UNSAMPLED, payload.epoch, state.auth), None
        raise MalformedMessage("SPQR epoch not in valid range")
    if payload.epoch < state.epoch:
        return state, None
    handler = _RECEIVERS.get(state.name)
    return handler(state, payload) if handler else (state, None)


def _recv_keys_sampled(state: BraidState, payload: Payload) -> tuple[BraidState, bytes | None]:
    if payload.type is not MessageType.CT1 or payload.chunk is None:
        return state, None
    receiving = _add(erasure.Decoder(im.CIPHERTEXT1_LEN), payload.chunk)
    sending = Sending(state.ek)
    return replace(state, name=StateName.HEADER_SENT, receiving=receiving, sending=sending), None


def _recv_header_sent(state: BraidState, payload: Payload) -> tuple[BraidState, bytes | None]:
    if payload.type is not MessageType.CT1 or payload.chunk is None:
        return state, None
    receiving = _add(state.receiving, payload.chunk)
    ct1 = receiving.message()
    if ct1 is None:
        return replace(state, receiving=receiving), None
    return replace(state, name=StateName.CT1_RECEIVED, ct1=ct1, receiving=None), None


def _recv_ct1_received(state: BraidState, payload: Payload) -> tuple[BraidState, bytes | None]:
    if payload.type is not MessageType.CT2 or payload.chunk is None:
        return state, None
    receiving = _add(erasure.Decoder(CT2_PAYLOAD_LEN), payload.chunk)
    new = replace(state, name=StateName.EK_SENT_CT1_RECEIVED, sending=None, receiving=receiving)
    return new, None


def _recv_ek_sent_ct1_received(
    state: BraidState, payload: Payload
) -> tuple[BraidState, bytes | None]:
    if payload.type is not MessageType.CT2 or payload.chunk is None:
        return state, None
    receiving = _add(state.receiving, payload.chunk)
    decoded = receiving.message()
    if decoded is None:
        return replace(state, receiving=receiving), None
    ct2, mac = decoded[: im.CIPHERTEXT2_LEN], decoded[im.CIPHERTEXT2_LEN :]
    secret = epoch_secret(im.decaps(state.seed, state.ct1, ct2), state.epoch)
    auth = authenticator_update(state.auth, state.epoch, secret)
    verify_ct(auth, state.epoch, state.ct1 + ct2, mac)
    return _no_header_received(state.epoch + 1, auth), secret


def _recv_no_header(state: BraidState, payload: Payload) -> tuple[BraidState, bytes | None]:
    if payload.type is not MessageType.HDR or payload.chunk is None:
        return state, None
    receiving = _add(state.receiving, payload.chunk)
    decoded = receiving.message()
    if decoded is None:
        return replace(state, receiving=receiving), None
    hdr, mac = decoded[: im.HEADER_LEN], decoded[im.HEADER_LEN :]
    verify_hdr(state.auth, state.epoch, hdr, mac)
    received = erasure.Decoder(im.ENCAPSULATION_KEY_LEN)
    return replace(state, name=StateName.HEADER_RECEIVED, hdr=hdr, receiving=received), None


def _ct2_sampled(state: BraidState, ek: bytes) -> BraidState:
    """``Ct1SentEkReceived::send_ct2``: ct2 and the MAC over ct1 ‖ ct2, to send."""
    assert state.encaps is not None
    ct2 = im.encaps2(ek, state.encaps)
    mac = mac_ct(state.auth, state.epoch, state.ct1 + ct2)
    return BraidState(StateName.CT2_SAMPLED, state.epoch, state.auth, sending=Sending(ct2 + mac))


def _recv_ek_chunk(state: BraidState, payload: Payload) -> tuple[BraidState, bytes | None]:
    """CT1_SAMPLED and CT1_ACKNOWLEDGED: a key-vector chunk (Ek or EkCt1Ack)."""
    kinds = (MessageType.EK, MessageType.EK_CT1_ACK)
    if payload.type not in kinds or payload.chunk is None:
        return state, None
    acknowledged = (
        state.name == StateName.CT1_ACKNOWLEDGED or payload.type is MessageType.EK_CT1_ACK
    )
    receiving = _add(state.receiving, payload.chunk)
    decoded = receiving.message()
    if decoded is None:
        name = StateName.CT1_ACKNOWLEDGED if acknowledged else StateName.CT1_SAMPLED
        sending = None if acknowledged else state.sending
        return replace(state, name=name, receiving=receiving, sending=sending), None
    ek = im.require_matching_ek(decoded, state.hdr)
    if acknowledged:
        return _ct2_sampled(state, ek), None
    name = StateName.EK_RECEIVED_CT1_SAMPLED
    return replace(state, name=name, ek=ek, hdr=b"", receiving=None), None


def _recv_ek_received(state: BraidState, payload: Payload) -> tuple[BraidState, bytes | None]:
    if payload.type not in (MessageType.CT1_ACK, MessageType.EK_CT1_ACK):
        return state, None
    return _ct2_sampled(state, state.ek), None


_RECEIVERS: Final[dict[str, Callable[[BraidState, Payload], tuple[BraidState, bytes | None]]]] = {
    StateName.KEYS_SAMPLED: _recv_keys_sampled,
    StateName.HEADER_SENT: _recv_header_sent,
    StateName.CT1_RECEIVED: _recv_ct1_received,
    StateName.EK_SENT_CT1_RECEIVED: _recv_ek_sent_ct1_received,
    StateName.NO_HEADER_RECEIVED: _recv_no_header,
    StateName.CT1_SAMPLED: _recv_ek_chunk,
    StateName.CT1_ACKNOWLEDGED: _recv_ek_chunk,
    StateName.EK_RECEIVED_CT1_SAMPLED: _recv_ek_received,
}
