"""Our two-party fixtures: the set-up workload and an acknowledged ratchet pair.

Set-up is what one new conversation costs both devices: the initiator
verifies the bundle (``x3dh.initiate`` calls ``verify_bundle``), agrees on
SK, starts its ratchet and encrypts the first message into a prekey message
(``wire``); the responder decodes it, agrees on SK (``x3dh.respond``),
starts its ratchet, decrypts, and consumes the one-time prekeys. The
ratchets are started and run through ``triple_ratchet``, as the session
layer runs them: the Double Ratchet alone, or with SPQR beside it for
``signal-v4``. The responder's identity and signed prekey exist before;
one-time prekeys (and, for PQXDH, one-time KEM prekeys) are made untimed,
one per handshake.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol import ratchet, triple_ratchet, wire, x3dh
from protocol.bench.floor import MESSAGE
from protocol.bench.timing import Run, Workload
from protocol.bundle import PrekeyBundle, make_bundle
from protocol.prekeys import (
    IdentityKeyPair,
    PrekeyStore,
    generate_kem_prekey,
    generate_one_time_prekey,
    generate_signed_prekey,
)
from protocol.profiles import Profile
from protocol.session import Address, SessionManager
from protocol.spqr.messages import decode_message
from protocol.store import MemoryStore, dump_state

# A ratchet's encrypt or decrypt: (state, message, AD) -> (state, message).
_Step = Callable[[Any, bytes, bytes], tuple[Any, bytes]]


@dataclass(frozen=True, slots=True)
class Responder:
    identity: IdentityKeyPair
    bundle: PrekeyBundle
    prekeys: PrekeyStore


class Parties:
    """One initiator identity and one responder identity with its signed prekey."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.initiator = IdentityKeyPair.generate()
        self.identity = IdentityKeyPair.generate()
        self.signed_prekey = generate_signed_prekey(self.identity, 1)
        self._ids = itertools.count(1)

    def responder(self) -> Responder:
        """A bundle with fresh one-time prekeys, and the store that holds them."""
        prekey_id = next(self._ids)
        one_time = generate_one_time_prekey(prekey_id)
        kem = None
        if self.profile.kem is not None:
            kem = generate_kem_prekey(self.identity, prekey_id, self.profile.kem, last_resort=False)
        bundle = make_bundle(self.identity, self.signed_prekey, one_time, kem)
        store = PrekeyStore.of((self.signed_prekey,), (one_time,), () if kem is None else (kem,))
        return Responder(self.identity, bundle, store)


def handshake(
    parties: Parties, responder: Responder
) -> tuple[triple_ratchet.TripleRatchetState, triple_ratchet.TripleRatchetState, bytes]:
    """Both sides of one set-up; returns (initiator state, responder state, AD)."""
    profile = parties.profile
    agreed = x3dh.initiate(profile, parties.initiator, responder.bundle)
    sender = triple_ratchet.init_initiator(profile, agreed.sk, responder.bundle.signed_prekey)
    sender, first = triple_ratchet.encrypt(sender, MESSAGE, agreed.ad)
    registration_id = 1 if profile.framing.carries_registration_id else None
    prekey_message = wire.encode_prekey_message(
        profile, wire.PrekeyMessage(agreed.message, registration_id, first)
    )
    received = wire.decode_prekey_message(profile, prekey_message)
    answer = x3dh.respond(
        profile,
        responder.identity,
        responder.prekeys,
        received.initial,
    )
    receiver = triple_ratchet.init_responder(profile, answer.sk, answer.signed_prekey)
    receiver, _ = triple_ratchet.decrypt(receiver, received.message, answer.ad)
    responder.prekeys.consume(answer.consumed)  # the store the responder would commit
    return sender, receiver, agreed.ad


def handshake_workload(key: str, profile: Profile) -> Workload:
    parties = Parties(profile)

    def prepare(units: int) -> Run:
        responders = [parties.responder() for _ in range(units)]

        def run() -> None:
            for responder in responders:
                handshake(parties, responder)

        return run

    return Workload(key, prepare)


class RatchetPair:
    """Two ratchet states after a handshake and one reply: the ``Endpoints`` of our library.

    Note that for a profile without SPQR the pair holds the Double Ratchet's
    states and calls ``ratchet.py`` directly, which is all ``triple_ratchet``
    does with them, so those rows time the Double Ratchet alone; for
    ``signal-v4`` it holds and runs the triple ratchet's states.
    """

    def __init__(self, profile: Profile) -> None:
        parties = Parties(profile)
        initiator, responder, self.ad = handshake(parties, parties.responder())
        self.states: list[Any]
        if profile.spqr:
            self.states = [initiator, responder]
            self._encrypt: _Step = triple_ratchet.encrypt
            self._decrypt: _Step = triple_ratchet.decrypt
        else:
            self.states = [initiator.ratchet, responder.ratchet]
            self._encrypt, self._decrypt = ratchet.ratchet_encrypt, ratchet.ratchet_decrypt
        self.decrypt(0, self.encrypt(1, MESSAGE))

    def encrypt(self, side: int, plaintext: bytes) -> bytes:
        self.states[side], message = self._encrypt(self.states[side], plaintext, self.ad)
        return message

    def decrypt(self, side: int, message: object) -> bytes:
        assert isinstance(message, bytes)
        self.states[side], plaintext = self._decrypt(self.states[side], message, self.ad)
        return plaintext


def make_pair(profile: Profile) -> RatchetPair:
    return RatchetPair(profile)


def spqr_epochs(profile: Profile) -> tuple[int, int]:
    """(messages before the second SPQR epoch, messages of the second) in a ping-pong.

    Read from field 5 of each message of a fresh pair, alternating as
    ``workloads.ping_pong`` does. Every epoch after the first has as many
    messages as the second, since the chunk counts do not change.
    """
    pair, epochs = make_pair(profile), list[int]()
    while len(set(epochs)) < 3:
        sender = len(epochs) & 1
        sent = pair.encrypt(sender, MESSAGE)
        header = wire.decode_message(profile, sent).header
        assert header is not None
        epochs.append(decode_message(header.pq_ratchet).epoch)
        pair.decrypt(1 - sender, sent)
    second = epochs.index(epochs[0] + 1)
    return second, epochs.count(epochs[0] + 1)


class SessionPair:
    """Two ``SessionManager`` devices on in-memory stores, after a handshake and one reply.

    Every encrypt and decrypt is a store transaction that loads the session
    record and writes the new one (spec/storage.md), as in an application.
    """

    def __init__(self, profile: Profile) -> None:
        self.addresses = [Address("initiator", 1), Address("responder", 1)]
        self.stores = [MemoryStore(), MemoryStore()]
        self.managers = [
            SessionManager.create(store, address, profile, now=0)
            for store, address in zip(self.stores, self.addresses, strict=True)
        ]
        responder = self.managers[1]
        responder.generate_one_time_prekeys(1)
        if profile.kem is not None:
            responder.generate_kem_prekeys(1)
        self.managers[0].initiate(self.addresses[1], responder.prekey_bundles()[0])
        self.decrypt(1, self.encrypt(0, MESSAGE))
        self.decrypt(0, self.encrypt(1, MESSAGE))

    def encrypt(self, side: int, plaintext: bytes) -> bytes:
        return self.managers[side].encrypt(self.addresses[1 - side], plaintext)

    def decrypt(self, side: int, message: object) -> bytes:
        assert isinstance(message, bytes)
        return self.managers[side].decrypt(self.addresses[1 - side], message)

    def serialized(self, side: int) -> bytes:
        """The stored session record of ``side`` with its peer (``store.dump_state`` bytes)."""
        record = self.managers[side].session_record(self.addresses[1 - side])
        assert record is not None
        return dump_state(record)
