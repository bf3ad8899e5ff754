"""The signal-v3 profile replays libsignal v3 sessions byte for byte (spec/interop-libsignal.md).

Known answers: tests/kat/libsignal_v3_transcripts.json (two transcripts, 16 orders, copied from
libsignal-protocol-javascript test/testvectors.js) and, for the key schedule,
libsignal-kat.json's chain-key-v3-1, root-key-v2-legacy-1 (v3 HKDF outputs from
its DH intermediate) and x3dh-v3-ratcheting-session-1, copied below with their
sources. Every private key enters through ScriptedRandom or an explicit argument.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol import ratchet
from protocol.bundle import BundleOneTimePrekey, PrekeyBundle
from protocol.errors import DuplicateMessage
from protocol.padding import LEGACY_PADDING_BLOCK, pad_content, unpad_content
from protocol.prekeys import OneTimePrekey, SignedPrekey
from protocol.primitives import X25519KeyPair, hkdf_sha256, x25519
from protocol.profiles import SIGNAL_V3
from protocol.randomness import ScriptedRandom
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

KAT = json.loads((Path(__file__).parent / "kat" / "libsignal_v3_transcripts.json").read_text())
TRANSCRIPTS: dict[str, Any] = KAT["transcripts"]
INITIATOR = Address("initiator", 1)
RESPONDER = Address("responder", 1)
# Our own signed prekey is never used by these transcripts: any valid key will do.
UNUSED_SPK = [("signed_prekey[1]", bytes(range(32))), ("signed_prekey_sig_z[1]", bytes(64))]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def raw_key(encoded: str) -> bytes:
    """libsignal's 0x05 ‖ u serialization, as the raw u our API takes."""
    assert encoded[:2] == "05"
    return h(encoded[2:])


def signal_padded(content: bytes) -> bytes:
    """What the transcript's sender encrypts: Signal's padded content.

    libsignal-protocol-javascript pads with the legacy 160-byte block
    (spec/interop-libsignal.md §4); the transcripts' ciphertexts are upstream
    bytes, so replaying them checks ``pad_content`` and ``unpad_content``.
    """
    padded = pad_content(content, LEGACY_PADDING_BLOCK)
    assert unpad_content(padded) == content
    return padded


def open_device(
    side: dict[str, Any], address: Address, draws: list[tuple[str, bytes]]
) -> tuple[SessionManager, ScriptedRandom]:
    """A device made from the transcript's identity key, reopened with the order's draws."""
    store = MemoryStore()
    creation = ScriptedRandom(
        [
            ("identity_key", h(side["identity_private"])),
            ("registration_id", (side["registration_id"] - 1).to_bytes(2, "big")),
            *UNUSED_SPK,
        ]
    )
    SessionManager.create(store, address, SIGNAL_V3, now=0, rng=creation)
    creation.assert_exhausted()
    rng = ScriptedRandom(draws)
    return SessionManager(store, rng), rng


def bundle(transcript: dict[str, Any], index: int) -> PrekeyBundle:
    served = transcript["bundles"][index]
    return PrekeyBundle(
        identity_key=raw_key(served["identity_key"]),
        signed_prekey_id=served["signed_prekey_id"],
        signed_prekey=raw_key(served["signed_prekey"]),
        signed_prekey_signature=h(served["signed_prekey_signature"]),
        one_time_prekey=BundleOneTimePrekey(
            served["one_time_prekey_id"], raw_key(served["one_time_prekey"])
        ),
    )


def import_responder_prekeys(manager: SessionManager, transcript: dict[str, Any]) -> None:
    side = transcript["responder"]
    spk = SignedPrekey(
        side["signed_prekey_id"],
        X25519KeyPair.from_private(h(side["signed_prekey_private"])),
        h(transcript["bundles"][0]["signed_prekey_signature"]),
    )
    opks = tuple(
        OneTimePrekey(k["id"], X25519KeyPair.from_private(h(k["private"])))
        for k in side["one_time_prekeys"]
    )
    manager.import_prekeys(spk, opks, now=0)


def draws_of(order: list[list[Any]]) -> list[tuple[str, bytes]]:
    """The labelled draws an upstream order implies, in order (spec/interop-libsignal.md §2)."""
    out = []
    for op, _, keys in order:
        labels = (
            ["ephemeral_key", "ratchet_key"] if op == "initiate" else ["ratchet_key"] * len(keys)
        )
        out += [(label, h(key)) for label, key in zip(labels, keys, strict=True)]
    return out


def replay(name: str, order_name: str) -> ScriptedRandom:
    transcript = TRANSCRIPTS[name]
    order = transcript["orders"][order_name]
    messages = {m["id"]: m for m in transcript["messages"]}
    role = order_name.split("_")[0]
    me, peer = (INITIATOR, RESPONDER) if role == "initiator" else (RESPONDER, INITIATOR)
    manager, rng = open_device(transcript[role], me, draws_of(order))
    if role == "responder":
        import_responder_prekeys(manager, transcript)
    for op, target, _ in order:
        if op == "initiate":
            manager.initiate(peer, bundle(transcript, int(target)))
            continue
        message = messages[target]
        plaintext = signal_padded(h(message["content"]))
        if op == "send":
            assert manager.encrypt(peer, plaintext).hex() == message["bytes"], f"send {target}"
        else:
            assert manager.decrypt(peer, h(message["bytes"])) == plaintext, f"recv {target}"
    return rng


ORDERS = [(name, order) for name, t in sorted(TRANSCRIPTS.items()) for order in sorted(t["orders"])]


def test_library_reproduces_the_bundle_keys_of_the_transcripts() -> None:
    for transcript in TRANSCRIPTS.values():
        side = transcript["responder"]
        for served in transcript["bundles"]:
            ours = X25519KeyPair.from_private(h(side["identity_private"])).public
            assert ours == raw_key(served["identity_key"])
            spk = X25519KeyPair.from_private(h(side["signed_prekey_private"])).public
            assert spk == raw_key(served["signed_prekey"])
        privates = {k["id"]: k["private"] for k in side["one_time_prekeys"]}
        for served in transcript["bundles"]:
            opk = X25519KeyPair.from_private(h(privates[served["one_time_prekey_id"]])).public
            assert opk == raw_key(served["one_time_prekey"])


@pytest.mark.parametrize(("name", "order"), ORDERS, ids=[f"{n}-{o}" for n, o in ORDERS])
def test_every_upstream_order_replays_with_libsignal_wire_bytes(name: str, order: str) -> None:
    """Sends produce libsignal's bytes; receives give its plaintexts; every draw is used."""
    rng = replay(name, order)
    rng.assert_exhausted()


def test_replayed_prekey_message_is_a_duplicate_and_consumes_nothing() -> None:
    transcript = TRANSCRIPTS["standard"]
    messages = {m["id"]: m for m in transcript["messages"]}
    order = transcript["orders"]["responder_standard"]
    manager, _ = open_device(transcript["responder"], RESPONDER, draws_of(order))
    import_responder_prekeys(manager, transcript)
    for message_id in ("A", "B"):
        manager.decrypt(INITIATOR, h(messages[message_id]["bytes"]))
    with pytest.raises(DuplicateMessage):
        manager.decrypt(INITIATOR, h(messages["A"]["bytes"]))
    sent = manager.encrypt(INITIATOR, signal_padded(h(messages["C"]["content"])))
    assert sent.hex() == messages["C"]["bytes"]


# --- Key-schedule known answers (libsignal-kat.json, copied with their sources) ------------

# chain-key-v3-1: libsignal rust/protocol/src/ratchet/keys.rs test_chain_key_derivation
# (b056faa6dd02961cff24064c54c089c52e1a0753), Java ChainKeyTest.testChainKeyDerivationV3,
# C tests/test_ratchet.c test_chain_key_derivation_v3. The IV is derived, not upstream.
CHAIN_KEY_V3: dict[str, Any] = {
    "chain_key": "8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f",
    "cipher_key": "bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217",
    "mac_key": "c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b",
    "next_chain_key": "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d",
}


def test_kdf_ck_and_message_keys_match_libsignal_chain_key_vector() -> None:
    next_ck, mk = ratchet.kdf_ck(SIGNAL_V3, h(CHAIN_KEY_V3["chain_key"]))
    keys = ratchet.message_keys(SIGNAL_V3, mk)
    assert next_ck.hex() == CHAIN_KEY_V3["next_chain_key"]
    assert keys.enc_key.hex() == CHAIN_KEY_V3["cipher_key"]
    assert keys.auth_key.hex() == CHAIN_KEY_V3["mac_key"]


# root-key-v2-legacy-1: Java RootKeyTest.testRootKeyDerivationV2 (fde96d2), C
# test_root_key_derivation_v2. Upstream pins the legacy v2 HKDF; its DH output
# (computed without clamping) and the v3-HKDF outputs are derived, not upstream.
ROOT_KEY: dict[str, str] = {
    "root_key": "7ba6debc2bc1bbf91abbc1367404176ca623095b7ec66b45f602d93538942dcc",
    "dh_output_no_clamp": "3fe8266f8aaf399cc8265a47b517342b6d10f5479f4b417d8a487c28100e4f3c",
    "v3_hkdf_next_root_key": "b5ed1d685d6aac2449d1f1379ba1e67ea793c48416cccbf238dbb6cd5101efa2",
    "v3_hkdf_next_chain_key": "6d209c04bd687efb3b81f9260d2d793ff15e0adc890d13e7c82f7ec9cf71b348",
}


def test_kdf_rk_matches_libsignal_root_key_vector_from_its_dh_output() -> None:
    rk, ck, nhk = ratchet.kdf_rk(
        SIGNAL_V3, h(ROOT_KEY["root_key"]), h(ROOT_KEY["dh_output_no_clamp"])
    )
    assert (rk.hex(), ck.hex(), nhk) == (
        ROOT_KEY["v3_hkdf_next_root_key"],
        ROOT_KEY["v3_hkdf_next_chain_key"],
        None,
    )


# x3dh-v3-ratcheting-session-1: Java RatchetingSessionTest (fde96d2), C test_ratchet.c.
# Bob's side (every private key clamped); the chain key is Bob's first sending chain.
RATCHETING_SESSION: dict[str, str] = {
    "alice_identity_public": "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a",
    "alice_base_public": "05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950",
    "bob_identity_private": "4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e",
    "bob_signed_prekey_private": "583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253",
    "chain_key": "9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d",
}


def test_responder_session_starts_with_libsignal_ratcheting_session_chain_key() -> None:
    v = RATCHETING_SESSION
    alice_ik, alice_ek = raw_key(v["alice_identity_public"]), raw_key(v["alice_base_public"])
    spk = X25519KeyPair.from_private(h(v["bob_signed_prekey_private"]))
    ikm = b"\xff" * 32 + b"".join(
        [
            x25519(spk.private, alice_ik),
            x25519(h(v["bob_identity_private"]), alice_ek),
            x25519(spk.private, alice_ek),
        ]
    )
    sk = hkdf_sha256(ikm, None, SIGNAL_V3.agreement.kdf_info, SIGNAL_V3.agreement.sk_len)
    state = ratchet.init_responder(SIGNAL_V3, sk, spk)
    assert state.cks is not None and state.cks.hex() == v["chain_key"]
