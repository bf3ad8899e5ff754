"""Every key the relay can compute, tried on what it carried (spec/relay.md §9.3).

The relay has no private key, so the keys it can compute come from public
values: the X25519 keys it saw (identity keys, signed and one-time prekeys,
the base keys of initial messages), the ML-KEM keys and ciphertexts, the
X25519 function applied to any two of the keys it saw (one used as if it
were a private scalar, which is all a server can do), and HKDF-SHA256 of
any of those with every info string of every profile (protocol/profiles.py)
and the SFrame and SPQR labels, 96 bytes cut into three 32-byte keys.

In signal-v4 the relay also sees SPQR's field 5 of every message
(spec/spqr.md §8): the raw field, its 32-byte chunks, and the payloads it
can reassemble from them with the public erasure code (the ML-KEM-768
header and its MAC, the encapsulation-key vector, ct1, ct2 and its MAC,
and ct1 ‖ ct2); all of them are inputs of the HKDFs above, as are the
Kyber1024 ciphertexts of initial messages (``spqr_public_values``).

``trial`` tries each candidate as a header key (HDECRYPT), as a message key
(the profile's DECRYPT, with the associated data the relay can compute:
Encode(IK_A) ‖ Encode(IK_B) from the identity keys of both devices; the
AES-256-GCM open, or libsignal's MAC check and CBC decryption), and as an
SFrame base key (RFC 9605 §4.4.2, default suite) on a sample of the
messages and frames. A signal-v4 message key is salted by the SPQR message
key (spec/spqr.md §13), which the relay would need too: candidates are
tried unsalted, and the audit checks that no candidate equals any real
SPQR key or Double Ratchet key, so no pair of candidates is the real pair.
The same trial run with the demo's real keys (in signal-v4, each real
message key under each real SPQR key) is the control: it must open every
sampled item, or the trial proves nothing.
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
from protocol.cipher import MessageKeys
from protocol.encoding import decode_ec
from protocol.errors import ProtocolError
from protocol.media import sframe
from protocol.primitives import hkdf_sha256, x25519
from protocol.profiles import ALL_PROFILES, Profile
from protocol.ratchet import hdecrypt, message_keys
from protocol.relay.schema import Address
from protocol.spqr import erasure
from protocol.spqr import incremental_mlkem768 as im
from protocol.spqr.authenticator import UPDATE_INFO
from protocol.spqr.chain import CHAIN_ADD_EPOCH_INFO, CHAIN_NEXT_INFO, CHAIN_START_INFO
from protocol.spqr.messages import Message as SpqrMessage
from protocol.spqr.messages import MessageType, decode_message, encode_message
from protocol.spqr.states import CT2_PAYLOAD_LEN, HDR_PAYLOAD_LEN, SCKA_KEY_INFO
from protocol.x3dh import associated_data

P = ParamSpec("P")
R = TypeVar("R")
KEY_LEN = 32
SFRAME_LABELS = (sframe.RATCHET_LABEL, sframe.SECRET_KEY_LABEL, sframe.SECRET_SALT_LABEL)
# SPQR's labels, with the first epoch or counter where the label takes one (spec/spqr.md §6-§7).
SPQR_LABELS = (
    CHAIN_START_INFO,
    CHAIN_ADD_EPOCH_INFO,
    (1).to_bytes(4, "big") + CHAIN_NEXT_INFO,
    SCKA_KEY_INFO + (1).to_bytes(8, "big"),
    UPDATE_INFO + (1).to_bytes(8, "big"),
)
# The length of the payload a field 5 chunk of each type belongs to (spec/spqr.md §10).
SPQR_PAYLOAD_LEN = {
    MessageType.HDR: HDR_PAYLOAD_LEN,
    MessageType.EK: im.ENCAPSULATION_KEY_LEN,
    MessageType.EK_CT1_ACK: im.ENCAPSULATION_KEY_LEN,
    MessageType.CT1: im.CIPHERTEXT1_LEN,
    MessageType.CT2: CT2_PAYLOAD_LEN,
}


@dataclass
class PublicValues:
    """Public keys and KEM values the relay saw, parsed with the public formats."""

    x25519: set[bytes] = field(default_factory=set)
    kem: set[bytes] = field(default_factory=set)
    spqr: set[bytes] = field(default_factory=set)
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
    if profile.spqr:
        values.spqr = spqr_public_values(seen, profile)
    return values


def spqr_public_values(seen: Observation, profile: Profile) -> set[bytes]:
    """Field 5 of every message, its chunks, and every payload they reassemble into."""
    found: set[bytes] = set()
    chunks: dict[tuple[Address, Address, int, int], list[tuple[int, bytes]]] = {}
    for message in seen.messages:
        spqr = spqr_message(profile, message.body)
        if spqr is None or spqr.chunk is None:
            continue
        found |= {encode_message(spqr), spqr.chunk.data}
        length = SPQR_PAYLOAD_LEN[spqr.type]
        key = (message.sender, message.recipient, spqr.epoch, length)
        chunks.setdefault(key, []).append((spqr.chunk.index, spqr.chunk.data))
    payloads: dict[tuple[Address, Address, int, int], bytes] = {}
    for key, received in chunks.items():
        distinct = list(dict(received).items())
        payload = _ignore_errors(erasure.decode, key[3], distinct)
        if payload is not None:
            payloads[key] = payload
    for (sender, recipient, epoch, length), payload in payloads.items():
        found |= {payload, payload[: im.HEADER_LEN], payload[im.HEADER_LEN :]}
        if length == CT2_PAYLOAD_LEN:
            found.add(payload[: im.CIPHERTEXT2_LEN])
            ct1 = payloads.get((sender, recipient, epoch, im.CIPHERTEXT1_LEN))
            if ct1 is not None:
                found.add(ct1 + payload[: im.CIPHERTEXT2_LEN])
    found.discard(b"")
    return found


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
    """Every KDF info string and constant of every profile, and the SFrame and SPQR labels."""
    infos = {*SFRAME_LABELS, *SPQR_LABELS}
    for profile in ALL_PROFILES.values():
        infos |= set(_constants(profile))
    return sorted(infos)


def _constants(part: object) -> Iterator[bytes]:
    """Every bytes field of a profile and of its parts, however deep."""
    if isinstance(part, bytes):
        yield part
    elif dataclasses.is_dataclass(part) and not isinstance(part, type):
        for item in dataclasses.fields(part):
            yield from _constants(getattr(part, item.name))


def candidate_keys(values: PublicValues) -> set[bytes]:
    """Every 32-byte key derivable from the public values (see the module docstring)."""
    publics = sorted(values.x25519)
    ikms = [*publics, *sorted(values.kem), *sorted(values.spqr), *_pairwise_dh(publics)]
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
    sender_is_initiator: bool = True


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
        picked.append(Sample(f"message {n}", ad, parsed, b"", initiator == message.sender))
    senders: set[Address] = set()
    for n, media in enumerate(seen.media):
        if media.sender not in senders and len(senders) < per_kind:
            senders.add(media.sender)
            picked.append(Sample(f"frame {n}", b"", None, media.frame))
    return picked


def spqr_message(profile: Profile, body: bytes) -> SpqrMessage | None:
    """Field 5 of a signal-v4 message as the relay reads it (None if there is none)."""
    parsed = _ratchet_message(profile, body)
    field5 = b"" if parsed is None or parsed.header is None else parsed.header.pq_ratchet
    return _ignore_errors(decode_message, field5) if field5 else None


def _ratchet_message(profile: Profile, body: bytes) -> wire.RatchetMessage | None:
    initial = _ignore_errors(wire.decode_prekey_message, profile, body)
    inner = body if initial is None else initial.message
    parsed: wire.RatchetMessage | None = _ignore_errors(wire.decode_message, profile, inner)
    return parsed


def opens(
    key: bytes, sample: Sample, profile: Profile, salts: Iterable[bytes | None] = (None,)
) -> bool:
    """Whether ``key`` opens the sample as a header key, message key (expanded under
    each of ``salts``, the per-message input of signal-v4) or SFrame base key."""
    if sample.message is None:
        return _opens_frame(key, sample.frame)
    message = sample.message
    if profile.headers.encrypted and hdecrypt(profile, key, message.authenticated) is not None:
        return True
    return any(_opens_message(message_keys(profile, key, salt), sample, profile) for salt in salts)


def _opens_message(keys: MessageKeys, sample: Sample, profile: Profile) -> bool:
    assert sample.message is not None
    try:
        profile.cipher.open(keys, sample.message, sample.ad, sample.sender_is_initiator)
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


def trial(
    keys: Iterable[bytes],
    picked: list[Sample],
    profile: Profile,
    salts: Iterable[bytes | None] = (None,),
) -> dict[str, int]:
    """For each sample, how many of ``keys`` open it (message keys under each of ``salts``)."""
    opened = {sample.what: 0 for sample in picked}
    salts = list(salts)
    for key in keys:
        if len(key) != KEY_LEN:
            continue
        for sample in picked:
            opened[sample.what] += opens(key, sample, profile, salts)
    return opened
