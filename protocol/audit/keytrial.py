"""Every key the relay can compute, tried on what it carried (spec/relay.md §9.3).

The relay has no private key, so the keys it can compute come from public
values: the X25519 keys it saw (identity keys, signed and one-time prekeys,
the base keys of initial messages), the ML-KEM keys and ciphertexts, the
X25519 function applied to any two of the keys it saw (one used as if it
were a private scalar, which is all a server can do), and HKDF-SHA256 of
any of those with every info string of every profile (protocol/profiles.py)
and the SFrame labels, 96 bytes cut into three 32-byte keys.

``trial`` tries each candidate as a header key (HDECRYPT), as a message key
(the profile's ENCRYPT, with the associated data the relay can compute:
Encode(IK_A) ‖ Encode(IK_B) from the identity keys of both devices), and
as an SFrame base key (RFC 9605 §4.4.2, default suite) on a sample of the
messages and frames. The same trial run with the demo's real keys is the
control: it must open every sampled item, or the trial proves nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import permutations
from typing import ParamSpec, TypeVar

from protocol import wire
from protocol.audit.observe import Observation
from protocol.bundle import PrekeyBundle
from protocol.encoding import decode_ec
from protocol.errors import ProtocolError
from protocol.media import sframe
from protocol.primitives import aes_gcm_decrypt, hkdf_sha256, x25519
from protocol.profiles import PROFILES, Profile
from protocol.ratchet import hdecrypt, message_keys
from protocol.relay.schema import Address
from protocol.x3dh import associated_data

P = ParamSpec("P")
R = TypeVar("R")
KEY_LEN = 32
SFRAME_LABELS = (sframe.RATCHET_LABEL, sframe.SECRET_KEY_LABEL, sframe.SECRET_SALT_LABEL)


@dataclass
class PublicValues:
    """Public keys and KEM values the relay saw, parsed with the public formats."""

    x25519: set[bytes] = field(default_factory=set)
    kem: set[bytes] = field(default_factory=set)
    # Which device began each pair's session (the sender of its initial message).
    initiators: dict[frozenset[Address], Address] = field(default_factory=dict)


def public_values(seen: Observation, profile: Profile) -> PublicValues:
    values = PublicValues(x25519=set(seen.identity_keys.values()))
    for bundles in seen.bundles.values():
        for data in bundles:
            _add_bundle(values, data)
    for prekeys in seen.prekeys.values():
        for kind, key in prekeys:
            if kind == "ec":
                values.x25519.add(_ignore_errors(decode_ec, key) or b"")
            else:
                values.kem.add(key)
    for message in seen.messages:
        prekey_message = _ignore_errors(wire.decode_prekey_message, profile, message.body)
        if prekey_message is not None:
            initial = prekey_message.initial
            values.x25519 |= {initial.identity_key, initial.ephemeral_key}
            values.kem.add(initial.kem_ciphertext or b"")
            pair = frozenset((message.sender, message.recipient))
            values.initiators.setdefault(pair, message.sender)
    values.x25519.discard(b"")
    values.kem.discard(b"")
    return values


def _add_bundle(values: PublicValues, data: bytes) -> None:
    bundle = _ignore_errors(PrekeyBundle.from_bytes, data)
    if bundle is not None:
        values.x25519 |= {bundle.identity_key, bundle.signed_prekey}
        if bundle.kem_prekey is not None:
            values.kem.add(bundle.kem_prekey.public)


def _ignore_errors(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
    """The result, or None when the value does not parse (a public format, read leniently)."""
    try:
        return function(*args, **kwargs)
    except ProtocolError:
        return None


def info_strings() -> list[bytes]:
    """Every KDF info string and constant of every profile, and the SFrame labels."""
    infos = set(SFRAME_LABELS)
    for profile in PROFILES.values():
        for item in dataclasses.fields(profile):
            value = getattr(profile, item.name)
            if isinstance(value, bytes):
                infos.add(value)
    return sorted(infos)


def candidate_keys(values: PublicValues) -> set[bytes]:
    """Every 32-byte key derivable from the public values (see the module docstring)."""
    publics = sorted(values.x25519)
    ikms = [*publics, *sorted(values.kem), *_pairwise_dh(publics)]
    candidates = {ikm for ikm in ikms if len(ikm) == KEY_LEN}
    infos = info_strings()
    for ikm in ikms:
        for info in infos:
            out = hkdf_sha256(ikm, None, info, 3 * KEY_LEN)
            candidates |= {out[:32], out[32:64], out[64:]}
    return candidates


def _pairwise_dh(publics: list[bytes]) -> Iterator[bytes]:
    for scalar, point in permutations(publics, 2):
        shared = _ignore_errors(x25519, scalar, point)
        if shared is not None:
            yield shared


@dataclass(frozen=True, slots=True)
class Sample:
    """A message (with its AD) or a frame picked for the trial."""

    what: str
    ad: bytes
    message: wire.RatchetMessage | None
    frame: bytes


def samples(
    seen: Observation, values: PublicValues, profile: Profile, per_kind: int
) -> list[Sample]:
    """The first messages between distinct pairs and the first frames of distinct senders."""
    picked: list[Sample] = []
    pairs: set[tuple[Address, Address]] = set()
    for n, message in enumerate(seen.messages):
        initiator = values.initiators.get(frozenset((message.sender, message.recipient)))
        parsed = _ratchet_message(profile, message.body)
        if initiator is None or parsed is None or len(pairs) >= per_kind:
            continue
        if (message.sender, message.recipient) in pairs:
            continue
        pairs.add((message.sender, message.recipient))
        responder = message.recipient if initiator == message.sender else message.sender
        ad = associated_data(seen.identity_keys[initiator], seen.identity_keys[responder])
        picked.append(Sample(f"message {n}", ad, parsed, b""))
    senders: set[Address] = set()
    for n, media in enumerate(seen.media):
        if media.sender not in senders and len(senders) < per_kind:
            senders.add(media.sender)
            picked.append(Sample(f"frame {n}", b"", None, media.frame))
    return picked


def _ratchet_message(profile: Profile, body: bytes) -> wire.RatchetMessage | None:
    initial = _ignore_errors(wire.decode_prekey_message, profile, body)
    inner = body if initial is None else initial.message
    parsed: wire.RatchetMessage | None = _ignore_errors(wire.decode_message, profile, inner)
    return parsed


def opens(key: bytes, sample: Sample, profile: Profile) -> bool:
    """Whether ``key`` opens the sample as a header key, message key or SFrame base key."""
    if sample.message is None:
        return _opens_frame(key, sample.frame)
    message = sample.message
    if profile.headers.encrypted and hdecrypt(profile, key, message.authenticated) is not None:
        return True
    keys = message_keys(profile, key)
    try:
        aes_gcm_decrypt(
            keys.enc_key, keys.nonce, message.ciphertext, sample.ad + message.authenticated
        )
    except ProtocolError:
        return False
    return True


def _opens_frame(key: bytes, frame: bytes) -> bool:
    try:
        kid, ctr, length = sframe.decode_header(frame)
        frame_key = sframe.derive_frame_key(sframe.DEFAULT_SUITE, key, kid)
        sframe.open_frame(frame_key, frame, b"", (kid, ctr, length))
    except ProtocolError:
        return False
    return True


def trial(keys: Iterable[bytes], picked: list[Sample], profile: Profile) -> dict[str, int]:
    """For each sample, how many of ``keys`` open it."""
    opened = {sample.what: 0 for sample in picked}
    for key in keys:
        if len(key) != KEY_LEN:
            continue
        for sample in picked:
            opened[sample.what] += opens(key, sample, profile)
    return opened
