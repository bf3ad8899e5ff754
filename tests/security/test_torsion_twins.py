"""A replayed initial message stays a replay under every base-key encoding: spec/security.md §3.8.

X25519 clamps scalars to multiples of the cofactor, so the eight
u-coordinates of EK_A + T, T in E[8], give the responder the same SK. EK_A is
covered by no signature or MAC, so without a one-time prekey (which the relay
can drain) a relay could re-deliver an answered initial message once per
twin, and push the genuine session out of the record with them. The
responder accepts only the torsion-free encoding (x3dh.respond) and reads a
twin of a known base key as DUPLICATE_MESSAGE (spec/x3dh.md §5.3).
"""

from __future__ import annotations

import dataclasses
from typing import Final

import pytest
from security_harness import snapshot

from protocol import wire
from protocol.curve25519 import is_torsion_free, same_up_to_torsion
from protocol.errors import DuplicateMessage, InvalidPublicKey, ProtocolError
from protocol.primitives import (
    LOW_ORDER_U,
    P25519,
    check_x25519_public,
    x25519,
    x25519_public_key,
)
from protocol.profiles import ALL_PROFILES
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore
from tests.curve25519_reference import ORDER_8_U, torsion_twins

INITIATOR: Final = Address("initiator", 1)
RESPONDER: Final = Address("responder", 1)


def test_the_eight_twins_are_valid_keys_with_one_shared_secret() -> None:
    """The attack's premise: eight distinct keys that pass the public-key checks and agree."""
    assert ORDER_8_U in LOW_ORDER_U
    rng = DrbgRandom(b"twins premise")
    ephemeral = x25519_public_key(rng.draw("ephemeral", 32))
    twins = torsion_twins(ephemeral)
    assert twins[0] == ephemeral
    assert len(set(twins)) == 8
    other_private = rng.draw("other", 32)
    outputs = {x25519(other_private, check_x25519_public(twin)) for twin in twins}
    assert outputs == {x25519(other_private, ephemeral)}
    # Adding the point of order 2 (i = 4) maps u to 1/u.
    assert int.from_bytes(twins[4], "little") == pow(
        int.from_bytes(ephemeral, "little"), -1, P25519
    )


def test_only_the_genuine_encoding_is_torsion_free_and_all_are_twins() -> None:
    for seed in range(4):
        ephemeral = x25519_public_key(DrbgRandom(bytes([seed])).draw("k", 32))
        twins = torsion_twins(ephemeral)
        assert [is_torsion_free(twin) for twin in twins] == [True] + [False] * 7
        assert all(same_up_to_torsion(ephemeral, twin) for twin in twins)
        stranger = x25519_public_key(DrbgRandom(bytes([seed, 1])).draw("k", 32))
        assert not same_up_to_torsion(ephemeral, stranger)


def _pair(profile_name: str) -> tuple[SessionManager, SessionManager, MemoryStore]:
    """Two devices; the responder has no one-time prekey, as when the relay drained them."""
    profile = ALL_PROFILES[profile_name]
    rng = DrbgRandom(b"twins " + profile_name.encode())
    initiator = SessionManager.create(MemoryStore(), INITIATOR, profile, rng=rng, now=0)
    responder_store = MemoryStore()
    responder = SessionManager.create(responder_store, RESPONDER, profile, rng=rng, now=0)
    bundle = responder.prekey_bundles()[0]
    assert bundle.one_time_prekey is None
    initiator.initiate(RESPONDER, bundle)
    return initiator, responder, responder_store


def _with_base_key(profile_name: str, data: bytes, ephemeral_key: bytes) -> bytes:
    profile = ALL_PROFILES[profile_name]
    message = wire.decode_prekey_message(profile, data)
    initial = dataclasses.replace(message.initial, ephemeral_key=ephemeral_key)
    return wire.encode_prekey_message(profile, dataclasses.replace(message, initial=initial))


@pytest.mark.parametrize("profile_name", sorted(ALL_PROFILES))
def test_a_twin_of_an_answered_initial_message_is_a_duplicate(profile_name: str) -> None:
    initiator, responder, store = _pair(profile_name)
    first = initiator.encrypt(RESPONDER, b"PAY CAROL 100")
    assert responder.decrypt(INITIATOR, first) == b"PAY CAROL 100"
    ephemeral_key = wire.decode_prekey_message(
        ALL_PROFILES[profile_name], first
    ).initial.ephemeral_key
    before = snapshot(store)
    for twin in torsion_twins(ephemeral_key)[1:]:
        with pytest.raises(DuplicateMessage):
            responder.decrypt(INITIATOR, _with_base_key(profile_name, first, twin))
    with pytest.raises(DuplicateMessage):
        responder.decrypt(INITIATOR, first)
    assert snapshot(store) == before
    # The genuine session survives: the conversation goes on both ways.
    assert initiator.decrypt(RESPONDER, responder.encrypt(INITIATOR, b"ok")) == b"ok"
    assert responder.decrypt(INITIATOR, initiator.encrypt(RESPONDER, b"next")) == b"next"


@pytest.mark.parametrize("profile_name", sorted(ALL_PROFILES))
def test_a_twin_never_creates_a_session(profile_name: str) -> None:
    """A responder that never saw the genuine message refuses every twin and stores nothing."""
    initiator, responder, store = _pair(profile_name)
    first = initiator.encrypt(RESPONDER, b"hello")
    ephemeral_key = wire.decode_prekey_message(
        ALL_PROFILES[profile_name], first
    ).initial.ephemeral_key
    before = snapshot(store)
    for twin in torsion_twins(ephemeral_key)[1:]:
        with pytest.raises(InvalidPublicKey):
            responder.decrypt(INITIATOR, _with_base_key(profile_name, first, twin))
    assert snapshot(store) == before
    assert responder.decrypt(INITIATOR, first) == b"hello"


def test_a_refused_twin_is_a_protocol_error_with_a_stable_code() -> None:
    initiator, responder, _ = _pair("classic")
    first = initiator.encrypt(RESPONDER, b"hello")
    twin = torsion_twins(
        wire.decode_prekey_message(ALL_PROFILES["classic"], first).initial.ephemeral_key
    )
    with pytest.raises(ProtocolError) as caught:
        responder.decrypt(INITIATOR, _with_base_key("classic", first, twin[4]))
    assert caught.value.code == "INVALID_PUBLIC_KEY"


def test_a_twin_of_an_archived_sessions_base_key_is_a_duplicate_in_signal_v4() -> None:
    """signal-v4 keeps 40 archived sessions (spec/session.md §7.1); a twin of any is a replay."""
    initiator, responder, store = _pair("signal-v4")
    first = initiator.encrypt(RESPONDER, b"first")
    assert responder.decrypt(INITIATOR, first) == b"first"
    for n in range(10):  # the first session goes deep into the archive
        initiator.initiate(RESPONDER, responder.prekey_bundles()[0])
        assert responder.decrypt(INITIATOR, initiator.encrypt(RESPONDER, b"%d" % n)) == b"%d" % n
    ephemeral_key = wire.decode_prekey_message(
        ALL_PROFILES["signal-v4"], first
    ).initial.ephemeral_key
    before = snapshot(store)
    for twin in torsion_twins(ephemeral_key)[1:]:
        with pytest.raises(DuplicateMessage):
            responder.decrypt(INITIATOR, _with_base_key("signal-v4", first, twin))
    assert snapshot(store) == before
