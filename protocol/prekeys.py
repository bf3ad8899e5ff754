"""The responder's private keys and its prekey store (spec/x3dh.md §2, §7; spec/pqxdh.md §2).

Each type is frozen, checks its lengths and that its public half belongs to
its private half, and keeps its private half out of ``repr``. Generation
draws from a caller's ``Random`` under labels that name the key and its id
(spec/profiles.md §4), so a vector can record every byte.

The store is an immutable map from ids to keys. ``PrekeyStore.consume``
returns a new store without the one-time keys a handshake used; the caller
commits it only once the initial message has authenticated (X3DH §3.4: Bob
deletes the one-time prekey after a successful decryption).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Final, Protocol, TypeVar

from protocol.encoding import encode_ec, encode_kem
from protocol.errors import InvalidArgument, UnknownPrekey
from protocol.primitives import (
    KEM_PUBLIC_LEN,
    KEM_SEED_LEN,
    X25519_LEN,
    KemName,
    X25519KeyPair,
    check_x25519_public,
    constant_time_equal,
    kem_public_key,
    require_bytes,
)
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.secrecy import SECRET
from protocol.xeddsa import xeddsa_sign

PREKEY_ID_LIMIT: Final = 2**32
"""Prekey ids are u32 (IdEC and IdKEM, PQXDH §3.2)."""
SIGNATURE_LEN: Final = 64
XEDDSA_Z_LEN: Final = 64


def check_prekey_id(prekey_id: object) -> int:
    """Return ``prekey_id`` if it is an int in 0..2^32-1; else InvalidArgument."""
    if isinstance(prekey_id, bool) or not isinstance(prekey_id, int):
        raise InvalidArgument("a prekey id must be an int")
    if not 0 <= prekey_id < PREKEY_ID_LIMIT:
        raise InvalidArgument("a prekey id must fit in u32")
    return prekey_id


def check_key_pair(pair: object) -> X25519KeyPair:
    """Refuse a key pair whose public half is invalid or not its private half's."""
    if not isinstance(pair, X25519KeyPair):
        raise InvalidArgument("expected an X25519KeyPair")
    require_bytes(pair.private, X25519_LEN, "X25519 private key")
    check_x25519_public(pair.public)
    if not constant_time_equal(pair.private_key().public_key().public_bytes_raw(), pair.public):
        raise InvalidArgument("the public key does not belong to the private key")
    return pair


def _generate_pair(rng: Random, label: str) -> X25519KeyPair:
    return check_key_pair(X25519KeyPair.from_private(rng.draw(label, X25519_LEN)))


@dataclass(frozen=True, slots=True)
class IdentityKeyPair:
    """IK: one X25519 key used for DH and, through XEdDSA, for signing (X3DH §2.3)."""

    key_pair: X25519KeyPair

    def __post_init__(self) -> None:
        check_key_pair(self.key_pair)

    @property
    def public(self) -> bytes:
        return self.key_pair.public

    @property
    def private(self) -> bytes:
        return self.key_pair.private

    @classmethod
    def from_private(cls, private: bytes) -> IdentityKeyPair:
        return cls(X25519KeyPair.from_private(require_bytes(private, X25519_LEN, "identity key")))

    @classmethod
    def generate(cls, rng: Random = SYSTEM_RANDOM) -> IdentityKeyPair:
        """Draws ``identity_key`` (32 bytes)."""
        return cls(_generate_pair(rng, "identity_key"))

    def __repr__(self) -> str:
        return f"IdentityKeyPair(public={self.public.hex()}, private=<redacted>)"


@dataclass(frozen=True, slots=True)
class SignedPrekey:
    """SPK with its id and Sig(IK, Encode(SPK)) (X3DH §3.2)."""

    prekey_id: int
    key_pair: X25519KeyPair
    signature: bytes

    def __post_init__(self) -> None:
        check_prekey_id(self.prekey_id)
        check_key_pair(self.key_pair)
        require_bytes(self.signature, SIGNATURE_LEN, "signed-prekey signature")

    def __repr__(self) -> str:
        return f"SignedPrekey(id={self.prekey_id}, public={self.key_pair.public.hex()}, ...)"


@dataclass(frozen=True, slots=True)
class OneTimePrekey:
    """OPK with its id; unsigned (X3DH §3.2)."""

    prekey_id: int
    key_pair: X25519KeyPair

    def __post_init__(self) -> None:
        check_prekey_id(self.prekey_id)
        check_key_pair(self.key_pair)

    def __repr__(self) -> str:
        return f"OneTimePrekey(id={self.prekey_id}, public={self.key_pair.public.hex()}, ...)"


@dataclass(frozen=True, slots=True)
class KemPrekey:
    """PQSPK (last resort) or PQOPK (one time) with Sig(IK, EncodeKEM(PQPK)) (PQXDH §3.2).

    The private key is the 64-byte ML-KEM seed d ‖ z (FIPS 203 §6.1); the
    kind tells the responder whether the key is spent by one use.
    """

    prekey_id: int
    kem: KemName
    seed: Annotated[bytes, SECRET]
    public: bytes
    signature: bytes
    last_resort: bool

    def __post_init__(self) -> None:
        check_prekey_id(self.prekey_id)
        if self.kem not in KEM_PUBLIC_LEN:
            raise InvalidArgument(f"unknown KEM {self.kem!r}")
        require_bytes(self.seed, KEM_SEED_LEN, "ML-KEM seed")
        require_bytes(self.signature, SIGNATURE_LEN, "KEM-prekey signature")
        if not isinstance(self.last_resort, bool):
            raise InvalidArgument("last_resort must be a bool")
        if self.public != kem_public_key(self.kem, self.seed):
            raise InvalidArgument("the KEM public key does not belong to the seed")

    def __repr__(self) -> str:
        kind = "last-resort" if self.last_resort else "one-time"
        return f"KemPrekey(id={self.prekey_id}, {self.kem}, {kind}, seed=<redacted>)"


def _sign(identity: IdentityKeyPair, message: bytes, rng: Random, label: str) -> bytes:
    """Sig(IK, M, Z) with Z drawn under ``label`` (PQXDH §2.2)."""
    return xeddsa_sign(identity.private, message, rng.draw(label, XEDDSA_Z_LEN))


def generate_signed_prekey(
    identity: IdentityKeyPair, prekey_id: int, rng: Random = SYSTEM_RANDOM
) -> SignedPrekey:
    """Draws ``signed_prekey[id]`` (32) and ``signed_prekey_sig_z[id]`` (64)."""
    check_prekey_id(prekey_id)
    pair = _generate_pair(rng, f"signed_prekey[{prekey_id}]")
    signature = _sign(identity, encode_ec(pair.public), rng, f"signed_prekey_sig_z[{prekey_id}]")
    return SignedPrekey(prekey_id, pair, signature)


def generate_one_time_prekey(prekey_id: int, rng: Random = SYSTEM_RANDOM) -> OneTimePrekey:
    """Draws ``one_time_prekey[id]`` (32)."""
    check_prekey_id(prekey_id)
    return OneTimePrekey(prekey_id, _generate_pair(rng, f"one_time_prekey[{prekey_id}]"))


def generate_kem_prekey(
    identity: IdentityKeyPair,
    prekey_id: int,
    kem: KemName,
    *,
    last_resort: bool,
    rng: Random = SYSTEM_RANDOM,
) -> KemPrekey:
    """Draws ``kem_prekey_seed[id]`` (64) and ``kem_prekey_sig_z[id]`` (64)."""
    check_prekey_id(prekey_id)
    seed = rng.draw(f"kem_prekey_seed[{prekey_id}]", KEM_SEED_LEN)
    public = kem_public_key(kem, seed)
    signature = _sign(identity, encode_kem(kem, public), rng, f"kem_prekey_sig_z[{prekey_id}]")
    return KemPrekey(prekey_id, kem, seed, public, signature, last_resort)


class PrekeySource(Protocol):
    """Where the responder looks its private prekeys up; unknown ids raise UnknownPrekey."""

    def signed_prekey(self, prekey_id: int) -> SignedPrekey: ...

    def one_time_prekey(self, prekey_id: int) -> OneTimePrekey: ...

    def kem_prekey(self, prekey_id: int) -> KemPrekey: ...


@dataclass(frozen=True, slots=True)
class ConsumedPrekeys:
    """The one-time prekeys one handshake used: commit their removal on success."""

    one_time_prekey_id: int | None = None
    kem_prekey_id: int | None = None


_K = TypeVar("_K")


def _lookup(keys: Mapping[int, _K], prekey_id: int, what: str) -> _K:
    try:
        return keys[prekey_id]
    except (KeyError, TypeError):
        raise UnknownPrekey(f"no {what} with that id") from None


@dataclass(frozen=True, slots=True)
class PrekeyStore:
    """An immutable in-memory ``PrekeySource``; never mutate the maps it holds."""

    signed_prekeys: Mapping[int, SignedPrekey]
    one_time_prekeys: Mapping[int, OneTimePrekey] = field(default_factory=dict)
    kem_prekeys: Mapping[int, KemPrekey] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        signed: tuple[SignedPrekey, ...],
        one_time: tuple[OneTimePrekey, ...] = (),
        kem: tuple[KemPrekey, ...] = (),
    ) -> PrekeyStore:
        return cls(
            {k.prekey_id: k for k in signed},
            {k.prekey_id: k for k in one_time},
            {k.prekey_id: k for k in kem},
        )

    def signed_prekey(self, prekey_id: int) -> SignedPrekey:
        return _lookup(self.signed_prekeys, prekey_id, "signed prekey")

    def one_time_prekey(self, prekey_id: int) -> OneTimePrekey:
        return _lookup(self.one_time_prekeys, prekey_id, "one-time prekey")

    def kem_prekey(self, prekey_id: int) -> KemPrekey:
        return _lookup(self.kem_prekeys, prekey_id, "KEM prekey")

    def consume(self, consumed: ConsumedPrekeys) -> PrekeyStore:
        """A store without the consumed one-time keys; all or nothing.

        Raises UnknownPrekey if either key is already gone, and then the
        caller's store is unchanged (it is immutable).
        """
        if not isinstance(consumed, ConsumedPrekeys):
            raise InvalidArgument("consume takes the ConsumedPrekeys of a handshake")
        one_time = dict(self.one_time_prekeys)
        kem = dict(self.kem_prekeys)
        if consumed.one_time_prekey_id is not None:
            self.one_time_prekey(consumed.one_time_prekey_id)
            del one_time[consumed.one_time_prekey_id]
        if consumed.kem_prekey_id is not None:
            if self.kem_prekey(consumed.kem_prekey_id).last_resort:
                raise InvalidArgument("a last-resort KEM prekey is never consumed")
            del kem[consumed.kem_prekey_id]
        return PrekeyStore(self.signed_prekeys, one_time, kem)

    def __repr__(self) -> str:
        return (
            f"PrekeyStore(<{len(self.signed_prekeys)} signed, {len(self.one_time_prekeys)} "
            f"one-time, {len(self.kem_prekeys)} KEM prekeys>)"
        )
