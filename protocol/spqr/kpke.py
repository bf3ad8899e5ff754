"""FIPS 203 K-PKE internals for incremental ML-KEM (spec/spqr.md §4).

pyca encapsulates in one call and cannot split encryption into the part that
needs only ρ and H(ek) and the part that needs t̂, which incremental ML-KEM
(spqr ``src/incremental_mlkem768.rs``, libcrux ``ind_cca/incremental.rs``)
requires. This module writes exactly those pieces of FIPS 203 (August 2024),
under its algorithm names: NTT and NTT⁻¹ (Algorithms 9-10), MultiplyNTTs and
BaseCaseMultiply (11-12), SampleNTT (7), SamplePolyCBD (8), ByteEncode and
ByteDecode (5-6), Compress and Decompress (FIPS 203 §4.2.1), and K-PKE.Encrypt
(Algorithm 14) split into ``encrypt_c1`` (lines 1-19 and 21-22: u and c1) and
``encrypt_c2`` (lines 20 and 23: v and c2).

Note that key generation and decapsulation are pyca's (ML-KEM from the seed);
``decrypt`` (K-PKE.Decrypt, Algorithm 15) and ``decaps_internal``
(ML-KEM.Decaps_internal, Algorithm 18) exist only so published known answers
that give an expanded decapsulation key, which pyca cannot load, can be
checked (tests/spqr/test_kpke_kat.py). The arithmetic is plain Python integers and
is not constant time: this is a reference for reading and for vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from protocol.secrecy import SECRET

Q: Final = 3329
N: Final = 256
ZETA: Final = 17
_N_INV: Final = 3303  # 128⁻¹ mod q, the factor at the end of NTT⁻¹


@dataclass(frozen=True, slots=True)
class Params:
    """An ML-KEM parameter set (FIPS 203 §8, Table 2)."""

    name: str
    k: int
    eta1: int
    eta2: int
    du: int
    dv: int

    @property
    def ek_pke_len(self) -> int:
        """Bytes of ByteEncode12(t̂): 384·k."""
        return 384 * self.k

    @property
    def c1_len(self) -> int:
        return 32 * self.du * self.k


ML_KEM_768: Final = Params("ML-KEM-768", k=3, eta1=2, eta2=2, du=10, dv=4)
ML_KEM_1024: Final = Params("ML-KEM-1024", k=4, eta1=2, eta2=2, du=11, dv=5)

Poly = list[int]


def _bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


# ζ^BitRev7(i) for NTT and NTT⁻¹, and ζ^(2·BitRev7(i)+1) for MultiplyNTTs.
_ZETAS: Final = tuple(pow(ZETA, _bitrev7(i), Q) for i in range(128))
_GAMMAS: Final = tuple(pow(ZETA, 2 * _bitrev7(i) + 1, Q) for i in range(128))


def ntt(f: Sequence[int]) -> Poly:
    """NTT (FIPS 203 Algorithm 9)."""
    out = list(f)
    i = 1
    length = 128
    while length >= 2:
        for start in range(0, N, 2 * length):
            zeta = _ZETAS[i]
            i += 1
            for j in range(start, start + length):
                t = zeta * out[j + length] % Q
                out[j + length] = (out[j] - t) % Q
                out[j] = (out[j] + t) % Q
        length //= 2
    return out


def ntt_inverse(f_hat: Sequence[int]) -> Poly:
    """NTT⁻¹ (FIPS 203 Algorithm 10)."""
    out = list(f_hat)
    i = 127
    length = 2
    while length <= 128:
        for start in range(0, N, 2 * length):
            zeta = _ZETAS[i]
            i -= 1
            for j in range(start, start + length):
                t = out[j]
                out[j] = (t + out[j + length]) % Q
                out[j + length] = zeta * (out[j + length] - t) % Q
        length *= 2
    return [x * _N_INV % Q for x in out]


def multiply_ntts(f_hat: Sequence[int], g_hat: Sequence[int]) -> Poly:
    """MultiplyNTTs with BaseCaseMultiply inlined (FIPS 203 Algorithms 11-12)."""
    h = [0] * N
    for i in range(128):
        a0, a1 = f_hat[2 * i], f_hat[2 * i + 1]
        b0, b1 = g_hat[2 * i], g_hat[2 * i + 1]
        h[2 * i] = (a0 * b0 + a1 * b1 * _GAMMAS[i]) % Q
        h[2 * i + 1] = (a0 * b1 + a1 * b0) % Q
    return h


def _add(f: Sequence[int], g: Sequence[int]) -> Poly:
    return [(a + b) % Q for a, b in zip(f, g, strict=True)]


def _sub(f: Sequence[int], g: Sequence[int]) -> Poly:
    return [(a - b) % Q for a, b in zip(f, g, strict=True)]


def _dot(a_hat: Sequence[Poly], b_hat: Sequence[Poly]) -> Poly:
    """Σ_j a_hat[j] ∘ b_hat[j] in the NTT domain (FIPS 203 §2.4.7, (2.13))."""
    acc = [0] * N
    for x, y in zip(a_hat, b_hat, strict=True):
        acc = _add(acc, multiply_ntts(x, y))
    return acc


def sample_ntt(seed: bytes) -> Poly:
    """SampleNTT (FIPS 203 Algorithm 7): rejection sampling from SHAKE-128(ρ ‖ j ‖ i)."""
    xof = hashlib.shake_128(seed)
    stream = xof.digest(840)  # 280 triples; more is asked only in the rare case it runs out
    a_hat: Poly = []
    pos = 0
    while len(a_hat) < N:
        if pos + 3 > len(stream):
            stream = xof.digest(2 * len(stream))
        c0, c1, c2 = stream[pos], stream[pos + 1], stream[pos + 2]
        pos += 3
        d1 = c0 + 256 * (c1 % 16)
        d2 = c1 // 16 + 16 * c2
        if d1 < Q:
            a_hat.append(d1)
        if d2 < Q and len(a_hat) < N:
            a_hat.append(d2)
    return a_hat


def sample_poly_cbd(data: bytes, eta: int) -> Poly:
    """SamplePolyCBD_η (FIPS 203 Algorithm 8) from 64·η bytes."""
    bits = int.from_bytes(data, "little")
    mask = (1 << eta) - 1
    out = []
    for i in range(N):
        word = bits >> (2 * i * eta)
        x = (word & mask).bit_count()
        y = ((word >> eta) & mask).bit_count()
        out.append((x - y) % Q)
    return out


def prf(eta: int, s: bytes, b: int) -> bytes:
    """PRF_η(s, b) = SHAKE-256(s ‖ b, 64·η) (FIPS 203 §4.1, (4.3))."""
    return hashlib.shake_256(s + bytes([b])).digest(64 * eta)


def g(data: bytes) -> tuple[bytes, bytes]:
    """G = SHA3-512, split into two 32-byte halves (FIPS 203 §4.1, (4.5))."""
    digest = hashlib.sha3_512(data).digest()
    return digest[:32], digest[32:]


def h(data: bytes) -> bytes:
    """H = SHA3-256 (FIPS 203 §4.1, (4.4))."""
    return hashlib.sha3_256(data).digest()


def compress(d: int, x: int) -> int:
    """Compress_d (FIPS 203 §4.2.1, (4.7)): ⌈(2^d/q)·x⌋ mod 2^d."""
    return ((x << d) + Q // 2) // Q % (1 << d)


def decompress(d: int, y: int) -> int:
    """Decompress_d (FIPS 203 §4.2.1, (4.8)): ⌈(q/2^d)·y⌋."""
    return (y * Q + (1 << (d - 1))) >> d


def byte_encode(d: int, f: Sequence[int]) -> bytes:
    """ByteEncode_d (FIPS 203 Algorithm 5): 256 d-bit integers, little-endian bits."""
    acc = 0
    for i, value in enumerate(f):
        acc |= value << (d * i)
    return acc.to_bytes(32 * d, "little")


def byte_decode(d: int, data: bytes) -> Poly:
    """ByteDecode_d (FIPS 203 Algorithm 6); for d = 12 the values are taken mod q."""
    acc = int.from_bytes(data, "little")
    mask = (1 << d) - 1
    m = Q if d == 12 else 1 << d
    return [((acc >> (d * i)) & mask) % m for i in range(N)]


def sample_matrix(rho: bytes, k: int) -> list[list[Poly]]:
    """Â[i][j] = SampleNTT(ρ ‖ j ‖ i) (FIPS 203 Algorithm 14, lines 4-8)."""
    return [[sample_ntt(rho + bytes([j, i])) for j in range(k)] for i in range(k)]


@dataclass(frozen=True, slots=True, repr=False)
class EncryptNoise:
    """ŷ = NTT(y), e1 and e2 of K-PKE.Encrypt, all drawn from r (Algorithm 14, lines 9-19)."""

    y_hat: Annotated[tuple[Poly, ...], SECRET]
    e1: Annotated[tuple[Poly, ...], SECRET]
    e2: Annotated[Poly, SECRET]

    def __repr__(self) -> str:
        return "EncryptNoise(<redacted>)"


def sample_noise(params: Params, r: bytes) -> EncryptNoise:
    """K-PKE.Encrypt lines 9-19: y, e1, e2 from PRF(r, N) with N counting 0, 1, ..."""
    k = params.k
    y = [sample_poly_cbd(prf(params.eta1, r, n), params.eta1) for n in range(k)]
    e1 = [sample_poly_cbd(prf(params.eta2, r, k + n), params.eta2) for n in range(k)]
    e2 = sample_poly_cbd(prf(params.eta2, r, 2 * k), params.eta2)
    return EncryptNoise(tuple(ntt(p) for p in y), tuple(e1), e2)


def encrypt_c1(params: Params, rho: bytes, noise: EncryptNoise) -> bytes:
    """K-PKE.Encrypt lines 4-8, 19 and 22: c1 = ByteEncode_du(Compress_du(u)).

    u = NTT⁻¹(Âᵀ ∘ ŷ) + e1.

    Note that only ρ is needed here, not t̂: this is what lets ct1 leave
    before the encapsulation-key vector has arrived.
    """
    a_hat = sample_matrix(rho, params.k)
    c1 = b""
    for i in range(params.k):
        column = [a_hat[j][i] for j in range(params.k)]  # row i of Âᵀ
        u = _add(ntt_inverse(_dot(column, noise.y_hat)), noise.e1[i])
        c1 += byte_encode(params.du, [compress(params.du, x) for x in u])
    return c1


def encrypt_c2(params: Params, t_hat: Sequence[Poly], noise: EncryptNoise, m: bytes) -> bytes:
    """K-PKE.Encrypt lines 20-21 and 23: c2 = ByteEncode_dv(Compress_dv(v)).

    v = NTT⁻¹(t̂ᵀ ∘ ŷ) + e2 + μ with μ = Decompress_1(ByteDecode_1(m)).
    """
    mu = [decompress(1, bit) for bit in byte_decode(1, m)]
    v = _add(_add(ntt_inverse(_dot(t_hat, noise.y_hat)), noise.e2), mu)
    return byte_encode(params.dv, [compress(params.dv, x) for x in v])


def decode_t_hat(params: Params, ek_pke: bytes) -> list[Poly]:
    """t̂ = ByteDecode12(ek[0 : 384k]) (Algorithm 14, line 2)."""
    return [byte_decode(12, ek_pke[384 * i : 384 * (i + 1)]) for i in range(params.k)]


def is_modulus_canonical(ek_pke: bytes) -> bool:
    """The FIPS 203 §7.2 modulus check: ByteEncode12(ByteDecode12(ek)) = ek."""
    if len(ek_pke) % 384:
        return False
    polys = [byte_decode(12, ek_pke[i : i + 384]) for i in range(0, len(ek_pke), 384)]
    return b"".join(byte_encode(12, p) for p in polys) == ek_pke


def encrypt(params: Params, ek: bytes, m: bytes, r: bytes) -> bytes:
    """K-PKE.Encrypt (FIPS 203 Algorithm 14): c1 ‖ c2."""
    noise = sample_noise(params, r)
    t_hat = decode_t_hat(params, ek[: params.ek_pke_len])
    return encrypt_c1(params, ek[params.ek_pke_len :], noise) + encrypt_c2(params, t_hat, noise, m)


def decrypt(params: Params, dk_pke: bytes, c: bytes) -> bytes:
    """K-PKE.Decrypt (FIPS 203 Algorithm 15); for known-answer checks only (see the module note)."""
    du, k = params.du, params.k
    u = [
        [decompress(du, y) for y in byte_decode(du, c[32 * du * i : 32 * du * (i + 1)])]
        for i in range(k)
    ]
    v = [decompress(params.dv, y) for y in byte_decode(params.dv, c[params.c1_len :])]
    s_hat = [byte_decode(12, dk_pke[384 * i : 384 * (i + 1)]) for i in range(k)]
    w = _sub(v, ntt_inverse(_dot(s_hat, [ntt(p) for p in u])))
    return byte_encode(1, [compress(1, x) for x in w])


def encaps_internal(params: Params, ek: bytes, m: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.Encaps_internal (FIPS 203 Algorithm 17): (K, r) = G(m ‖ H(ek)); returns (K, c)."""
    shared, r = g(m + h(ek))
    return shared, encrypt(params, ek, m, r)


def decaps_internal(params: Params, dk: bytes, c: bytes) -> bytes:
    """ML-KEM.Decaps_internal (FIPS 203 Algorithm 18); for known-answer checks only."""
    k = params.k
    dk_pke = dk[: 384 * k]
    ek = dk[384 * k : 768 * k + 32]
    h_ek = dk[768 * k + 32 : 768 * k + 64]
    z = dk[768 * k + 64 :]
    m_prime = decrypt(params, dk_pke, c)
    shared, r_prime = g(m_prime + h_ek)
    rejected = hashlib.shake_256(z + c).digest(32)
    return shared if encrypt(params, ek, m_prime, r_prime) == c else rejected
