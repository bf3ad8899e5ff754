"""Peer identity keys: trust on first use, changes refused until acknowledged (spec/session.md §6).

The first identity key seen for a peer device is trusted; a different one
later raises UNTRUSTED_IDENTITY, carrying the safety number the users compare
out of band, until the application calls ``trust``.
"""

from __future__ import annotations

from protocol.errors import UntrustedIdentity
from protocol.fingerprint import ScannableFingerprint, fingerprint, safety_number
from protocol.primitives import constant_time_equal
from protocol.session.records import IDENTITIES, Address, DeviceRecord, TrustedIdentity
from protocol.store.access import load_record, put_record
from protocol.store.interface import Transaction


def trust(txn: Transaction, peer: Address, identity_key: bytes) -> None:
    """Trust ``identity_key`` for ``peer`` (after the users compared safety numbers)."""
    put_record(txn, IDENTITIES, peer.key, TrustedIdentity(identity_key))


def trusted(txn: Transaction, peer: Address) -> bytes | None:
    """The identity key trusted for ``peer``, if any."""
    record = load_record(txn, IDENTITIES, peer.key, TrustedIdentity)
    return None if record is None else record.identity_key


def peer_safety_number(device: DeviceRecord, peer: Address, identity_key: bytes) -> str:
    """The safety number of this device and ``peer`` holding ``identity_key``."""
    return safety_number(device.address.user, device.identity.public, peer.user, identity_key)


def peer_scannable_fingerprint(
    device: DeviceRecord, peer: Address, identity_key: bytes, version: int
) -> ScannableFingerprint:
    """The scannable fingerprint of this device and ``peer`` holding ``identity_key``.

    The same user ids and keys as the safety number; ``version`` 1 or 2 only
    changes the version field (libsignal ``Fingerprint::new``).
    """
    user, key = device.address.user, device.identity.public
    return fingerprint(version, user, key, peer.user, identity_key).scannable


def check(txn: Transaction, device: DeviceRecord, peer: Address, identity_key: bytes) -> None:
    """Trust on first use; a different key raises UNTRUSTED_IDENTITY (nothing changes)."""
    known = trusted(txn, peer)
    if known is None:
        trust(txn, peer, identity_key)
    elif not constant_time_equal(known, identity_key):
        raise UntrustedIdentity(
            f"the identity key of {peer.user} device {peer.device} changed",
            safety_number=peer_safety_number(device, peer, identity_key),
        )
