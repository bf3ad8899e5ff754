"""A forged message costs the receiver at most one HMAC per chain key it must walk (issue 11 F4).

spec/security.md §3.13. The limits stay where libsignal has them (signal-v3
accepts a jump of 25,000 keys), so what is bounded is the work per key: a
forged plain-header message that jumps ``max_skip`` keys is refused after
one HMAC per key walked, plus one per key the skipped-key store can keep,
and nothing changes. The work is counted in HMAC calls of the chain
KDF, not timed; the time is the ``forged`` row of ``e2ee bench``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from protocol import chains
from protocol.bench.forged import forged_message
from protocol.bench.session_pair import make_pair
from protocol.errors import AuthFailed
from protocol.profiles import PROFILES, Profile
from protocol.ratchet import ratchet_decrypt


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


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=lambda p: p.name)
def test_a_forged_message_costs_one_hmac_per_key_walked_and_changes_nothing(
    profile: Profile,
) -> None:
    pair = make_pair(profile)
    state, ad = pair.states[0], pair.ad
    message = forged_message(state, ad)
    rules = profile.chains
    # Keys the header makes the receiver walk: the rest of the current chain
    # up to PN (where PN ends a chain), then n + 1 keys of the new chain.
    walked = (rules.max_skip if rules.pn_ends_chain else 0) + rules.max_skip + 1
    with counted_chain_hmacs() as calls, pytest.raises(AuthFailed):
        ratchet_decrypt(state, message, ad)
    if profile.headers.encrypted:
        assert calls[0] == 0  # no header key opens the header: no chain is walked
    else:
        assert 0 < calls[0] <= walked + rules.max_stored_skipped + 2
    assert pair.decrypt(0, pair.encrypt(1, b"genuine")) == b"genuine"
