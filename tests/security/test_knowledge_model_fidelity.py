"""The symbolic model is the key schedule the code runs: spec/security.md §2.4.

A symbolic check is only as good as its model. Here the terms that
``protocol.audit.knowledge.session_model`` builds for a generated pq-default
conversation are evaluated with the real values of a real run — the private
keys from the devices' stores, the base key and KEM ciphertext from the
initial message — through the library's own functions (x25519, the
X3DH/PQXDH KDF, ML-KEM decapsulation, KDF_RK, KDF_CK, the RFC 9605 §5.1
ratchet): every root key, header key and message key the model names must
equal the one the sender held when it sent, and every base key of a call's
generations and steps the one the call sender encrypted with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_harness import INITIATOR, RESPONDER, Pair, SpqrRecorder, peer_of, session_state

from protocol import pqxdh, wire, x3dh
from protocol.audit.knowledge import DH, Atom, Kdf, Model, Pub, Term, call_model, session_model
from protocol.audit.triple_model import triple_session_model
from protocol.media.callkeys import CallSender
from protocol.media.limits import MediaLimits
from protocol.media.sframe import DEFAULT_SUITE, ratchet_base_key
from protocol.prekeys import KemPrekey, OneTimePrekey, SignedPrekey
from protocol.primitives import X25519KeyPair, hkdf_sha256, x25519
from protocol.profiles import PQ_DEFAULT, SIGNAL_V4
from protocol.randomness import DrbgRandom
from protocol.ratchet import kdf_ck, kdf_rk, message_keys
from protocol.session.records import (
    DEVICE,
    KEM_PREKEYS,
    ONE_TIME_PREKEYS,
    SIGNED_PREKEYS,
    DeviceRecord,
)
from protocol.spqr import states
from protocol.spqr.chain import chain_add_epoch_kdf, chain_next, chain_start_kdf
from protocol.spqr.messages import decode_message
from protocol.store import MemoryStore, load_state

KEY_LEN: Final = 32
CALL_ID: Final = bytes(16)
LIMITS: Final = MediaLimits(rotation_delay=1.0)
T = TypeVar("T")


@dataclass
class Values:
    """The real value behind each atom: private keys, public-only keys, and secrets."""

    private: dict[str, bytes] = field(default_factory=dict)
    public: dict[str, bytes] = field(default_factory=dict)
    atoms: dict[str, bytes] = field(default_factory=dict)

    def pub(self, owner: str) -> bytes:
        if owner in self.public:
            return self.public[owner]
        return x25519_public(self.private[owner])

    def evaluate(self, term: Term) -> bytes:
        """The value of a model term, computed with the library's functions."""
        if isinstance(term, Atom):
            return self.atoms[term.name]
        if isinstance(term, Pub):
            return self.pub(term.owner)
        if isinstance(term, DH):
            a, b = sorted(term.pair)
            mine, theirs = (a, b) if a in self.private else (b, a)
            return x25519(self.private[mine], self.pub(theirs))
        assert isinstance(term, Kdf)
        return self.kdf(term)

    def kdf(self, term: Kdf) -> bytes:
        inputs = [self.evaluate(t) for t in term.inputs]
        if term.label == "pqxdh":
            return x3dh.kdf(PQ_DEFAULT, x3dh.key_material(tuple(inputs[:-1]), inputs[-1]))
        if term.label == "initial":
            out = hkdf_sha256(inputs[0], None, PQ_DEFAULT.chains.initial_keys_info, 3 * KEY_LEN)
            return out[term.index * KEY_LEN : (term.index + 1) * KEY_LEN]
        if term.label == "rk":
            part = kdf_rk(PQ_DEFAULT, inputs[0], inputs[1])[term.index]
            assert part is not None
            return part
        if term.label == "sframe ratchet":
            return ratchet_base_key(DEFAULT_SUITE, inputs[0])
        assert term.label == "ck"
        next_ck, mk = kdf_ck(PQ_DEFAULT, inputs[0])
        return {1: mk, 2: next_ck}[term.index]


def x25519_public(private: bytes) -> bytes:
    return X25519KeyPair.from_private(private).public


def stored(store: MemoryStore, table: str, key: object, cls: type[T]) -> T:
    data = store.get(table, str(key))
    assert data is not None
    return load_state(cls, data)


def responder_values(pair: Pair, initial: bytes) -> Values:
    """The responder's prekeys that the initial message used, and the initiator's base key."""
    message = wire.decode_prekey_message(pair.profile, initial).initial
    store = pair.stores[RESPONDER]
    spk = stored(store, SIGNED_PREKEYS, message.signed_prekey_id, SignedPrekey)
    opk = stored(store, ONE_TIME_PREKEYS, message.one_time_prekey_id, OneTimePrekey)
    kem = stored(store, KEM_PREKEYS, message.kem_prekey_id, KemPrekey)
    assert message.kem_ciphertext is not None
    values = Values()
    for address, name in ((INITIATOR, "IK:alice"), (RESPONDER, "IK:bob")):
        (key,) = pair.stores[address].keys(DEVICE)
        device = stored(pair.stores[address], DEVICE, key, DeviceRecord)
        values.private[name] = device.identity.private
    values.private["SPK:bob"] = spk.key_pair.private
    values.private["OPK:s"] = opk.key_pair.private
    values.public["EK:s"] = message.ephemeral_key
    values.atoms["SS:s"] = pqxdh.decapsulate(kem.kem, kem, message.kem_ciphertext)
    return values


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=4, max_size=4), st.lists(st.integers(1, 3), min_size=1, max_size=5))
def test_every_key_the_model_names_is_the_key_the_code_used(seed: bytes, chains: list[int]) -> None:
    model = Model()
    session_model(model, "s", "alice", "bob", chains)
    pair = Pair.create(PQ_DEFAULT, seed)
    rng = DrbgRandom(seed)
    values: Values | None = None
    sender = INITIATOR
    for number, count in enumerate(chains):
        for index in range(count):
            ratchet = session_state(pair.stores[sender], peer_of(sender)).current.ratchet
            values_now = values
            data = pair.send(sender, rng.draw("plaintext", 16))
            if values_now is None:
                values = values_now = responder_values(pair, data)
            values_now.private[f"DHs:s:{number}"] = ratchet.dhs.private
            assert ratchet.cks is not None and ratchet.hks is not None
            assert values_now.evaluate(model.secrets[f"rk s/{number}"]) == ratchet.rk
            assert values_now.evaluate(model.secrets[f"hk s/{number}"]) == ratchet.hks
            assert (
                values_now.evaluate(model.secrets[f"mk s/{number}/{index}"])
                == kdf_ck(PQ_DEFAULT, ratchet.cks)[1]
            )
            pair.receive(peer_of(sender), data)
        sender = peer_of(sender)


@settings(max_examples=10, deadline=None)
@given(st.binary(min_size=4, max_size=4), st.integers(1, 3), st.integers(0, 4))
def test_every_base_key_the_model_names_is_the_one_the_sender_used(
    seed: bytes, generations: int, steps: int
) -> None:
    model = Model()
    call_model(model, "a", [Atom(f"carrier {g}") for g in range(generations)], steps, 1)
    now = [0.0]
    sender, _ = CallSender.start(
        CALL_ID, "a", ["b", "c", "d"], clock=lambda: now[0], rng=DrbgRandom(seed), limits=LIMITS
    )
    values = Values()
    for generation in range(generations):
        values.atoms[f"base:a:{generation}"] = sender.state.current.base_key
        for step in range(steps + 1):
            current = sender.state.current
            assert (current.generation, current.step) == (generation, step)
            assert values.evaluate(model.secrets[f"base a/{generation}/{step}"]) == current.base_key
            if step < steps:
                sender.join([f"joiner {generation}.{step}"], DrbgRandom(seed))
        sender.leave([sorted(sender.state.members)[0]], DrbgRandom(seed + b"leave"))
        now[0] += LIMITS.rotation_delay
        sender.encrypt(b"the frame that switches to the next generation")


# --- signal-v4: the triple ratchet's model (spec/security.md §4) ----------------------------


@dataclass
class V4Values(Values):
    """``Values`` with the signal-v4 labels of ``triple_model``."""

    cache: dict[int, bytes] = field(default_factory=dict)

    def evaluate(self, term: Term) -> bytes:
        """As ``Values.evaluate``, each subterm once (a long conversation's terms nest deep)."""
        if id(term) not in self.cache:
            self.cache[id(term)] = super().evaluate(term)
        return self.cache[id(term)]

    def kdf(self, term: Kdf) -> bytes:
        inputs = [self.evaluate(t) for t in term.inputs]
        part = slice(term.index * KEY_LEN, (term.index + 1) * KEY_LEN)
        if term.label.startswith("scka "):
            return states.epoch_secret(inputs[0], int(term.label.removeprefix("scka ")))
        if term.label == "spqr add epoch":
            return chain_add_epoch_kdf(inputs[0], inputs[1])[part]
        if term.label == "pqxdh v4":
            return x3dh.kdf(SIGNAL_V4, x3dh.key_material(tuple(inputs[:-1]), inputs[-1]))
        if term.label == "sk v4":
            return inputs[0][part]
        if term.label == "spqr start":
            return chain_start_kdf(inputs[0])[part]
        if term.label == "spqr next":
            next_key, message_key = chain_next(inputs[0], spqr_counter(term))
            return {0: next_key, 1: message_key}[term.index]
        if term.label == "WhisperMessageKeys":
            return message_keys(SIGNAL_V4, inputs[0], inputs[1]).enc_key
        if term.label == "rk":
            key = kdf_rk(SIGNAL_V4, inputs[0], inputs[1])[term.index]
            assert key is not None
            return key
        assert term.label == "ck"
        next_ck, mk = kdf_ck(SIGNAL_V4, inputs[0])
        return {1: mk, 2: next_ck}[term.index]


def spqr_counter(term: Kdf) -> int:
    """The counter of a ``spqr next`` term: one more than the chain key it starts from."""
    inner = term.inputs[0]
    if isinstance(inner, Kdf) and inner.label == "spqr next":
        return spqr_counter(inner) + 1
    return 1


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=4, max_size=4), st.lists(st.integers(1, 3), min_size=1, max_size=5))
def test_every_key_the_v4_model_names_is_the_key_the_code_used(
    seed: bytes, chains: list[int]
) -> None:
    # Short conversations stay in SPQR's epoch 0 (an epoch takes dozens of messages).
    model = Model()
    triple_session_model(model, "s", "alice", "bob", [[0] * count for count in chains])
    pair = Pair.create(SIGNAL_V4, seed)
    rng = DrbgRandom(seed)
    values: V4Values | None = None
    recorder, sender = SpqrRecorder(), INITIATOR
    spqr_keys = recorder.keys
    with recorder.recording():
        for number, count in enumerate(chains):
            for index in range(count):
                ratchet = session_state(pair.stores[sender], peer_of(sender)).current.ratchet
                data = pair.send(sender, rng.draw("plaintext", 16))
                values = values or V4Values(**vars(responder_values(pair, data)))
                values.private[f"DHs:s:{number}"] = ratchet.dhs.private
                assert ratchet.cks is not None
                assert values.evaluate(model.secrets[f"rk s/{number}"]) == ratchet.rk
                spqr_key = values.evaluate(model.secrets[f"spqr key s/{number}/{index}"])
                assert spqr_key == spqr_keys[-1]
                mk = kdf_ck(SIGNAL_V4, ratchet.cks)[1]
                expected = message_keys(SIGNAL_V4, mk, spqr_keys[-1]).enc_key
                assert values.evaluate(model.secrets[f"mk s/{number}/{index}"]) == expected
                pair.receive(peer_of(sender), data)
            sender = peer_of(sender)


@dataclass
class Sent:
    """One message of a long signal-v4 conversation, as its sender held it when sending."""

    chain: int
    index: int
    rk: bytes
    cks: bytes
    dhs_private: bytes
    spqr_epoch: int  # the epoch of the SPQR keys it used: field 5's epoch less one
    spqr_key: bytes


SPQR_EPOCHS: Final = 2
"""How many SPQR epochs the long conversations complete (field 5 then names epoch 3)."""
MESSAGE_LIMIT: Final = 1000


def converse_through_epochs(
    pair: Pair, bursts: list[int], rng: DrbgRandom, recorder: SpqrRecorder
) -> tuple[list[Sent], V4Values]:
    """Bursts alternating from the initiator, ``bursts`` repeated, until a message uses
    the keys of SPQR epoch ``SPQR_EPOCHS``: what each sender held, and the values of
    the responder's prekeys and the initiator's base key (read before they are used up)."""
    sent: list[Sent] = []
    values: V4Values | None = None
    sender, chain = INITIATOR, 0
    while not sent or sent[-1].spqr_epoch < SPQR_EPOCHS:
        assert len(sent) < MESSAGE_LIMIT, "the SPQR epochs did not complete"
        for index in range(bursts[chain % len(bursts)]):
            ratchet = session_state(pair.stores[sender], peer_of(sender)).current.ratchet
            assert ratchet.cks is not None
            data = pair.send(sender, rng.draw("plaintext", 16))
            values = values or V4Values(**vars(responder_values(pair, data)))
            inner = data
            if wire.is_signal_prekey(data):
                inner = wire.decode_prekey_message(SIGNAL_V4, data).message
            epoch = decode_message(wire.decode_message(SIGNAL_V4, inner).header.pq_ratchet).epoch
            key = recorder.keys[-1]
            private = ratchet.dhs.private
            sent.append(Sent(chain, index, ratchet.rk, ratchet.cks, private, epoch - 1, key))
            pair.receive(peer_of(sender), data)
        sender, chain = peer_of(sender), chain + 1
    assert values is not None
    return sent, values


def v4_model_through_epochs(seed: bytes, bursts: list[int]) -> None:
    pair, recorder = Pair.create(SIGNAL_V4, seed), SpqrRecorder()
    with recorder.recording():
        sent, values = converse_through_epochs(pair, bursts, DrbgRandom(seed), recorder)
    chains: list[list[int]] = [[] for _ in range(sent[-1].chain + 1)]
    for message in sent:
        chains[message.chain].append(message.spqr_epoch)
        values.private[f"DHs:s:{message.chain}"] = message.dhs_private
    model = Model()
    triple_session_model(model, "s", "alice", "bob", chains)
    # Each epoch's ML-KEM-768 shared secret, as the encapsulating side drew it; the
    # decapsulating side got the same (otherwise the conversation would have failed).
    assert recorder.decapsulated[:SPQR_EPOCHS] == recorder.encapsulated[:SPQR_EPOCHS]
    for epoch in range(1, SPQR_EPOCHS + 1):
        values.atoms[f"SPQRK:s:{epoch}"] = recorder.encapsulated[epoch - 1]
        secret = values.evaluate(model.secrets[f"epoch secret s/{epoch}"])
        assert recorder.added[epoch] == {secret}  # what both sides added to their chains
    assert {message.spqr_epoch for message in sent} == set(range(SPQR_EPOCHS + 1))
    for message in sent:
        name = f"s/{message.chain}/{message.index}"
        assert values.evaluate(model.secrets[f"rk s/{message.chain}"]) == message.rk
        assert values.evaluate(model.secrets[f"spqr key {name}"]) == message.spqr_key
        mk = kdf_ck(SIGNAL_V4, message.cks)[1]
        expected = message_keys(SIGNAL_V4, mk, message.spqr_key).enc_key
        assert values.evaluate(model.secrets[f"mk {name}"]) == expected


long_conversations = given(
    st.binary(min_size=4, max_size=4), st.lists(st.integers(1, 3), min_size=1, max_size=4)
)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@long_conversations
def test_every_epoch_secret_and_key_the_v4_model_names_through_two_spqr_epochs_is_the_codes(
    seed: bytes, bursts: list[int]
) -> None:
    v4_model_through_epochs(seed, bursts)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@long_conversations
def test_every_key_the_v4_model_names_through_two_spqr_epochs_over_many_conversations(
    seed: bytes, bursts: list[int]
) -> None:
    v4_model_through_epochs(seed, bursts)
