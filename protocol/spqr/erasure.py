"""The systematic Reed-Solomon erasure code of SPQR (spec/spqr.md §5).

As spqr ``src/encoding/polynomial.rs`` (``PolyEncoder``, ``PolyDecoder``)
over ``src/encoding/gf.rs`` (GF(2^16)), the code the ML-KEM Braid uses to
send each KEM value in 32-byte chunks, one per message (Braid §2, each
message sent in erasure-coded chunks; DR-rev3 §5 on SPQR's sparse sending):

* the field is GF(2^16) with the reduction polynomial x^16 + x^12 + x^3 + x +
  1 (``POLY`` = 0x1100B); addition is XOR;
* a message of ``2·n`` bytes is read as n big-endian 16-bit values v_0 ...
  v_{n-1}; value v_i is the point (x = i div 16, y = v_i) of polynomial
  P_{i mod 16}, so there are 16 interleaved polynomials, P_p of degree below
  the number of its points;
* chunk c is the 32 bytes P_0(c) ‖ P_1(c) ‖ ... ‖ P_15(c), each big-endian.
  For c below the number of points the values are the message itself (the
  code is systematic: chunks 0, 1, ... are the message in order);
* from any ``chunks_needed(len)`` chunks with distinct indexes the decoder
  interpolates each P_p (Lagrange) and reads the message back.

Note that the chunk index is a u16 in spqr (``Chunk::index``), so indexes
run from 0 to 65535. spqr's decoder quietly keeps the first copy of a
repeated index and ignores chunks past what it needs; ours refuses them with
stable codes (DUPLICATE_MESSAGE, LIMIT_EXCEEDED), which the state machine
never triggers for an honest peer, since it decodes as soon as it can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from protocol.errors import DuplicateMessage, InvalidArgument, LimitExceeded, MalformedMessage

POLY: Final = 0x1100B
CHUNK_LEN: Final = 32
NUM_POLYS: Final = CHUNK_LEN // 2
MAX_INDEX: Final = 0xFFFF
MAX_MESSAGE_LEN: Final = (1 << 16) * NUM_POLYS  # spqr PolynomialError::MessageLengthTooLong


def _tables() -> tuple[list[int], list[int]]:
    """exp and log tables over the generator x + 1 (= 3), checked to have order 65535.

    Note that spqr multiplies by carry-less multiplication and reduction
    (gf.rs ``unaccelerated::mul``); logarithm tables give the same products.
    """
    exp = [0] * (2 * 65535)
    log = [0] * 65536
    x = 1
    for i in range(65535):
        exp[i] = exp[i + 65535] = x
        log[x] = i
        x ^= x << 1  # x·(x + 1), below 2^17, so one reduction suffices
        if x & 0x10000:
            x ^= POLY
    if x != 1 or len(set(exp[:65535])) != 65535:
        raise AssertionError("x + 1 does not generate GF(2^16)*")
    return exp, log


_EXP, _LOG = _tables()


def gf_mul(a: int, b: int) -> int:
    """GF(2^16) product (gf.rs ``GF16::mul``)."""
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_div(a: int, b: int) -> int:
    """GF(2^16) quotient a / b for b ≠ 0 (gf.rs ``div_impl``)."""
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^16)")
    if a == 0:
        return 0
    return _EXP[_LOG[a] - _LOG[b] + 65535]


def chunks_needed(length: int) -> int:
    """How many chunks decode a message of ``length`` bytes: ⌈length / 32⌉."""
    return -(-length // CHUNK_LEN)


def _check_length(length: int) -> None:
    if not isinstance(length, int) or length <= 0 or length % 2 or length > MAX_MESSAGE_LEN:
        raise InvalidArgument("an erasure-coded message has an even length of 2 to 2^21 bytes")


def _points(values: Sequence[int], poly: int) -> list[int]:
    """The y values of P_poly at x = 0, 1, ...: every 16th value from ``poly``."""
    return list(values[poly::NUM_POLYS])


def _lagrange_weights(xs: Sequence[int], x: int) -> list[int]:
    """L_j(x) = Π_{m≠j} (x − x_m) / (x_j − x_m) for x not among the distinct ``xs``.

    Every chunk carries one point of each of the 16 polynomials at the same
    x, so one set of weights serves all 16 interpolations.
    """
    log = _LOG
    log_all = sum(log[x ^ xm] for xm in xs)  # log Π_m (x − x_m); subtraction is XOR
    weights = []
    for xj in xs:
        log_denominator = sum(log[xj ^ xm] for xm in xs if xm != xj)
        weights.append(_EXP[(log_all - log[x ^ xj] - log_denominator) % 65535])
    return weights


def _evaluate(ys: Sequence[int], weights: Sequence[int]) -> int:
    """Σ_j y_j · L_j(x) = P(x)."""
    acc = 0
    for y, w in zip(ys, weights, strict=True):
        acc ^= gf_mul(y, w)
    return acc


def _values(message: bytes) -> list[int]:
    return [int.from_bytes(message[i : i + 2], "big") for i in range(0, len(message), 2)]


def encode_chunk(message: bytes, index: int) -> bytes:
    """Chunk ``index`` of ``message`` (polynomial.rs ``PolyEncoder::chunk_at``)."""
    if not isinstance(message, bytes):
        raise InvalidArgument("message must be bytes")
    _check_length(len(message))
    if not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
        raise InvalidArgument("chunk index must be 0..65535")
    if len(message) % CHUNK_LEN == 0 and index < len(message) // CHUNK_LEN:
        # Note that this shortcut is the systematic property itself: P_p(index) is
        # value 16·index + p of the message, so chunk ``index`` is its bytes in order.
        return message[CHUNK_LEN * index : CHUNK_LEN * (index + 1)]
    values = _values(message)
    out = bytearray()
    weights_by_size: dict[int, list[int]] = {}
    for poly in range(NUM_POLYS):
        ys = _points(values, poly)
        if index < len(ys):
            y = ys[index]
        elif not ys:
            y = 0  # spqr: an empty polynomial evaluates to zero
        else:
            if len(ys) not in weights_by_size:
                weights_by_size[len(ys)] = _lagrange_weights(range(len(ys)), index)
            y = _evaluate(ys, weights_by_size[len(ys)])
        out += y.to_bytes(2, "big")
    return bytes(out)


def _check_chunks(length: int, chunks: Sequence[tuple[int, bytes]]) -> None:
    _check_length(length)
    seen: set[int] = set()
    for index, data in chunks:
        if not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
            raise MalformedMessage("chunk index must be 0..65535")
        if not isinstance(data, bytes) or len(data) != CHUNK_LEN:
            raise MalformedMessage("a chunk is 32 bytes")
        if index in seen:
            raise DuplicateMessage("chunk index repeated")
        seen.add(index)
    if len(chunks) > chunks_needed(length):
        raise LimitExceeded("more chunks than the message needs")


def decode(length: int, chunks: Sequence[tuple[int, bytes]]) -> bytes | None:
    """Decode a ``length``-byte message from ``(index, chunk)`` pairs (``PolyDecoder``).

    Returns None while fewer than ``chunks_needed(length)`` chunks are given.
    Raises MALFORMED_MESSAGE for a chunk that is not 32 bytes or an index
    outside 0..65535, DUPLICATE_MESSAGE for a repeated index, LIMIT_EXCEEDED
    for more chunks than needed.
    """
    _check_chunks(length, chunks)
    if len(chunks) < chunks_needed(length):
        return None
    xs = [index for index, _ in chunks]
    columns = [_values(data) for _, data in chunks]  # columns[j][p] = P_p(xs[j])
    by_x = dict(zip(xs, columns, strict=True))
    n = length // 2
    weights: dict[int, list[int]] = {}
    out = bytearray()
    for i in range(n):
        poly, x = i % NUM_POLYS, i // NUM_POLYS
        if x in by_x:
            y = by_x[x][poly]
        else:
            if x not in weights:
                weights[x] = _lagrange_weights(xs, x)
            y = _evaluate([column[poly] for column in columns], weights[x])
        out += y.to_bytes(2, "big")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Decoder:
    """Chunks received so far for one message (polynomial.rs ``PolyDecoder``), immutable."""

    length: int
    chunks: tuple[tuple[int, bytes], ...] = ()

    def add_chunk(self, index: int, data: bytes) -> Decoder:
        """A decoder with one more chunk; refuses as ``decode`` does, ``self`` unchanged."""
        chunks = (*self.chunks, (index, data))
        _check_chunks(self.length, chunks)
        return Decoder(self.length, chunks)

    def message(self) -> bytes | None:
        """The decoded message once enough chunks have arrived, else None."""
        return decode(self.length, self.chunks)
