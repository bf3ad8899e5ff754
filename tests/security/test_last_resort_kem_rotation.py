"""F10: the last-resort ML-KEM prekey rotates with the signed prekey (spec/pqxdh.md §2.1).

Before, the last-resort KEM prekey made with the device was never replaced:
after a year of monthly signed-prekey rotations it was still id 1, so a
store stolen then, with recorded DH outputs, opened the first session's key
for a quantum adversary. Now each rotation replaces it, the replaced one
answers only for the signed prekey's grace period, and no older one is kept.
"""

from __future__ import annotations

import pytest

from protocol.errors import UnknownPrekey
from protocol.profiles import PQ_DEFAULT
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.session.prekey_lifecycle import SIGNED_PREKEY_GRACE_SECONDS
from protocol.session.records import KEM_PREKEYS
from protocol.store import MemoryStore

BOB, ALICE = Address("bob", 1), Address("alice", 1)
MONTH = 30 * 24 * 3600


def _device(address: Address) -> tuple[SessionManager, MemoryStore]:
    store = MemoryStore()
    rng = DrbgRandom(f"F10 {address.user}".encode())
    return SessionManager.create(store, address, PQ_DEFAULT, now=0, rng=rng), store


def _last_resort_id(bob: SessionManager) -> int:
    kem = bob.prekey_bundles()[-1].kem_prekey
    assert kem is not None
    return kem.prekey_id


def test_a_year_of_rotations_leaves_no_last_resort_kem_prekey_older_than_the_grace_period() -> None:
    bob, store = _device(BOB)
    first = _last_resort_id(bob)
    seen = {first}
    for month in range(1, 13):
        bob.rotate_signed_prekey(now=month * MONTH)
        bob.expire_signed_prekeys(now=month * MONTH + SIGNED_PREKEY_GRACE_SECONDS)
        current = _last_resort_id(bob)
        assert current not in seen
        seen.add(current)
        assert store.keys(KEM_PREKEYS) == [str(current)]
    assert str(first) not in store.keys(KEM_PREKEYS)


def test_the_replaced_last_resort_kem_prekey_answers_only_for_the_grace_period() -> None:
    bob, store = _device(BOB)
    before = bob.prekey_bundles()[-1]
    bob.rotate_signed_prekey(now=MONTH)
    assert _last_resort_id(bob) != before.kem_prekey.prekey_id  # type: ignore[union-attr]
    assert len(store.keys(KEM_PREKEYS)) == 2
    alice, _ = _device(ALICE)
    alice.initiate(BOB, before)
    assert bob.decrypt(ALICE, alice.encrypt(BOB, b"in grace")) == b"in grace"
    bob.expire_signed_prekeys(now=MONTH + SIGNED_PREKEY_GRACE_SECONDS - 1)
    assert len(store.keys(KEM_PREKEYS)) == 2
    bob.expire_signed_prekeys(now=MONTH + SIGNED_PREKEY_GRACE_SECONDS)
    assert store.keys(KEM_PREKEYS) == [str(_last_resort_id(bob))]
    carol = Address("carol", 1)
    late, _ = _device(carol)
    late.initiate(BOB, before)
    with pytest.raises(UnknownPrekey):
        bob.decrypt(carol, late.encrypt(BOB, b"too late"))


def test_a_second_rotation_within_the_grace_period_keeps_only_the_two_newest() -> None:
    bob, store = _device(BOB)
    bob.rotate_signed_prekey(now=1)
    bob.rotate_signed_prekey(now=2)
    kept = sorted(int(k) for k in store.keys(KEM_PREKEYS))
    assert len(kept) == 2 and kept[-1] == _last_resort_id(bob) and 1 not in kept
