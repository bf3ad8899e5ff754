"""Chain rules, a profile part: the root and symmetric KDF chains and their limits.

Implements KDF_RK and KDF_CK (DR §3.1, §5.2; spec/ratchet.md §2), the
initial keys from SK (spec/ratchet.md §1.1), the PN rule (spec/ratchet.md
§5) and the limits of spec/ratchet.md §6. A chain-rules part provides
(spec/profiles.md §1.2):

* ``initial_keys(sk, with_header_keys)``: RK, the first chain key or None,
  and the shared header keys or None;
* ``kdf_rk(rk, dh_out, with_header_key)`` and ``kdf_ck(ck)``;
* ``previous_counter(ns)``: PN for a header, and ``pn_ends_chain``: whether
  a received PN says where the peer's previous chain ended;
* ``max_skip``, ``max_stored_skipped``, ``max_receiving_chains``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocol.errors import InvalidArgument
from protocol.primitives import hkdf_sha256, hmac_sha256, require_bytes
from protocol.ratchet_keys import KEY_LEN, ChainKey, HeaderKey, MessageKey, RootKey

# Note that KDF_CK's outputs are typed without the key types' length check:
# an HMAC-SHA256 output is always 32 bytes, and KDF_CK runs twice per message
# (spec/ratchet.md §2), where the check cost a Python call per key.
_typed = bytes.__new__


@dataclass(frozen=True, slots=True)
class ChainRules:
    """The KDF chains of one profile and how they start, end and are bounded."""

    # KDF_RK: HKDF-SHA256(salt = RK, ikm = DH output, info) -> 64 bytes (96 with header keys).
    kdf_rk_info: bytes
    # KDF_CK constants: mk = HMAC(CK, 0x01), CK' = HMAC(CK, 0x02) (DR §5.2).
    kdf_ck_message_constant: bytes
    kdf_ck_chain_constant: bytes
    # Initial chains (spec/ratchet.md §1.1): "spec" (DR §3.3: the responder sends
    # only after receiving) or "libsignal" (SK = RK ‖ CK; CK is the responder's first
    # sending chain under its signed prekey and the initiator's first receiving chain).
    initial_chains: Literal["spec", "libsignal"]
    # Derives the initial RK (and, with header encryption, the shared header keys) from SK.
    initial_keys_info: bytes
    # PN on the wire: "count" (DR §3.2: number of messages in the previous sending
    # chain) or "last-index" (libsignal: count - 1, saturating at 0).
    pn_semantics: Literal["count", "last-index"]
    # --- Limits (spec/ratchet.md §6: each trade-off is explained there) ---
    # Most message keys one received message may make us skip in one chain.
    max_skip: int
    # Most skipped message keys kept in total; the oldest is evicted beyond it.
    max_stored_skipped: int
    # Most old receiving chains (besides the current one) whose keys are kept.
    max_receiving_chains: int

    def __post_init__(self) -> None:
        if self.initial_chains not in ("spec", "libsignal"):
            raise InvalidArgument(f"unknown initial chains {self.initial_chains!r}")
        if self.pn_semantics not in ("count", "last-index"):
            raise InvalidArgument(f"unknown PN rule {self.pn_semantics!r}")
        if (self.initial_chains == "spec") != bool(self.initial_keys_info):
            raise InvalidArgument("an initial-keys info string is used exactly by spec chains")
        if not self.kdf_rk_info or self.kdf_ck_message_constant == self.kdf_ck_chain_constant:
            raise InvalidArgument("KDF_RK needs an info string and KDF_CK two distinct constants")
        limits = (self.max_skip, self.max_stored_skipped, self.max_receiving_chains)
        if any(type(limit) is not int or limit < 1 for limit in limits):
            raise InvalidArgument("chain limits are positive integers")

    @property
    def sk_len(self) -> int:
        """The SK length these initial chains take: 64 = RK ‖ CK under libsignal, else 32."""
        return 64 if self.initial_chains == "libsignal" else 32

    @property
    def pn_ends_chain(self) -> bool:
        """Whether a header's PN says how many messages the peer's previous chain had."""
        return self.pn_semantics == "count"

    def initial_keys(
        self, sk: bytes, with_header_keys: bool
    ) -> tuple[RootKey, ChainKey | None, HeaderKey | None, HeaderKey | None]:
        """(RK, first chain key, shared_hka, shared_nhkb) from SK (spec/ratchet.md §1.1)."""
        require_bytes(sk, self.sk_len, "SK")
        if self.initial_chains == "libsignal":
            return RootKey(sk[:32]), ChainKey(sk[32:64]), None, None
        if with_header_keys:
            out = hkdf_sha256(sk, None, self.initial_keys_info, 3 * KEY_LEN)
            return RootKey(out[:32]), None, HeaderKey(out[32:64]), HeaderKey(out[64:])
        return RootKey(hkdf_sha256(sk, None, self.initial_keys_info, KEY_LEN)), None, None, None

    def kdf_rk(
        self, rk: bytes, dh_out: bytes, with_header_key: bool
    ) -> tuple[RootKey, ChainKey, HeaderKey | None]:
        """KDF_RK / KDF_RK_HE: HKDF-SHA256(salt=rk, ikm=dh_out, info) -> (rk', ck, nhk or None)."""
        if with_header_key:
            out = hkdf_sha256(dh_out, rk, self.kdf_rk_info, 3 * KEY_LEN)
            return RootKey(out[:32]), ChainKey(out[32:64]), HeaderKey(out[64:])
        out = hkdf_sha256(dh_out, rk, self.kdf_rk_info, 2 * KEY_LEN)
        return RootKey(out[:32]), ChainKey(out[32:]), None

    def kdf_ck(self, ck: bytes) -> tuple[ChainKey, MessageKey]:
        """KDF_CK: (ck', mk) = (HMAC-SHA256(ck, 0x02), HMAC-SHA256(ck, 0x01))."""
        return _typed(ChainKey, hmac_sha256(ck, self.kdf_ck_chain_constant)), _typed(
            MessageKey, hmac_sha256(ck, self.kdf_ck_message_constant)
        )

    def advance(self, ck: bytes, steps: int, keep: int) -> tuple[ChainKey, list[MessageKey]]:
        """KDF_CK applied ``steps`` times: the last chain key and the last ``keep`` message keys.

        Note that the message keys of the earlier steps are not computed: the
        caller would evict them as soon as they were stored (spec/ratchet.md
        §6.2), so only the chain key is stepped there. A forged header that
        jumps ``max_skip`` keys then costs one HMAC per key instead of two
        (spec/security.md §3.13).
        """
        chain, message = self.kdf_ck_chain_constant, self.kdf_ck_message_constant
        for _ in range(steps - keep):
            ck = hmac_sha256(ck, chain)
        kept = []
        for _ in range(keep):
            kept.append(_typed(MessageKey, hmac_sha256(ck, message)))
            ck = hmac_sha256(ck, chain)
        return _typed(ChainKey, ck), kept

    def previous_counter(self, ns: int) -> int:
        """PN for the next sending chain's headers: Ns, or under libsignal rules Ns - 1 (min 0)."""
        return ns if self.pn_semantics == "count" else max(ns - 1, 0)
