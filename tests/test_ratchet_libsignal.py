"""signal-v3 reproduces libsignal's v3 session transcript byte for byte at the ratchet level.

The transcript (tests/kat/libsignal_v3_ratchet_transcript.json) comes from
libsignal-protocol-javascript test/testvectors.js. SK is the X3DH v3 master
secret: HKDF-SHA256(0xFF*32 ‖ DH1 ‖ DH2 ‖ DH3 ‖ DH4, salt zeros, "WhisperText", 64)
(X3DH §2.2 with libsignal's constants; spec/x3dh.md §8). Each side decrypts
the other's messages with its recorded ratchet keys, and re-encrypting the
recovered plaintext must give the published bytes: the KDFs, PN = count - 1,
the CBC keys and IV, the protobuf field order and the 8-byte MAC over
IK_sender ‖ IK_receiver all agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocol.encoding import encode_ec
from protocol.primitives import X25519KeyPair, hkdf_sha256, x25519
from protocol.profiles import SIGNAL_V3
from protocol.randomness import ScriptedRandom
from protocol.ratchet import init_initiator, init_responder, ratchet_decrypt, ratchet_encrypt
from protocol.wire import decode_prekey_message

KAT = json.loads(
    (Path(__file__).parent / "kat" / "libsignal_v3_ratchet_transcript.json").read_text()
)


def _pair(hexkey: str) -> X25519KeyPair:
    return X25519KeyPair.from_private(bytes.fromhex(hexkey))


def _keys(role: str) -> list[tuple[str, bytes]]:
    return [("ratchet_key", bytes.fromhex(k)) for k in KAT[role]["ratchet_privates"]]


def _x3dh_v3(initiator: dict[str, Any], responder: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    ik_a, ek_a = _pair(initiator["identity_private"]), _pair(initiator["base_private"])
    ik_b, spk = _pair(responder["identity_private"]), _pair(responder["signed_prekey_private"])
    opk = _pair(responder["one_time_prekey_private"])
    dhs = [(ik_a, spk), (ek_a, ik_b), (ek_a, spk), (ek_a, opk)]
    master = b"\xff" * 32 + b"".join(x25519(a.private, b.public) for a, b in dhs)
    sk = hkdf_sha256(master, None, b"WhisperText", 64)
    return sk, encode_ec(ik_a.public) + encode_ec(ik_b.public), spk.public


def test_signal_v3_ratchet_reproduces_the_libsignal_transcript() -> None:
    sk, ad, spk_public = _x3dh_v3(KAT["initiator"], KAT["responder"])
    spk = _pair(KAT["responder"]["signed_prekey_private"])
    messages = {m["id"]: bytes.fromhex(m["bytes"]) for m in KAT["messages"]}
    inner = {i: decode_prekey_message(SIGNAL_V3, messages[i]).message for i in "AB"}
    initiator_rng, responder_rng = (
        ScriptedRandom(_keys("initiator")),
        ScriptedRandom(_keys("responder")),
    )
    initiator = init_initiator(SIGNAL_V3, sk, spk_public, initiator_rng)
    responder = init_responder(SIGNAL_V3, sk, spk)
    for name in "AB":
        responder, plaintext = ratchet_decrypt(responder, inner[name], ad, responder_rng)
        initiator, sent = ratchet_encrypt(initiator, plaintext, ad, initiator_rng)
        assert sent == inner[name]
    for name in "CD":
        initiator, plaintext = ratchet_decrypt(initiator, messages[name], ad, initiator_rng)
        responder, sent = ratchet_encrypt(responder, plaintext, ad, responder_rng)
        assert sent == messages[name]
    responder, plaintext = ratchet_decrypt(responder, messages["E"], ad, responder_rng)
    initiator, sent = ratchet_encrypt(initiator, plaintext, ad, initiator_rng)
    assert sent == messages["E"]
    assert initiator.pn == 1  # two messages (A, B) in the previous chain: libsignal writes 1
    initiator_rng.assert_exhausted()
    responder_rng.assert_exhausted()
