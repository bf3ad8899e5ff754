"""Signal's content padding (spec/interop-libsignal.md §4).

Signal clients do not encrypt a ``Content`` protobuf as it is: they append
the boundary byte 0x80 and zero bytes so that the padded content is one byte
less than a multiple of the block, and AES-CBC's PKCS#7 padding then adds the
last byte of the block. The sender rounds ``len(content) + 2`` up to the
block (Signal-Android ``PushTransportDetails.getPaddedMessageBody``:
``getPaddedMessageLength(len + 1) - 1``, where ``getPaddedMessageLength(n)``
rounds ``n + 1`` up), so content of 78 bytes pads to 79 and content of 79
bytes to 159.

The block is 80 bytes in current clients (Signal-Android
``PushTransportDetails.PADDING_BLOCK_SIZE``, Signal-Desktop
``OutgoingMessage.preload.ts`` ``PADDING_BLOCK``) and was 160 in
libsignal-protocol-javascript and earlier clients. Every length that is one
less than a multiple of 160 is also one less than a multiple of 80, but a
160-byte block may leave more zero bytes; ``unpad_content`` accepts exactly
what either block writes.
"""

from __future__ import annotations

from typing import Final

from protocol.errors import InvalidArgument, MalformedMessage

PADDING_BLOCK: Final = 80
"""Current Signal clients' block (Signal-Android and Signal-Desktop, 2025)."""
LEGACY_PADDING_BLOCK: Final = 160
"""The block of libsignal-protocol-javascript and earlier Signal clients."""
_BLOCKS: Final = (PADDING_BLOCK, LEGACY_PADDING_BLOCK)
PADDING_BOUNDARY: Final = 0x80
"""libsignal ``PlaintextContent::PADDING_BOUNDARY_BYTE``: where the padding starts."""


def padded_length(content_length: int, block: int = PADDING_BLOCK) -> int:
    """Signal-Android ``getPaddedMessageLength(len + 1) - 1``: the padded size.

    Note that the sender's "+1 −1" reserves the byte that PKCS#7 adds, so the
    boundary byte and the reserved byte both count: the result is the
    smallest ``k·block − 1`` that is at least ``content_length + 1``.
    """
    return -(-(content_length + 2) // block) * block - 1


def pad_content(content: bytes, block: int = PADDING_BLOCK) -> bytes:
    """Signal-Android ``PushTransportDetails.getPaddedMessageBody``: content ‖ 0x80 ‖ 0*."""
    if not isinstance(content, bytes):
        raise InvalidArgument("content must be bytes")
    if block not in _BLOCKS:
        raise InvalidArgument("the padding block is 80 or 160 bytes")
    zeros = padded_length(len(content), block) - len(content) - 1
    return content + bytes([PADDING_BOUNDARY]) + bytes(zeros)


def unpad_content(padded: bytes) -> bytes:
    """Strict inverse of ``pad_content`` for either block: the content before the boundary.

    Accepts exactly what ``pad_content`` writes with an 80- or a 160-byte
    block and refuses anything else (MALFORMED_MESSAGE): no 0x80 boundary
    after the last non-zero byte, or a length that is not the padded length
    of the content for either block. Note that Signal's own clients are
    laxer: Signal-Android's ``getStrippedPaddingMessageBody`` returns
    malformed padding unstripped and neither client checks the length, so
    content padded some other way that a Signal client would accept is
    refused here.
    """
    if not isinstance(padded, bytes):
        raise InvalidArgument("padded content must be bytes")
    content = padded.rstrip(b"\x00")
    if not content or content[-1] != PADDING_BOUNDARY:
        raise MalformedMessage("padded content has no 0x80 boundary before its zero bytes")
    content = content[:-1]
    if len(padded) not in {padded_length(len(content), b) for b in _BLOCKS}:
        raise MalformedMessage("padded content has the wrong length for its content")
    return content
