"""A forged message costs the receiver at most one HMAC per chain key it must walk (issue 11 F4).

spec/security.md §3.13. The limits stay where libsignal has them (signal-v3
accepts a jump of 25,000 keys), so what is bounded is the work per key: a
forged plain-header message that jumps ``max_skip`` keys is refused after
one HMAC per key walked, plus one per key the skipped-key store can keep,
and nothing changes. With SPQR (signal-v4) the receiver then walks SPQR's
chain to the index of field 5: at most ``max_jump`` steps, one HKDF each,
of which only the last ``max_ooo_keys`` + 1 derive a message key, in a
session with oneself too. The work is counted in HMAC calls of the chain
KDF and in SPQR chain steps, not timed; the time is the ``forged`` row of
``e2ee bench``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from protocol import chains, triple_ratchet
from protocol.bench.forged import forged_message, forged_target
from protocol.bench.session_pair import SessionPair, make_pair
from protocol.errors import AuthFailed
from protocol.profiles import ALL_PROFILES, SIGNAL_V4, Profile
from protocol.spqr import chain
from protocol.spqr.chain import DEFAULT_MAX_JUMP, chain_params
from protocol.store import dump_state


@contextmanager
def counted_chain_hmacs() -> Iterator[list[int]]:
    """Count every HMAC the chain rules compute (KDF_CK steps) inside the block."""
    calls = [0]
    original: Callable[[bytes, bytes], bytes] = chains.hmac_sha256

    def counting(key: bytes, data: bytes) -> bytes:
        calls[0] += 1
        return original(key, data)

    chains.hmac_sha256 = counting  # type: ignore[assignment]
    try:
        yield calls
    finally:
        chains.hmac_sha256 = original  # type: ignore[assignment]


@contextmanager
def counted_spqr_steps() -> Iterator[dict[str, int]]:
    """Count SPQR chain steps inside the block: with a message key ("full") and without ("next")."""
    calls = {"full": 0, "next": 0}
    full, next_only = chain.chain_next, chain.chain_next_key

    def counting_full(next_key: bytes, ctr: int) -> tuple[bytes, bytes]:
        calls["full"] += 1
        return full(next_key, ctr)

    def counting_next(next_key: bytes, ctr: int) -> bytes:
        calls["next"] += 1
        return next_only(next_key, ctr)

    chain.chain_next, chain.chain_next_key = counting_full, counting_next  # type: ignore[assignment]
    try:
        yield calls
    finally:
        chain.chain_next, chain.chain_next_key = full, next_only  # type: ignore[assignment]


@pytest.mark.parametrize("profile", list(ALL_PROFILES.values()), ids=lambda p: p.name)
def test_a_forged_message_costs_one_hmac_per_key_walked_and_changes_nothing(
    profile: Profile,
) -> None:
    pair = make_pair(profile)
    state, ad = forged_target(pair.states[0]), pair.ad
    message = forged_message(state, ad)
    rules = profile.chains
    # Keys the header makes the receiver walk: the rest of the current chain
    # up to PN (where PN ends a chain), then n + 1 keys of the new chain.
    walked = (rules.max_skip if rules.pn_ends_chain else 0) + rules.max_skip + 1
    with counted_chain_hmacs() as calls, counted_spqr_steps() as steps, pytest.raises(AuthFailed):
        triple_ratchet.decrypt(state, message, ad)
    if state.pq is None:
        assert steps == {"full": 0, "next": 0}
    else:  # field 5 jumps max_jump keys; only those the store can keep get a message key
        params = state.pq.chain.params
        assert steps["full"] + steps["next"] == params.max_jump
        assert steps["full"] == params.max_ooo_keys + 1
    if profile.headers.encrypted:
        assert calls[0] == 0  # no header key opens the header: no chain is walked
    else:
        assert 0 < calls[0] <= walked + rules.max_stored_skipped + 2
    assert pair.decrypt(0, pair.encrypt(1, b"genuine")) == b"genuine"


def test_a_self_session_walks_no_further_than_the_double_ratchet_accepts() -> None:
    """libsignal lifts SPQR's jump limit with oneself; ours keeps the Double Ratchet's limit."""
    assert chain_params(self_session=True) == chain_params(self_session=False)
    assert chain_params(self_session=True).max_jump == DEFAULT_MAX_JUMP
    assert SIGNAL_V4.chains.max_skip == DEFAULT_MAX_JUMP


def test_a_forged_signal_v4_jump_leaves_the_stored_session_byte_for_byte_unchanged() -> None:
    pair = SessionPair(SIGNAL_V4)
    receiver, sender = pair.managers[0], pair.addresses[1]
    before = pair.serialized(0)
    session = receiver.session_record(sender)
    assert session is not None
    message = forged_message(session.current.triple, session.current.ad)
    with counted_spqr_steps() as steps, pytest.raises(AuthFailed):
        receiver.decrypt(sender, message)
    assert steps["full"] + steps["next"] == DEFAULT_MAX_JUMP
    assert pair.serialized(0) == before
    assert dump_state(receiver.session_record(sender)) == before
    assert pair.decrypt(0, pair.encrypt(1, b"genuine")) == b"genuine"
