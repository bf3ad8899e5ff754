"""Bundles split for upload and reassembled on fetch are the device's own bundles;
whatever the relay corrupts is refused before use (spec/relay.md §2.5)."""

from __future__ import annotations

import pytest

from protocol.client.publish import assemble_bundle, split_bundles
from protocol.errors import InvalidPublicKey, MalformedMessage
from protocol.profiles import PQ_DEFAULT
from protocol.randomness import DrbgRandom
from protocol.relay.schema import FetchedBundle, Prekey
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore


def manager() -> SessionManager:
    device = SessionManager.create(
        MemoryStore(), Address("bob", 1), PQ_DEFAULT, now=0, rng=DrbgRandom(b"bob")
    )
    device.generate_one_time_prekeys(3)
    device.generate_kem_prekeys(3)
    return device


def test_split_and_reassembled_bundles_are_the_devices_own() -> None:
    bundles = manager().prekey_bundles()
    publication = split_bundles(bundles)
    assert len(publication.ec) == len(publication.kem) == 3
    for index, expected in enumerate(bundles[:-1]):
        fetched = FetchedBundle(publication.signed, publication.ec[index], publication.kem[index])
        assert assemble_bundle(fetched) == expected
    last_resort = FetchedBundle(publication.signed, None, None)
    assert assemble_bundle(last_resort) == bundles[-1]


@pytest.mark.parametrize(
    ("ec", "kem", "error"),
    [
        (Prekey(1, b"\x05" + bytes(32)), None, InvalidPublicKey),  # low-order key
        (Prekey(1, b"\x07" * 33), None, InvalidPublicKey),  # wrong type byte
        (None, Prekey(1, b"\x0b" + bytes(10)), InvalidPublicKey),  # truncated KEM key
        (None, Prekey(1, b"\x01" * 1249), InvalidPublicKey),  # unknown KEM type
    ],
)
def test_a_corrupted_prekey_from_the_relay_is_refused(
    ec: Prekey | None, kem: Prekey | None, error: type[Exception]
) -> None:
    signed = split_bundles(manager().prekey_bundles()).signed
    with pytest.raises(error):
        assemble_bundle(FetchedBundle(signed, ec, kem))


def test_a_corrupted_signed_part_is_malformed() -> None:
    signed = split_bundles(manager().prekey_bundles()).signed
    with pytest.raises(MalformedMessage):
        assemble_bundle(FetchedBundle(signed + b"\x00", None, None))
