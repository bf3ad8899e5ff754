"""X3DH: published known answers, key checks, one-time prekey consumption, redaction."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest

from protocol.bundle import BundleOneTimePrekey, PrekeyBundle, make_bundle, verify_bundle
from protocol.encoding import encode_ec
from protocol.errors import (
    InvalidArgument,
    InvalidPublicKey,
    InvalidSignature,
    MalformedMessage,
    UnknownPrekey,
    UnsupportedVersion,
    UntrustedIdentity,
)
from protocol.prekeys import (
    ConsumedPrekeys,
    IdentityKeyPair,
    OneTimePrekey,
    PrekeyStore,
    SignedPrekey,
    generate_one_time_prekey,
    generate_signed_prekey,
)
from protocol.primitives import X25519KeyPair, hkdf_sha256, x25519
from protocol.profiles import CLASSIC, SIGNAL_V3, Profile
from protocol.randomness import DrbgRandom, ScriptedRandom
from protocol.x3dh import F, InitialData, initiate, respond
from protocol.xeddsa import xeddsa_sign

KAT = {
    v["id"]: v
    for v in json.loads((Path(__file__).parent / "kat" / "x3dh.json").read_text())["vectors"]
}
LOW_ORDER_POINT = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def raw(encoded: str) -> bytes:
    """Strip libsignal's 0x05 type byte."""
    assert encoded.startswith("05")
    return h(encoded[2:])


class Responder:
    """A responder with one signed and one one-time prekey, from a DRBG seed."""

    def __init__(self, seed: bytes) -> None:
        rng = DrbgRandom(seed)
        self.identity = IdentityKeyPair.generate(rng)
        self.spk = generate_signed_prekey(self.identity, 1, rng)
        self.opk = generate_one_time_prekey(5, rng)
        self.store = PrekeyStore.of((self.spk,), (self.opk,))

    def bundle(self, *, one_time: bool = True) -> PrekeyBundle:
        return make_bundle(self.identity, self.spk, self.opk if one_time else None)


# --- Known answers -----------------------------------------------------------------


def test_libsignal_v3_ratcheting_session_responder_derives_published_chain_key() -> None:
    """RatchetingSessionTest (libsignal-protocol-java, -c): Bob's side, no one-time prekey."""
    kat = KAT["x3dh-v3-ratcheting-session-1"]
    inputs = kat["inputs"]
    bob = IdentityKeyPair.from_private(h(inputs["bob_identity_private"]))
    assert bob.public == raw(inputs["bob_identity_public"])
    spk_pair = X25519KeyPair.from_private(h(inputs["bob_signed_prekey_private"]))
    spk = SignedPrekey(
        1, spk_pair, bytes(64)
    )  # the test has no signature; the responder never checks its own
    message = InitialData(raw(inputs["alice_identity_public"]), raw(inputs["alice_base_public"]), 1)

    result = respond(SIGNAL_V3, bob, PrekeyStore.of((spk,)), message)

    assert result.sk[32:] == h(kat["expected"]["chain_key"])  # upstream
    assert result.sk[:32] == h(kat["derived_not_upstream"]["root_key"])
    assert result.intermediates.dh == tuple(
        h(kat["derived_not_upstream"][k]) for k in ("dh1", "dh2", "dh3")
    )
    assert result.signed_prekey == spk_pair


def test_libsignal_v3_ratcheting_session_initiator_with_clamped_base_key_matches() -> None:
    """Alice's side, with the RFC 7748 equivalent of her unclamped base key (kat caveat).

    The upstream test has no signed-prekey signature, so the bundle is signed
    here with Bob's identity key; the signature does not enter SK.
    """
    kat = KAT["x3dh-v3-ratcheting-session-1"]
    inputs = kat["inputs"]
    bob_identity = h(inputs["bob_identity_private"])
    spk = raw(inputs["bob_signed_prekey_public"])
    signature = xeddsa_sign(bob_identity, encode_ec(spk), bytes(64))
    bundle = PrekeyBundle(raw(inputs["bob_identity_public"]), 1, spk, signature)
    alice = IdentityKeyPair.from_private(h(inputs["alice_identity_private"]))
    base = h(kat["derived_not_upstream"]["alice_base_private_rfc7748_equivalent"])

    result = initiate(SIGNAL_V3, alice, bundle, ScriptedRandom([("ephemeral_key", base)]))

    assert result.message.ephemeral_key == raw(inputs["alice_base_public"])
    assert result.sk[32:] == h(kat["expected"]["chain_key"])
    assert result.ad == h(inputs["alice_identity_public"] + inputs["bob_identity_public"])


def test_syndace_responder_with_one_time_prekey_derives_published_sk() -> None:
    """python-x3dh migration data: spec-form X3DH with DH4, info "test_migrations", 32-byte SK."""
    kat = KAT["x3dh-syndace-with-opk-1"]
    inputs = kat["inputs"]
    agreement = dataclasses.replace(CLASSIC.agreement, kdf_info=inputs["info_ascii"].encode())
    profile = dataclasses.replace(CLASSIC, agreement=agreement)
    bob = IdentityKeyPair.from_private(h(inputs["bob_identity_private"]))
    assert bob.public == h(inputs["bob_identity_public"])
    spk = SignedPrekey(
        1,
        X25519KeyPair.from_private(h(inputs["bob_signed_prekey_private"])),
        h(kat["extra"]["signed_prekey_signature"]["signature"]),
    )
    opk = OneTimePrekey(2, X25519KeyPair.from_private(h(inputs["bob_one_time_prekey_private"])))
    assert opk.key_pair.public == h(inputs["bob_one_time_prekey_public"])
    message = InitialData(
        h(inputs["alice_identity_public"]), h(inputs["alice_ephemeral_public"]), 1, 2
    )

    result = respond(profile, bob, PrekeyStore.of((spk,), (opk,)), message)

    assert result.sk == h(kat["expected"]["sk"])
    derived = kat["derived_not_upstream"]
    assert result.intermediates.dh == tuple(h(v) for v in derived.values())
    assert result.consumed == ConsumedPrekeys(2, None)


def test_sk_is_hkdf_of_ff_prefix_and_dh_outputs_in_spec_order() -> None:
    """X3DH §2.2 written out independently of x3dh.kdf."""
    responder = Responder(b"order")
    rng = DrbgRandom(b"initiator")
    alice = IdentityKeyPair.generate(rng)
    result = initiate(CLASSIC, alice, responder.bundle(), rng)
    spk, opk = responder.spk.key_pair, responder.opk.key_pair
    dh = (
        x25519(spk.private, alice.public),
        x25519(responder.identity.private, result.message.ephemeral_key),
        x25519(spk.private, result.message.ephemeral_key),
        x25519(opk.private, result.message.ephemeral_key),
    )
    assert result.intermediates.dh == dh
    assert result.sk == hkdf_sha256(
        b"\xff" * 32 + b"".join(dh), bytes(32), CLASSIC.agreement.kdf_info, 32
    )
    assert F == b"\xff" * 32


# --- Agreement and its failures ------------------------------------------------------


@pytest.mark.parametrize("profile", [CLASSIC, SIGNAL_V3], ids=lambda p: p.name)
@pytest.mark.parametrize("one_time", [True, False])
def test_both_sides_agree_on_sk_and_ad(profile: Profile, one_time: bool) -> None:
    responder = Responder(b"agree")
    rng = DrbgRandom(b"a")
    alice = IdentityKeyPair.generate(rng)
    sent = initiate(profile, alice, responder.bundle(one_time=one_time), rng)
    received = respond(
        profile,
        responder.identity,
        responder.store,
        InitialData.from_bytes(sent.message.to_bytes()),
    )
    assert (received.sk, received.ad) == (sent.sk, sent.ad)
    assert len(sent.sk) == profile.agreement.sk_len
    assert sent.ad == encode_ec(alice.public) + encode_ec(responder.identity.public)
    assert received.consumed == ConsumedPrekeys(5 if one_time else None, None)


def test_one_time_prekey_is_consumed_exactly_once() -> None:
    responder = Responder(b"once")
    rng = DrbgRandom(b"a")
    sent = initiate(CLASSIC, IdentityKeyPair.generate(rng), responder.bundle(), rng)
    first = respond(CLASSIC, responder.identity, responder.store, sent.message)
    store = responder.store.consume(first.consumed)
    with pytest.raises(UnknownPrekey):
        respond(CLASSIC, responder.identity, store, sent.message)
    with pytest.raises(UnknownPrekey):
        store.consume(first.consumed)
    assert 5 in responder.store.one_time_prekeys  # the original store is untouched


def test_unknown_prekey_ids_are_refused() -> None:
    responder = Responder(b"unknown")
    rng = DrbgRandom(b"a")
    sent = initiate(CLASSIC, IdentityKeyPair.generate(rng), responder.bundle(), rng)
    for changed in (
        dataclasses.replace(sent.message, one_time_prekey_id=6),
        dataclasses.replace(sent.message, signed_prekey_id=2),
    ):
        with pytest.raises(UnknownPrekey):
            respond(CLASSIC, responder.identity, responder.store, changed)


def test_unexpected_initiator_identity_is_refused() -> None:
    responder = Responder(b"identity")
    rng = DrbgRandom(b"a")
    alice = IdentityKeyPair.generate(rng)
    sent = initiate(CLASSIC, alice, responder.bundle(), rng)
    other = IdentityKeyPair.generate(rng).public
    with pytest.raises(UntrustedIdentity):
        respond(
            CLASSIC, responder.identity, responder.store, sent.message, expected_initiator=other
        )
    accepted = respond(
        CLASSIC, responder.identity, responder.store, sent.message, expected_initiator=alice.public
    )
    assert accepted.sk == sent.sk


def test_bad_signed_prekey_signature_is_refused_before_any_draw() -> None:
    responder = Responder(b"sig")
    bundle = responder.bundle()
    flipped = bytearray(bundle.signed_prekey_signature)
    flipped[0] ^= 1
    rng = ScriptedRandom([])
    with pytest.raises(InvalidSignature):
        initiate(
            CLASSIC,
            IdentityKeyPair.generate(DrbgRandom(b"a")),
            dataclasses.replace(bundle, signed_prekey_signature=bytes(flipped)),
            rng,
        )
    assert rng.remaining == 0


def test_low_order_keys_are_refused_in_bundles_and_initial_data() -> None:
    responder = Responder(b"low")
    bundle = responder.bundle()
    with pytest.raises(InvalidPublicKey):
        dataclasses.replace(bundle, signed_prekey=LOW_ORDER_POINT)
    with pytest.raises(InvalidPublicKey):
        BundleOneTimePrekey(5, LOW_ORDER_POINT)
    with pytest.raises(InvalidPublicKey):
        InitialData(responder.identity.public, LOW_ORDER_POINT, 1)
    with pytest.raises(InvalidPublicKey):
        InitialData(responder.identity.public, b"\x01" * 31, 1)


def test_libsignal_sign_bit_signature_is_accepted_only_by_signal_v3() -> None:
    """spec/x3dh.md §7: a libsignal curve25519_sign bundle verifies in signal-v3 only."""
    inputs = KAT["xeddsa-libsignal-verify-1"]["inputs"]  # signs 0x05 ‖ u: a signed prekey
    identity, spk = h(inputs["signer_public_u"]), raw(inputs["message"])
    bundle = PrekeyBundle(identity, 1, spk, h(inputs["signature"]))
    verify_bundle(bundle, SIGNAL_V3)
    with pytest.raises(InvalidSignature):
        verify_bundle(bundle, CLASSIC)


def test_x3dh_profiles_refuse_a_kem_part_and_a_kem_ciphertext() -> None:
    responder = Responder(b"kem")
    rng = DrbgRandom(b"a")
    sent = initiate(CLASSIC, IdentityKeyPair.generate(rng), responder.bundle(), rng)
    with_kem = dataclasses.replace(sent.message, kem_prekey_id=1, kem_ciphertext=bytes(1088))
    with pytest.raises(MalformedMessage):
        respond(CLASSIC, responder.identity, responder.store, with_kem)


def test_key_types_check_their_halves_and_lengths() -> None:
    pair = X25519KeyPair.from_private(b"\x11" * 32)
    other = X25519KeyPair.from_private(b"\x22" * 32)
    with pytest.raises(InvalidArgument):
        IdentityKeyPair(X25519KeyPair(pair.private, other.public))
    with pytest.raises(InvalidArgument):
        SignedPrekey(1, pair, bytes(63))
    with pytest.raises(InvalidArgument):
        OneTimePrekey(2**32, pair)
    with pytest.raises(InvalidArgument):
        IdentityKeyPair.from_private(b"\x11" * 31)


def test_no_private_key_or_sk_appears_in_any_repr() -> None:
    responder = Responder(b"repr")
    rng = DrbgRandom(b"a")
    alice = IdentityKeyPair.generate(rng)
    sent = initiate(CLASSIC, alice, responder.bundle(), rng)
    received = respond(CLASSIC, responder.identity, responder.store, sent.message)
    secrets = [
        alice.private,
        responder.identity.private,
        responder.spk.key_pair.private,
        responder.opk.key_pair.private,
        sent.sk,
        *sent.intermediates.dh,
        sent.intermediates.ikm,
    ]
    shown: list[Any] = [alice, responder.identity, responder.spk, responder.opk, responder.store]
    text = " ".join(repr(x) for x in [*shown, sent, received, sent.intermediates])
    for secret in secrets:
        assert secret.hex() not in text
        assert repr(secret) not in text
    assert alice.public.hex() in text


# --- Encodings ---------------------------------------------------------------------------


def test_bundle_and_initial_data_round_trip_through_their_canonical_encodings() -> None:
    responder = Responder(b"encode")
    rng = DrbgRandom(b"a")
    bundle = responder.bundle()
    sent = initiate(CLASSIC, IdentityKeyPair.generate(rng), bundle, rng)
    assert PrekeyBundle.from_bytes(bundle.to_bytes()) == bundle
    assert InitialData.from_bytes(sent.message.to_bytes()) == sent.message
    assert bundle.to_bytes()[:1] == b"\x95"  # a msgpack array of five items
    assert bundle.to_bytes()[1:4] == b"\x01\xc4\x21"  # version 1, then bin 33: Encode(IK_B)


@pytest.mark.parametrize("kind", ["bundle", "initial data"])
def test_other_versions_are_unsupported_and_other_encodings_malformed(kind: str) -> None:
    responder = Responder(b"versions")
    rng = DrbgRandom(b"a")
    bundle = responder.bundle()
    sent = initiate(CLASSIC, IdentityKeyPair.generate(rng), bundle, rng)
    decode: Any = PrekeyBundle.from_bytes if kind == "bundle" else InitialData.from_bytes
    encoded = bundle.to_bytes() if kind == "bundle" else sent.message.to_bytes()
    items = msgpack.unpackb(encoded)
    with pytest.raises(UnsupportedVersion):
        decode(msgpack.packb([2, *items[1:]], use_bin_type=True))
    with pytest.raises(MalformedMessage):  # version 1 as a uint16: same value, not canonical
        decode(encoded[:1] + b"\xcd\x00\x01" + encoded[2:])
    with pytest.raises(MalformedMessage):
        decode(msgpack.packb(items, use_bin_type=True) + b"\x00")
    with pytest.raises(MalformedMessage):
        decode(msgpack.packb([*items, None], use_bin_type=True))


def test_wrong_argument_types_are_invalid_argument() -> None:
    responder = Responder(b"types")
    rng = DrbgRandom(b"a")
    alice = IdentityKeyPair.generate(rng)
    sent = initiate(CLASSIC, alice, responder.bundle(), rng)
    bad: Any = b"not a key"
    with pytest.raises(InvalidArgument):
        initiate(CLASSIC, bad, responder.bundle(), rng)
    with pytest.raises(InvalidArgument):
        initiate(CLASSIC, alice, bad, rng)
    with pytest.raises(InvalidArgument):
        respond(CLASSIC, responder.identity, responder.store, bad)
    with pytest.raises(InvalidArgument):
        respond(
            CLASSIC, responder.identity, responder.store, sent.message, expected_initiator=bad.hex()
        )
