"""The worst-case forged message of each profile, built and timed (spec/security.md §3.13).

A forged message cannot authenticate, but a receiver does work before it
finds out: with a plain header it walks the chains the header names, up to
``max_skip`` keys on the chain PN ends (spec rules) and ``max_skip`` on the
new chain of a DH step; with an encrypted header it tries every header key.
``forged_message`` builds the message that asks for the most of that work,
and ``forged_workload`` times its rejection (issue 11 F4: at most 50 ms).
"""

from __future__ import annotations

import os

from protocol.bench.session_pair import make_pair
from protocol.bench.timing import Run, Workload
from protocol.errors import AuthFailed
from protocol.primitives import X25519KeyPair
from protocol.profiles import Profile
from protocol.randomness import SYSTEM_RANDOM
from protocol.ratchet import RatchetState, ratchet_decrypt
from protocol.ratchet_keys import HeaderKey
from protocol.wire import Header


def forged_message(state: RatchetState, ad: bytes) -> bytes:
    """A well-formed message to ``state`` under unknown keys that maximises the receiver's work.

    A new ratchet key (a DH step), PN as far past the current chain as
    ``max_skip`` allows where PN ends that chain, and n = ``max_skip``;
    header, message keys and (for encrypted headers) header key are random.
    """
    profile = state.profile
    rules = profile.chains
    pn = state.nr + rules.max_skip if rules.pn_ends_chain else 0
    header = Header(X25519KeyPair.from_private(os.urandom(32)).public, pn, rules.max_skip)
    block = profile.headers.protect(header, HeaderKey(os.urandom(32)), SYSTEM_RANDOM)
    keys = profile.cipher.message_keys(os.urandom(32))
    sender_is_initiator = state.role != "initiator"
    return profile.cipher.seal(
        keys, b"forged", ad, sender_is_initiator, header, block, profile.framing
    )


def forged_workload(profile: Profile) -> Workload:
    """ratchet_decrypt of the worst-case forged message by an acknowledged session's initiator."""

    def prepare(units: int) -> Run:
        pair = make_pair(profile)
        state, ad = pair.states[0], pair.ad
        message = forged_message(state, ad)

        def run() -> None:
            for _ in range(units):
                try:
                    ratchet_decrypt(state, message, ad)
                except AuthFailed:
                    pass
                else:  # pragma: no cover - a forgery that opens would be a finding
                    raise AssertionError("a forged message was accepted")

        return run

    return Workload(f"ours/forged/{profile.name}", prepare)
