"""PQXDH: the KEM step, its place in the KDF, KEM prekey kinds, and how KEM faults surface."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.bundle import PrekeyBundle, make_bundle, verify_bundle
from protocol.encoding import encode_ec
from protocol.errors import (
    AuthFailed,
    InvalidArgument,
    InvalidPublicKey,
    InvalidSignature,
    MalformedMessage,
    UnknownPrekey,
)
from protocol.prekeys import ConsumedPrekeys, IdentityKeyPair, generate_kem_prekey
from protocol.primitives import hkdf_sha256, kem_decapsulate
from protocol.profiles import CLASSIC, PQ_DEFAULT, Profile
from protocol.randomness import DrbgRandom
from protocol.vectors.handshake import ResponderKeys, Shape
from protocol.vectors.handshake_schema import check_ciphertext, open_check
from protocol.x3dh import InitialData, InitiatorResult, initiate, respond

PQ_1024 = dataclasses.replace(
    PQ_DEFAULT,
    name="pq-1024-test",
    agreement=dataclasses.replace(
        PQ_DEFAULT.agreement,
        kem="ML-KEM-1024",
        kdf_info=b"E2EERef_CURVE25519_SHA-256_ML-KEM-1024",
    ),
)


FULL = Shape(True, True, kem_last_resort=False)


def setup(
    profile: Profile = PQ_DEFAULT, shape: Shape = FULL
) -> tuple[ResponderKeys, IdentityKeyPair, InitiatorResult]:
    rng = DrbgRandom(b"pqxdh " + profile.name.encode())
    keys = ResponderKeys.generate(profile, shape, rng)
    initiator = IdentityKeyPair.generate(rng)
    return keys, initiator, initiate(profile, initiator, keys.bundle(), rng)


@pytest.mark.parametrize("profile", [PQ_DEFAULT, PQ_1024], ids=lambda p: str(p.kem))
@pytest.mark.parametrize(
    "shape",
    [Shape(True, True, kem_last_resort=False), Shape(True, True), Shape(False, True)],
    ids=["opk+pqopk", "opk+pqspk", "pqspk"],
)
def test_both_sides_agree_for_each_kem_and_prekey_kind(profile: Profile, shape: Shape) -> None:
    keys, _, sent = setup(profile, shape)
    received = respond(
        profile, keys.identity, keys.store(), InitialData.from_bytes(sent.message.to_bytes())
    )
    assert (received.sk, received.ad) == (sent.sk, sent.ad)
    one_time_kem = None if shape.kem_last_resort else 2
    assert received.consumed == ConsumedPrekeys(7 if shape.one_time else None, one_time_kem)


def test_kem_secret_comes_last_in_the_kdf_input_and_ad_has_no_kem_key() -> None:
    """PQXDH §3.3 steps 4 and 6: SS after DH4; AD = Encode(IK_A) ‖ Encode(IK_B) only."""
    keys, initiator, sent = setup()
    assert keys.pqpk is not None and sent.message.kem_ciphertext is not None
    ss = kem_decapsulate("ML-KEM-768", keys.pqpk.seed, sent.message.kem_ciphertext)
    ikm = b"\xff" * 32 + b"".join(sent.intermediates.dh) + ss
    assert len(sent.intermediates.dh) == 4
    assert sent.sk == hkdf_sha256(ikm, bytes(32), b"E2EERef_CURVE25519_SHA-256_ML-KEM-768", 32)
    assert sent.ad == encode_ec(initiator.public) + encode_ec(keys.identity.public)


def test_one_time_kem_prekey_is_consumed_once_and_last_resort_is_kept() -> None:
    keys, _, sent = setup()
    first = respond(PQ_DEFAULT, keys.identity, keys.store(), sent.message)
    store = keys.store().consume(first.consumed)
    assert 2 not in store.kem_prekeys
    without_opk = dataclasses.replace(sent.message, one_time_prekey_id=None)
    with pytest.raises(UnknownPrekey):
        respond(PQ_DEFAULT, keys.identity, store, without_opk)

    keys, _, sent = setup(shape=Shape(False, True))
    first = respond(PQ_DEFAULT, keys.identity, keys.store(), sent.message)
    assert first.consumed == ConsumedPrekeys(None, None)
    again = respond(PQ_DEFAULT, keys.identity, keys.store().consume(first.consumed), sent.message)
    assert again.sk == first.sk


def test_tampered_kem_ciphertext_gives_another_sk_and_the_first_message_fails() -> None:
    """ML-KEM implicit rejection: no error at decapsulation, AUTH_FAILED at the first AEAD."""
    keys, _, sent = setup()
    ct = sent.message.kem_ciphertext
    assert ct is not None
    tampered = dataclasses.replace(sent.message, kem_ciphertext=ct[:-1] + bytes([ct[-1] ^ 1]))
    received = respond(PQ_DEFAULT, keys.identity, keys.store(), tampered)
    assert received.sk != sent.sk
    with pytest.raises(AuthFailed):
        open_check(received.sk, received.ad, check_ciphertext(sent.sk, sent.ad))


@pytest.mark.parametrize("length", [0, 1087, 1089, 1568])
def test_kem_ciphertext_of_the_wrong_length_is_malformed(length: int) -> None:
    keys, _, sent = setup()
    wrong = dataclasses.replace(sent.message, kem_ciphertext=bytes(length))
    with pytest.raises(MalformedMessage):
        respond(PQ_DEFAULT, keys.identity, keys.store(), wrong)


def test_initial_message_must_carry_the_kem_part_exactly_for_pqxdh() -> None:
    keys, _, sent = setup()
    without = dataclasses.replace(sent.message, kem_prekey_id=None, kem_ciphertext=None)
    with pytest.raises(MalformedMessage):
        respond(PQ_DEFAULT, keys.identity, keys.store(), without)
    with pytest.raises(UnknownPrekey):
        respond(
            PQ_DEFAULT,
            keys.identity,
            keys.store(),
            dataclasses.replace(sent.message, kem_prekey_id=3),
        )


def test_bundle_kem_part_must_fit_the_profile() -> None:
    keys, _, _ = setup()
    bundle = keys.bundle()
    with pytest.raises(MalformedMessage):
        verify_bundle(dataclasses.replace(bundle, kem_prekey=None), PQ_DEFAULT)
    with pytest.raises(MalformedMessage):
        verify_bundle(bundle, CLASSIC)
    other = generate_kem_prekey(
        keys.identity, 9, "ML-KEM-1024", last_resort=True, rng=DrbgRandom(b"k")
    )
    with pytest.raises(InvalidPublicKey):
        verify_bundle(make_bundle(keys.identity, keys.spk, kem_prekey=other), PQ_DEFAULT)
    verify_bundle(make_bundle(keys.identity, keys.spk, kem_prekey=other), PQ_1024)


def test_kem_prekey_signature_covers_encode_kem_of_the_key() -> None:
    keys, _, _ = setup()
    bundle = keys.bundle()
    assert bundle.kem_prekey is not None
    bad = bytearray(bundle.kem_prekey.signature)
    bad[10] ^= 0x40
    with pytest.raises(InvalidSignature):
        verify_bundle(
            dataclasses.replace(
                bundle, kem_prekey=dataclasses.replace(bundle.kem_prekey, signature=bytes(bad))
            ),
            PQ_DEFAULT,
        )
    key = bytearray(bundle.kem_prekey.public)
    key[0] ^= 1
    with pytest.raises(InvalidSignature):
        verify_bundle(
            dataclasses.replace(
                bundle, kem_prekey=dataclasses.replace(bundle.kem_prekey, public=bytes(key))
            ),
            PQ_DEFAULT,
        )


def test_replayed_encapsulation_is_used_as_given_and_checked_for_length() -> None:
    keys, initiator, sent = setup()
    ct, ss = sent.intermediates.kem_ciphertext, sent.intermediates.kem_shared_secret
    assert ct is not None and ss is not None
    rng = DrbgRandom(b"replay")
    replayed = initiate(PQ_DEFAULT, initiator, keys.bundle(), rng, kem_encapsulation=(ct, ss))
    assert replayed.message.kem_ciphertext == ct and replayed.intermediates.kem_shared_secret == ss
    with pytest.raises(InvalidArgument):
        initiate(
            PQ_DEFAULT, initiator, keys.bundle(), DrbgRandom(b"r"), kem_encapsulation=(ct[:-1], ss)
        )


def test_bundle_round_trips_with_ml_kem_1024() -> None:
    keys, _, _ = setup(PQ_1024)
    bundle = keys.bundle()
    assert PrekeyBundle.from_bytes(bundle.to_bytes()) == bundle
    assert bundle.kem_prekey is not None and bundle.kem_prekey.kem == "ML-KEM-1024"


def test_consuming_is_all_or_nothing() -> None:
    keys, _, _ = setup()
    store = keys.store()
    with pytest.raises(UnknownPrekey):
        store.consume(ConsumedPrekeys(7, 3))  # the OPK exists, KEM prekey 3 does not
    assert 7 in store.one_time_prekeys and 2 in store.kem_prekeys
    after = store.consume(ConsumedPrekeys(7, 2))
    assert 7 not in after.one_time_prekeys and 2 not in after.kem_prekeys
