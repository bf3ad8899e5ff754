"""The ratchet's keys are typed, checked, secret and redacted (spec/ratchet.md §1).

RK, CKs/CKr, the header keys and the message keys are small frozen types
(protocol/ratchet_keys.py). These tests prove that each refuses a wrong
length, that none shows its bytes, that every field typed with one is
secret for the leak scan and the repr test, and that every key a state
holds, made by the ratchet or loaded from a format-1 record, has its type.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from protocol import triple_ratchet
from protocol.errors import InvalidArgument
from protocol.primitives import X25519KeyPair
from protocol.profiles import PROFILES, get_profile
from protocol.randomness import DrbgRandom
from protocol.ratchet import RatchetState
from protocol.ratchet_keys import ChainKey, HeaderKey, MessageKey, RootKey, SecretKey
from protocol.secrecy import secret_fields
from protocol.session.records import SessionRecord
from protocol.store.format import load_state
from tests.package_classes import package_classes
from tests.ratchet_pair import make_pair

KEY_TYPES = (RootKey, ChainKey, HeaderKey, MessageKey)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_a_key_is_exactly_32_bytes_or_invalid_argument(key_type: type[SecretKey]) -> None:
    assert key_type(bytes(range(32))) == bytes(range(32))
    for wrong in (b"", bytes(31), bytes(33), bytearray(32), list(range(32)), 32, "k" * 32):
        with pytest.raises(InvalidArgument) as refused:
            key_type(wrong)  # type: ignore[arg-type]
        assert refused.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_a_key_shows_none_of_its_bytes_in_repr_str_or_format(key_type: type[SecretKey]) -> None:
    secret = bytes(range(100, 132))
    key = key_type(secret)
    for shown in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({1: key})):
        assert shown.count("<redacted>") == 1
        assert secret.hex() not in shown and repr(secret) not in shown and "\\x" not in shown


def test_a_key_is_frozen_and_new_bytes_made_from_it_are_untyped() -> None:
    key = ChainKey(bytes(32))
    with pytest.raises(AttributeError):
        key.extra = 1  # type: ignore[attr-defined]
    assert type(key[:16]) is bytes and type(key + b"") is bytes
    assert type(key.stored_bytes()) is bytes and ChainKey.from_stored_bytes(bytes(32)) == key


def _names_a_key_type(hint: object) -> bool:
    """Whether an annotation is, or contains, a ratchet key type."""
    if isinstance(hint, type):
        return issubclass(hint, SecretKey)
    return any(_names_a_key_type(arg) for arg in typing.get_args(hint))


def test_every_field_typed_with_a_key_is_secret() -> None:
    """Found by subclass, not by the ``__secret__`` mark, so a type that lost its mark fails."""
    checked = []
    for cls in package_classes():
        fields = getattr(cls, "__dataclass_fields__", None) or dict.fromkeys(
            getattr(cls, "_fields", ())
        )
        if not fields:
            continue
        hints = typing.get_type_hints(cls)
        for name in fields:
            if _names_a_key_type(hints.get(name)):
                checked.append(f"{cls.__qualname__}.{name}")
                assert name in secret_fields(cls), f"{cls.__qualname__}.{name} is not secret"
    expected = {"RatchetState.rk", "RatchetState.cks", "RatchetState.mkskipped"}
    assert expected | {"RatchetState.nhkr", "ReceivingChain.ck"} <= set(checked)


def _assert_typed(state: RatchetState) -> int:
    """Every key of ``state`` has its type; returns how many keys were checked."""
    keys: list[tuple[object, type]] = [(state.rk, RootKey)]
    keys += [(ck, ChainKey) for ck in (state.cks, state.ckr) if ck is not None]
    keys += [(chain.ck, ChainKey) for chain in state.old_chains if chain.ck is not None]
    headers = (state.hks, state.hkr, state.nhks, state.nhkr)
    keys += [(hk, HeaderKey) for hk in headers if hk is not None]
    keys += [(mk, MessageKey) for mk in state.mkskipped.values()]
    for key, key_type in keys:
        assert type(key) is key_type
    return len(keys)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_key_the_ratchet_makes_has_its_type(name: str) -> None:
    """Through the triple ratchet, which is the Double Ratchet alone except in signal-v4."""
    profile = get_profile(name)
    ad = make_pair(profile).ad  # Encode(IK_A) ‖ Encode(IK_B), which signal-v3 checks
    rng = DrbgRandom(b"typed keys")
    sk = rng.draw("sk", profile.agreement.sk_len)
    spk = X25519KeyPair.from_private(rng.draw("spk", 32))
    initiator = triple_ratchet.init_initiator(profile, sk, spk.public, rng)
    responder = triple_ratchet.init_responder(profile, sk, spk)
    initiator, first = triple_ratchet.encrypt(initiator, b"0", ad, rng)
    responder, _ = triple_ratchet.decrypt(responder, first, ad, rng)
    responder, reply = triple_ratchet.encrypt(responder, b"r", ad, rng)
    initiator, _ = triple_ratchet.decrypt(initiator, reply, ad, rng)
    sent = []
    for i in range(4):  # a burst delivered last first: three stored skipped keys
        initiator, message = triple_ratchet.encrypt(initiator, bytes([i]), ad, rng)
        sent.append(message)
    responder, _ = triple_ratchet.decrypt(responder, sent[-1], ad, rng)
    assert len(responder.ratchet.mkskipped) == 3
    assert _assert_typed(initiator.ratchet) >= 3 and _assert_typed(responder.ratchet) >= 5


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("format1-*.json")), ids=lambda p: p.stem)
def test_every_key_loaded_from_a_format_1_session_record_has_its_type(path: Path) -> None:
    data = json.loads(path.read_text())
    checked = 0
    for device in data["devices"].values():
        for value in device["records"].get("session", {}).values():
            record = load_state(SessionRecord, bytes.fromhex(value))
            checked += sum(_assert_typed(state.ratchet) for state in record.states())
    assert checked > 0
