"""Framing, a profile part: how a ratchet message and a prekey message are laid out in bytes.

Implements the choice between the framings of spec/wire.md: msgpack (spec/wire.md
§2) and libsignal's protobuf (spec/wire.md §3). The codecs themselves are in ``wire.py``;
a framing part decides, in one place for both directions, which codec a
profile writes and reads. A framing part provides (spec/profiles.md §1.2):

* ``is_prekey_message(data)``: whether bytes of at least two are framed as
  a prekey message;
* ``frame(header, block, ciphertext)``: the message bytes a cipher
  authenticates (and, for a MAC-carrying framing, appends its MAC to);
* ``decode_message(profile, data)``, ``encode_prekey(profile, message)``,
  ``decode_prekey(profile, data)``: the strict codecs;
* ``mac_len``: the MAC length the framing carries after the message (0 or
  libsignal's 8), which must equal the cipher's;
* ``plain_headers_only``: True when the header's fields are written by the
  framing itself (protobuf), so header encryption cannot be used with it;
* ``carries_registration_id``: whether prekey messages carry libsignal's
  registration id.

* ``carries_pq_ratchet``: whether every message carries libsignal v4's
  SPQR message (SignalMessage field 5, ``Header.pq_ratchet``).

libsignal v4 is one more ``ProtobufFraming``: version byte 0x44, SignalMessage
field 5 (pq_ratchet) and PreKeySignalMessage fields 7-8 (spec/wire.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final

from protocol import wire
from protocol.errors import InvalidArgument
from protocol.wire import Header, PrekeyMessage, RatchetMessage

if TYPE_CHECKING:
    from protocol.profiles import Profile


@dataclass(frozen=True, slots=True)
class MsgpackFraming:
    """``version ‖ kind ‖ msgpack map`` (spec/wire.md §2); the header travels as a block."""

    name: ClassVar[str] = "msgpack"
    version: ClassVar[int] = wire.MSGPACK_VERSION
    mac_len: ClassVar[int] = 0
    plain_headers_only: ClassVar[bool] = False
    carries_registration_id: ClassVar[bool] = False
    carries_pq_ratchet: ClassVar[bool] = False

    def is_prekey_message(self, data: bytes) -> bool:
        """The envelope's second byte names the kind (spec/wire.md §2.1)."""
        return data[1] == wire.KIND_PREKEY

    def frame(self, header: Header, block: bytes, ciphertext: bytes) -> bytes:
        """{"h": header block, "c": ciphertext} (spec/wire.md §2.2)."""
        return wire.encode_message(block, ciphertext)

    def decode_message(self, profile: Profile, data: bytes) -> RatchetMessage:
        return wire.decode_msgpack_message(profile, data)

    def encode_prekey(self, profile: Profile, message: PrekeyMessage) -> bytes:
        return wire.encode_msgpack_prekey(message)

    def decode_prekey(self, profile: Profile, data: bytes) -> PrekeyMessage:
        return wire.decode_msgpack_prekey(profile, data)


@dataclass(frozen=True, slots=True)
class ProtobufFraming:
    """libsignal's ``version ‖ protobuf [‖ MAC]`` (spec/wire.md §3); the header is in the fields."""

    name: str
    version: int
    # v4 (0x44) messages carry SignalMessage field 5; v3 ones do not.
    carries_pq_ratchet: bool = field(init=False)
    mac_len: ClassVar[int] = wire.SIGNAL_MAC_LEN
    plain_headers_only: ClassVar[bool] = True
    carries_registration_id: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.version not in (wire.SIGNAL_VERSION, wire.SIGNAL_V4_VERSION):
            raise InvalidArgument(f"protobuf framing version {self.version:#04x} is not written")
        # Note that the version decides it, once, here: every message asks.
        object.__setattr__(self, "carries_pq_ratchet", self.version == wire.SIGNAL_V4_VERSION)

    def is_prekey_message(self, data: bytes) -> bool:
        """Whether it reads as a PreKeySignalMessage, in any field order (spec/wire.md §3.5)."""
        return wire.is_signal_prekey(data)

    def frame(self, header: Header, block: bytes, ciphertext: bytes) -> bytes:
        """version ‖ SignalMessage{ratchet_key, counter, previous_counter, ciphertext[, 5]}."""
        if self.carries_pq_ratchet:
            return wire.encode_signal_v4_message(header, ciphertext)
        return wire.encode_signal_message(header, ciphertext)

    def decode_message(self, profile: Profile, data: bytes) -> RatchetMessage:
        if self.carries_pq_ratchet:
            return wire.decode_signal_v4_message(profile, data)
        return wire.decode_signal_message(profile, data)

    def encode_prekey(self, profile: Profile, message: PrekeyMessage) -> bytes:
        if self.carries_pq_ratchet:
            return wire.encode_signal_v4_prekey(message)
        return wire.encode_signal_prekey(message)

    def decode_prekey(self, profile: Profile, data: bytes) -> PrekeyMessage:
        if self.carries_pq_ratchet:
            return wire.decode_signal_v4_prekey(profile, data)
        return wire.decode_signal_prekey(profile, data)


MSGPACK: Final = MsgpackFraming()
LIBSIGNAL_V3: Final = ProtobufFraming(name="signal-v3", version=wire.SIGNAL_VERSION)
LIBSIGNAL_V4: Final = ProtobufFraming(name="signal-v4", version=wire.SIGNAL_V4_VERSION)

Framing = MsgpackFraming | ProtobufFraming
