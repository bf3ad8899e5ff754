"""A relay that substitutes prekeys or identity keys is caught: spec/security.md §3.4.

The relay serves every prekey bundle and carries every initial message. It
can replace any key in them with keys of its own, which it may sign with an
identity key of its own. A signed prekey or KEM prekey not signed by the
served identity key is INVALID_SIGNATURE (X3DH §3.3, PQXDH §3.3); a whole
substituted identity is UNTRUSTED_IDENTITY once the peer's identity key is
trusted, and before that (first contact) it shows in the safety number. A
one-time prekey is unsigned: a substituted one makes the responder refuse
the initial message (AUTH_FAILED). A substituted identity key in an initial
message is refused the same way. Nothing is stored by a refused attempt.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relay_parties import create_party, run_bounded
from security_harness import INITIATOR, RESPONDER, Pair, converse, snapshot

from protocol import wire
from protocol.bundle import BundleKemPrekey, BundleOneTimePrekey, PrekeyBundle, make_bundle
from protocol.client.device import TEXT
from protocol.errors import AuthFailed, InvalidSignature, UntrustedIdentity
from protocol.prekeys import (
    IdentityKeyPair,
    generate_kem_prekey,
    generate_one_time_prekey,
    generate_signed_prekey,
)
from protocol.profiles import ALL_PROFILES, Profile
from protocol.randomness import DrbgRandom
from protocol.relay.harness import running_relay
from protocol.relay.schema import Address as RelayAddress
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

SETTINGS: Final = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
profiles = st.sampled_from(sorted(ALL_PROFILES))
seeds = st.binary(min_size=4, max_size=4)


class Relay:
    """The relay's own keys, and the bundles it forges from a genuine one."""

    def __init__(self, profile: Profile, seed: bytes) -> None:
        rng = DrbgRandom(b"relay keys " + seed)
        self.identity = IdentityKeyPair.generate(rng)
        self.spk = generate_signed_prekey(self.identity, 1, rng)
        self.opk = generate_one_time_prekey(1, rng)
        kem = profile.kem
        self.kem = (
            None
            if kem is None
            else generate_kem_prekey(self.identity, 2, kem, last_resort=False, rng=rng)
        )

    def own_kem(self, bundle: PrekeyBundle) -> BundleKemPrekey | None:
        if self.kem is None or bundle.kem_prekey is None:
            return None
        return make_bundle(self.identity, self.spk, None, self.kem).kem_prekey

    def forged(self, bundle: PrekeyBundle, kind: str) -> PrekeyBundle:
        """``bundle`` with one part replaced by the relay's (see the module docstring)."""
        spk = self.spk.key_pair.public
        if kind == "signed_prekey":
            return dataclasses.replace(bundle, signed_prekey=spk)
        if kind == "signed_prekey_signed_by_relay":
            return dataclasses.replace(
                bundle, signed_prekey=spk, signed_prekey_signature=self.spk.signature
            )
        if kind == "kem_prekey":
            return dataclasses.replace(bundle, kem_prekey=self.own_kem(bundle))
        if kind == "kem_prekey_with_genuine_signature":
            own = self.own_kem(bundle)
            assert own is not None and bundle.kem_prekey is not None
            genuine = dataclasses.replace(own, signature=bundle.kem_prekey.signature)
            return dataclasses.replace(bundle, kem_prekey=genuine)
        if kind == "identity":
            return make_bundle(self.identity, self.spk, self.opk, self.kem)
        assert kind == "one_time_prekey" and bundle.one_time_prekey is not None
        opk = BundleOneTimePrekey(bundle.one_time_prekey.prekey_id, self.opk.key_pair.public)
        return dataclasses.replace(bundle, one_time_prekey=opk)


SIGNED_PARTS: Final = ("signed_prekey", "signed_prekey_signed_by_relay")
KEM_PARTS: Final = ("kem_prekey", "kem_prekey_with_genuine_signature")


def fresh_bundle(pair: Pair) -> PrekeyBundle:
    """A bundle of the responder with a one-time prekey no one has used."""
    responder = pair.managers[RESPONDER]
    responder.generate_one_time_prekeys(1)
    if pair.profile.kem is not None:
        responder.generate_kem_prekeys(1)
    return responder.prekey_bundles()[-2]


@SETTINGS
@given(
    profiles,
    seeds,
    st.sampled_from(SIGNED_PARTS + KEM_PARTS),
    st.lists(st.integers(1, 2), max_size=3),
)
def test_relay_substituting_a_signed_prekey_is_invalid_signature_and_nothing_is_stored(
    profile: str, seed: bytes, part: str, bursts: list[int]
) -> None:
    pair = Pair.create(ALL_PROFILES[profile], seed)
    if part in KEM_PARTS and pair.profile.kem is None:
        part = "signed_prekey"
    converse(pair, [1, *bursts], DrbgRandom(seed))
    forged = Relay(pair.profile, seed).forged(fresh_bundle(pair), part)
    before = pair.records(INITIATOR)
    with pytest.raises(InvalidSignature):
        pair.managers[INITIATOR].initiate(RESPONDER, forged)
    assert pair.records(INITIATOR) == before
    converse(pair, [1, 1], DrbgRandom(seed + b" after"))  # the genuine session goes on


@SETTINGS
@given(profiles, seeds, st.lists(st.integers(1, 2), max_size=3))
def test_relay_substituting_a_trusted_identity_is_untrusted_identity_and_nothing_is_stored(
    profile: str, seed: bytes, bursts: list[int]
) -> None:
    pair = Pair.create(ALL_PROFILES[profile], seed)
    converse(pair, [1, *bursts], DrbgRandom(seed))
    forged = Relay(pair.profile, seed).forged(fresh_bundle(pair), "identity")
    before = pair.records(INITIATOR)
    with pytest.raises(UntrustedIdentity) as change:
        pair.managers[INITIATOR].initiate(RESPONDER, forged)
    assert pair.records(INITIATOR) == before
    genuine = pair.managers[INITIATOR].safety_number(RESPONDER)
    assert change.value.safety_number not in ("", genuine)


@SETTINGS
@given(profiles, seeds)
def test_relay_substituting_an_identity_on_first_contact_shows_in_the_safety_number(
    profile: str, seed: bytes
) -> None:
    """Not prevented (spec/security.md §4): trust on first use; the users' comparison catches it."""
    pair = Pair.create(ALL_PROFILES[profile], seed)
    responder = pair.managers[RESPONDER]
    carol = Address("carol", 1)
    newcomer = SessionManager.create(
        MemoryStore(), carol, pair.profile, now=0, rng=DrbgRandom(seed)
    )
    newcomer.initiate(RESPONDER, Relay(pair.profile, seed).forged(fresh_bundle(pair), "identity"))
    assert newcomer.safety_number(RESPONDER) != responder.safety_number(
        carol, newcomer.identity_key
    )


@SETTINGS
@given(profiles, seeds)
def test_relay_substituting_a_one_time_prekey_makes_the_responder_refuse_the_initial_message(
    profile: str, seed: bytes
) -> None:
    pair = Pair.create(ALL_PROFILES[profile], seed)
    converse(pair, [1, 1], DrbgRandom(seed))
    forged = Relay(pair.profile, seed).forged(fresh_bundle(pair), "one_time_prekey")
    pair.managers[INITIATOR].initiate(RESPONDER, forged)  # unsigned: the initiator cannot tell
    initial = pair.send(INITIATOR, b"to a key the relay chose")
    before = pair.records(RESPONDER)
    with pytest.raises(AuthFailed):
        pair.receive(RESPONDER, initial)
    assert pair.records(RESPONDER) == before  # the genuine one-time prekey is not consumed


@SETTINGS
@given(profiles, seeds)
def test_relay_substituting_the_identity_key_of_an_initial_message_is_refused(
    profile: str, seed: bytes
) -> None:
    pair = Pair.create(ALL_PROFILES[profile], seed)
    data = pair.send(INITIATOR, b"first")
    message = wire.decode_prekey_message(pair.profile, data)
    relay_identity = Relay(pair.profile, seed).identity.public
    forged = wire.encode_prekey_message(
        pair.profile,
        dataclasses.replace(
            message, initial=dataclasses.replace(message.initial, identity_key=relay_identity)
        ),
    )
    before = pair.records(RESPONDER)
    with pytest.raises(AuthFailed):
        pair.receive(RESPONDER, forged)
    assert pair.records(RESPONDER) == before
    assert pair.receive(RESPONDER, data) == b"first"


def test_a_real_relay_serving_a_forged_bundle_is_caught_before_any_message(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_relay(tmp_path / "relay.db") as relay:
            profile = ALL_PROFILES["pq-default"]
            alice, bob = [
                await create_party(relay.port, a, profile, b"forge")
                for a in (RelayAddress("alice", 1), RelayAddress("bob", 1))
            ]
            try:
                genuine = PrekeyBundle.from_bytes(relay.store.take_bundle(bob.address).bundle)
                relay.store.put_bundle(
                    bob.address, Relay(profile, b"").forged(genuine, "signed_prekey").to_bytes()
                )
                before = snapshot(alice.store)
                with pytest.raises(InvalidSignature):
                    await alice.device.send(bob.address, TEXT, b"never sent")
                assert snapshot(alice.store) == before
                assert relay.store.fetch(bob.address, 10) == []
            finally:
                await alice.device.close()
                await bob.device.close()

    run_bounded(scenario())
