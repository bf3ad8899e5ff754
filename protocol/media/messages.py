"""The call-key messages sent over Double Ratchet sessions (spec/media.md §3).

Three typed messages, each a msgpack array that opens with a version and a
type tag:

* ``MediaKey``  ``[1, 1, call_id, sender_device, cipher_suite, r, generation, step, base_key]``
* ``CallOffer`` ``[1, 2, call_id, cipher_suite, x25519_pub, kem_pub | nil]``
* ``CallAnswer`` ``[1, 3, call_id, x25519_pub, kem_ciphertext | nil]``

Decoding is strict: the bytes must be exactly the canonical msgpack encoding
of a value of the right shape (so no alternative integer widths, no ``str``
for ``bin``, no booleans for integers, nothing trailing). A version other
than 1 is UNSUPPORTED_VERSION; every other deviation is MALFORMED_MESSAGE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgpack

from protocol.encoding import unpack_msgpack
from protocol.errors import InvalidArgument, MalformedMessage, UnsupportedVersion
from protocol.media.limits import MAX_R, MIN_R
from protocol.media.sframe import CipherSuite, sender_key_kid, suite_params
from protocol.primitives import X25519_LEN
from protocol.secrecy import SECRET

VERSION: Final = 1
MEDIA_KEY_TYPE: Final = 1
CALL_OFFER_TYPE: Final = 2
CALL_ANSWER_TYPE: Final = 3

CALL_ID_LEN: Final = 16
MAX_DEVICE_ID_LEN: Final = 64
# The largest message: a CallOffer with an ML-KEM-768 key is about 1.3 kB.
MAX_MESSAGE_LEN: Final = 4096


def check_call_id(call_id: object) -> bytes:
    """A call id is 16 bytes (drawn by whoever creates the call)."""
    if not isinstance(call_id, bytes) or len(call_id) != CALL_ID_LEN:
        raise InvalidArgument(f"a call id must be {CALL_ID_LEN} bytes")
    return call_id


def check_device_id(device: object) -> str:
    """A device id is a non-empty string of at most 64 UTF-8 bytes."""
    if not isinstance(device, str) or not 0 < len(device.encode()) <= MAX_DEVICE_ID_LEN:
        raise InvalidArgument(f"a device id must be 1 to {MAX_DEVICE_ID_LEN} UTF-8 bytes")
    return device


@dataclass(frozen=True, slots=True)
class MediaKey:
    """One sender's base_key for one (generation, step) of a call (RFC 9605 §5.1).

    The KID of frames under this key is ``(generation << r) | step``; the step
    never wraps (the sender starts a new generation first), so ``step < 2^r``.
    """

    call_id: bytes
    sender_device: str
    cipher_suite: CipherSuite
    r: int
    generation: int
    step: int
    base_key: Annotated[bytes, SECRET]

    def __post_init__(self) -> None:
        check_call_id(self.call_id)
        check_device_id(self.sender_device)
        object.__setattr__(self, "cipher_suite", suite_params(self.cipher_suite).suite)
        if type(self.r) is not int or not MIN_R <= self.r <= MAX_R:
            raise InvalidArgument(f"R must be in [{MIN_R}, {MAX_R}]")
        if type(self.step) is not int or not 0 <= self.step < 1 << self.r:
            raise InvalidArgument("the ratchet step must be below 2^R")
        sender_key_kid(self.generation, self.step, self.r)  # generation fits in 64 - R bits
        nh = suite_params(self.cipher_suite).nh
        if not isinstance(self.base_key, bytes) or len(self.base_key) != nh:
            raise InvalidArgument(f"the base_key of this suite must be {nh} bytes")

    @property
    def kid(self) -> int:
        """KID = (generation << R) | step (RFC 9605 §5.1)."""
        return sender_key_kid(self.generation, self.step, self.r)

    def __repr__(self) -> str:
        return (
            f"MediaKey(call_id={self.call_id.hex()}, sender_device={self.sender_device!r}, "
            f"cipher_suite={self.cipher_suite.name}, r={self.r}, generation={self.generation}, "
            f"step={self.step}, base_key=<redacted>)"
        )


@dataclass(frozen=True, slots=True)
class CallOffer:
    """The caller's ephemeral keys of a contributory 1:1 call (spec/media.md §4)."""

    call_id: bytes
    cipher_suite: CipherSuite
    x25519_pub: bytes
    kem_pub: bytes | None


@dataclass(frozen=True, slots=True)
class CallAnswer:
    """The callee's ephemeral key and KEM ciphertext (spec/media.md §4)."""

    call_id: bytes
    x25519_pub: bytes
    kem_ciphertext: bytes | None


def _pack(fields: list[Any]) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


def _unpack(data: object, type_tag: int, length: int) -> list[Any]:
    """The fields of a canonical ``[version, type, ...]`` array, after the two tags."""
    if not isinstance(data, bytes):
        raise InvalidArgument("a call-key message must be bytes")
    if len(data) > MAX_MESSAGE_LEN:
        raise MalformedMessage(f"call-key message longer than {MAX_MESSAGE_LEN} bytes")
    fields = unpack_msgpack(data, "call-key message")
    if not isinstance(fields, list) or not fields or type(fields[0]) is not int:
        raise MalformedMessage("call-key message is not a versioned array")
    if fields[0] != VERSION:
        raise UnsupportedVersion(f"call-key message version {fields[0]} is not {VERSION}")
    if len(fields) != length or fields[1] != type_tag or type(fields[1]) is not int:
        raise MalformedMessage("call-key message has the wrong type or field count")
    if _pack(fields) != data:
        raise MalformedMessage("call-key message is not canonically encoded")
    return fields[2:]


def _typed(value: object, kind: type, what: str) -> Any:
    if type(value) is not kind:
        raise MalformedMessage(f"{what} has the wrong type")
    return value


def _build(build: Any, *args: Any) -> Any:
    """Run a constructor on decoded fields; its argument checks become parse errors."""
    try:
        return build(*args)
    except InvalidArgument as exc:
        raise MalformedMessage(str(exc)) from None


def encode_media_key(key: MediaKey) -> bytes:
    """The wire form of a MediaKey (spec/media.md §3.1)."""
    return _pack(
        [
            VERSION,
            MEDIA_KEY_TYPE,
            key.call_id,
            key.sender_device,
            int(key.cipher_suite),
            key.r,
            key.generation,
            key.step,
            key.base_key,
        ]
    )


def decode_media_key(data: bytes) -> MediaKey:
    """Strictly parse a MediaKey (spec/media.md §3.1)."""
    call_id, device, suite, r, generation, step, base_key = _unpack(data, MEDIA_KEY_TYPE, 9)
    args = (
        _typed(call_id, bytes, "call_id"),
        _typed(device, str, "sender_device"),
        _typed(suite, int, "cipher_suite"),
        _typed(r, int, "r"),
        _typed(generation, int, "generation"),
        _typed(step, int, "step"),
        _typed(base_key, bytes, "base_key"),
    )
    result: MediaKey = _build(MediaKey, *args)
    return result


def _suite(value: int) -> CipherSuite:
    return suite_params(value).suite


def _optional_bytes(value: object, what: str) -> bytes | None:
    return None if value is None else _typed(value, bytes, what)


def encode_call_offer(offer: CallOffer) -> bytes:
    """The wire form of a CallOffer (spec/media.md §3.2)."""
    fields = [offer.call_id, int(offer.cipher_suite), offer.x25519_pub, offer.kem_pub]
    return _pack([VERSION, CALL_OFFER_TYPE, *fields])


def decode_call_offer(data: bytes) -> CallOffer:
    """Strictly parse a CallOffer; key contents are checked when they are used."""
    call_id, suite, x25519_pub, kem_pub = _unpack(data, CALL_OFFER_TYPE, 6)
    offer = CallOffer(
        _build(check_call_id, _typed(call_id, bytes, "call_id")),
        _build(_suite, _typed(suite, int, "cipher_suite")),
        _typed(x25519_pub, bytes, "x25519_pub"),
        _optional_bytes(kem_pub, "kem_pub"),
    )
    _check_x25519_length(offer.x25519_pub)
    return offer


def encode_call_answer(answer: CallAnswer) -> bytes:
    """The wire form of a CallAnswer (spec/media.md §3.2)."""
    fields = [answer.call_id, answer.x25519_pub, answer.kem_ciphertext]
    return _pack([VERSION, CALL_ANSWER_TYPE, *fields])


def decode_call_answer(data: bytes) -> CallAnswer:
    """Strictly parse a CallAnswer; key contents are checked when they are used."""
    call_id, x25519_pub, kem_ciphertext = _unpack(data, CALL_ANSWER_TYPE, 5)
    answer = CallAnswer(
        _build(check_call_id, _typed(call_id, bytes, "call_id")),
        _typed(x25519_pub, bytes, "x25519_pub"),
        _optional_bytes(kem_ciphertext, "kem_ciphertext"),
    )
    _check_x25519_length(answer.x25519_pub)
    return answer


def _check_x25519_length(public: bytes) -> None:
    if len(public) != X25519_LEN:
        raise MalformedMessage(f"an X25519 public key must be {X25519_LEN} bytes")
