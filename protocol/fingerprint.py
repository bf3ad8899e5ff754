"""Safety numbers: libsignal's numeric fingerprint, displayable and scannable (spec/session.md §6).

libsignal ``rust/protocol/src/fingerprint.rs``. Each party's fingerprint
is an iterated SHA-512 over its stable identifier and identity key. The
*displayable* form is 60 digits both users read out; the *scannable* form is
the 74-byte ``CombinedFingerprints`` protobuf one device shows as a QR code
and the other compares (fingerprint.proto):

    CombinedFingerprints { 1 version: uint32,
                           2 local_fingerprint:  LogicalFingerprint { 1 content: bytes },
                           3 remote_fingerprint: LogicalFingerprint { 1 content: bytes } }

Version 1 and version 2 differ only in the version field; Signal uses
version 2 with the raw 16-byte service id (ACI) as the identifier, version 1
with the phone number as text. The displayable digits do not depend on the
version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.encoding import encode_ec
from protocol.errors import InvalidArgument, MalformedMessage, UnsupportedVersion
from protocol.primitives import constant_time_equal, sha512
from protocol.protobuf import Schema, read_fields, write_fields

SAFETY_NUMBER_ITERATIONS: Final = 5200
"""libsignal's numeric fingerprint iteration count (fingerprint.rs, spec/session.md §6)."""
FINGERPRINT_VERSIONS: Final = (1, 2)
"""The scannable versions libsignal writes (fingerprint.rs tests v1 and v2)."""
SCANNABLE_LEN: Final = 32
"""Bytes of each party's digest in the scannable form (``ScannableFingerprint::new``)."""
SCANNABLE_FINGERPRINT_LEN: Final = 74
"""The serialized ``CombinedFingerprints``: 2 + 2 × (2 + 2 + 32)."""


# CombinedFingerprints {1 version, 2 local_fingerprint, 3 remote_fingerprint}
_COMBINED: Final[Schema] = {1: "varint", 2: "bytes", 3: "bytes"}
# LogicalFingerprint {1 content}
_LOGICAL: Final[Schema] = {1: "bytes"}


def _identifier(stable_id: str | bytes) -> bytes:
    """A stable identifier as libsignal hashes it: text as UTF-8, bytes (a service id) as is."""
    if isinstance(stable_id, str):
        return stable_id.encode()
    if isinstance(stable_id, bytes):
        return stable_id
    raise InvalidArgument("a stable identifier is str or bytes")


def fingerprint_digest(stable_id: str | bytes, identity_key: bytes) -> bytes:
    """Implements libsignal ``Fingerprint::get_fingerprint`` (fingerprint.rs): 64 bytes.

    h_0 = SHA-512(0x0000 ‖ Encode(key) ‖ id ‖ Encode(key)), then
    h_i = SHA-512(h_{i-1} ‖ Encode(key)) up to i = 5199.
    """
    key = encode_ec(identity_key)
    digest = sha512(b"\x00\x00" + key + _identifier(stable_id) + key)
    for _ in range(SAFETY_NUMBER_ITERATIONS - 1):
        digest = sha512(digest + key)
    return digest


def _digits(digest: bytes) -> str:
    """Implements libsignal ``get_encoded_string``: six 5-byte chunks, each mod 100000."""
    chunks = (int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 30, 5))
    return "".join(f"{chunk:05d}" for chunk in chunks)


def displayable(local_digest: bytes, remote_digest: bytes) -> str:
    """libsignal ``DisplayableFingerprint``: both parties' 30 digits, the smaller first."""
    return "".join(sorted((_digits(local_digest), _digits(remote_digest))))


def safety_number(
    local_id: str | bytes, local_key: bytes, remote_id: str | bytes, remote_key: bytes
) -> str:
    """The 60-digit number both users compare out of band (libsignal's displayable fingerprint).

    Each side's 30 digits come from 5200 iterations of SHA-512 over its stable
    id and identity key; the two halves are ordered so both users see the same
    string (spec/session.md §6).
    """
    return displayable(
        fingerprint_digest(local_id, local_key), fingerprint_digest(remote_id, remote_key)
    )


class FingerprintVersionMismatch(UnsupportedVersion):
    """A scanned fingerprint has another version than ours (libsignal ``VersionMismatch``)."""

    def __init__(self, theirs: int, ours: int) -> None:
        super().__init__(f"fingerprint version mismatch: theirs {theirs}, ours {ours}")
        self.theirs = theirs
        self.ours = ours


def _check_version(version: object) -> int:
    if isinstance(version, bool) or version not in FINGERPRINT_VERSIONS:
        raise InvalidArgument("a scannable fingerprint version is 1 or 2")
    assert isinstance(version, int)
    return version


@dataclass(frozen=True, slots=True)
class ScannableFingerprint:
    """libsignal ``ScannableFingerprint``: the version and the first 32 bytes of each digest."""

    version: int
    local: bytes
    remote: bytes

    def __post_init__(self) -> None:
        _check_version(self.version)
        for part in (self.local, self.remote):
            if not isinstance(part, bytes) or len(part) != SCANNABLE_LEN:
                raise InvalidArgument("each scannable fingerprint part is 32 bytes")

    def serialize(self) -> bytes:
        """The 74-byte ``CombinedFingerprints``, fields in tag order as libsignal writes."""
        return write_fields(
            {
                1: self.version,
                2: write_fields({1: self.local}),
                3: write_fields({1: self.remote}),
            }
        )

    @classmethod
    def deserialize(cls, data: bytes) -> ScannableFingerprint:
        """Strict reader of ``CombinedFingerprints`` (MALFORMED_MESSAGE, UNSUPPORTED_VERSION).

        Note that libsignal's prost reader also accepts unknown fields,
        repeated fields and contents of any length; this reader accepts only
        the three fields, once each, with 32-byte contents, as every
        libsignal version writes them.
        """
        version, local, remote = _read_combined(data)
        if version not in FINGERPRINT_VERSIONS:
            raise UnsupportedVersion(f"scannable fingerprint version {version} is not supported")
        return cls(version, local, remote)

    def compare(self, combined: bytes) -> bool:
        """Implements libsignal ``ScannableFingerprint::compare``: is the scan ours, mirrored?

        ``combined`` is what the other device shows: its local part must be
        our remote part and its remote part our local part (compared in
        constant time). Another version raises FingerprintVersionMismatch
        (UNSUPPORTED_VERSION) rather than returning False, so the user is
        told to update rather than warned of an attack.
        """
        theirs = _read_combined(combined)
        if theirs[0] != self.version:
            raise FingerprintVersionMismatch(theirs[0], self.version)
        same_local = constant_time_equal(theirs[1], self.remote)
        same_remote = constant_time_equal(theirs[2], self.local)
        return same_local and same_remote


def _read_combined(data: bytes) -> tuple[int, bytes, bytes]:
    """(version, local, remote) of a ``CombinedFingerprints``; the version may be any uint32."""
    if not isinstance(data, bytes):
        raise InvalidArgument("a scannable fingerprint is bytes")
    fields = read_fields(data, _COMBINED)
    version = fields.get(1)
    if not isinstance(version, int):
        raise MalformedMessage("scannable fingerprint has no version")
    return version, _content(fields.get(2)), _content(fields.get(3))


def _content(logical: int | bytes | None) -> bytes:
    """The 32-byte content of one ``LogicalFingerprint``."""
    if not isinstance(logical, bytes):
        raise MalformedMessage("scannable fingerprint part is missing")
    content = read_fields(logical, _LOGICAL).get(1)
    if not isinstance(content, bytes) or len(content) != SCANNABLE_LEN:
        raise MalformedMessage("scannable fingerprint part is not 32 bytes")
    return content


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """libsignal ``Fingerprint``: the displayable digits and the scannable form."""

    display: str
    scannable: ScannableFingerprint


def fingerprint(
    version: int,
    local_id: str | bytes,
    local_key: bytes,
    remote_id: str | bytes,
    remote_key: bytes,
) -> Fingerprint:
    """Implements libsignal ``Fingerprint::new`` with 5200 iterations (fingerprint.rs).

    Identifiers are text (UTF-8, version 1's phone numbers) or bytes
    (version 2's 16-byte service ids); libsignal hashes whatever bytes it is
    given, so the version does not check the identifier's form.
    """
    _check_version(version)
    local = fingerprint_digest(local_id, local_key)
    remote = fingerprint_digest(remote_id, remote_key)
    scannable = ScannableFingerprint(version, local[:SCANNABLE_LEN], remote[:SCANNABLE_LEN])
    return Fingerprint(displayable(local, remote), scannable)
