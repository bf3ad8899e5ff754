"""Contributory 1:1 call keys: both sides agree, keys are directional and bound to identities."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from callkeys_harness import CALL_ID, Clock

from protocol.errors import AuthFailed, InvalidPublicKey, MalformedMessage, NotInCall
from protocol.media.callkeys import CallReceiver, CallSender
from protocol.media.contributory import (
    CALL_SECRET_LABELS,
    CallKeys,
    answer_offer,
    call_secret,
    complete_offer,
    create_offer,
)
from protocol.media.messages import decode_call_offer, encode_call_offer
from protocol.media.sframe import CipherSuite
from protocol.primitives import X25519KeyPair
from protocol.profiles import CLASSIC, PQ_DEFAULT, Profile
from protocol.randomness import DrbgRandom

CALLER_IK = X25519KeyPair.from_private(bytes([1] * 32)).public
CALLEE_IK = X25519KeyPair.from_private(bytes([2] * 32)).public


def _agree(profile: Profile, seed: bytes = b"c") -> tuple[CallKeys, CallKeys]:
    rng = DrbgRandom(seed)
    secret, offer = create_offer(profile, CALL_ID, rng=rng)
    callee, answer = answer_offer(profile, offer, CALLER_IK, CALLEE_IK, rng=rng)
    caller = complete_offer(profile, secret, answer, CALLER_IK, CALLEE_IK)
    return caller, callee


@pytest.mark.parametrize("profile", [PQ_DEFAULT, CLASSIC], ids=lambda p: p.name)
def test_caller_and_callee_agree_on_two_distinct_directional_keys(profile: Profile) -> None:
    caller, callee = _agree(profile)
    assert caller.send_base_key == callee.receive_base_key
    assert caller.receive_base_key == callee.send_base_key
    assert caller.send_base_key != caller.receive_base_key
    assert len(caller.send_base_key) == 32


def test_only_the_post_quantum_profile_puts_a_kem_key_in_the_offer() -> None:
    _, pq_offer = create_offer(PQ_DEFAULT, CALL_ID, rng=DrbgRandom(b"o"))
    _, classic_offer = create_offer(CLASSIC, CALL_ID, rng=DrbgRandom(b"o"))
    pq_kem = decode_call_offer(pq_offer).kem_pub
    assert pq_kem is not None and len(pq_kem) == 1184
    assert decode_call_offer(classic_offer).kem_pub is None


def _hkdf_sha256(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with the standard library, independent of the project's HKDF."""
    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def test_call_secret_is_hkdf_over_the_label_and_both_encoded_identity_keys() -> None:
    ikm = bytes(range(32))
    info = b"E2EERef_CallSecret_X25519_SHA-256" + b"\x05" + CALLER_IK + b"\x05" + CALLEE_IK
    expected = _hkdf_sha256(ikm, info, 64)
    assert call_secret(CLASSIC, CipherSuite(4), ikm, CALLER_IK, CALLEE_IK) == (
        expected[:32],
        expected[32:],
    )
    assert CALL_SECRET_LABELS[CLASSIC.kem] == info[:33]


def test_suite_5_splits_two_64_byte_keys() -> None:
    caller, _ = call_secret(CLASSIC, CipherSuite(5), bytes(32), CALLER_IK, CALLEE_IK)
    assert len(caller) == 64


def test_keys_differ_when_the_callee_assumes_another_caller_identity() -> None:
    rng = DrbgRandom(b"i")
    secret, offer = create_offer(CLASSIC, CALL_ID, rng=rng)
    impostor_ik = X25519KeyPair.from_private(bytes([3] * 32)).public
    callee, answer = answer_offer(CLASSIC, offer, impostor_ik, CALLEE_IK, rng=rng)
    caller = complete_offer(CLASSIC, secret, answer, CALLER_IK, CALLEE_IK)
    assert caller.send_base_key != callee.receive_base_key


def test_a_tampered_kem_ciphertext_yields_keys_that_decrypt_nothing() -> None:
    rng = DrbgRandom(b"k")
    secret, offer = create_offer(PQ_DEFAULT, CALL_ID, rng=rng)
    callee, answer = answer_offer(PQ_DEFAULT, offer, CALLER_IK, CALLEE_IK, rng=rng)
    tampered = bytearray(answer)
    tampered[-1] ^= 0x01  # the last byte of the KEM ciphertext
    caller = complete_offer(PQ_DEFAULT, secret, bytes(tampered), CALLER_IK, CALLEE_IK)
    sender, _ = CallSender.start(
        CALL_ID, "callee", ["caller"], clock=Clock(), base_key=callee.send_base_key
    )
    receiver = CallReceiver(CALL_ID, "caller", ["callee"], clock=Clock())
    receiver.install("callee", caller.peer_media_key("callee"))
    with pytest.raises(AuthFailed):
        receiver.decrypt("callee", sender.encrypt(b"frame"))


def test_frames_flow_both_ways_under_the_agreed_keys_without_any_media_key_message() -> None:
    caller, callee = _agree(PQ_DEFAULT)
    clock = Clock()
    ends = {}
    for me, peer, keys in (("caller", "callee", caller), ("callee", "caller", callee)):
        sender, deliveries = CallSender.start(
            CALL_ID, me, [peer], clock=clock, base_key=keys.send_base_key
        )
        assert deliveries == []
        receiver = CallReceiver(CALL_ID, me, [peer], clock=clock)
        receiver.install(peer, keys.peer_media_key(peer))
        ends[me] = (sender, receiver)
    assert ends["callee"][1].decrypt("caller", ends["caller"][0].encrypt(b"hi")) == b"hi"
    assert ends["caller"][1].decrypt("callee", ends["callee"][0].encrypt(b"yo")) == b"yo"


def test_an_answer_for_another_call_is_refused() -> None:
    rng = DrbgRandom(b"a")
    secret, _ = create_offer(CLASSIC, CALL_ID, rng=rng)
    _, other_offer = create_offer(CLASSIC, bytes(16), rng=rng)
    _, answer = answer_offer(CLASSIC, other_offer, CALLER_IK, CALLEE_IK, rng=rng)
    with pytest.raises(NotInCall):
        complete_offer(CLASSIC, secret, answer, CALLER_IK, CALLEE_IK)


def test_an_offer_without_the_profiles_kem_key_is_malformed() -> None:
    _, classic_offer = create_offer(CLASSIC, CALL_ID, rng=DrbgRandom(b"m"))
    with pytest.raises(MalformedMessage):
        answer_offer(PQ_DEFAULT, classic_offer, CALLER_IK, CALLEE_IK, rng=DrbgRandom(b"n"))


def test_a_low_order_ephemeral_key_is_refused() -> None:
    _, offer = create_offer(CLASSIC, CALL_ID, rng=DrbgRandom(b"l"))
    parsed = decode_call_offer(offer)
    bad = encode_call_offer(
        type(parsed)(parsed.call_id, parsed.cipher_suite, bytes(32), parsed.kem_pub)
    )
    with pytest.raises(InvalidPublicKey):
        answer_offer(CLASSIC, bad, CALLER_IK, CALLEE_IK, rng=DrbgRandom(b"l"))


def test_offer_secret_and_call_keys_never_show_key_material() -> None:
    secret, _ = create_offer(CLASSIC, CALL_ID, rng=DrbgRandom(b"r"))
    caller, _ = _agree(CLASSIC)
    assert secret.ephemeral.private.hex() not in repr(secret)
    assert caller.send_base_key.hex() not in repr(caller)
    assert caller.receive_base_key.hex() not in repr(caller)
