"""Wrapper behaviour the protocols rely on: key checks, error mapping, redaction."""

import pytest

from protocol.errors import AuthFailed, InvalidPublicKey, MalformedMessage
from protocol.primitives import (
    P25519,
    X25519KeyPair,
    aes_cbc_pkcs7_decrypt,
    aes_cbc_pkcs7_encrypt,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    check_x25519_public,
    clamp_scalar,
    kem_decapsulate,
    kem_encapsulate,
    kem_public_key,
    x25519,
)
from protocol.store import dump_state, load_state

LOW_ORDER = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    P25519 - 1,
]


@pytest.mark.parametrize("u", LOW_ORDER)
def test_low_order_public_keys_are_refused(u: int) -> None:
    with pytest.raises(InvalidPublicKey):
        check_x25519_public(u.to_bytes(32, "little"))
    with pytest.raises(InvalidPublicKey):
        x25519(bytes(range(32)), u.to_bytes(32, "little"))


@pytest.mark.parametrize("u", [P25519, P25519 + 9, 2**255 + 9])
def test_non_canonical_public_keys_are_refused(u: int) -> None:
    with pytest.raises(InvalidPublicKey):
        check_x25519_public(u.to_bytes(32, "little"))


def test_x25519_is_symmetric_and_refuses_wrong_lengths() -> None:
    a, b = X25519KeyPair.from_private(b"\x01" * 32), X25519KeyPair.from_private(b"\x02" * 32)
    assert x25519(a.private, b.public) == x25519(b.private, a.public)
    with pytest.raises(InvalidPublicKey):
        x25519(a.private, b.public[:31])


def test_clamping_follows_rfc7748() -> None:
    clamped = clamp_scalar(b"\xff" * 32)
    assert clamped[0] == 0xF8 and clamped[31] == 0x7F
    assert clamp_scalar(bytes(32))[31] == 0x40


def test_key_pair_repr_hides_the_private_key() -> None:
    pair = X25519KeyPair.from_private(bytes(range(32)))
    assert pair.private.hex() not in repr(pair) and "redacted" in repr(pair)


def test_aead_failures_are_auth_failed() -> None:
    key, nonce = bytes(32), bytes(12)
    sealed = aes_gcm_encrypt(key, nonce, b"hello", b"ad")
    assert aes_gcm_decrypt(key, nonce, sealed, b"ad") == b"hello"
    with pytest.raises(AuthFailed):
        aes_gcm_decrypt(key, nonce, sealed, b"other ad")
    with pytest.raises(AuthFailed):
        aes_cbc_pkcs7_decrypt(key, bytes(16), b"\x00" * 15)
    ciphertext = aes_cbc_pkcs7_encrypt(key, bytes(16), b"x")
    assert aes_cbc_pkcs7_decrypt(key, bytes(16), ciphertext) == b"x"


@pytest.mark.parametrize("kem", ["ML-KEM-768", "ML-KEM-1024"])
def test_ml_kem_from_seed_decapsulates_and_refuses_bad_lengths(kem: str) -> None:
    seed = bytes(range(64))
    public = kem_public_key(kem, seed)  # type: ignore[arg-type]
    ciphertext, shared = kem_encapsulate(kem, public)  # type: ignore[arg-type]
    assert kem_decapsulate(kem, seed, ciphertext) == shared  # type: ignore[arg-type]
    with pytest.raises(MalformedMessage):
        kem_decapsulate(kem, seed, ciphertext[:-1])  # type: ignore[arg-type]
    with pytest.raises(InvalidPublicKey):
        kem_encapsulate(kem, public[:-1])  # type: ignore[arg-type]


def test_key_pair_exchange_equals_x25519_and_its_cached_key_object_is_not_state() -> None:
    built = X25519KeyPair.from_private(b"\x03" * 32)
    loaded = X25519KeyPair(built.private, built.public)  # as the store rebuilds it
    peer = X25519KeyPair.from_private(b"\x04" * 32).public
    assert built.exchange(peer) == loaded.exchange(peer) == x25519(built.private, peer)
    assert built == loaded and repr(built) == repr(loaded)
    assert dump_state(built) == dump_state(X25519KeyPair(built.private, built.public))
    assert load_state(X25519KeyPair, dump_state(built)) == built
