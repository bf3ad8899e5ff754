"""Session transitions on records: set-up, the handshake's name, decryption (spec/session.md §3-§4).

Pure functions over ``SessionRecord`` and ``SessionState``; the manager
(protocol/session/manager.py) reads and writes them in one transaction.
"""

from __future__ import annotations

import dataclasses

from protocol import triple_ratchet, wire, x3dh
from protocol.curve25519 import torsion_free_part
from protocol.errors import AuthFailed, DuplicateMessage, ProtocolError
from protocol.primitives import constant_time_equal, sha256
from protocol.profiles import Profile
from protocol.randomness import Random
from protocol.session.records import DeviceRecord, SessionRecord, SessionState


def find_handshake(
    record: SessionRecord, profile: Profile, message: wire.PrekeyMessage
) -> int | None:
    """The responder session whose handshake has this version and base key, current or archived.

    libsignal ``SessionRecord::promote_matching_session`` (state/session.rs):
    the first session, current first, whose version (here: ``profile``, the
    one that decoded the message) and base key match; the caller makes it
    current once the message decrypts under it, ``promote_old_session``.
    libsignal looks only at those two; we also refuse a repeated initial
    message whose other fields differ (a tampered copy), as AUTH_FAILED.
    Base keys are compared up to torsion (spec/x3dh.md §5.3): a torsion twin
    of a known base key gives the known handshake's SK, so it is that
    handshake replayed under another encoding, DUPLICATE_MESSAGE. (x3dh.respond
    refuses twins anyway; this keeps the replay from reading as a bad key.)

    Note that the twin check is one X25519 call per message, not two per
    session compared (80 against signal-v4's 40 archived sessions): the
    incoming key's torsion-free part is computed once, and a known base key
    is its twin exactly when it equals that part, because every known
    responder base key is torsion-free and so its own torsion-free part
    (``curve25519.torsion_free_part``). It is, because a responder session
    exists only once x3dh.respond accepted its base key, which it does only
    for a torsion-free one (spec/x3dh.md §5.3; the format-1 fixtures' are
    too, ``tests/session/test_find_handshake.py``).
    """
    ephemeral_key = message.initial.ephemeral_key
    torsion_free: bytes | None = None  # the incoming key's, computed at most once
    for index, known in enumerate(record.states()):
        if known.role != "responder" or known.profile != profile:
            continue
        if constant_time_equal(known.ephemeral_key, ephemeral_key):
            if not constant_time_equal(
                handshake_digest(known.profile, message), known.handshake_digest
            ):
                raise AuthFailed("the initial message differs from the one of its base key")
            return index
        if torsion_free is None:
            torsion_free = torsion_free_part(ephemeral_key) or b""
        if known.ephemeral_key == torsion_free:
            raise DuplicateMessage("a torsion twin of a known handshake's base key")
    return None


def handshake_digest(profile: Profile, message: wire.PrekeyMessage) -> bytes:
    """SHA-256 of the initial message without its ratchet message: what names a handshake."""
    return sha256(wire.encode_prekey_message(profile, dataclasses.replace(message, message=b"")))


def initial_handshake(device: DeviceRecord, initial: x3dh.InitialData) -> wire.PrekeyMessage:
    """The prekey-message fields the initiator repeats until the peer answers."""
    carried = device.profile.framing.carries_registration_id
    registration_id = device.registration_id if carried else None
    return wire.PrekeyMessage(initial, registration_id, b"")


def decrypt_first(
    candidates: list[tuple[int, SessionState]], data: bytes, rng: Random
) -> tuple[int, SessionState, bytes]:
    """Decrypt with the first session state that accepts the message (current first).

    When none does, AUTH_FAILED from a state only says "not this session's
    message", so the error reported is the first other one (a session that
    recognized the message and refused it, e.g. DUPLICATE_MESSAGE), and
    AUTH_FAILED only if every state gave it (spec/session.md §4.2).
    """
    errors: list[ProtocolError] = []
    for index, state in candidates:
        try:
            new, plaintext = triple_ratchet.decrypt(state.triple, data, state.ad, rng)
        except ProtocolError as exc:
            errors.append(exc)
            continue
        return index, state.advanced(new), plaintext
    raise next((e for e in errors if not isinstance(e, AuthFailed)), errors[0])
