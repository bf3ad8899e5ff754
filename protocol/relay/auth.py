"""Mailbox ownership: the challenge a device signs with its identity key (spec/relay.md §3).

The server draws a fresh 32-byte challenge for each ``hello``. The device
answers with an XEdDSA signature (spec/xeddsa.md) by its identity key over

    "E2EERef relay auth v1" ‖ 0x00 ‖ challenge ‖ u8(len(user)) ‖ user ‖ u32be(device)

so the signature proves possession of the private key now (the challenge is
fresh), for this user and device (they are signed), and cannot be replayed
on another connection (each challenge is used once). The domain string keeps
the signature from being valid as a signed prekey or any other XEdDSA use.
"""

from __future__ import annotations

from typing import Final

from protocol.encoding import u32be
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.xeddsa import sign, xeddsa_verify

AUTH_DOMAIN: Final = b"E2EERef relay auth v1\x00"


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
