"""The pyca form of the torsion checks equals their definitions (spec/x3dh.md §5.3).

``protocol.curve25519`` computes [q]P = O and u([8]P1) = u([8]P2) as X25519
calls with the scalars 5q − 1 and 2^254. These tests check every number its
argument rests on, then compare both functions with the definitions computed
by RFC 7748's ladder on unclamped scalars (tests/curve25519_reference.py): on
the eight torsion twins of random keys, on random points of the curve and of
its twist, and on the low-order points.
"""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import curve25519
from protocol.curve25519 import COFACTOR_SCALAR, TORSION_FREE_SCALAR
from protocol.errors import InvalidPublicKey
from protocol.primitives import LOW_ORDER_U, P25519, clamp_scalar, x25519_public_key
from protocol.randomness import DrbgRandom
from protocol.xeddsa import Q
from tests import curve25519_reference as reference

# The twist's prime subgroup order, as SafeCurves publishes it ("twist": the
# twist of Curve25519 has order 4 · (2^253 − 55484635554744707071703875581767296995)).
TWIST_Q: Final = 2**253 - 55484635554744707071703875581767296995


def _is_probable_prime(n: int) -> bool:
    """Miller-Rabin with the first 20 primes as bases (error below 4^-20 for composites)."""
    bases = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71]
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _bytes(u: int) -> bytes:
    return u.to_bytes(32, "little")


def test_the_group_orders_are_the_published_primes() -> None:
    """Curve order 8q and twist order 4q' add up to 2(p + 1) (Hasse: the traces cancel)."""
    assert Q == 2**252 + 27742317777372353535851937790883648493  # RFC 7748 §4.1
    assert 8 * Q + 4 * TWIST_Q == 2 * (P25519 + 1)
    assert _is_probable_prime(Q) and _is_probable_prime(TWIST_Q)
    assert not _is_probable_prime(Q + 2)  # the test can say no


def test_the_torsion_free_scalar_survives_clamping_and_is_minus_one_mod_q() -> None:
    k = TORSION_FREE_SCALAR
    assert k == 5 * Q - 1
    assert k % 8 == 0
    assert (k >> 254) & 1 == 1 and k >> 255 == 0
    assert clamp_scalar(_bytes(k)) == _bytes(k)
    assert k % Q == Q - 1
    # On the twist: 4 | k' kills the 4-torsion, and k' ≢ ±1 mod q' keeps P0' ≠ ±[k']P0'.
    assert k % 4 == 0
    assert k % TWIST_Q not in (1, TWIST_Q - 1)


def test_the_cofactor_scalar_survives_clamping_and_is_eight_times_a_unit() -> None:
    k = COFACTOR_SCALAR
    assert clamp_scalar(_bytes(k)) == _bytes(k)
    assert k == 8 * 2**251
    assert 0 < 2**251 < min(Q, TWIST_Q)  # so invertible modulo both primes


def _agrees_with_the_definition(u: int) -> None:
    if u in LOW_ORDER_U:
        with pytest.raises(InvalidPublicKey):
            curve25519.is_torsion_free(_bytes(u))
        return
    assert curve25519.is_torsion_free(_bytes(u)) == reference.is_torsion_free(u)


def test_every_twin_of_a_key_is_judged_as_the_ladder_judges_it() -> None:
    rng = DrbgRandom(b"curve25519 twins")
    for _ in range(4):
        key = x25519_public_key(rng.draw("k", 32))
        twins = reference.torsion_twins(key)
        assert [curve25519.is_torsion_free(twin) for twin in twins] == [True] + [False] * 7
        for twin in twins:
            _agrees_with_the_definition(int.from_bytes(twin, "little"))
            for other in twins:
                expected = reference.same_up_to_torsion(
                    int.from_bytes(twin, "little"), int.from_bytes(other, "little")
                )
                assert expected
                assert curve25519.same_up_to_torsion(twin, other) == expected


@given(st.integers(min_value=0, max_value=P25519 - 1))
def test_any_canonical_u_is_judged_torsion_free_as_the_ladder_judges_it(u: int) -> None:
    """Random u: a point of the curve (torsion-free one time in eight) or of the twist (never)."""
    _agrees_with_the_definition(u)
    if not reference.on_curve(u) and u not in LOW_ORDER_U:
        assert not curve25519.is_torsion_free(_bytes(u))


@given(st.integers(min_value=2, max_value=P25519 - 2), st.integers(0, 7))
def test_the_twins_of_any_curve_point_are_torsion_free_only_once(u: int, i: int) -> None:
    """For a random curve point, its eight twins: exactly the ladder's verdict on each."""
    if not reference.on_curve(u) or u in LOW_ORDER_U:
        return
    twins = reference.torsion_twins(_bytes(u))
    verdicts = [curve25519.is_torsion_free(twin) for twin in twins]
    assert verdicts == [reference.is_torsion_free(int.from_bytes(t, "little")) for t in twins]
    assert sum(verdicts) == 1
    assert curve25519.same_up_to_torsion(_bytes(u), twins[i])


@given(
    st.integers(min_value=0, max_value=P25519 - 1), st.integers(min_value=0, max_value=P25519 - 1)
)
def test_any_two_keys_are_twins_exactly_when_the_ladder_says(u1: int, u2: int) -> None:
    """Random pairs of curve and twist points, and each with itself and its inverse 1/u."""
    if u1 in LOW_ORDER_U or u2 in LOW_ORDER_U:
        with pytest.raises(InvalidPublicKey):
            curve25519.same_up_to_torsion(_bytes(u1), _bytes(u2))
        return
    inverse = pow(u1, -1, P25519)  # P + (0, 0): a twin on the curve, and on the twist too
    for a, b in ((u1, u2), (u1, u1), (u1, inverse), (u2, inverse)):
        expected = reference.same_up_to_torsion(a, b)
        assert curve25519.same_up_to_torsion(_bytes(a), _bytes(b)) == expected
    assert curve25519.same_up_to_torsion(_bytes(u1), _bytes(inverse))


@pytest.mark.parametrize("u", sorted(LOW_ORDER_U))
def test_a_low_order_point_is_refused_and_its_zero_output_is_no_crash(u: int) -> None:
    """Refused as a key before any call; pyca's all-zero refusal reads as the identity."""
    with pytest.raises(InvalidPublicKey):
        curve25519.is_torsion_free(_bytes(u))
    with pytest.raises(InvalidPublicKey):
        curve25519.same_up_to_torsion(_bytes(u), x25519_public_key(bytes(32)))
    # [q]P ≠ O for these points, but the ladder's differential addition multiplies
    # Z by u, so for u = 0 it ends at Z = 0: one more reason to refuse them first.
    assert reference.is_torsion_free(u) == (u == 0)
    # Below the public-key check, both scalars take it to the identity, which pyca
    # refuses as an all-zero output: ``_multiply`` says so instead of raising.
    for key in (curve25519._TORSION_FREE_KEY, curve25519._COFACTOR_KEY):
        assert curve25519._multiply(key, _bytes(u)) is None
