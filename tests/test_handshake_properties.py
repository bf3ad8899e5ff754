"""Handshake properties over random keys, random bit flips and arbitrary bytes (hypothesis)."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.bundle import BundleKemPrekey, PrekeyBundle, verify_bundle
from protocol.errors import ProtocolError
from protocol.prekeys import IdentityKeyPair
from protocol.primitives import check_x25519_public
from protocol.profiles import CLASSIC, PQ_DEFAULT, SIGNAL_V3, Profile
from protocol.randomness import DrbgRandom
from protocol.vectors.handshake import ResponderKeys, Shape
from protocol.x3dh import InitialData, initiate, respond

PROFILES = st.sampled_from([PQ_DEFAULT, CLASSIC, SIGNAL_V3])
SEEDS = st.binary(min_size=1, max_size=16)
SIGNED_KEYS = ("identity_key", "signed_prekey")


def responder(profile: Profile, seed: bytes, one_time: bool) -> ResponderKeys:
    shape = Shape(one_time, profile.kem is not None, kem_last_resort=not one_time)
    return ResponderKeys.generate(profile, shape, DrbgRandom(b"responder " + seed))


def flip(data: bytes, bit: int) -> bytes:
    index = bit % (8 * len(data))
    out = bytearray(data)
    out[index // 8] ^= 1 << (index % 8)
    return bytes(out)


def outcome(profile: Profile, build: Any) -> str:
    try:
        verify_bundle(build(), profile)
    except ProtocolError as exc:
        return exc.code
    return "ok"


@settings(max_examples=30, deadline=None)
@given(profile=PROFILES, seed=SEEDS, one_time=st.booleans())
def test_initiator_and_responder_agree_on_sk_and_ad(
    profile: Profile, seed: bytes, one_time: bool
) -> None:
    keys = responder(profile, seed, one_time)
    rng = DrbgRandom(b"initiator " + seed)
    sent = initiate(profile, IdentityKeyPair.generate(rng), keys.bundle(), rng)
    received = respond(
        profile, keys.identity, keys.store(), InitialData.from_bytes(sent.message.to_bytes())
    )
    assert (received.sk, received.ad) == (sent.sk, sent.ad)
    assert len(sent.sk) == profile.agreement.sk_len


@settings(max_examples=60, deadline=None)
@given(
    profile=PROFILES,
    seed=SEEDS,
    field=st.sampled_from(["identity_key", "signed_prekey", "signed_prekey_signature"]),
    bit=st.integers(min_value=0),
)
def test_any_bit_flip_in_signed_ec_material_is_rejected(
    profile: Profile, seed: bytes, field: str, bit: int
) -> None:
    """INVALID_PUBLIC_KEY when the flipped key is itself invalid, INVALID_SIGNATURE otherwise."""
    bundle = responder(profile, seed, True).bundle()
    flipped = flip(getattr(bundle, field), bit)
    expected = "INVALID_SIGNATURE"
    if field in SIGNED_KEYS:
        try:
            check_x25519_public(flipped)
        except ProtocolError:
            expected = "INVALID_PUBLIC_KEY"
    change: dict[str, Any] = {field: flipped}
    assert outcome(profile, lambda: dataclasses.replace(bundle, **change)) == expected


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, field=st.sampled_from(["public", "signature"]), bit=st.integers(min_value=0))
def test_any_bit_flip_in_the_signed_kem_prekey_is_rejected(
    seed: bytes, field: str, bit: int
) -> None:
    bundle = responder(PQ_DEFAULT, seed, True).bundle()
    assert bundle.kem_prekey is not None
    pqpk: BundleKemPrekey = bundle.kem_prekey
    change: dict[str, Any] = {field: flip(getattr(pqpk, field), bit)}

    def changed_bundle() -> PrekeyBundle:
        return dataclasses.replace(bundle, kem_prekey=dataclasses.replace(pqpk, **change))

    # A flipped key bit may also leave a coefficient at or above q: the key itself is
    # then refused (FIPS 203 §7.2) before its signature is checked.
    refusals = (
        {"INVALID_SIGNATURE", "INVALID_PUBLIC_KEY"} if field == "public" else {"INVALID_SIGNATURE"}
    )
    assert outcome(PQ_DEFAULT, changed_bundle) in refusals


def unsigned_view(bundle: PrekeyBundle) -> PrekeyBundle:
    """The bundle without the parts no signature covers (ids and the one-time prekey)."""
    pqpk = bundle.kem_prekey
    return dataclasses.replace(
        bundle,
        signed_prekey_id=0,
        one_time_prekey=None,
        kem_prekey=None if pqpk is None else dataclasses.replace(pqpk, prekey_id=0),
    )


@settings(max_examples=60, deadline=None)
@given(profile=PROFILES, seed=SEEDS, bit=st.integers(min_value=0))
def test_any_bit_flip_in_an_encoded_bundle_is_refused_or_touches_only_unsigned_parts(
    profile: Profile, seed: bytes, bit: int
) -> None:
    """X3DH leaves ids and the one-time prekey unsigned (spec/x3dh.md §3.3); all else is caught."""
    bundle = responder(profile, seed, True).bundle()
    try:
        decoded = PrekeyBundle.from_bytes(flip(bundle.to_bytes(), bit))
        verify_bundle(decoded, profile)
    except ProtocolError as exc:
        assert exc.code in {
            "MALFORMED_MESSAGE",
            "INVALID_PUBLIC_KEY",
            "INVALID_SIGNATURE",
            "UNSUPPORTED_VERSION",
        }
        return
    assert decoded != bundle
    assert unsigned_view(decoded) == unsigned_view(bundle)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048))
def test_decoders_raise_only_protocol_errors_on_arbitrary_bytes(data: bytes) -> None:
    for decode in (PrekeyBundle.from_bytes, InitialData.from_bytes):
        try:
            decoded = decode(data)
        except ProtocolError:
            continue
        assert decoded.to_bytes() == data  # only the canonical encoding decodes


VALID_KEY = bytes.fromhex("0510a8e909c9eb65ebbdcd76035a25d1e6c4ef8b87c7bee0bd41f41aa9a2c59f65")
LEAVES = (
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, 7, 2**32 - 1, 2**32, -1, 1.0])
    | st.binary(max_size=70)
    | st.sampled_from([VALID_KEY, b"\x05" + bytes(32), b"\x0b" + bytes(1184), bytes(1088)])
    | st.text(max_size=3)
)
ITEMS = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(version=st.sampled_from([1, 2, True]), items=st.lists(ITEMS, min_size=4, max_size=5))
def test_decoders_raise_only_protocol_errors_on_well_formed_msgpack(
    version: int, items: list[Any]
) -> None:
    """Arrays of the right length built from near-valid parts reach every field check."""
    data = msgpack.packb([version, *items], use_bin_type=True)
    for decode in (PrekeyBundle.from_bytes, InitialData.from_bytes):
        try:
            decoded = decode(data)
        except ProtocolError:
            continue
        assert decoded.to_bytes() == data
