"""The ProtocolError hierarchy (spec/profiles.md §5).

Every failure the library reports is a ``ProtocolError`` subclass with one
stable ``code`` string. The codes are used verbatim in the test vectors
(``vectors/README.md``), so they never change meaning. Messages never carry
secret material: callers may log them.
"""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Base class; ``code`` is the stable machine-readable reason."""

    code: ClassVar[str] = "PROTOCOL_ERROR"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)


class InvalidPublicKey(ProtocolError):
    """Wrong length, non-canonical or low-order key, or an all-zero DH output."""

    code = "INVALID_PUBLIC_KEY"


class InvalidSignature(ProtocolError):
    """A signed-prekey, KEM-prekey or challenge signature does not verify."""

    code = "INVALID_SIGNATURE"


class UnknownPrekey(ProtocolError):
    """A one-time or KEM prekey id is unknown or was already consumed."""

    code = "UNKNOWN_PREKEY"


class MalformedMessage(ProtocolError):
    """A wire, header or state structure does not parse strictly."""

    code = "MALFORMED_MESSAGE"


class AuthFailed(ProtocolError):
    """An AEAD or MAC check failed (tampering or the wrong key)."""

    code = "AUTH_FAILED"


class DuplicateMessage(ProtocolError):
    """The message key was already consumed: a replay."""

    code = "DUPLICATE_MESSAGE"


class TooManySkipped(ProtocolError):
    """Accepting the message would skip more than MAX_SKIP keys."""

    code = "TOO_MANY_SKIPPED"


class MessageKeyEvicted(ProtocolError):
    """The skipped key was dropped because the store of skipped keys was full."""

    code = "MESSAGE_KEY_EVICTED"


class FrameReplay(ProtocolError):
    """A media frame counter was already seen or lies below the replay window."""

    code = "FRAME_REPLAY"


class UnknownKeyId(ProtocolError):
    """A media key id (KID) is not installed."""

    code = "UNKNOWN_KEY_ID"


class StateCorrupt(ProtocolError):
    """A serialized state does not parse or fails its integrity checks."""

    code = "STATE_CORRUPT"


class UnsupportedVersion(ProtocolError):
    """A message or state carries a version this library does not speak."""

    code = "UNSUPPORTED_VERSION"


class LimitExceeded(ProtocolError):
    """A documented size or count limit was hit (queue full, frame too large, counter space)."""

    code = "LIMIT_EXCEEDED"


class InvalidArgument(ProtocolError):
    """A caller passed a value of the wrong type or length to a public function."""

    code = "INVALID_ARGUMENT"


class AccessDenied(ProtocolError):
    """The relay refused: not authenticated, or a registered identity key differs (TOFU)."""

    code = "ACCESS_DENIED"


class UnknownDevice(ProtocolError):
    """The relay has no registered device (or no bundle) under that address."""

    code = "UNKNOWN_DEVICE"


class UntrustedIdentity(ProtocolError):
    """A peer's identity key differs from the one trusted for it (spec/session.md §6).

    The caller compares ``safety_number`` out of band and then calls
    ``SessionManager.trust_identity``; until then nothing changes.
    """

    code = "UNTRUSTED_IDENTITY"

    def __init__(self, message: str = "", *, safety_number: str = "") -> None:
        super().__init__(message)
        self.safety_number = safety_number


class NoSession(ProtocolError):
    """A normal (non-initial) message arrived from a peer we have no session with."""

    code = "NO_SESSION"


class NotInCall(ProtocolError):
    """A call key names another call, or a sender device that is not a member of the call."""

    code = "NOT_IN_CALL"


ALL_ERRORS: tuple[type[ProtocolError], ...] = (
    InvalidPublicKey,
    InvalidSignature,
    UnknownPrekey,
    MalformedMessage,
    AuthFailed,
    DuplicateMessage,
    TooManySkipped,
    MessageKeyEvicted,
    FrameReplay,
    UnknownKeyId,
    StateCorrupt,
    UnsupportedVersion,
    LimitExceeded,
    InvalidArgument,
    AccessDenied,
    UnknownDevice,
    UntrustedIdentity,
    NoSession,
    NotInCall,
)

ERROR_CODES: frozenset[str] = frozenset(cls.code for cls in ALL_ERRORS)

_BY_CODE: dict[str, type[ProtocolError]] = {cls.code: cls for cls in ALL_ERRORS}


def error_for_code(code: str) -> type[ProtocolError]:
    """Return the error class for a stable code (used by the vector verifier)."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise InvalidArgument(f"unknown error code {code!r}") from None
