"""Live: a signal-v4 SessionManager of ours and libsignal 0.103.0, through five SPQR epochs.

Both directions (we initiate from libsignal's bundle; libsignal initiates
from ours), with and without a one-time prekey. 480 strictly alternating
messages, each decrypted by the other side, and the epoch in field 5
(spec/spqr.md §8) read from both sides' messages must reach 6: the keys of
epoch e - 1 encrypt the messages of epoch e, so five epochs completed. Our
side is the ordinary ``SessionManager`` with the ``signal-v4`` profile;
libsignal is @signalapp/libsignal-client 0.103.0 in tests/interop/driver.js.
"""

from __future__ import annotations

from typing import Any

import pytest
from libsignal_peer import (
    KIND_OF_TYPE,
    TYPE_OF_KIND,
    Driver,
    LibsignalDevice,
    encoded,
    raw,
)

from protocol import wire
from protocol.bundle import BundleKemPrekey, BundleOneTimePrekey, PrekeyBundle
from protocol.profiles import SIGNAL_V4
from protocol.session import Address, SessionManager
from protocol.spqr.messages import decode_message
from protocol.store import MemoryStore

MESSAGES = 480


def _peer(address: Address) -> dict[str, Any]:
    return {"name": address.user, "device_id": address.device}


def _ours(libsignal: Driver, one_time_prekey: bool) -> SessionManager:
    address = Address(libsignal.fresh_name("v4-ours"), 1)
    manager = SessionManager.create(MemoryStore(), address, SIGNAL_V4, now=0)
    if one_time_prekey:
        manager.generate_one_time_prekeys(1)
    return manager


def _served(manager: SessionManager, bundle: PrekeyBundle) -> dict[str, Any]:
    """Our bundle, Kyber prekey included, as the driver's process_bundle takes it."""
    one_time, kyber = bundle.one_time_prekey, bundle.kem_prekey
    assert kyber is not None and kyber.kem == "Kyber1024"
    return {
        "registration_id": manager.registration_id,
        "device_id": manager.address.device,
        "identity_key": encoded(bundle.identity_key),
        "signed_prekey_id": bundle.signed_prekey_id,
        "signed_prekey": encoded(bundle.signed_prekey),
        "signed_prekey_signature": bundle.signed_prekey_signature.hex(),
        "prekey_id": None if one_time is None else one_time.prekey_id,
        "prekey": None if one_time is None else encoded(one_time.public),
        "kyber_prekey_id": kyber.prekey_id,
        "kyber_prekey": kyber.encoded().hex(),
        "kyber_prekey_signature": kyber.signature.hex(),
    }


def _theirs(libsignal: Driver, device: LibsignalDevice, one_time_prekey: bool) -> PrekeyBundle:
    """A fresh bundle of libsignal's, Kyber prekey included, as our PrekeyBundle."""
    served = libsignal.call(
        "bundle",
        name=device.name,
        signed_prekey_id=3,
        prekey_id=4 if one_time_prekey else None,
        kyber_prekey_id=5,
    )
    kyber = bytes.fromhex(served["kyber_prekey"])
    assert kyber[0] == 0x08
    return PrekeyBundle(
        identity_key=raw(served["identity_key"]),
        signed_prekey_id=3,
        signed_prekey=raw(served["signed_prekey"]),
        signed_prekey_signature=bytes.fromhex(served["signed_prekey_signature"]),
        one_time_prekey=BundleOneTimePrekey(4, raw(served["prekey"])) if one_time_prekey else None,
        kem_prekey=BundleKemPrekey(
            "Kyber1024", 5, kyber[1:], bytes.fromhex(served["kyber_prekey_signature"])
        ),
    )


def _epoch(data: bytes) -> int:
    if wire.message_kind(SIGNAL_V4, data) == "prekey":
        data = wire.decode_prekey_message(SIGNAL_V4, data).message
    header = wire.decode_message(SIGNAL_V4, data).header
    assert header is not None
    return decode_message(header.pq_ratchet).epoch


@pytest.mark.parametrize(
    ("we_initiate", "one_time_prekey"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_five_spqr_epochs_with_libsignal(
    libsignal: Driver, we_initiate: bool, one_time_prekey: bool
) -> None:
    ours = _ours(libsignal, one_time_prekey)
    theirs = LibsignalDevice.create(libsignal, "current", prefix="v4-theirs")
    if we_initiate:
        ours.initiate(theirs.address, _theirs(libsignal, theirs, one_time_prekey))
    else:
        bundle = _served(ours, ours.prekey_bundles()[0])
        libsignal.call("process_bundle", name=theirs.name, peer=_peer(ours.address), bundle=bundle)
    epochs = []
    for n in range(MESSAGES):
        plaintext = n.to_bytes(4, "big")
        if (n % 2 == 0) == we_initiate:
            data = ours.encrypt(theirs.address, plaintext)
            kind = wire.message_kind(SIGNAL_V4, data)
            assert data[0] == 0x44
            assert theirs.decrypt(ours.address, kind, data) == plaintext
        else:
            sent = libsignal.call(
                "encrypt", name=theirs.name, peer=_peer(ours.address), plaintext=plaintext.hex()
            )
            kind, data = KIND_OF_TYPE[sent["type"]], bytes.fromhex(sent["body"])
            assert TYPE_OF_KIND[kind] == sent["type"]
            assert ours.decrypt(theirs.address, data, kind=kind) == plaintext
        epochs.append(_epoch(data))
    assert epochs[-1] >= 6
