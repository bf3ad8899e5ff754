"""Live: libsignal 0.103.0's first v4 message to us opens with our Kyber1024 and SPQR code.

libsignal (the ``current`` package) processes a bundle of ours whose last
resort is a Kyber1024 prekey made by ``protocol/kyber1024.py``, and sends one
PreKeySignalMessage. We then take it apart with the building blocks alone,
as spec/spqr.md and the project's notes on libsignal describe:

1. the Kyber ciphertext (field 8) decapsulates with our ML-KEM-1024 seed;
2. PQXDH as libsignal computes it gives root, chain and the SPQR
   authentication key;
3. our SPQR receiver (``pq_ratchet``, direction B2A) reads libsignal's
   field 5 and gives the message's SPQR key;
4. with it as the HKDF salt of "WhisperMessageKeys", the 8-byte MAC over
   both identity keys verifies and AES-256-CBC gives back the plaintext.

A wrong SPQR key (or any wrong step) would fail the MAC, so this checks
each building block against the real library, not against our own output.
"""

from __future__ import annotations

from libsignal_peer import Driver, LibsignalDevice

from protocol import kyber1024
from protocol.primitives import (
    aes_cbc_pkcs7_decrypt,
    hkdf_sha256,
    hmac_sha256,
    x25519,
    x25519_public_key,
)
from protocol.protobuf import Schema, read_fields
from protocol.spqr import pq_ratchet
from protocol.spqr.chain import ChainParams, Direction
from protocol.spqr.messages import MessageType, decode_message
from protocol.xeddsa import sign

PQXDH_INFO = b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024"
# PreKeySignalMessage and SignalMessage of libsignal's wire.proto (fields 1-8 and 1-6).
PREKEY_MESSAGE: Schema = {
    1: "varint",
    2: "bytes",
    3: "bytes",
    4: "bytes",
    5: "varint",
    6: "varint",
    7: "varint",
    8: "bytes",
}
SIGNAL_MESSAGE: Schema = {1: "bytes", 2: "varint", 3: "varint", 4: "bytes", 5: "bytes", 6: "bytes"}


def _ec(public: bytes) -> bytes:
    return b"\x05" + public


def test_libsignal_first_v4_message_opens_with_our_kyber_and_spqr(libsignal: Driver) -> None:
    identity, signed_prekey, kyber_seed = bytes([7]) * 32, bytes([9]) * 32, bytes([11]) * 64
    identity_public = x25519_public_key(identity)
    kyber_public = kyber1024.encode_public(kyber1024.public_key(kyber_seed))
    sender = LibsignalDevice.create(libsignal, "current", prefix="spqr-live")
    ours = {"name": libsignal.fresh_name("spqr-ours"), "device_id": 1}
    bundle = {
        "registration_id": 4321,
        "device_id": 1,
        "identity_key": _ec(identity_public).hex(),
        "signed_prekey_id": 5,
        "signed_prekey": _ec(x25519_public_key(signed_prekey)).hex(),
        "signed_prekey_signature": sign(identity, _ec(x25519_public_key(signed_prekey))).hex(),
        "prekey_id": None,
        "prekey": None,
        "kyber_prekey_id": 6,
        "kyber_prekey": kyber_public.hex(),
        "kyber_prekey_signature": sign(identity, kyber_public).hex(),
    }
    libsignal.call("process_bundle", name=sender.name, peer=ours, bundle=bundle)
    plaintext = b"post-quantum hello"
    sent = libsignal.call("encrypt", name=sender.name, peer=ours, plaintext=plaintext.hex())
    body = bytes.fromhex(sent["body"])
    assert sent["type"] == 3 and body[0] == 0x44

    outer = read_fields(body[1:], PREKEY_MESSAGE)
    assert (outer[6], outer[7]) == (5, 6) and 1 not in outer
    base_key, sender_identity = bytes(outer[2])[1:], bytes(outer[3])[1:]

    # 1-2: Kyber1024 and PQXDH (libsignal pqxdh.rs), we are the responder.
    shared = kyber1024.decapsulate(kyber_seed, kyber1024.decode_ciphertext(bytes(outer[8])))
    ikm = b"\xff" * 32 + x25519(signed_prekey, sender_identity)
    ikm += x25519(identity, base_key) + x25519(signed_prekey, base_key) + shared
    derived = hkdf_sha256(ikm, None, PQXDH_INFO, 96)
    root, auth_key = derived[:32], derived[64:]

    # 3: SPQR reads libsignal's field 5.
    inner = bytes(outer[4])
    signal = read_fields(inner[1:-8], SIGNAL_MESSAGE)
    field5 = bytes(signal[5])
    message = decode_message(field5)
    assert (message.epoch, message.index, message.type) == (1, 1, MessageType.HDR)
    spqr = pq_ratchet.initial_state(auth_key, Direction.B2A, ChainParams())
    _, spqr_key = pq_ratchet.recv(spqr, field5)
    assert spqr_key is not None

    # 4: the receiving chain after libsignal's DH ratchet step, message keys salted by SPQR.
    ratchet_key = bytes(signal[1])[1:]
    step = hkdf_sha256(x25519(signed_prekey, ratchet_key), root, b"WhisperRatchet", 64)
    seed = hmac_sha256(step[32:], b"\x01")
    keys = hkdf_sha256(seed, spqr_key, b"WhisperMessageKeys", 80)
    mac_input = _ec(sender_identity) + _ec(identity_public) + inner[:-8]
    assert hmac_sha256(keys[32:64], mac_input)[:8] == inner[-8:]
    assert aes_cbc_pkcs7_decrypt(keys[:32], keys[64:], bytes(signal[4])) == plaintext
