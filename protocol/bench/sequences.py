"""The primitive sequences our operations perform: what each floor repeats.

Each function lists, in order, the ``floor.py`` steps (pyca calls) that one
of our operations makes, and names the functions of ours that make them.
When those functions change their primitive calls, the sequence here must
change with them, or the floor no longer measures the same work.
"""

from __future__ import annotations

from protocol.profiles import Profile

# --- Handshake: verify_bundle + x3dh.initiate + x3dh.respond + the first message ----------


def handshake_sequence(profile: Profile) -> list[str]:
    """bundle.verify_bundle, x3dh.initiate, x3dh.respond, then the first message each way.

    verify_bundle: one XEdDSA verify per signature (SPK, and PQSPK for PQXDH).
    initiate: the ephemeral key, DH1-DH3 and DH4, ML-KEM encapsulation, KDF.
    respond: the torsion check of EK_A (one X25519 call with a cached key
    object, ``curve25519.is_torsion_free``), DH1-DH4, ML-KEM decapsulation, KDF.
    Then the ratchet's first message (``_first_message_sequence``).
    """
    kem = profile.kem is not None
    initiator = ["verify", *(["verify"] if kem else []), "keygen", "dh", "dh", "dh", "dh"]
    initiator += [*(["encaps"] if kem else []), "kdf_sk"]
    responder = ["torsion_check", "dh", "dh", "dh", "dh", *(["decaps"] if kem else []), "kdf_sk"]
    return initiator + responder + _first_message_sequence(profile)


def _first_message_sequence(profile: Profile) -> list[str]:
    """ratchet.init_initiator + ratchet_encrypt, init_responder + ratchet_decrypt."""
    initial = ["kdf_initial"] if profile.chains.initial_keys_info else []
    header = profile.headers.encrypted
    send = [*initial, "keygen", "dh", "kdf_rk", "hmac", "hmac", "message_keys", "seal"]
    send += ["header_seal"] if header else []
    receive = [*initial, *(["header_open"] if header else []), *_dh_step(), *_chain_step("open")]
    return send + receive


def _dh_step() -> list[str]:
    """DHRatchet on receipt (Double Ratchet §3.5): two DH outputs, two KDF_RK, one new key pair."""
    return ["dh", "kdf_rk", "keygen", "dh", "kdf_rk"]


def _chain_step(aead: str) -> list[str]:
    """KDF_CK (two HMACs), the message keys (one HKDF) and the message AEAD."""
    return ["hmac", "hmac", "message_keys", aead]


def pingpong_sequence(profile: Profile) -> list[str]:
    """ratchet_encrypt then ratchet_decrypt of a message that starts a new DH turn.

    With header encryption the receiver first tries HKr (fails), then NHKr.
    """
    header = profile.headers.encrypted
    send = [*_chain_step("seal"), *(["header_seal"] if header else [])]
    trial = ["header_open_fails", "header_open"] if header else []
    return send + trial + _dh_step() + _chain_step("open")


def burst_sequence(profile: Profile) -> list[str]:
    """ratchet_encrypt then ratchet_decrypt of the next message on the same chain."""
    header = ["header_seal", "header_open"] if profile.headers.encrypted else []
    return _chain_step("seal") + header + _chain_step("open")
