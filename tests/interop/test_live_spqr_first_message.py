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
A second test has libsignal send six messages before any answer: they carry
header chunks 0-5, and our erasure decoder rebuilds the header from the
parity chunks 3-5 alone, whose MAC our authenticator then verifies.
"""

from __future__ import annotations

from libsignal_peer import PREKEY_MESSAGE, SIGNAL_MESSAGE, Driver, LibsignalDevice, pq_ratchet_field

from protocol import kyber1024
from protocol.primitives import (
    aes_cbc_pkcs7_decrypt,
    hkdf_sha256,
    hmac_sha256,
    x25519,
    x25519_public_key,
)
from protocol.protobuf import Fields, read_fields
from protocol.spqr import pq_ratchet
from protocol.spqr.chain import ChainParams, Direction
from protocol.spqr.messages import MessageType, decode_message
from protocol.spqr.states import StateName
from protocol.xeddsa import sign

PQXDH_INFO = b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024"


def _ec(public: bytes) -> bytes:
    return b"\x05" + public


class _Responder:
    """Our side's secrets, and libsignal's session towards a bundle made from them."""

    def __init__(self, libsignal: Driver) -> None:
        self.identity, self.signed_prekey = bytes([7]) * 32, bytes([9]) * 32
        self.kyber_seed = bytes([11]) * 64
        self.identity_public = x25519_public_key(self.identity)
        spk_public = _ec(x25519_public_key(self.signed_prekey))
        kyber_public = kyber1024.encode_public(kyber1024.public_key(self.kyber_seed))
        self.libsignal = libsignal
        self.sender = LibsignalDevice.create(libsignal, "current", prefix="spqr-live")
        self.ours = {"name": libsignal.fresh_name("spqr-ours"), "device_id": 1}
        bundle = {
            "registration_id": 4321,
            "device_id": 1,
            "identity_key": _ec(self.identity_public).hex(),
            "signed_prekey_id": 5,
            "signed_prekey": spk_public.hex(),
            "signed_prekey_signature": sign(self.identity, spk_public).hex(),
            "prekey_id": None,
            "prekey": None,
            "kyber_prekey_id": 6,
            "kyber_prekey": kyber_public.hex(),
            "kyber_prekey_signature": sign(self.identity, kyber_public).hex(),
        }
        libsignal.call("process_bundle", name=self.sender.name, peer=self.ours, bundle=bundle)

    def send(self, plaintext: bytes) -> bytes:
        sent = self.libsignal.call(
            "encrypt", name=self.sender.name, peer=self.ours, plaintext=plaintext.hex()
        )
        body = bytes.fromhex(sent["body"])
        assert sent["type"] == 3 and body[0] == 0x44
        return body

    def handshake(self, body: bytes) -> tuple[bytes, bytes, bytes, Fields]:
        """PQXDH as libsignal's pqxdh.rs, as the responder: (root, auth_key, sender IK, fields)."""
        outer = read_fields(body[1:], PREKEY_MESSAGE)
        assert (outer[6], outer[7]) == (5, 6) and 1 not in outer
        base_key, sender_identity = bytes(outer[2])[1:], bytes(outer[3])[1:]
        kyber_ct = kyber1024.decode_ciphertext(bytes(outer[8]))
        shared = kyber1024.decapsulate(self.kyber_seed, kyber_ct)
        ikm = b"\xff" * 32 + x25519(self.signed_prekey, sender_identity)
        ikm += x25519(self.identity, base_key) + x25519(self.signed_prekey, base_key) + shared
        derived = hkdf_sha256(ikm, None, PQXDH_INFO, 96)
        return (
            derived[:32],
            derived[64:],
            sender_identity,
            read_fields(bytes(outer[4])[1:-8], SIGNAL_MESSAGE),
        )

    def open(self, body: bytes, spqr_key: bytes, root: bytes, sender_identity: bytes) -> bytes:
        """Verify the MAC and decrypt with the message key of the message's counter."""
        inner = bytes(read_fields(body[1:], PREKEY_MESSAGE)[4])
        signal = read_fields(inner[1:-8], SIGNAL_MESSAGE)
        ratchet_key = bytes(signal[1])[1:]
        step = hkdf_sha256(x25519(self.signed_prekey, ratchet_key), root, b"WhisperRatchet", 64)
        chain_key = step[32:]
        for _ in range(int(signal[2])):
            chain_key = hmac_sha256(chain_key, b"\x02")
        seed = hmac_sha256(chain_key, b"\x01")
        keys = hkdf_sha256(seed, spqr_key, b"WhisperMessageKeys", 80)
        mac_input = _ec(sender_identity) + _ec(self.identity_public) + inner[:-8]
        assert hmac_sha256(keys[32:64], mac_input)[:8] == inner[-8:]
        return aes_cbc_pkcs7_decrypt(keys[:32], keys[64:], bytes(signal[4]))


def test_libsignal_first_v4_message_opens_with_our_kyber_and_spqr(libsignal: Driver) -> None:
    responder = _Responder(libsignal)
    plaintext = b"post-quantum hello"
    body = responder.send(plaintext)
    root, auth_key, sender_identity, signal = responder.handshake(body)

    field5 = bytes(signal[5])
    message = decode_message(field5)
    assert (message.epoch, message.index, message.type) == (1, 1, MessageType.HDR)
    spqr = pq_ratchet.initial_state(auth_key, Direction.B2A, ChainParams())
    _, spqr_key = pq_ratchet.recv(spqr, field5)
    assert spqr_key is not None
    assert responder.open(body, spqr_key, root, sender_identity) == plaintext


def test_libsignal_header_decodes_from_its_parity_chunks_and_its_mac_verifies(
    libsignal: Driver,
) -> None:
    """Six unanswered messages carry header chunks 0-5; chunks 3-5 are erasure-code parity."""
    responder = _Responder(libsignal)
    bodies = [responder.send(bytes([n]) * 20) for n in range(6)]
    root, auth_key, sender_identity, _ = responder.handshake(bodies[0])
    chunks = [decode_message(pq_ratchet_field("prekey", body)).chunk for body in bodies]
    assert [c.index for c in chunks if c is not None] == [0, 1, 2, 3, 4, 5]
    for delivered in (range(3), range(3, 6)):  # the systematic chunks, then only parity
        spqr = pq_ratchet.initial_state(auth_key, Direction.B2A, ChainParams())
        for n in delivered:
            spqr, spqr_key = pq_ratchet.recv(spqr, pq_ratchet_field("prekey", bodies[n]))
            assert spqr_key is not None
            assert responder.open(bodies[n], spqr_key, root, sender_identity) == bytes([n]) * 20
        # the header decoded and its MAC verified under our authenticator
        assert spqr.braid.name == StateName.HEADER_RECEIVED
