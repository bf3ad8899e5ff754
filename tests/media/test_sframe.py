"""SFrame (spec/sframe.md): strict headers, key checks, tamper detection, the frame cap,
per-packet use and the RFC 9605 §5.1 sender-key ratchet."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from protocol.errors import (
    AuthFailed,
    InvalidArgument,
    LimitExceeded,
    MalformedMessage,
    UnknownKeyId,
)
from protocol.media import sframe
from protocol.media.sframe import (
    DEFAULT_SUITE,
    MAX_CTR,
    MAX_FRAME_SIZE,
    MAX_HEADER_LEN,
    AesCtrHmac,
    CipherSuite,
    FrameKey,
    aead_decrypt,
    aead_encrypt,
    decode_header,
    derive_frame_key,
    derive_key_salt,
    encode_header,
    encrypt_frame,
    open_frame,
    ratchet_base_key,
    sender_key_kid,
    suite_params,
)
from protocol.primitives import aes_ctr

ALL_SUITES = list(CipherSuite)
BASE_KEY = bytes(range(16))
METADATA = b"IETF SFrame WG"
PLAINTEXT = b"draft-ietf-sframe-enc"


def _key(suite: int = DEFAULT_SUITE, kid: int = 0x123) -> FrameKey:
    return derive_frame_key(suite, BASE_KEY, kid)


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes((data[index] ^ mask,)) + data[index + 1 :]


# --- Header (spec/sframe.md §2) -------------------------------------------------------


def test_empty_header_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        decode_header(b"")


@pytest.mark.parametrize(("kid", "ctr"), [(0x123, 0x4567), (MAX_CTR, MAX_CTR), (8, 0), (0, 8)])
def test_every_truncated_extended_header_is_malformed(kid: int, ctr: int) -> None:
    header = encode_header(kid, ctr)
    for cut in range(1, len(header)):
        with pytest.raises(MalformedMessage) as caught:
            decode_header(header[:cut])
        assert caught.value.code == "MALFORMED_MESSAGE"


@pytest.mark.parametrize(
    "header",
    [
        "0800",  # CTR 0 written in one extension byte
        "0807",  # CTR 7 belongs in the config byte
        "8000",  # KID 0 written in one extension byte
        "8705",  # KID 7 written in one extension byte (CTR 5 inline)
        "0900ff",  # CTR 255 with a leading zero byte
        "9000ff00",  # KID 255 with a leading zero byte
        "0f0000000000000008",  # CTR 8 in eight bytes
    ],
)
def test_non_minimal_header_is_malformed(header: str) -> None:
    with pytest.raises(MalformedMessage, match="minimal"):
        decode_header(bytes.fromhex(header))


def test_maximum_header_is_seventeen_bytes_and_parses() -> None:
    header = encode_header(MAX_CTR, MAX_CTR)
    assert len(header) == MAX_HEADER_LEN
    assert decode_header(header) == (MAX_CTR, MAX_CTR, MAX_HEADER_LEN)


@pytest.mark.parametrize("value", [2**64, -1, 1.0, True, None, "1"])
def test_kid_or_ctr_outside_u64_is_refused(value: object) -> None:
    with pytest.raises(InvalidArgument):
        encode_header(value, 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        encode_header(0, value)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        encrypt_frame(_key(), value, b"", b"")  # type: ignore[arg-type]


@pytest.mark.parametrize("frame", [bytearray(b"\x00"), memoryview(b"\x00"), "00", None])
def test_header_decoder_takes_only_bytes(frame: object) -> None:
    with pytest.raises(InvalidArgument):
        decode_header(frame)  # type: ignore[arg-type]


# --- Suites and keys (spec/sframe.md §3, §4) ---------------------------------------------


@pytest.mark.parametrize("suite", [0, 9, 0xF000, -1, True, "4", None, 4.0])
def test_unknown_suite_is_refused(suite: object) -> None:
    with pytest.raises(InvalidArgument):
        suite_params(suite)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        derive_frame_key(suite, BASE_KEY, 0)  # type: ignore[arg-type]


def test_plain_int_suite_is_normalised_to_the_enum() -> None:
    assert _key(4).suite is CipherSuite.AES_128_GCM_SHA256_128


@pytest.mark.parametrize("base_key", [b"", bytes(15), bytearray(16), None])
def test_short_or_non_bytes_base_key_is_refused(base_key: object) -> None:
    with pytest.raises(InvalidArgument):
        derive_key_salt(DEFAULT_SUITE, base_key, 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        ratchet_base_key(DEFAULT_SUITE, base_key)  # type: ignore[arg-type]


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
def test_frame_key_refuses_wrong_key_or_salt_length(suite: CipherSuite) -> None:
    good = _key(suite)
    params = suite_params(suite)
    with pytest.raises(InvalidArgument):
        FrameKey(suite, 0, good.key + b"\x00", good.salt)
    with pytest.raises(InvalidArgument):
        FrameKey(suite, 0, good.key, good.salt[:-1])
    with pytest.raises(InvalidArgument):
        FrameKey(suite, 2**64, good.key, good.salt)
    with pytest.raises(InvalidArgument):
        aead_encrypt(suite, good.key, bytes(params.nn - 1), b"", b"")


def test_secrets_never_appear_in_repr() -> None:
    for suite in ALL_SUITES:
        key = _key(suite)
        text = repr(key)
        assert key.key.hex() not in text
        assert key.salt.hex() not in text
        assert "<redacted>" in text
    assert "redacted" in repr(AesCtrHmac(1, _key(1).key))


# --- Frames (spec/sframe.md §6) ---------------------------------------------------------


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
def test_tampered_header_ciphertext_tag_or_metadata_is_rejected(suite: CipherSuite) -> None:
    key = _key(suite)
    frame = encrypt_frame(key, 0x4567, METADATA, PLAINTEXT)
    header_len = decode_header(frame)[2]
    ctr_byte = header_len - 1  # last CTR byte: the KID is untouched
    for index in (ctr_byte, header_len, len(frame) - 1):  # header, ciphertext, tag
        with pytest.raises(AuthFailed) as caught:
            open_frame(key, _flip(frame, index), METADATA)
        assert caught.value.code == "AUTH_FAILED"
    with pytest.raises(AuthFailed):
        open_frame(key, frame, _flip(METADATA, 0))
    assert open_frame(key, frame, METADATA) == PLAINTEXT  # the failures changed nothing


def test_ctr_hmac_checks_the_tag_before_decrypting(monkeypatch: pytest.MonkeyPatch) -> None:
    key = _key(CipherSuite.AES_128_CTR_HMAC_SHA256_80)
    frame = encrypt_frame(key, 1, METADATA, PLAINTEXT)
    calls: list[bytes] = []

    def counting_aes_ctr(enc_key: bytes, block: bytes, data: bytes) -> bytes:
        calls.append(data)
        return aes_ctr(enc_key, block, data)

    monkeypatch.setattr(sframe, "aes_ctr", counting_aes_ctr)
    with pytest.raises(AuthFailed):
        open_frame(key, _flip(frame, len(frame) - 1), METADATA)
    assert calls == []
    assert open_frame(key, frame, METADATA) == PLAINTEXT
    assert len(calls) == 1


def test_frame_for_another_kid_is_unknown_key_id() -> None:
    frame = encrypt_frame(_key(kid=0x124), 1, b"", PLAINTEXT)
    with pytest.raises(UnknownKeyId):
        open_frame(_key(kid=0x123), frame, b"")


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
def test_body_shorter_than_the_tag_is_malformed_and_one_byte_less_fails_auth(
    suite: CipherSuite,
) -> None:
    key = _key(suite)
    nt = suite_params(suite).nt
    empty = encrypt_frame(key, 7, b"", b"")
    header_len = decode_header(empty)[2]
    assert len(empty) == header_len + nt
    assert open_frame(key, empty, b"") == b""
    with pytest.raises(MalformedMessage):
        open_frame(key, empty[:-1], b"")
    with pytest.raises(MalformedMessage):
        aead_decrypt(suite, key.key, key.nonce(7), empty[:header_len], empty[header_len:-1])
    full = encrypt_frame(key, 8, b"", PLAINTEXT)
    with pytest.raises(AuthFailed):
        open_frame(key, full[:-1], b"")


def test_counter_at_its_maximum_is_valid_and_nonce_is_salt_xor_counter() -> None:
    key = _key()
    frame = encrypt_frame(key, MAX_CTR, METADATA, PLAINTEXT)
    assert decode_header(frame) == (0x123, MAX_CTR, 1 + 2 + 8)
    assert open_frame(key, frame, METADATA) == PLAINTEXT
    salt = int.from_bytes(key.salt, "big")
    assert key.nonce(MAX_CTR) == (salt ^ (2**64 - 1)).to_bytes(12, "big")
    assert key.nonce(MAX_CTR)[:4] == key.salt[:4]


def test_caller_supplied_header_is_used_and_checked() -> None:
    key = _key()
    frame = encrypt_frame(key, 0x4567, METADATA, PLAINTEXT)
    header = decode_header(frame)
    assert open_frame(key, frame, METADATA, header) == PLAINTEXT
    for bad in [(0x123, 0x4567, 0), (0x123, 0x4567, len(frame) + 1), (0x123, 0x4567), [1, 2, 3]]:
        with pytest.raises(InvalidArgument):
            open_frame(key, frame, METADATA, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        open_frame(key, frame, METADATA, (0x123, 2**64, header[2]))
    with pytest.raises(AuthFailed):  # a CTR the bytes do not carry changes the nonce
        open_frame(key, frame, METADATA, (0x123, 0x4568, header[2]))


@pytest.mark.parametrize("value", [bytearray(b"x"), "x", None])
def test_non_bytes_payload_or_metadata_is_refused(value: object) -> None:
    key = _key()
    with pytest.raises(InvalidArgument):
        encrypt_frame(key, 1, value, b"")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        encrypt_frame(key, 1, b"", value)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        open_frame(key, encrypt_frame(key, 1, b"", b""), value)  # type: ignore[arg-type]


# --- Frame cap (spec/sframe.md §7) -------------------------------------------------------


def test_frame_cap_is_accepted_at_the_boundary_and_refused_one_byte_over() -> None:
    key = _key()
    at_cap = bytes(MAX_FRAME_SIZE)
    frame = encrypt_frame(key, 1, b"", at_cap)
    assert open_frame(key, frame, b"") == at_cap
    with pytest.raises(LimitExceeded):
        encrypt_frame(key, 2, b"", at_cap + b"\x00")
    with pytest.raises(LimitExceeded):
        encrypt_frame(key, 2, at_cap + b"\x00", b"")
    with pytest.raises(LimitExceeded):
        open_frame(key, frame + b"\x00", b"")
    with pytest.raises(LimitExceeded):
        open_frame(key, frame, at_cap + b"\x00")


# --- Per-packet mode (spec/sframe.md §8) -----------------------------------------------------


def test_per_packet_mode_binds_each_packet_to_its_rtp_header() -> None:
    key = _key()
    payload = bytes(range(256)) * 10
    rtp_headers = [bytes.fromhex("8060") + seq.to_bytes(2, "big") + bytes(8) for seq in range(3)]
    chunks = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    packets = [
        encrypt_frame(key, ctr, rtp, chunk)
        for ctr, (rtp, chunk) in enumerate(zip(rtp_headers, chunks, strict=True), start=100)
    ]
    opened = [open_frame(key, p, rtp) for p, rtp in zip(packets, rtp_headers, strict=True)]
    assert b"".join(opened) == payload
    with pytest.raises(AuthFailed):  # a packet moved under another packet's RTP header
        open_frame(key, packets[0], rtp_headers[1])


# --- Sender Keys (spec/sframe.md §9) -----------------------------------------------------


def _rfc5869_ratchet(hash_name: str, base_key: bytes) -> bytes:
    """RFC 9605 §5.1 written independently with the standard library's HMAC."""
    size = hashlib.new(hash_name).digest_size
    prk = hmac.new(bytes(size), base_key, hash_name).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < size:
        block = hmac.new(prk, block + b"SFrame 1.0 Ratchet" + bytes((counter,)), hash_name).digest()
        okm, counter = okm + block, counter + 1
    return okm[:size]


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
def test_ratchet_chain_matches_an_independent_rfc5869_computation(suite: CipherSuite) -> None:
    hash_name = "sha256" if suite_params(suite).hash_name == "SHA-256" else "sha512"
    ours, theirs = BASE_KEY, BASE_KEY
    for _ in range(3):
        ours, theirs = ratchet_base_key(suite, ours), _rfc5869_ratchet(hash_name, theirs)
        assert ours == theirs
        assert len(ours) == suite_params(suite).nh


def test_ratchet_chain_depends_only_on_the_hash() -> None:
    sha256_chain = {ratchet_base_key(suite, BASE_KEY) for suite in ALL_SUITES[:4]}
    assert len(sha256_chain) == 1
    assert ratchet_base_key(5, BASE_KEY) != ratchet_base_key(4, BASE_KEY)


def test_ratcheted_key_opens_nothing_of_the_previous_step() -> None:
    step0 = derive_frame_key(DEFAULT_SUITE, BASE_KEY, sender_key_kid(1, 0, 8))
    step1_base = ratchet_base_key(DEFAULT_SUITE, BASE_KEY)
    step1 = derive_frame_key(DEFAULT_SUITE, step1_base, sender_key_kid(1, 0, 8))
    frame = encrypt_frame(step0, 1, b"", PLAINTEXT)
    with pytest.raises(AuthFailed):
        open_frame(step1, frame, b"")


@pytest.mark.parametrize(
    ("generation", "step", "r", "kid"),
    [(0, 0, 8, 0), (1, 0, 8, 0x100), (1, 5, 8, 0x105), (0x12, 0x1FF, 8, 0x12FF), (3, 1, 0, 3)],
)
def test_sender_key_kid_packs_generation_and_step_mod_2r(
    generation: int, step: int, r: int, kid: int
) -> None:
    assert sender_key_kid(generation, step, r) == kid


@pytest.mark.parametrize(
    ("generation", "step", "r"), [(1 << 56, 0, 8), (-1, 0, 8), (0, -1, 8), (0, 0, 65), (0, 0, -1)]
)
def test_sender_key_kid_refuses_values_outside_64_bits(generation: int, step: int, r: int) -> None:
    with pytest.raises(InvalidArgument):
        sender_key_kid(generation, step, r)


def test_largest_generation_gives_the_largest_kid() -> None:
    assert sender_key_kid((1 << 56) - 1, 255, 8) == MAX_CTR
