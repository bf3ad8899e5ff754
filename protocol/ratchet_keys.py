"""The Double Ratchet's secret keys as types: RK, CK, HK and mk (spec/ratchet.md §1).

Implements the key types of the Double Ratchet state (DR §3.2, §4): the
root key RK, the chain keys CKs and CKr, the header keys HKs, HKr, NHKs and
NHKr, and the message keys mk (kept in MKSKIPPED, or handed by SPQR to the
message-key derivation of libsignal v4). Each is 32 bytes, is secret wherever
it is held (``__secret__``, protocol/secrecy.py: the leak scan and the repr
test find every field typed with one) and shows ``<redacted>`` in ``repr``
and ``str``.

Design: a key type is a ``bytes`` subclass with ``__slots__ = ()`` whose
constructor checks the length (INVALID_ARGUMENT otherwise). Why not a
frozen dataclass around a ``bytes`` field, as vodozemac and libsignal wrap
theirs:

* every key goes straight into a pyca call (HMAC, HKDF, AES-GCM), several
  times per message; a subclass *is* the bytes pyca takes, so the
  per-message path builds no wrapper and reads no attribute;
* the stored format writes a key as the bin it always was
  (``stored_bytes`` / ``from_stored_bytes``, spec/storage.md §3.2), so no
  stored byte and no vector changes;
* the readers of the state (vectors, audit, bench, tests) that hex, slice or
  compare keys keep working, while mypy --strict sees a ``bytes`` where a
  ``RootKey`` is required as an error, so every field is filled only by a
  producer that returns the typed key.

It is as frozen as a dataclass: ``bytes`` is immutable and ``__slots__ = ()``
leaves no ``__dict__`` to attach anything to. Operations that make new bytes
(slicing, ``+``) return plain ``bytes``, so a key is never silently re-typed.
"""

from __future__ import annotations

from typing import ClassVar, Final, Self

from protocol.errors import InvalidArgument

KEY_LEN: Final = 32
"""Every Double Ratchet key is 32 bytes (DR §5.2: HMAC-SHA256 and HKDF-SHA256 outputs)."""


class SecretKey(bytes):
    """A 32-byte secret key of the Double Ratchet; see the module docstring for the design."""

    __slots__ = ()
    __secret__: ClassVar[bool] = True

    def __new__(cls, key: bytes) -> Self:
        if not isinstance(key, bytes) or len(key) != KEY_LEN:
            raise InvalidArgument(f"a {cls.__name__} is {KEY_LEN} bytes")
        return bytes.__new__(cls, key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"

    __str__ = __repr__

    def stored_bytes(self) -> bytes:
        """The key as the stored format writes it: its 32 bytes (spec/storage.md §3.2)."""
        return bytes(self)

    @classmethod
    def from_stored_bytes(cls, data: bytes) -> Self:
        """The key from its stored bytes, length checked (a wrong length is STATE_CORRUPT)."""
        return cls(data)


class RootKey(SecretKey):
    """RK (DR §3.2): the root chain's key, input and output of KDF_RK."""

    __slots__ = ()


class ChainKey(SecretKey):
    """CKs or CKr (DR §3.2): a sending or receiving chain key, input and output of KDF_CK."""

    __slots__ = ()


class HeaderKey(SecretKey):
    """HKs, HKr, NHKs or NHKr (DR §4): a header key of header encryption."""

    __slots__ = ()


class MessageKey(SecretKey):
    """mk (DR §3.1): the key of one message, from KDF_CK (or SPQR's, libsignal v4)."""

    __slots__ = ()
