"""Profiles: one validated composition of parts per interoperable configuration.

Implements spec/profiles.md §1. A ``Profile`` names one part per concern,
each in the module named after it:

* key agreement (``agreement.py``): X3DH or PQXDH and their constants;
* chain rules (``chains.py``): KDF_RK, KDF_CK, the initial chains, the PN
  rule and the limits;
* message keys and cipher (``cipher.py``): AES-256-GCM, or libsignal's
  AES-256-CBC + HMAC-SHA256/8;
* header protection (``headers.py``): plaintext or encrypted headers;
* framing (``framing.py``): msgpack, or libsignal's protobuf;
* ``spqr``: whether SPQR runs beside the Double Ratchet (libsignal v4's
  triple ratchet, ``triple_ratchet.py``; spec/spqr.md §13);
* session policy (``session_policy.py``): the archived sessions a record
  keeps and when an unanswered session expires (spec/session.md §7).

No label, KDF info string or limit appears outside the parts, and no module
above them tests which part a profile has: it calls the part. A profile
whose parts do not fit together is refused when it is built, with
INVALID_ARGUMENT and the reason (spec/profiles.md §1.3). ``signal-v3``
values name the libsignal source that fixes them (spec/interop-libsignal.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from protocol.agreement import (
    LIBSIGNAL_PQXDH_KYBER1024,
    LIBSIGNAL_X3DH,
    PQXDH_ML_KEM_768,
    X3DH,
    KeyAgreement,
)
from protocol.chains import ChainRules
from protocol.cipher import AesCbcHmacCipher, AesGcmCipher, MessageCipher
from protocol.errors import InvalidArgument
from protocol.framing import (
    LIBSIGNAL_V3,
    LIBSIGNAL_V4,
    MSGPACK,
    Framing,
    MsgpackFraming,
    ProtobufFraming,
)
from protocol.headers import EncryptedHeaders, HeaderProtection, PlainHeaders
from protocol.primitives import KemName
from protocol.session_policy import LIBSIGNAL_V4_POLICY, SPEC_POLICY, SessionPolicy

SPQR_AUTH_KEY_LEN: Final = 32
"""The SPQR authentication key at the end of libsignal v4's SK (pqxdh.rs)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """One interoperable configuration: a name and its parts (spec/profiles.md §1)."""

    name: str
    agreement: KeyAgreement
    chains: ChainRules
    cipher: MessageCipher
    headers: HeaderProtection
    framing: Framing
    # Largest plaintext accepted by encrypt and largest wire message by decode
    # (spec/ratchet.md §6.4).
    max_message_size: int
    # The Sparse Post-Quantum Ratchet beside the Double Ratchet (libsignal v4):
    # SK carries its authentication key after the chains' part, every message
    # its field 5, and its message key salts the message-key derivation.
    spqr: bool = False
    policy: SessionPolicy = SPEC_POLICY

    def __post_init__(self) -> None:
        for reason in _misfits(self):
            raise InvalidArgument(f"profile {self.name!r}: {reason}")

    @property
    def kem(self) -> KemName | None:
        """The key agreement's KEM; None for X3DH."""
        return self.agreement.kem

    def __repr__(self) -> str:
        return f"Profile({self.name!r})"


def _misfits(profile: Profile) -> list[str]:
    """Why the parts of ``profile`` do not fit together (spec/profiles.md §1.3), if they do not."""
    parts = (
        (profile.agreement, KeyAgreement, "key agreement"),
        (profile.chains, ChainRules, "chain rules"),
        (profile.cipher, AesGcmCipher | AesCbcHmacCipher, "cipher"),
        (profile.headers, PlainHeaders | EncryptedHeaders, "header protection"),
        (profile.framing, MsgpackFraming | ProtobufFraming, "framing"),
        (profile.policy, SessionPolicy, "session policy"),
    )
    wrong = [
        f"the {what} is not a {what} part"
        for part, kind, what in parts
        if not isinstance(part, kind)
    ]
    if wrong:
        return wrong
    reasons = []
    if not isinstance(profile.name, str) or not profile.name:
        reasons.append("a profile needs a name")
    spqr_key_len = SPQR_AUTH_KEY_LEN if profile.spqr is True else 0
    if profile.agreement.sk_len != profile.chains.sk_len + spqr_key_len:
        reasons.append(
            f"the key agreement gives a {profile.agreement.sk_len}-byte SK and the "
            f"initial chains and SPQR take {profile.chains.sk_len + spqr_key_len} bytes"
        )
    if type(profile.spqr) is not bool:
        reasons.append("spqr is True or False")
    elif profile.spqr != profile.framing.carries_pq_ratchet:
        reasons.append("SPQR runs exactly when the framing carries its field (pq_ratchet)")
    if profile.framing.mac_len != profile.cipher.mac_len:
        reasons.append(
            f"the cipher appends a {profile.cipher.mac_len}-byte MAC and the framing "
            f"carries {profile.framing.mac_len} bytes"
        )
    if profile.headers.encrypted and profile.framing.plain_headers_only:
        reasons.append("the framing writes the header's fields, so it cannot be encrypted")
    if profile.headers.encrypted and not profile.chains.initial_keys_info:
        reasons.append("encrypted headers need initial header keys, which libsignal chains lack")
    if type(profile.max_message_size) is not int or profile.max_message_size < 1:
        reasons.append("the message size limit is a positive integer")
    return reasons


# The Double Ratchet's own limits for the msgpack profiles (spec/ratchet.md §6).
def _spec_chains(label: str) -> ChainRules:
    return ChainRules(
        kdf_rk_info=f"E2EERef {label} Ratchet".encode(),
        kdf_ck_message_constant=b"\x01",
        kdf_ck_chain_constant=b"\x02",
        initial_chains="spec",
        initial_keys_info=f"E2EERef {label} InitialKeys".encode(),
        pn_semantics="count",
        max_skip=1000,
        max_stored_skipped=2000,
        max_receiving_chains=5,
    )


PQ_DEFAULT: Final = Profile(
    name="pq-default",
    agreement=PQXDH_ML_KEM_768,
    chains=_spec_chains("pq-default"),
    cipher=AesGcmCipher(message_keys_info=b"E2EERef pq-default MessageKeys"),
    headers=EncryptedHeaders(header_keys_info=b"E2EERef pq-default HeaderKeys"),
    framing=MSGPACK,
    max_message_size=256 * 1024,
)

CLASSIC: Final = Profile(
    name="classic",
    agreement=X3DH,
    chains=_spec_chains("classic"),
    cipher=AesGcmCipher(message_keys_info=b"E2EERef classic MessageKeys"),
    headers=PlainHeaders(),
    framing=MSGPACK,
    max_message_size=256 * 1024,
)

# libsignal v3 sessions (libsignal-protocol-java fde96d2, libsignal b056faa):
# X3DH info "WhisperText" with a 64-byte SK split into root key and chain key
# (RatchetingSession), KDF_RK info "WhisperRatchet" (RootKey), message keys
# "WhisperMessageKeys" -> 80 bytes cipher key ‖ MAC key ‖ IV (ChainKey), an
# 8-byte HMAC-SHA256 over IK_sender ‖ IK_receiver ‖ message (SignalMessage).
# Limits from rust/protocol/src/consts.rs: MAX_FORWARD_JUMPS 25,000,
# MAX_MESSAGE_KEYS 2,000, MAX_RECEIVER_CHAINS 5.
LIBSIGNAL_CHAINS: Final = ChainRules(
    kdf_rk_info=b"WhisperRatchet",
    kdf_ck_message_constant=b"\x01",
    kdf_ck_chain_constant=b"\x02",
    initial_chains="libsignal",
    initial_keys_info=b"",  # libsignal splits SK directly: RK = SK[0:32], CK = SK[32:64]
    pn_semantics="last-index",
    max_skip=25_000,
    max_stored_skipped=2_000,
    # Note that libsignal's MAX_RECEIVER_CHAINS = 5 counts the current receiving
    # chain too (state/session.rs add_receiver_chain): 4 old chains beside it.
    max_receiving_chains=4,
)

SIGNAL_V3: Final = Profile(
    name="signal-v3",
    agreement=LIBSIGNAL_X3DH,
    chains=LIBSIGNAL_CHAINS,
    cipher=AesCbcHmacCipher(message_keys_info=b"WhisperMessageKeys"),
    headers=PlainHeaders(),
    framing=LIBSIGNAL_V3,
    max_message_size=256 * 1024,
)

# libsignal v4 sessions (libsignal b056faa, 0.103.0): PQXDH with Kyber1024 and
# a 96-byte split (pqxdh.rs), the v3 chains, message keys salted by the SPQR
# message key (ratchet/keys.rs ``MessageKeyGenerator::generate_keys``), wire
# version 0x44 with SignalMessage field 5 (protocol.rs), SPQR beside the
# Double Ratchet (triple_ratchet.rs).
SIGNAL_V4: Final = Profile(
    name="signal-v4",
    agreement=LIBSIGNAL_PQXDH_KYBER1024,
    chains=LIBSIGNAL_CHAINS,
    cipher=AesCbcHmacCipher(message_keys_info=b"WhisperMessageKeys"),
    headers=PlainHeaders(),
    framing=LIBSIGNAL_V4,
    max_message_size=256 * 1024,
    spqr=True,
    policy=LIBSIGNAL_V4_POLICY,
)

PROFILES: Final[dict[str, Profile]] = {p.name: p for p in (PQ_DEFAULT, CLASSIC, SIGNAL_V3)}
"""The Double Ratchet profiles that every vector family, bench row and audit part covers.

Note that ``signal-v4`` is not among them yet: its transcripts are vectors of
their own (session_signal-v4), and the accumulated and ratchet families,
whose bytes depend on this table, keep the three. ``ALL_PROFILES`` and
``get_profile`` know every profile (spec/profiles.md §2)."""

ALL_PROFILES: Final[dict[str, Profile]] = {**PROFILES, SIGNAL_V4.name: SIGNAL_V4}

DEFAULT_PROFILE: Final = PQ_DEFAULT


def with_limits(
    profile: Profile,
    *,
    max_skip: int | None = None,
    max_stored_skipped: int | None = None,
    max_receiving_chains: int | None = None,
) -> Profile:
    """``profile`` with other chain limits: for tests and the vectors' boundary cases."""
    chains = profile.chains
    chains = dataclasses.replace(
        chains,
        max_skip=chains.max_skip if max_skip is None else max_skip,
        max_stored_skipped=(
            chains.max_stored_skipped if max_stored_skipped is None else max_stored_skipped
        ),
        max_receiving_chains=(
            chains.max_receiving_chains if max_receiving_chains is None else max_receiving_chains
        ),
    )
    return dataclasses.replace(profile, chains=chains)


def get_profile(name: str) -> Profile:
    """Look a profile up by its name (``pq-default``, ``classic``, ``signal-v3``, ``signal-v4``)."""
    try:
        return ALL_PROFILES[name]
    except KeyError:
        raise InvalidArgument(f"unknown profile {name!r}") from None
