"""The driver's v4 party checked against itself: libsignal 0.103.0 talking to libsignal 0.103.0.

Before our ``signal-v4`` sessions meet libsignal (test_live_libsignal_v4.py),
these show that what the driver reports is libsignal's: a bundle with a
signed Kyber prekey (one-time or last resort) opens a session, field 5 as
our reader takes it apart equals what libsignal's own deserializer returns
(``SignalMessage.pqRatchet()``), the SPQR epoch in it advances over a long
alternating conversation, a one-time Kyber prekey is gone once used while a
last-resort one stays, and the in-process ``bench`` op times real work.
"""

from __future__ import annotations

from typing import Any

import pytest
from libsignal_peer import (
    TYPE_OF_KIND,
    Driver,
    LibsignalDevice,
    LibsignalError,
    pq_ratchet_field,
    signal_message,
    spqr_message,
)

from protocol.spqr.messages import MessageType
from protocol.wire import MessageKind


def _peer(device: LibsignalDevice) -> dict[str, Any]:
    return {"name": device.name, "device_id": 1}


def _session(libsignal: Driver, *, prekey: bool, last_resort: bool) -> list[LibsignalDevice]:
    """Two 0.103.0 devices; the first has processed a fresh bundle of the second."""
    a, b = (LibsignalDevice.create(libsignal, "current", prefix=p) for p in ("v4-a", "v4-b"))
    served = libsignal.call(
        "bundle",
        name=b.name,
        signed_prekey_id=1,
        prekey_id=7 if prekey else None,
        kyber_prekey_id=9,
        kyber_last_resort=last_resort,
    )
    libsignal.call("process_bundle", name=a.name, peer=_peer(b), bundle=served)
    return [a, b]


def _exchange(
    libsignal: Driver, devices: list[LibsignalDevice], sender: int, plaintext: bytes
) -> tuple[MessageKind, bytes]:
    """One message from ``devices[sender]`` to the other, decrypted there."""
    kind, body = devices[sender].encrypt(devices[1 - sender].address, plaintext)
    receiver = devices[1 - sender]
    assert receiver.decrypt(devices[sender].address, kind, body) == plaintext
    return kind, body


@pytest.mark.parametrize("prekey", [True, False], ids=["one-time-prekey", "no-one-time-prekey"])
def test_libsignal_v4_session_field5_as_libsignal_reads_it(libsignal: Driver, prekey: bool) -> None:
    devices = _session(libsignal, prekey=prekey, last_resort=True)
    kind, body = _exchange(libsignal, devices, 0, b"first")
    assert kind == "prekey" and body[0] == 0x44
    first = spqr_message(kind, body)
    assert (first.epoch, first.index, first.type) == (1, 1, MessageType.HDR)
    for n in range(6):
        kind, body = _exchange(libsignal, devices, (n + 1) & 1, bytes([n]) * 9)
        assert kind == "message"
        parsed = libsignal.call("parse", lib="current", type=TYPE_OF_KIND[kind], body=body.hex())
        assert parsed["version"] == 4
        assert bytes.fromhex(parsed["pq_ratchet"]) == pq_ratchet_field(kind, body)
    assert signal_message("message", body) == body


def test_libsignal_v4_spqr_epoch_advances_over_an_alternating_conversation(
    libsignal: Driver,
) -> None:
    """Epochs complete about every 87 alternating messages; 200 give at least two."""
    devices = _session(libsignal, prekey=True, last_resort=True)
    epochs = []
    for n in range(200):
        kind, body = _exchange(libsignal, devices, n & 1, n.to_bytes(2, "big"))
        epochs.append(spqr_message(kind, body).epoch)
    assert epochs == sorted(epochs)  # in order: never back to an older epoch
    assert epochs[-1] >= 3


@pytest.mark.parametrize("last_resort", [False, True], ids=["one-time", "last-resort"])
def test_one_time_kyber_prekey_is_removed_once_used_and_last_resort_kept(
    libsignal: Driver, last_resort: bool
) -> None:
    """Two initiators get the same served bundle (as a server serves a last resort again)."""
    b = LibsignalDevice.create(libsignal, "current", prefix="v4-b")
    served = libsignal.call(
        "bundle",
        name=b.name,
        signed_prekey_id=1,
        prekey_id=None,
        kyber_prekey_id=9,
        kyber_last_resort=last_resort,
    )
    assert served["kyber_prekey"][:2] == "08"  # Kyber1024, libsignal's key type 0x08
    sent = []
    for prefix in ("v4-first", "v4-second"):
        a = LibsignalDevice.create(libsignal, "current", prefix=prefix)
        libsignal.call("process_bundle", name=a.name, peer=_peer(b), bundle=served)
        sent.append((a, *a.encrypt(b.address, prefix.encode())))
    (first, kind, body), (second, kind2, body2) = sent
    assert b.decrypt(first.address, kind, body) == b"v4-first"
    if last_resort:
        assert b.decrypt(second.address, kind2, body2) == b"v4-second"
    else:
        with pytest.raises(LibsignalError, match="Kyber prekey 9"):
            b.decrypt(second.address, kind2, body2)


def test_bench_op_times_libsignal_inside_node(libsignal: Driver) -> None:
    for workload, units, length in (("setup", 2, 1), ("pingpong", 20, 1), ("burst", 1, 10)):
        result = libsignal.bench("current", workload, units, length)
        assert result["ops"] == units * length
        assert result["elapsed_ns"] > 0 and result["cpu_ns"] > 0
        assert result["record_bytes"] > 1000  # a v4 record holds SPQR state (~4 KB)
