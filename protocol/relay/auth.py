"""Mailbox ownership: the challenge a device signs with its identity key (spec/relay.md §3).

The server draws a fresh 32-byte challenge for each ``hello``. The device
answers with an XEdDSA signature (spec/xeddsa.md) by its identity key over

    "E2EERef relay auth v1" ‖ 0x00 ‖ challenge ‖ u8(len(user)) ‖ user ‖ u32be(device)

so the signature proves possession of the private key now (the challenge is
fresh), for this user and device (they are signed), and cannot be replayed
on another connection (each challenge is used once). The domain string keeps
the signature from being valid as a signed prekey or any other XEdDSA use.

A user name belongs to its first device (spec/relay.md §3.1). A further
device of the user is registered only with an endorsement: an XEdDSA
signature by the identity key of a device of that user already registered
over

    "E2EERef relay device v1" ‖ 0x00 ‖ u8(len(user)) ‖ user ‖ u32be(device) ‖ IK

where IK is the new device's 32-byte identity key. It names the user, the
device and its key, so it vouches for that one registration only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.encoding import u32be
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.xeddsa import sign, xeddsa_verify

AUTH_DOMAIN: Final = b"E2EERef relay auth v1\x00"
DEVICE_DOMAIN: Final = b"E2EERef relay device v1\x00"


@dataclass(frozen=True, slots=True)
class Endorsement:
    """A registered device's signature that lets a further device of its user register."""

    device: int
    signature: bytes


def auth_message(challenge: bytes, user: str, device: int) -> bytes:
    """The bytes a device signs to open its mailbox."""
    name = user.encode()
    return AUTH_DOMAIN + challenge + bytes([len(name)]) + name + u32be(device)


def sign_challenge(
    identity_private: bytes,
    challenge: bytes,
    user: str,
    device: int,
    rng: Random = SYSTEM_RANDOM,
) -> bytes:
    """XEdDSA signature over ``auth_message`` (draws ``xeddsa_z``, 64 bytes)."""
    return sign(identity_private, auth_message(challenge, user, device), rng)


def verify_challenge(
    identity_key: bytes, challenge: bytes, user: str, device: int, signature: bytes
) -> None:
    """Raise INVALID_SIGNATURE unless ``signature`` answers ``challenge`` for this device."""
    xeddsa_verify(identity_key, auth_message(challenge, user, device), signature)


def endorsement_message(user: str, device: int, identity_key: bytes) -> bytes:
    """The bytes a registered device signs to vouch for a further device of its user."""
    name = user.encode()
    return DEVICE_DOMAIN + bytes([len(name)]) + name + u32be(device) + identity_key


def endorse_device(
    endorser_private: bytes,
    endorser_device: int,
    user: str,
    device: int,
    identity_key: bytes,
    rng: Random = SYSTEM_RANDOM,
) -> Endorsement:
    """Sign ``endorsement_message`` with a registered device's identity key (draws ``xeddsa_z``)."""
    signature = sign(endorser_private, endorsement_message(user, device, identity_key), rng)
    return Endorsement(endorser_device, signature)


def verify_endorsement(
    endorser_key: bytes, user: str, device: int, identity_key: bytes, signature: bytes
) -> None:
    """Raise INVALID_SIGNATURE unless the endorser signed this device and key."""
    xeddsa_verify(endorser_key, endorsement_message(user, device, identity_key), signature)
