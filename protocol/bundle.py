"""Prekey bundles: type, byte encoding, verification (spec/x3dh.md §3, spec/pqxdh.md §3).

A bundle is what the server hands an initiator (X3DH §3.3, PQXDH §3.3): the
responder's identity key, its signed prekey with id and signature, maybe a
one-time prekey with id, and for PQXDH a signed KEM prekey with id. The
server is not trusted, so ``verify_bundle`` checks every signature before
any key is used.

The byte encoding (spec/x3dh.md §3.2) is one msgpack array with a version,
keys in their Encode/EncodeKEM forms, and nil for an absent key. Decoding is
strict: exactly one encoding is accepted for each bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgpack

from protocol.encoding import (
    KEM_TYPE,
    decode_ec,
    decode_kem,
    encode_ec,
    encode_kem,
    unpack_msgpack,
)
from protocol.errors import InvalidArgument, InvalidPublicKey, MalformedMessage, UnsupportedVersion
from protocol.prekeys import (
    SIGNATURE_LEN,
    IdentityKeyPair,
    KemPrekey,
    OneTimePrekey,
    SignedPrekey,
    check_prekey_id,
)
from protocol.primitives import (
    KEM_PUBLIC_LEN,
    KemName,
    check_kem_public,
    check_x25519_public,
    require_bytes,
)
from protocol.xeddsa import verify as xeddsa_verify

if TYPE_CHECKING:
    from protocol.profiles import Profile

BUNDLE_VERSION: Final = 1
MAX_ENCODED_LEN: Final = 4096
"""Larger than any bundle (ML-KEM-1024 makes one of about 1.8 kB); decoders refuse more."""

_KEM_BY_TYPE: Final[dict[int, KemName]] = {
    KEM_TYPE["ML-KEM-768"]: "ML-KEM-768",
    KEM_TYPE["ML-KEM-1024"]: "ML-KEM-1024",
    KEM_TYPE["Kyber1024"]: "Kyber1024",
}


@dataclass(frozen=True, slots=True)
class BundleOneTimePrekey:
    """(OPK_B, IdEC(OPK_B)) as served; unsigned (X3DH §3.3)."""

    prekey_id: int
    public: bytes

    def __post_init__(self) -> None:
        check_prekey_id(self.prekey_id)
        check_x25519_public(self.public)


@dataclass(frozen=True, slots=True)
class BundleKemPrekey:
    """(PQPK_B, IdKEM(PQPK_B), Sig(IK_B, EncodeKEM(PQPK_B))) as served (PQXDH §3.3)."""

    kem: KemName
    prekey_id: int
    public: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if self.kem not in KEM_PUBLIC_LEN:
            raise InvalidArgument(f"unknown KEM {self.kem!r}")
        check_prekey_id(self.prekey_id)
        check_kem_public(self.kem, self.public)  # FIPS 203 §7.2: length and modulus
        require_bytes(self.signature, SIGNATURE_LEN, "KEM-prekey signature")

    def encoded(self) -> bytes:
        """EncodeKEM(PQPK_B), the signed message."""
        return encode_kem(self.kem, self.public)


@dataclass(frozen=True, slots=True)
class PrekeyBundle:
    """IK_B, (SPK_B, IdEC, Sig), optional OPK_B part, optional KEM part.

    Keys are raw (u-coordinates and ML-KEM encapsulation keys). The
    constructors refuse invalid keys (INVALID_PUBLIC_KEY) and wrong lengths
    (INVALID_ARGUMENT); no signature is checked before ``verify_bundle``.
    """

    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey: BundleOneTimePrekey | None = None
    kem_prekey: BundleKemPrekey | None = None

    def __post_init__(self) -> None:
        check_x25519_public(self.identity_key)
        check_prekey_id(self.signed_prekey_id)
        check_x25519_public(self.signed_prekey)
        require_bytes(self.signed_prekey_signature, SIGNATURE_LEN, "signed-prekey signature")
        if self.one_time_prekey is not None and not isinstance(
            self.one_time_prekey, BundleOneTimePrekey
        ):
            raise InvalidArgument("one_time_prekey must be a BundleOneTimePrekey")
        if self.kem_prekey is not None and not isinstance(self.kem_prekey, BundleKemPrekey):
            raise InvalidArgument("kem_prekey must be a BundleKemPrekey")

    def to_bytes(self) -> bytes:
        """The canonical encoding (spec/x3dh.md §3.2)."""
        opk, pqpk = self.one_time_prekey, self.kem_prekey
        return pack(
            [
                BUNDLE_VERSION,
                encode_ec(self.identity_key),
                [
                    self.signed_prekey_id,
                    encode_ec(self.signed_prekey),
                    self.signed_prekey_signature,
                ],
                None if opk is None else [opk.prekey_id, encode_ec(opk.public)],
                None if pqpk is None else [pqpk.prekey_id, pqpk.encoded(), pqpk.signature],
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> PrekeyBundle:
        """Strict inverse of ``to_bytes``.

        Raises MALFORMED_MESSAGE, INVALID_PUBLIC_KEY or UNSUPPORTED_VERSION.
        """
        version, identity, signed, one_time, kem = unpack_array(data, 5, "bundle")
        if version != BUNDLE_VERSION:
            raise UnsupportedVersion("unknown bundle version")
        spk_id, spk, spk_sig = _fields(signed, (int, bytes, bytes), "signed prekey")
        bundle = cls(
            identity_key=decode_ec(_bytes(identity)),
            signed_prekey_id=spk_id,
            signed_prekey=decode_ec(spk),
            signed_prekey_signature=_signature(spk_sig),
            one_time_prekey=_decode_one_time_part(one_time),
            kem_prekey=_decode_kem_part(kem),
        )
        if bundle.to_bytes() != data:
            raise MalformedMessage("bundle encoding is not canonical")
        return bundle


def _decode_one_time_part(part: object) -> BundleOneTimePrekey | None:
    if part is None:
        return None
    opk_id, opk = _fields(part, (int, bytes), "one-time prekey")
    return BundleOneTimePrekey(opk_id, decode_ec(opk))


def _decode_kem_part(part: object) -> BundleKemPrekey | None:
    if part is None:
        return None
    kem_id, encoded, signature = _fields(part, (int, bytes, bytes), "KEM prekey")
    kem = _KEM_BY_TYPE.get(encoded[0]) if encoded else None
    if kem is None:
        raise InvalidPublicKey("unknown EncodeKEM type byte")
    return BundleKemPrekey(kem, kem_id, decode_kem(kem, encoded), _signature(signature))


def _signature(signature: bytes) -> bytes:
    if len(signature) != SIGNATURE_LEN:
        raise MalformedMessage("a signature must be 64 bytes")
    return signature


# --- Strict msgpack helpers shared with the initial-message data ---------------------


def pack(value: list[Any]) -> bytes:
    """msgpack with the bin type for bytes (the only form ``unpack_array`` accepts)."""
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def unpack_array(data: object, length: int, what: str) -> list[Any]:
    """Decode exactly one msgpack array of ``length`` items; else MALFORMED_MESSAGE."""
    if not isinstance(data, bytes) or len(data) > MAX_ENCODED_LEN:
        raise MalformedMessage(f"{what} must be bytes of at most {MAX_ENCODED_LEN}")
    value = unpack_msgpack(data, what)
    if not isinstance(value, list) or len(value) != length:
        raise MalformedMessage(f"{what} must be an array of {length} items")
    return value


def _fields(value: object, types: tuple[type, ...], what: str) -> list[Any]:
    """An array whose items have exactly these types; ints must be u32 ids."""
    if not isinstance(value, list) or len(value) != len(types):
        raise MalformedMessage(f"{what} must be an array of {len(types)} items")
    for item, kind in zip(value, types, strict=True):
        if type(item) is not kind:
            raise MalformedMessage(f"{what} has an item of the wrong type")
        if kind is int:
            _prekey_id(item)
    return value


def _prekey_id(value: object) -> int:
    try:
        return check_prekey_id(value)
    except InvalidArgument:
        raise MalformedMessage("a prekey id must be a u32") from None


def _bytes(value: object) -> bytes:
    if type(value) is not bytes:
        raise MalformedMessage("expected a bin item")
    return value


def optional_prekey_id(value: object) -> int | None:
    """A u32 id or nil, as decoded from msgpack."""
    if value is None:
        return None
    if type(value) is not int:
        raise MalformedMessage("a prekey id must be a u32 or nil")
    return _prekey_id(value)


# --- Publishing and verifying ---------------------------------------------------------


def make_bundle(
    identity: IdentityKeyPair,
    signed_prekey: SignedPrekey,
    one_time_prekey: OneTimePrekey | None = None,
    kem_prekey: KemPrekey | None = None,
) -> PrekeyBundle:
    """The bundle a server serves for these keys (X3DH §3.3, PQXDH §3.3)."""
    return PrekeyBundle(
        identity_key=identity.public,
        signed_prekey_id=signed_prekey.prekey_id,
        signed_prekey=signed_prekey.key_pair.public,
        signed_prekey_signature=signed_prekey.signature,
        one_time_prekey=None
        if one_time_prekey is None
        else BundleOneTimePrekey(one_time_prekey.prekey_id, one_time_prekey.key_pair.public),
        kem_prekey=None
        if kem_prekey is None
        else BundleKemPrekey(
            kem_prekey.kem, kem_prekey.prekey_id, kem_prekey.public, kem_prekey.signature
        ),
    )


def verify_bundle(bundle: PrekeyBundle, profile: Profile) -> None:
    """Implements the initiator's bundle checks, X3DH §3.3 and PQXDH §3.3 step 1.

    The KEM part must match the profile: absent for X3DH (MALFORMED_MESSAGE
    if present), present for PQXDH (MALFORMED_MESSAGE if absent), and of the
    profile's KEM (INVALID_PUBLIC_KEY otherwise). Then Sig(IK_B, Encode(SPK_B))
    and Sig(IK_B, EncodeKEM(PQPK_B)) must verify (INVALID_SIGNATURE), with
    libsignal's sign-bit variant accepted only where the profile says so.
    Keys were checked when the bundle was constructed.
    """
    pqpk = bundle.kem_prekey
    if profile.kem is None and pqpk is not None:
        raise MalformedMessage("an X3DH bundle carries no KEM prekey")
    if profile.kem is not None and pqpk is None:
        raise MalformedMessage("a PQXDH bundle must carry a KEM prekey")
    if pqpk is not None and pqpk.kem != profile.kem:
        raise InvalidPublicKey(f"the KEM prekey is not an {profile.kem} key")
    signed = [(encode_ec(bundle.signed_prekey), bundle.signed_prekey_signature)]
    if pqpk is not None:
        signed.append((pqpk.encoded(), pqpk.signature))
    xeddsa_verify(bundle.identity_key, signed, profile)
