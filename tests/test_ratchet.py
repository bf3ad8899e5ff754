"""The Double Ratchet: delivery in any order, limits at their boundary, and every failure code.

Each failure test also checks the two halves of failure atomicity
(spec/ratchet.md §7): the state handed in is unchanged (it is immutable and
compared with a copy taken before), and the message that should have been
accepted is still accepted afterwards.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from protocol.errors import (
    AuthFailed,
    DuplicateMessage,
    InvalidArgument,
    InvalidPublicKey,
    LimitExceeded,
    MalformedMessage,
    MessageKeyEvicted,
    ProtocolError,
    TooManySkipped,
)
from protocol.profiles import CLASSIC, PQ_DEFAULT, PROFILES, SIGNAL_V3, Profile, with_limits
from protocol.randomness import ScriptedRandom
from protocol.ratchet import (
    RatchetState,
    kdf_ck,
    message_keys,
    ratchet_decrypt,
    ratchet_encrypt,
)
from protocol.wire import decode_message, encode_message, encode_signal_message
from tests.ratchet_pair import Pair, make_pair

ALL = list(PROFILES.values())
SPEC_RULES = [PQ_DEFAULT, CLASSIC]
KAT = Path(__file__).parent / "kat"


def send(pair: Pair, who: str, count: int) -> list[bytes]:
    out = []
    for i in range(count):
        state = getattr(pair, who)
        state, message = ratchet_encrypt(state, f"{who} {i}".encode(), pair.ad, pair.rng)
        setattr(pair, who, state)
        out.append(message)
    return out


def recv(pair: Pair, who: str, message: bytes) -> bytes:
    state, plaintext = ratchet_decrypt(getattr(pair, who), message, pair.ad, pair.rng)
    setattr(pair, who, state)
    return plaintext


def fails_atomically(pair: Pair, who: str, message: bytes, error: type[ProtocolError]) -> None:
    before = getattr(pair, who)
    snapshot = before._replace()
    with pytest.raises(error):
        ratchet_decrypt(before, message, pair.ad, pair.rng)
    assert before == snapshot


def small(profile: Profile, **limits: int) -> Profile:
    return with_limits(profile, **limits)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_ping_pong_over_several_dh_turns_delivers_every_message(profile: Profile) -> None:
    pair = make_pair(profile)
    for turn in range(4):
        for message in send(pair, "initiator", 2):
            assert recv(pair, "responder", message).startswith(b"initiator")
        for message in send(pair, "responder", 1 + turn):
            assert recv(pair, "initiator", message).startswith(b"responder")
    assert pair.initiator.mkskipped == {} and pair.responder.mkskipped == {}


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_reversed_delivery_within_one_chain_uses_stored_skipped_keys(profile: Profile) -> None:
    pair = make_pair(profile)
    messages = send(pair, "initiator", 4)
    for index in reversed(range(4)):
        assert recv(pair, "responder", messages[index]) == f"initiator {index}".encode()
    assert pair.responder.mkskipped == {}


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_message_delayed_across_a_dh_step_is_still_decrypted(profile: Profile) -> None:
    pair = make_pair(profile)
    first = send(pair, "initiator", 3)
    recv(pair, "responder", first[0])
    recv(pair, "initiator", send(pair, "responder", 1)[0])
    recv(pair, "responder", send(pair, "initiator", 1)[0])  # a new chain: the old one ends
    assert recv(pair, "responder", first[2]) == b"initiator 2"
    assert recv(pair, "responder", first[1]) == b"initiator 1"


@pytest.mark.parametrize("profile", SPEC_RULES, ids=lambda p: p.name)
def test_spec_rules_store_the_old_chain_keys_up_to_pn_at_the_dh_step(profile: Profile) -> None:
    pair = make_pair(profile)
    first = send(pair, "initiator", 3)
    recv(pair, "responder", first[0])
    recv(pair, "initiator", send(pair, "responder", 1)[0])
    recv(pair, "responder", send(pair, "initiator", 1)[0])
    assert len(pair.responder.mkskipped) == 2
    assert pair.responder.old_chains[-1].ck is None  # the spec deletes the old chain key


def test_libsignal_pn_is_the_last_index_and_old_chains_keep_their_key() -> None:
    pair = make_pair(SIGNAL_V3)
    first = send(pair, "initiator", 3)
    recv(pair, "responder", first[0])
    recv(pair, "initiator", send(pair, "responder", 1)[0])
    assert pair.initiator.pn == 2  # three messages sent: libsignal writes count - 1
    recv(pair, "responder", send(pair, "initiator", 1)[0])
    assert pair.responder.mkskipped == {}  # nothing skipped by PN
    assert pair.responder.old_chains[-1].ck is not None


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_replay_of_a_delivered_message_is_duplicate_and_changes_nothing(profile: Profile) -> None:
    pair = make_pair(profile)
    messages = send(pair, "initiator", 2)
    recv(pair, "responder", messages[0])
    fails_atomically(pair, "responder", messages[0], DuplicateMessage)
    recv(pair, "responder", messages[1])
    fails_atomically(pair, "responder", messages[1], DuplicateMessage)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_replay_of_a_message_from_an_old_chain_is_duplicate(profile: Profile) -> None:
    pair = make_pair(profile)
    messages = send(pair, "initiator", 2)
    recv(pair, "responder", messages[1])
    recv(pair, "responder", messages[0])  # from the skipped store
    recv(pair, "initiator", send(pair, "responder", 1)[0])
    recv(pair, "responder", send(pair, "initiator", 1)[0])
    fails_atomically(pair, "responder", messages[0], DuplicateMessage)
    fails_atomically(pair, "responder", messages[1], DuplicateMessage)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_gap_of_exactly_max_skip_is_accepted_and_one_more_is_refused(profile: Profile) -> None:
    pair = make_pair(small(profile, max_skip=5, max_stored_skipped=10))
    messages = send(pair, "initiator", 8)
    fails_atomically(pair, "responder", messages[6], TooManySkipped)  # would skip 6
    assert recv(pair, "responder", messages[5]) == b"initiator 5"  # skips exactly 5
    assert len(pair.responder.mkskipped) == 5


@pytest.mark.parametrize("profile", SPEC_RULES, ids=lambda p: p.name)
def test_pn_beyond_max_skip_is_refused_at_the_dh_step(profile: Profile) -> None:
    pair = make_pair(small(profile, max_skip=3, max_stored_skipped=10))
    first = send(pair, "initiator", 5)
    recv(pair, "responder", first[0])
    recv(pair, "initiator", send(pair, "responder", 1)[0])
    late = send(pair, "initiator", 1)[0]  # PN = 5, Nr = 1: would skip 4 of the old chain
    fails_atomically(pair, "responder", late, TooManySkipped)
    recv(pair, "responder", first[4])  # the old chain catches up (skips 3) ...
    assert recv(pair, "responder", late) == b"initiator 0"  # ... and now PN is within reach


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_evicted_key_is_reported_as_evicted_not_duplicate(profile: Profile) -> None:
    pair = make_pair(small(profile, max_skip=10, max_stored_skipped=3))
    messages = send(pair, "initiator", 6)
    recv(pair, "responder", messages[5])  # skips 0..4; 0 and 1 are evicted
    assert sorted(n for _, n in pair.responder.mkskipped) == [2, 3, 4]
    fails_atomically(pair, "responder", messages[0], MessageKeyEvicted)
    recv(pair, "responder", messages[2])
    fails_atomically(pair, "responder", messages[2], DuplicateMessage)
    fails_atomically(pair, "responder", messages[1], MessageKeyEvicted)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_chains_beyond_max_receiving_chains_are_forgotten(profile: Profile) -> None:
    pair = make_pair(small(profile, max_receiving_chains=1))
    old = send(pair, "initiator", 2)
    recv(pair, "responder", old[0])
    for _ in range(2):
        recv(pair, "initiator", send(pair, "responder", 1)[0])
        recv(pair, "responder", send(pair, "initiator", 1)[0])
    assert len(pair.responder.old_chains) == 1
    fails_atomically(pair, "responder", old[1], AuthFailed)


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1 :]


def _tampered(profile: Profile, message: bytes, field: str) -> bytes:
    """Flip one bit of the ciphertext, or of the header's n (the encrypted header's tag)."""
    parsed = decode_message(profile, message)
    header, ciphertext = parsed.header, parsed.ciphertext
    if field == "ciphertext":
        ciphertext = _flip(ciphertext, 0)
    if profile.framing.name == "signal-v3":
        assert header is not None
        if field == "header":
            header = header._replace(n=header.n ^ 1)
        return encode_signal_message(header, ciphertext) + parsed.mac
    authenticated = parsed.authenticated
    if field == "header":
        authenticated = _flip(authenticated, len(authenticated) - 1)
    return encode_message(authenticated, ciphertext)


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
@pytest.mark.parametrize("field", ["ciphertext", "header"])
def test_tampering_is_auth_failed_and_the_genuine_message_still_decrypts(
    profile: Profile, field: str
) -> None:
    pair = make_pair(profile)
    message = send(pair, "initiator", 1)[0]
    fails_atomically(pair, "responder", _tampered(profile, message, field), AuthFailed)
    assert recv(pair, "responder", message) == b"initiator 0"


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_wrong_ad_is_auth_failed(profile: Profile) -> None:
    pair = make_pair(profile)
    message = send(pair, "initiator", 1)[0]
    before = pair.responder
    with pytest.raises(AuthFailed):
        ratchet_decrypt(before, message, pair.ad[:-1] + bytes([pair.ad[-1] ^ 1]), pair.rng)
    assert recv(pair, "responder", message) == b"initiator 0"


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_truncated_tag_is_refused_without_changing_state(profile: Profile) -> None:
    pair = make_pair(profile)
    message = send(pair, "initiator", 1)[0]
    parsed = decode_message(profile, message)
    if profile.framing.name == "signal-v3":
        # The MAC has a fixed length, so the protobuf before it loses a byte: a parse error.
        truncated, error = message[:-1], MalformedMessage
    else:
        truncated, error = encode_message(parsed.authenticated, parsed.ciphertext[:-1]), AuthFailed
    fails_atomically(pair, "responder", truncated, error)
    assert recv(pair, "responder", message) == b"initiator 0"


@pytest.mark.parametrize("profile", [CLASSIC], ids=lambda p: p.name)
def test_low_order_ratchet_key_is_invalid_public_key(profile: Profile) -> None:
    pair = make_pair(profile)
    message = send(pair, "initiator", 1)[0]
    parsed = decode_message(profile, message)
    assert parsed.header is not None
    forged = encode_message(bytes(32) + parsed.authenticated[32:], parsed.ciphertext)
    fails_atomically(pair, "responder", forged, InvalidPublicKey)
    assert recv(pair, "responder", message) == b"initiator 0"


@pytest.mark.parametrize("profile", SPEC_RULES, ids=lambda p: p.name)
def test_responder_under_spec_rules_cannot_send_before_it_receives(profile: Profile) -> None:
    pair = make_pair(profile)
    with pytest.raises(InvalidArgument):
        ratchet_encrypt(pair.responder, b"too early", pair.ad, pair.rng)


def test_libsignal_responder_sends_first_on_the_signed_prekey_chain() -> None:
    pair = make_pair(SIGNAL_V3)
    message = send(pair, "responder", 1)[0]
    assert recv(pair, "initiator", message) == b"responder 0"


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_a_forged_dh_step_draws_no_randomness(profile: Profile) -> None:
    pair = make_pair(profile)
    message = send(pair, "initiator", 1)[0]
    no_draws = ScriptedRandom([])  # any draw would raise InvalidArgument
    with pytest.raises(AuthFailed):
        ratchet_decrypt(pair.responder, _flip(message, len(message) - 1), pair.ad, no_draws)


def test_header_encryption_hides_the_ratchet_key_and_counters() -> None:
    pair = make_pair(PQ_DEFAULT)
    messages = send(pair, "initiator", 2)
    assert pair.initiator.dhs.public not in messages[0]
    assert decode_message(PQ_DEFAULT, messages[0]).header is None
    headers = [decode_message(PQ_DEFAULT, m).authenticated for m in messages]
    assert headers[0] != headers[1]


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_state_repr_reveals_no_key(profile: Profile) -> None:
    pair = make_pair(profile)
    send(pair, "initiator", 2)
    state: RatchetState = pair.initiator
    text = repr(state) + repr(state.old_chains)
    secrets = [state.dhs.private, state.rk, state.cks, state.ckr, state.hks, state.nhks, state.nhkr]
    for secret in secrets:
        if secret is not None:
            assert secret.hex() not in text
    assert "redacted" in text


def test_kdf_ck_and_message_keys_match_libsignal_known_answers() -> None:
    kat = json.loads((KAT / "libsignal_chain_key.json").read_text())
    chain_key = bytes.fromhex(kat["inputs"]["chain_key"])
    next_chain_key, mk = kdf_ck(SIGNAL_V3, chain_key)
    keys = message_keys(SIGNAL_V3, mk)
    assert next_chain_key.hex() == kat["expected"]["next_chain_key"]
    assert keys.enc_key.hex() == kat["expected"]["cipher_key"]
    assert keys.auth_key.hex() == kat["expected"]["mac_key"]


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_a_message_over_the_size_limit_is_not_produced(profile: Profile) -> None:
    pair = make_pair(dataclasses.replace(profile, max_message_size=200))
    before = pair.initiator
    with pytest.raises(LimitExceeded):
        ratchet_encrypt(before, bytes(200), pair.ad, pair.rng)
    assert len(send(pair, "initiator", 1)[0]) <= 200


def test_a_sending_chain_stops_before_its_u32_counter_runs_out() -> None:
    pair = make_pair(CLASSIC)
    near_end = pair.initiator._replace(ns=2**32 - 2)
    last, message = ratchet_encrypt(near_end, b"last", pair.ad, pair.rng)
    header = decode_message(CLASSIC, message).header
    assert header is not None and header.n == 2**32 - 2
    with pytest.raises(LimitExceeded):
        ratchet_encrypt(last, b"one too many", pair.ad, pair.rng)


def test_signal_v3_needs_both_encoded_identity_keys_as_ad() -> None:
    pair = make_pair(SIGNAL_V3)
    with pytest.raises(InvalidArgument):
        ratchet_encrypt(pair.initiator, b"x", pair.ad[:33], pair.rng)


# --- The per-message input of the message-key derivation (spec/ratchet.md §2.2) -------------

STUB_SALT = bytes(range(32))


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_a_per_message_input_salts_the_message_keys_and_both_sides_must_agree(
    profile: Profile,
) -> None:
    pair = make_pair(profile)
    pair.initiator, salted = ratchet_encrypt(
        pair.initiator, b"salted", pair.ad, pair.rng, message_key_salt=STUB_SALT
    )
    fails_atomically(pair, "responder", salted, AuthFailed)  # read without the input
    state, plaintext = ratchet_decrypt(
        pair.responder, salted, pair.ad, pair.rng, message_key_salt=STUB_SALT
    )
    assert plaintext == b"salted"
    pair.responder = state
    assert recv(pair, "initiator", send(pair, "responder", 1)[0]) == b"responder 0"


@pytest.mark.parametrize("profile", ALL, ids=lambda p: p.name)
def test_the_per_message_input_is_the_hkdf_salt_of_the_message_keys(profile: Profile) -> None:
    """libsignal v4: HKDF(salt = SPQR message key, ikm = seed, "WhisperMessageKeys")."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    mk = bytes(range(100, 132))
    info = profile.cipher.message_keys_info
    length = 44 if profile.cipher.mac_len == 0 else 80
    salted = HKDF(hashes.SHA256(), length, STUB_SALT, info).derive(mk)
    plain = HKDF(hashes.SHA256(), length, None, info).derive(mk)
    keys = message_keys(profile, mk, STUB_SALT)
    assert keys.enc_key + keys.auth_key + keys.nonce == salted
    keys = message_keys(profile, mk)
    assert keys.enc_key + keys.auth_key + keys.nonce == plain != salted


def test_a_per_message_input_must_be_32_bytes() -> None:
    pair = make_pair(CLASSIC)
    with pytest.raises(InvalidArgument):
        ratchet_encrypt(pair.initiator, b"x", pair.ad, pair.rng, message_key_salt=b"short")
