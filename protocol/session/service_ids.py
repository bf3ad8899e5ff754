"""Service ids and the self-session rule (spec/session.md §7.1).

libsignal (b056faa) decides that a session is with oneself by
``IdentityKey::is_same_account`` (``identity_key.rs``): the two identity
keys are equal, and both address names are service ids
(``ServiceId::parse_from_service_id_string``, ``rust/core/src/address.rs``)
naming the same account. Device ids are not compared: a user's linked
devices share one identity key and one service id, so a session between two
of them is a self-session too. A name that is not a service id never makes
a self-session. libsignal lifts such a session's SPQR jump limit
(``ratchet.rs`` ``spqr_chain_params``); ours keeps the Double Ratchet's
(``protocol/spqr/chain.py`` ``chain_params``, spec/spqr.md §6).
"""

from __future__ import annotations

import re
from typing import Final, Literal

from protocol.primitives import constant_time_equal
from protocol.session.records import Address

_HYPHENATED_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
PNI_PREFIX: Final = "PNI:"

ServiceId = tuple[Literal["ACI", "PNI"], bytes]


def parse_service_id(name: str) -> ServiceId | None:
    """``ServiceId::parse_from_service_id_string``: ``PNI:<uuid>`` or an ACI ``<uuid>``.

    Only the 36-character hyphenated UUID form is a service id; its hex
    digits are read case-insensitively, the ``PNI:`` prefix exactly.
    """
    kind: Literal["ACI", "PNI"] = "ACI"
    if name.startswith(PNI_PREFIX):
        kind, name = "PNI", name[len(PNI_PREFIX) :]
    if _HYPHENATED_UUID.fullmatch(name) is None:
        return None
    return kind, bytes.fromhex(name.replace("-", ""))


def is_same_account(
    local: Address, local_identity: bytes, remote: Address, remote_identity: bytes
) -> bool:
    """``IdentityKey::is_same_account``: one identity key and one service id on both sides."""
    if not constant_time_equal(local_identity, remote_identity):
        return False
    ours, theirs = parse_service_id(local.user), parse_service_id(remote.user)
    return ours is not None and ours == theirs
