"""X3DH and PQXDH key agreement: initiator and responder (spec/x3dh.md §4-§6, spec/pqxdh.md §4).

One algorithm serves every profile. The profile fixes the KDF info string,
the length of SK (32 bytes; 64 for ``signal-v3``) and whether the PQXDH KEM
step of ``pqxdh.py`` runs. The DH order and KDF are the specifications':

    DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)
    DH4 = DH(EK_A, OPK_B)   (only with a one-time prekey)
    SK  = HKDF(salt = 0^32, ikm = 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] [‖ SS], info)
    AD  = Encode(IK_A) ‖ Encode(IK_B)

Both sides are pure: ``initiate`` draws only its ephemeral key, and
``respond`` reads the responder's prekeys and reports which one-time
prekeys it used, for the caller to consume once the initial message has
authenticated (spec/x3dh.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import pqxdh
from protocol.bundle import PrekeyBundle, verify_bundle
from protocol.curve25519 import is_torsion_free
from protocol.encoding import encode_ec
from protocol.errors import InvalidArgument, InvalidPublicKey, MalformedMessage, UntrustedIdentity
from protocol.initial_data import InitialData as InitialData
from protocol.prekeys import ConsumedPrekeys, IdentityKeyPair, OneTimePrekey, PrekeySource
from protocol.primitives import X25519_LEN, X25519KeyPair, constant_time_equal, hkdf_sha256
from protocol.profiles import Profile
from protocol.randomness import SYSTEM_RANDOM, Random

F: Final = b"\xff" * 32
"""X3DH §2.2: 32 0xFF bytes before KM for X25519, so the IKM never starts like a key."""
HKDF_SALT: Final = bytes(32)
"""X3DH §2.2: a zero-filled salt of the hash's output length (SHA-256)."""


@dataclass(frozen=True, slots=True)
class Intermediates:
    """The values between the keys and SK, for vectors and debugging only.

    They are as secret as SK: never log them. ``repr`` shows none of them.
    """

    dh: tuple[bytes, ...]
    kem_ciphertext: bytes | None
    kem_shared_secret: bytes | None
    ikm: bytes

    def __repr__(self) -> str:
        return "Intermediates(<redacted>)"


@dataclass(frozen=True, slots=True)
class InitiatorResult:
    """SK, AD and the data the initial message must carry (X3DH §3.3)."""

    sk: bytes
    ad: bytes
    message: InitialData
    intermediates: Intermediates

    def __repr__(self) -> str:
        return f"InitiatorResult(ad={self.ad.hex()}, message={self.message!r}, sk=<redacted>)"


@dataclass(frozen=True, slots=True)
class ResponderResult:
    """SK and AD as the responder derives them (X3DH §3.4), and what to commit.

    ``signed_prekey`` is the responder's SPK pair, its initial ratchet key
    pair (DR §5.1; libsignal ``rust/protocol/src/ratchet.rs``). ``consumed`` names
    the one-time prekeys to delete once the initial message authenticates.
    """

    sk: bytes
    ad: bytes
    initiator_identity: bytes
    signed_prekey: X25519KeyPair
    consumed: ConsumedPrekeys
    intermediates: Intermediates

    def __repr__(self) -> str:
        return (
            f"ResponderResult(ad={self.ad.hex()}, consumed={self.consumed!r}, "
            f"signed_prekey={self.signed_prekey!r}, sk=<redacted>)"
        )


def key_material(dh: tuple[bytes, ...], kem_shared_secret: bytes | None) -> bytes:
    """The HKDF input F ‖ KM, KM = DH1 ‖ DH2 ‖ DH3 [‖ DH4] [‖ SS] (X3DH §2.2, PQXDH §3.3 step 4)."""
    return F + b"".join(dh) + (kem_shared_secret or b"")


def kdf(profile: Profile, ikm: bytes) -> bytes:
    """Implements KDF(KM), X3DH §2.2 and PQXDH §2.2: HKDF-SHA256(salt = 0^32, ikm, info).

    The info string and the length come from the profile's key agreement
    (``agreement.py``): 32 bytes as the specifications say, 64 for
    ``signal-v3`` (libsignal splits it into root and chain key).
    """
    agreement = profile.agreement
    return hkdf_sha256(ikm, HKDF_SALT, agreement.kdf_info, agreement.sk_len)


def associated_data(initiator_identity: bytes, responder_identity: bytes) -> bytes:
    """AD = Encode(IK_A) ‖ Encode(IK_B) (X3DH §3.3; PQXDH §3.3 step 6, spec/pqxdh.md §4.3)."""
    return encode_ec(initiator_identity) + encode_ec(responder_identity)


def initiate(
    profile: Profile,
    identity: IdentityKeyPair,
    bundle: PrekeyBundle,
    rng: Random = SYSTEM_RANDOM,
    *,
    kem_encapsulation: pqxdh.KemEncapsulation | None = None,
) -> InitiatorResult:
    """Implements the initiator's side, X3DH §3.3 and PQXDH §3.3 (spec/x3dh.md §4).

    Verifies the bundle before drawing anything, then draws ``ephemeral_key``
    (32 bytes). ``kem_encapsulation`` replays a recorded (CT, SS) for vectors
    (spec/pqxdh.md §7); leave it None otherwise.
    """
    _require(identity, IdentityKeyPair, "identity")
    _require(bundle, PrekeyBundle, "bundle")
    verify_bundle(bundle, profile)
    ephemeral = X25519KeyPair.from_private(rng.draw("ephemeral_key", X25519_LEN))
    opk = bundle.one_time_prekey
    dh = [
        identity.key_pair.exchange(bundle.signed_prekey),
        ephemeral.exchange(bundle.identity_key),
        ephemeral.exchange(bundle.signed_prekey),
    ]
    if opk is not None:
        dh.append(ephemeral.exchange(opk.public))
    ciphertext = shared = None
    if bundle.kem_prekey is not None:
        pqpk = bundle.kem_prekey
        ciphertext, shared = pqxdh.encapsulate(pqpk.kem, pqpk.public, kem_encapsulation)
    ikm = key_material(tuple(dh), shared)
    message = InitialData(
        identity.public,
        ephemeral.public,
        bundle.signed_prekey_id,
        None if opk is None else opk.prekey_id,
        None if bundle.kem_prekey is None else bundle.kem_prekey.prekey_id,
        ciphertext,
    )
    return InitiatorResult(
        sk=kdf(profile, ikm),
        ad=associated_data(identity.public, bundle.identity_key),
        message=message,
        intermediates=Intermediates(tuple(dh), ciphertext, shared, ikm),
    )


def respond(
    profile: Profile,
    identity: IdentityKeyPair,
    prekeys: PrekeySource,
    message: InitialData,
    *,
    expected_initiator: bytes | None = None,
) -> ResponderResult:
    """Implements the responder's side, X3DH §3.4 and PQXDH §3.4 (spec/x3dh.md §5).

    Changes nothing: one-time prekeys are only named in ``consumed``.
    Raises UNTRUSTED_IDENTITY if ``expected_initiator`` is given and differs
    from IK_A, UNKNOWN_PREKEY for an unknown id, MALFORMED_MESSAGE if the
    KEM part does not fit the profile or CT has the wrong length, and
    INVALID_PUBLIC_KEY for a base key EK_A that is not torsion-free or an
    all-zero DH output. The initiator's keys were checked when ``message``
    was constructed.

    Note that EK_A is the one key of the handshake that nothing authenticates,
    and its seven torsion twins give the same SK (spec/x3dh.md §5.3): accepting
    only the torsion-free one, as libsignal's v4 responder does, leaves one
    encoding per handshake, so a replayed initial message cannot pass as a new
    one.
    """
    _require(identity, IdentityKeyPair, "identity")
    _require(message, InitialData, "message")
    if expected_initiator is not None and not _same_key(expected_initiator, message.identity_key):
        raise UntrustedIdentity("the initiator's identity key is not the expected one")
    if (profile.kem is None) != (message.kem_ciphertext is None):
        raise MalformedMessage("the KEM part of the initial message does not fit the profile")
    if not is_torsion_free(message.ephemeral_key):
        raise InvalidPublicKey("the base key is not torsion-free")
    spk = prekeys.signed_prekey(message.signed_prekey_id)
    opk = _one_time_prekey(prekeys, message.one_time_prekey_id)
    dh = [
        spk.key_pair.exchange(message.identity_key),
        identity.key_pair.exchange(message.ephemeral_key),
        spk.key_pair.exchange(message.ephemeral_key),
    ]
    if opk is not None:
        dh.append(opk.key_pair.exchange(message.ephemeral_key))
    shared, consumed_kem_id = _decapsulate(profile, prekeys, message)
    ikm = key_material(tuple(dh), shared)
    return ResponderResult(
        sk=kdf(profile, ikm),
        ad=associated_data(message.identity_key, identity.public),
        initiator_identity=message.identity_key,
        signed_prekey=spk.key_pair,
        consumed=ConsumedPrekeys(message.one_time_prekey_id, consumed_kem_id),
        intermediates=Intermediates(tuple(dh), message.kem_ciphertext, shared, ikm),
    )


def _decapsulate(
    profile: Profile, prekeys: PrekeySource, message: InitialData
) -> tuple[bytes | None, int | None]:
    """PQXDH §3.4: SS, and the KEM prekey id to consume if the key was one-time."""
    if profile.kem is None or message.kem_prekey_id is None or message.kem_ciphertext is None:
        return None, None
    pqpk = prekeys.kem_prekey(message.kem_prekey_id)
    shared = pqxdh.decapsulate(profile.kem, pqpk, message.kem_ciphertext)
    return shared, None if pqpk.last_resort else pqpk.prekey_id


def _one_time_prekey(prekeys: PrekeySource, prekey_id: int | None) -> OneTimePrekey | None:
    return None if prekey_id is None else prekeys.one_time_prekey(prekey_id)


def _require(value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise InvalidArgument(f"{what} must be a {kind.__name__}")


def _same_key(expected: bytes, actual: bytes) -> bool:
    if not isinstance(expected, bytes):
        raise InvalidArgument("the expected identity key must be bytes")
    return constant_time_equal(expected, actual)
