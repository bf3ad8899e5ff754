"""Named constant sets: one frozen ``Profile`` per interoperable configuration.

Implements spec/profiles.md. No label, KDF info string or limit of the
handshake or the ratchet appears anywhere else in the code: modules take a
``Profile`` and read its fields. Each constant names the specification
section it comes from; ``signal-v3`` values name the libsignal source that
fixes them (see ``reference`` notes in spec/interop-libsignal.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from protocol.errors import InvalidArgument
from protocol.primitives import KemName

AeadName = Literal["AES-256-GCM", "AES-256-CBC-HMAC-SHA256-64"]


@dataclass(frozen=True, slots=True)
class Profile:
    """Every constant one interoperable configuration needs (spec/profiles.md §1)."""

    name: str

    # --- Handshake (X3DH rev 1 §2, PQXDH rev 3 §2) ---
    handshake: Literal["x3dh", "pqxdh"]
    # KDF(KM) info string (X3DH §2.1 `info`; PQXDH §2.2 info = info_curve_hash_pqkem).
    kdf_info: bytes
    # The KEM of PQXDH; None for X3DH.
    kem: KemName | None
    # Length of SK taken from HKDF (spec: 32; libsignal v3: 64 = root ‖ chain).
    sk_len: int
    # Accept libsignal's XEdDSA variant (Edwards sign bit in bit 7 of s[63]) on
    # verify, in addition to spec signatures (signal-specs §4.1). Signing always
    # follows the XEdDSA specification.
    xeddsa_accept_libsignal_sign_bit: bool

    # --- Double Ratchet (rev 1 §3, §5.2) ---
    # KDF_RK: HKDF-SHA256(salt = RK, ikm = DH output, info) -> 64 bytes (96 with header keys).
    kdf_rk_info: bytes
    # KDF_CK constants: mk = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02) (§5.2).
    kdf_ck_message_constant: bytes
    kdf_ck_chain_constant: bytes
    # ENCRYPT(mk, ...): HKDF-SHA256(salt = zeros, ikm = mk, info) expands the AEAD keys.
    message_keys_info: bytes
    aead: AeadName
    # Header encryption (rev 1 §4).
    header_encryption: bool
    # Derives the initial RK (and, with header encryption, the shared header keys) from SK.
    initial_keys_info: bytes
    # Per-header AEAD key: HKDF-Expand(HK, header_keys_info ‖ r) (spec/header-encryption.md §2).
    header_keys_info: bytes
    # Initial chains (spec/ratchet.md §1.1): "spec" (rev 1 §3.3: the responder sends
    # only after receiving) or "libsignal" (SK = RK ‖ CK; CK is the responder's first
    # sending chain under its signed prekey and the initiator's first receiving chain).
    initial_chains: Literal["spec", "libsignal"]
    # Wire format (spec/wire.md): "msgpack" or libsignal's v3 protobuf framing.
    wire: Literal["msgpack", "signal-v3"]
    # PN on the wire: "count" (spec: number of messages in the previous sending
    # chain) or "last-index" (libsignal: count - 1, saturating at 0).
    pn_semantics: Literal["count", "last-index"]

    # --- Limits (spec/ratchet.md §6: each trade-off is explained there) ---
    # Most message keys one received message may make us skip in one chain.
    max_skip: int
    # Most skipped message keys kept in total; the oldest is evicted beyond it.
    max_stored_skipped: int
    # Most old receiving chains (besides the current one) whose keys are kept.
    max_receiving_chains: int
    # Largest plaintext accepted by encrypt and largest wire message by decode.
    max_message_size: int

    def __repr__(self) -> str:
        return f"Profile({self.name!r})"


PQ_DEFAULT: Final = Profile(
    name="pq-default",
    handshake="pqxdh",
    # PQXDH §2.2: info, curve, hash and pqkem joined with "_".
    kdf_info=b"E2EERef_CURVE25519_SHA-256_ML-KEM-768",
    kem="ML-KEM-768",
    sk_len=32,
    xeddsa_accept_libsignal_sign_bit=False,
    kdf_rk_info=b"E2EERef pq-default Ratchet",
    kdf_ck_message_constant=b"\x01",
    kdf_ck_chain_constant=b"\x02",
    message_keys_info=b"E2EERef pq-default MessageKeys",
    aead="AES-256-GCM",
    header_encryption=True,
    initial_keys_info=b"E2EERef pq-default InitialKeys",
    header_keys_info=b"E2EERef pq-default HeaderKeys",
    initial_chains="spec",
    wire="msgpack",
    pn_semantics="count",
    max_skip=1000,
    max_stored_skipped=2000,
    max_receiving_chains=5,
    max_message_size=256 * 1024,
)

CLASSIC: Final = Profile(
    name="classic",
    handshake="x3dh",
    kdf_info=b"E2EERef_X3DH_CURVE25519_SHA-256",
    kem=None,
    sk_len=32,
    xeddsa_accept_libsignal_sign_bit=False,
    kdf_rk_info=b"E2EERef classic Ratchet",
    kdf_ck_message_constant=b"\x01",
    kdf_ck_chain_constant=b"\x02",
    message_keys_info=b"E2EERef classic MessageKeys",
    aead="AES-256-GCM",
    header_encryption=False,
    initial_keys_info=b"E2EERef classic InitialKeys",
    header_keys_info=b"",  # no header encryption
    initial_chains="spec",
    wire="msgpack",
    pn_semantics="count",
    max_skip=1000,
    max_stored_skipped=2000,
    max_receiving_chains=5,
    max_message_size=256 * 1024,
)

# libsignal v3 sessions (libsignal-protocol-java fde96d2, libsignal b056faa):
# X3DH info "WhisperText" with a 64-byte SK split into root key and chain key
# (RatchetingSession), KDF_RK info "WhisperRatchet" (RootKey), message keys
# "WhisperMessageKeys" -> 80 bytes cipher key ‖ MAC key ‖ IV (ChainKey), an
# 8-byte HMAC-SHA256 over IK_sender ‖ IK_receiver ‖ message (SignalMessage).
# Limits from rust/protocol/src/consts.rs: MAX_FORWARD_JUMPS 25,000,
# MAX_MESSAGE_KEYS 2,000, MAX_RECEIVER_CHAINS 5.
SIGNAL_V3: Final = Profile(
    name="signal-v3",
    handshake="x3dh",
    kdf_info=b"WhisperText",
    kem=None,
    sk_len=64,
    xeddsa_accept_libsignal_sign_bit=True,
    kdf_rk_info=b"WhisperRatchet",
    kdf_ck_message_constant=b"\x01",
    kdf_ck_chain_constant=b"\x02",
    message_keys_info=b"WhisperMessageKeys",
    aead="AES-256-CBC-HMAC-SHA256-64",
    header_encryption=False,
    initial_keys_info=b"",  # libsignal splits SK directly: RK = SK[0:32], CK = SK[32:64]
    header_keys_info=b"",  # no header encryption
    initial_chains="libsignal",
    wire="signal-v3",
    pn_semantics="last-index",
    max_skip=25_000,
    max_stored_skipped=2_000,
    # Note that libsignal's MAX_RECEIVER_CHAINS = 5 counts the current receiving
    # chain too (state/session.rs add_receiver_chain): 4 old chains beside it.
    max_receiving_chains=4,
    max_message_size=256 * 1024,
)

PROFILES: Final[dict[str, Profile]] = {p.name: p for p in (PQ_DEFAULT, CLASSIC, SIGNAL_V3)}

DEFAULT_PROFILE: Final = PQ_DEFAULT


def get_profile(name: str) -> Profile:
    """Look a profile up by its name (``pq-default``, ``classic``, ``signal-v3``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidArgument(f"unknown profile {name!r}") from None
