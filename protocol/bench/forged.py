"""The worst-case forged message of each profile, built and timed (spec/security.md §3.13).

A forged message cannot authenticate, but a receiver does work before it
finds out: with a plain header it walks the chains the header names, up to
``max_skip`` keys on the chain PN ends (spec rules) and ``max_skip`` on the
new chain of a DH step; with an encrypted header it tries every header key.
With SPQR beside the Double Ratchet (``signal-v4``) the receiver then walks
SPQR's chain to the index field 5 names, up to ``max_jump`` keys, before the
MAC, since the SPQR key is an input of the MAC key. ``forged_message`` builds the message
that asks for the most of that work, and ``forged_workload`` times its
rejection (issue 11 F4: at most 50 ms).
"""

from __future__ import annotations

import os

from protocol.bench.session_pair import make_pair
from protocol.bench.timing import Run, Workload
from protocol.errors import AuthFailed
from protocol.primitives import X25519KeyPair
from protocol.profiles import Profile
from protocol.randomness import SYSTEM_RANDOM
from protocol.ratchet import RatchetState
from protocol.ratchet_keys import HeaderKey
from protocol.spqr.messages import Message, MessageType, encode_message
from protocol.spqr.pq_ratchet import PqRatchet
from protocol.triple_ratchet import TripleRatchetState, decrypt
from protocol.wire import Header


def forged_pq_ratchet(pq: PqRatchet) -> bytes:
    """Field 5 naming the key ``max_jump`` past the receiving counter of the current epoch.

    The Braid's epoch and a payload without a chunk (``NONE``), so the Braid
    does nothing and SPQR's chain walks the most keys it accepts.
    """
    epoch = pq.braid.epoch
    chain = pq.chain
    link = chain.links[len(chain.links) - 1 - (chain.current_epoch - (epoch - 1))]
    index = link.recv.ctr + chain.params.max_jump
    return encode_message(Message(epoch, index, MessageType.NONE))


def forged_message(state: TripleRatchetState, ad: bytes) -> bytes:
    """A well-formed message to ``state`` under unknown keys that maximises the receiver's work.

    A new ratchet key (a DH step), PN as far past the current chain as
    ``max_skip`` allows where PN ends that chain, and n = ``max_skip``;
    with SPQR, field 5 as ``forged_pq_ratchet``; header, message keys and
    (for encrypted headers) header key are random.
    """
    dr: RatchetState = state.ratchet
    profile = dr.profile
    rules = profile.chains
    pn = dr.nr + rules.max_skip if rules.pn_ends_chain else 0
    field5 = b"" if state.pq is None else forged_pq_ratchet(state.pq)
    dh = X25519KeyPair.from_private(os.urandom(32)).public
    header = Header(dh, pn, rules.max_skip, field5)
    block = profile.headers.protect(header, HeaderKey(os.urandom(32)), SYSTEM_RANDOM)
    keys = profile.cipher.message_keys(os.urandom(32))
    sender_is_initiator = dr.role != "initiator"
    return profile.cipher.seal(
        keys, b"forged", ad, sender_is_initiator, header, block, profile.framing
    )


def forged_workload(profile: Profile) -> Workload:
    """The triple ratchet's decrypt of the worst-case forged message by an acknowledged initiator.

    For a profile without SPQR that is ``ratchet_decrypt`` alone.
    """

    def prepare(units: int) -> Run:
        pair = make_pair(profile)
        state, ad = forged_target(pair.states[0]), pair.ad
        message = forged_message(state, ad)

        def run() -> None:
            for _ in range(units):
                try:
                    decrypt(state, message, ad)
                except AuthFailed:
                    pass
                else:  # pragma: no cover - a forgery that opens would be a finding
                    raise AssertionError("a forged message was accepted")

        return run

    return Workload(f"ours/forged/{profile.name}", prepare)


def forged_target(state: RatchetState | TripleRatchetState) -> TripleRatchetState:
    """A ``RatchetPair`` state as the triple ratchet's (a bare Double Ratchet has no SPQR)."""
    if isinstance(state, TripleRatchetState):
        return state
    return TripleRatchetState(state, None)
