"""Only a record's canonical bytes load: every other packing of the same values is refused.

spec/storage.md §4 step 5: each state has one encoding. The loader checks
the values structurally and the bytes by msgpack's own packing
(protocol/store/format.py, ``load_state``), not by serializing the loaded
record again, so these tests take real stored records (the format-1 stores
of tests/fixtures/ and a signal-v4 session with SPQR state) and pack the
very same msgpack values another way: one length or integer widened, a map
key repeated, a float narrowed. msgpack reads each back as the same values;
the loader must refuse each as STATE_CORRUPT.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import StateCorrupt
from protocol.prekeys import KemPrekey, OneTimePrekey, SignedPrekey
from protocol.primitives import sha256
from protocol.profiles import SIGNAL_V4
from protocol.session import Address, SessionManager
from protocol.session.records import DeviceRecord, KemPrekeyUse, SessionRecord, TrustedIdentity
from protocol.store import MemoryStore
from protocol.store.format import FORMAT_VERSION, MAGIC, dump_state, load_state

FIXTURES = Path(__file__).parents[1] / "fixtures"
KINDS: dict[str, type] = {
    "device": DeviceRecord,
    "session": SessionRecord,
    "identity": TrustedIdentity,
    "signed_prekey": SignedPrekey,
    "one_time_prekey": OneTimePrekey,
    "kem_prekey": KemPrekey,
    "kem_prekey_use": KemPrekeyUse,
}


def _signal_v4_session() -> bytes:
    """A signal-v4 session record with SPQR state and a skipped key, through SessionManager."""
    alice = SessionManager.create(MemoryStore(), Address("alice", 1), SIGNAL_V4, now=0)
    bob = SessionManager.create(MemoryStore(), Address("bob", 1), SIGNAL_V4, now=0)
    bob.generate_one_time_prekeys(1)
    bob.generate_kem_prekeys(1)
    alice.initiate(bob.address, bob.prekey_bundles()[0])
    bob.decrypt(alice.address, alice.encrypt(bob.address, b"first"))
    alice.decrypt(bob.address, bob.encrypt(alice.address, b"reply"))
    alice.encrypt(bob.address, b"skipped")
    bob.decrypt(alice.address, alice.encrypt(bob.address, b"after the skipped one"))
    record = bob.session_record(alice.address)
    assert record is not None and record.current.pq is not None
    assert record.current.ratchet.mkskipped
    return dump_state(record)


def _records() -> list[tuple[type, bytes]]:
    records = [(SessionRecord, _signal_v4_session())]
    for path in sorted(FIXTURES.glob("format1-*.json")):
        for device in json.loads(path.read_text())["devices"].values():
            for table, values in device["records"].items():
                records += [(KINDS[table], bytes.fromhex(v)) for v in values.values()]
    return records


RECORDS = _records()


def _wide(value: object) -> bytes:
    """The one msgpack item ``value`` in its widest form: never the canonical one here."""
    if isinstance(value, bool) or value is None:
        raise AssertionError("nil and booleans have one form only")
    if isinstance(value, int):
        return (b"\xcf" if value >= 0 else b"\xd3") + value.to_bytes(8, "big", signed=value < 0)
    if isinstance(value, float):
        raise AssertionError("a float 64 is already the widest form")
    if isinstance(value, str):
        return b"\xdb" + len(value.encode()).to_bytes(4, "big") + value.encode()
    assert isinstance(value, bytes)
    return b"\xc6" + len(value).to_bytes(4, "big") + value


def _repack(value: object, target: int, seen: list[int]) -> bytes:
    """Pack ``value`` canonically except its ``target``-th widenable item (pre-order), widened."""
    widen = isinstance(value, int | str | bytes | list | dict) and not isinstance(value, bool)
    if widen:
        seen[0] += 1
    here = widen and seen[0] - 1 == target
    if isinstance(value, list):
        head = b"\xdd" + len(value).to_bytes(4, "big") if here else _header(value)
        return head + b"".join(_repack(item, target, seen) for item in value)
    if isinstance(value, dict):
        head = b"\xdf" + len(value).to_bytes(4, "big") if here else _header(value)
        items = (_repack(k, target, seen) + _repack(v, target, seen) for k, v in value.items())
        return head + b"".join(items)
    return _wide(value) if here else msgpack.packb(value, use_bin_type=True)


def _header(value: list[object] | dict[object, object]) -> bytes:
    packer = msgpack.Packer()
    if isinstance(value, list):
        return packer.pack_array_header(len(value))
    return packer.pack_map_header(len(value))


def _envelope(body: bytes, kind: str) -> bytes:
    return msgpack.packb([MAGIC, FORMAT_VERSION, kind, body, sha256(body)], use_bin_type=True)


def _body(data: bytes) -> tuple[str, object]:
    _, _, kind, body, _ = msgpack.unpackb(data)
    return kind, msgpack.unpackb(body)


def test_every_stored_record_dumps_back_to_its_exact_bytes() -> None:
    for cls, data in RECORDS:
        assert dump_state(load_state(cls, data)) == data


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_record_body_with_any_one_item_packed_wider_is_refused(data: st.DataObject) -> None:
    cls, stored = data.draw(st.sampled_from(RECORDS))
    kind, raw = _body(stored)
    count = [0]
    _repack(raw, -1, count)
    target = data.draw(st.integers(0, count[0] - 1))
    body = _repack(raw, target, [0])
    assert msgpack.unpackb(body) == raw and body != msgpack.packb(raw, use_bin_type=True)
    with pytest.raises(StateCorrupt):
        load_state(cls, _envelope(body, kind))


@pytest.mark.parametrize("target", range(6))
def test_an_envelope_with_any_one_item_packed_wider_is_refused(target: int) -> None:
    cls, stored = RECORDS[0]
    outer = msgpack.unpackb(stored)
    data = _repack(outer, target, [0])
    assert msgpack.unpackb(data) == outer and data != stored
    with pytest.raises(StateCorrupt):
        load_state(cls, data)


@pytest.mark.parametrize("index", range(len(RECORDS)))
def test_a_record_body_that_repeats_a_map_key_is_refused(index: int) -> None:
    cls, stored = RECORDS[index]
    kind, raw = _body(stored)
    assert isinstance(raw, dict)
    name, value = list(raw.items())[-1]
    packer = msgpack.Packer()
    body = packer.pack_map_header(len(raw) + 1) + b"".join(
        packer.pack(k) + packer.pack(v) for k, v in [*raw.items(), (name, value)]
    )
    assert msgpack.unpackb(body) == raw
    with pytest.raises(StateCorrupt):
        load_state(cls, _envelope(body, kind))


@dataclass(frozen=True)
class _Timed:
    delay: float


def test_a_float_packed_as_float_32_is_refused() -> None:
    assert load_state(_Timed, dump_state(_Timed(0.5))) == _Timed(0.5)
    body = b"\x81\xa5delay\xca" + struct.pack(">f", 0.5)
    assert msgpack.unpackb(body) == {"delay": 0.5}
    with pytest.raises(StateCorrupt):
        load_state(_Timed, _envelope(body, "_Timed"))
