"""The primitive sequences our operations perform: what each floor repeats.

Each function lists, in order, the ``floor.py`` steps (pyca calls) that one
of our operations makes, and names the functions of ours that make them.
When those functions change their primitive calls, the sequence here must
change with them, or the floor no longer measures the same work.

``signal-v4`` runs SPQR beside the Double Ratchet (``triple_ratchet.py``).
SPQR's pyca calls are listed too: its chain's HKDFs on every message, and,
once per epoch, the ML-KEM-768 key generation and decapsulation, the
authenticator's HKDFs and MACs and the chain's new epoch. Its hand-written
steps, the incremental ML-KEM-768 encapsulation (``spqr/kpke.py``) and the
erasure code, are Python and are in no floor (README.md "Performance").
"""

from __future__ import annotations

from protocol.profiles import Profile

# --- Handshake: verify_bundle + x3dh.initiate + x3dh.respond + the first message ----------


def handshake_sequence(profile: Profile) -> list[str]:
    """bundle.verify_bundle, x3dh.initiate, x3dh.respond, then the first message each way.

    verify_bundle: one XEdDSA verify per signature (SPK, and PQSPK for PQXDH).
    initiate: the ephemeral key, DH1-DH3 and DH4, KEM encapsulation, KDF.
    respond: the torsion check of EK_A (one X25519 call with a cached key
    object, ``curve25519.is_torsion_free``), DH1-DH4, KEM decapsulation, KDF.
    Then the ratchets' start and first message (``_first_message_sequence``).
    """
    kem = profile.kem is not None
    initiator = ["verify", *(["verify"] if kem else []), "keygen", "dh", "dh", "dh", "dh"]
    initiator += [*(["encaps"] if kem else []), "kdf_sk"]
    responder = ["torsion_check", "dh", "dh", "dh", "dh", *(["decaps"] if kem else []), "kdf_sk"]
    return initiator + responder + _first_message_sequence(profile)


def _first_message_sequence(profile: Profile) -> list[str]:
    """triple_ratchet.init_initiator + encrypt, init_responder + decrypt.

    With SPQR (``pq_ratchet``): each side's ``initial_state`` (the
    authenticator's and the chain's start), the initiator's first ``send``
    (epoch 1's ML-KEM-768 key pair, the header MAC, a sending key) and the
    responder's ``recv`` (a receiving key).
    """
    initial = ["kdf_initial"] if profile.chains.initial_keys_info else []
    header = profile.headers.encrypted
    spqr_start = ["spqr_auth_update", "spqr_chain_start"] if profile.spqr else []
    spqr_send = ["spqr_keygen", "spqr_mac_hdr", "spqr_chain_key"] if profile.spqr else []
    spqr_receive = ["spqr_chain_key"] if profile.spqr else []
    send = [*initial, "keygen", "dh", "kdf_rk", *spqr_start, *spqr_send]
    send += ["hmac", "hmac", "message_keys", "seal", *(["header_seal"] if header else [])]
    receive = [*initial, *spqr_start, *(["header_open"] if header else []), *spqr_receive]
    return send + receive + _dh_step() + _chain_step("open")


def _dh_step() -> list[str]:
    """DHRatchet on receipt (DR §3.5): two DH outputs, two KDF_RK, one new key pair."""
    return ["dh", "kdf_rk", "keygen", "dh", "kdf_rk"]


def _chain_step(aead: str) -> list[str]:
    """KDF_CK (two HMACs), the message keys (one HKDF) and the message AEAD."""
    return ["hmac", "hmac", "message_keys", aead]


def _spqr_message(profile: Profile) -> list[str]:
    """pq_ratchet.send and recv of a message: one SPQR chain key each (``chain_next``)."""
    return ["spqr_chain_key", "spqr_chain_key"] if profile.spqr else []


def pingpong_sequence(profile: Profile) -> list[str]:
    """(triple_ratchet.)encrypt then decrypt of a message that starts a new DH turn.

    With header encryption the receiver first tries HKr (fails), then NHKr.
    """
    header = profile.headers.encrypted
    send = [*_chain_step("seal"), *(["header_seal"] if header else [])]
    trial = ["header_open_fails", "header_open"] if header else []
    return _spqr_message(profile) + send + trial + _dh_step() + _chain_step("open")


def spqr_epoch_sequence() -> list[str]:
    """The pyca calls of one SPQR epoch beyond its messages' chain keys (spqr/states.py).

    The side sending the key: ``generate`` (ML-KEM-768 KeyGen from a seed)
    and ``mac_hdr``; then, when ct2 is complete, ``decaps``, the epoch
    secret, ``authenticator_update``, ``verify_ct`` and ``chain_add_epoch``.
    The side sending the ciphertext: ``verify_hdr``; at ``encaps1`` the
    epoch secret, ``authenticator_update`` and ``chain_add_epoch``; at
    ``encaps2`` ``mac_ct``.
    """
    key_side = ["spqr_keygen", "spqr_mac_hdr"]
    ct_side = ["spqr_mac_hdr", "spqr_epoch_secret", "spqr_auth_update", "spqr_add_epoch"]
    ct_side += ["spqr_mac_ct"]
    key_side += ["spqr_decaps", "spqr_epoch_secret", "spqr_auth_update", "spqr_mac_ct"]
    key_side += ["spqr_add_epoch"]
    return key_side + ct_side


def epoch_pingpong_sequence(profile: Profile, messages: int) -> list[str]:
    """One SPQR epoch of ``messages`` ping-pong messages: every message, and the epoch's calls."""
    return pingpong_sequence(profile) * messages + spqr_epoch_sequence()


def burst_sequence(profile: Profile) -> list[str]:
    """(triple_ratchet.)encrypt then decrypt of the next message on the same chain."""
    header = ["header_seal", "header_open"] if profile.headers.encrypted else []
    return _spqr_message(profile) + _chain_step("seal") + header + _chain_step("open")


def burst_unit_sequence(profile: Profile, length: int) -> list[str]:
    """A burst of ``length`` messages on a chain whose SPQR header is not yet complete.

    With SPQR the responder completes epoch 1's header during the burst (the
    initiator sends it in three chunks, one per message) and checks its MAC
    (``verify_hdr``); nothing else of the epoch happens while only one side
    sends.
    """
    return burst_sequence(profile) * length + (["spqr_mac_hdr"] if profile.spqr else [])
