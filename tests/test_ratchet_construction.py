"""The first messages of pq-default and classic follow spec/ratchet.md and
spec/header-encryption.md formula by formula.

No public known answers exist for these profiles (libsignal has no header
encryption and other labels), so these tests recompute the initiator's
first message from the documents with pyca calls made here, independently
of protocol.ratchet, and compare bytes. signal-v3 is pinned by libsignal's
own transcript instead (tests/test_ratchet_libsignal.py).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from protocol.profiles import CLASSIC, PQ_DEFAULT
from protocol.randomness import ScriptedRandom
from protocol.ratchet import init_initiator, ratchet_encrypt

SK = bytes(range(32))
RESPONDER_PRIVATE = bytes(range(32, 64))
INITIATOR_RATCHET = bytes(range(64, 96))
HEADER_SALT = bytes(range(96, 112))
AD = b"\x05" + bytes(32) + b"\x05" + bytes(range(1, 33))
PLAINTEXT = b"first message"


def _hkdf(ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = pyca_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def _dh(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(public)
    )


def _public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _bin8(data: bytes) -> bytes:
    return bytes([0xC4, len(data)]) + data


def _first_message(header_bytes: bytes, ciphertext: bytes) -> bytes:
    """spec/wire.md §2.2: 01 01, then the msgpack map {"h": header, "c": ciphertext}."""
    return b"\x01\x01\x82\xa1h" + _bin8(header_bytes) + b"\xa1c" + _bin8(ciphertext)


def _sending_chain(
    info: bytes, length: int, kdf_rk_length: int, kdf_rk_info: bytes
) -> tuple[bytes, bytes]:
    """spec/ratchet.md §1.1, §2: initial keys, then KDF_RK(RK, DH(DHs, DHr)).

    Returns CKs and what the initial HKDF gave after RK (the header keys).
    """
    initial = _hkdf(SK, None, info, length)
    dh_out = _dh(INITIATOR_RATCHET, _public(RESPONDER_PRIVATE))
    out = _hkdf(dh_out, initial[:32], kdf_rk_info, kdf_rk_length)
    return out[32:64], initial[32:]


def _sealed(cks: bytes, message_keys_info: bytes, aad: bytes) -> bytes:
    """KDF_CK, then the message keys and AES-256-GCM of spec/ratchet.md §2.1."""
    mk = _hmac(cks, b"\x01")
    keys = _hkdf(mk, None, message_keys_info, 44)
    return AESGCM(keys[:32]).encrypt(keys[32:], PLAINTEXT, aad)


def test_classic_first_message_follows_the_spec_formulas() -> None:
    profile = CLASSIC
    cks, _ = _sending_chain(profile.chains.initial_keys_info, 32, 64, profile.chains.kdf_rk_info)
    header = _public(INITIATOR_RATCHET) + bytes(8)  # dh ‖ pn = 0 ‖ n = 0
    expected = _first_message(header, _sealed(cks, profile.cipher.message_keys_info, AD + header))
    state = init_initiator(
        profile,
        SK,
        _public(RESPONDER_PRIVATE),
        ScriptedRandom([("ratchet_key", INITIATOR_RATCHET)]),
    )
    _, message = ratchet_encrypt(state, PLAINTEXT, AD, ScriptedRandom([]))
    assert message == expected


def test_pq_default_first_message_follows_the_spec_formulas() -> None:
    profile = PQ_DEFAULT
    cks, header_keys = _sending_chain(
        profile.chains.initial_keys_info, 96, 96, profile.chains.kdf_rk_info
    )
    hks = header_keys[:32]  # shared_hka (spec/header-encryption.md §1)
    header = _public(INITIATOR_RATCHET) + bytes(8)
    subkey = HKDFExpand(hashes.SHA256(), 32, profile.headers.header_keys_info + HEADER_SALT).derive(
        hks
    )
    enc_header = HEADER_SALT + AESGCM(subkey).encrypt(bytes(12), header, b"")
    expected = _first_message(
        enc_header, _sealed(cks, profile.cipher.message_keys_info, AD + enc_header)
    )
    state = init_initiator(
        profile,
        SK,
        _public(RESPONDER_PRIVATE),
        ScriptedRandom([("ratchet_key", INITIATOR_RATCHET)]),
    )
    _, message = ratchet_encrypt(
        state, PLAINTEXT, AD, ScriptedRandom([("header_nonce", HEADER_SALT)])
    )
    assert message == expected
