"""Live fingerprints, padded content and sender keys against libsignal 0.28.0 and 0.103.0.

spec/session.md §6 (fingerprints), spec/interop-libsignal.md §4 (padding),
spec/sender-keys.md (group messages). libsignal runs in tests/interop/driver.js;
nothing of ours runs on its side.
"""

from __future__ import annotations

import random

import pytest
from libsignal_peer import Driver, LibsignalDevice, LibsignalError, libsignal_fingerprint

from protocol.errors import DuplicateMessage, InvalidSignature, UnsupportedVersion
from protocol.fingerprint import FingerprintVersionMismatch, ScannableFingerprint, fingerprint
from protocol.group_cipher import (
    create_distribution_message,
    group_decrypt,
    group_encrypt,
    process_distribution_message,
)
from protocol.padding import pad_content, unpad_content
from protocol.profiles import SIGNAL_V3
from protocol.sender_key_messages import decode_distribution_message, encode_distribution_message
from protocol.session import Address, SessionManager
from protocol.store import MemoryStore

LIBS = pytest.mark.parametrize(
    "lib", ["v3", "current"], ids=["libsignal-0.28.0", "libsignal-0.103.0"]
)
SENDER_KEY_MESSAGE = 7  # libsignal's CiphertextMessageType::SenderKey
GROUP = bytes.fromhex("d1d1d1d1700011ebb32a33b8a8a487a6")


def _ours(driver: Driver) -> SessionManager:
    return SessionManager.create(
        MemoryStore(), Address(driver.fresh_name("ours"), 1), SIGNAL_V3, now=0
    )


# --- Fingerprints ------------------------------------------------------------------------


def _check_fingerprints(
    driver: Driver, lib: str, version: int, ours: tuple[bytes, bytes], theirs: tuple[bytes, bytes]
) -> None:
    """Both forms equal on both sides, and each side's compare accepts the other's code."""
    our_view = fingerprint(version, ours[0], ours[1], theirs[0], theirs[1])
    their_view = libsignal_fingerprint(
        driver, lib, version, theirs, ours, scanned=our_view.scannable.serialize()
    )
    assert their_view["display"] == our_view.display
    assert their_view["matches"] is True
    assert our_view.scannable.compare(their_view["scannable"])
    mirrored = libsignal_fingerprint(driver, lib, version, ours, theirs)
    assert mirrored["scannable"] == our_view.scannable.serialize()


@LIBS
@pytest.mark.parametrize("version", [1, 2])
def test_fingerprints_of_identity_keys_are_the_same_on_both_sides(
    libsignal: Driver, lib: str, version: int
) -> None:
    ours, theirs = _ours(libsignal), LibsignalDevice.create(libsignal, lib)
    if version == 1:  # phone numbers as text
        ids = (b"+14152222222", b"+14153333333")
    else:  # 16-byte service ids (ACIs), as Signal uses version 2
        ids = (random.randbytes(16), random.randbytes(16))
    _check_fingerprints(
        libsignal, lib, version, (ids[0], ours.identity_key), (ids[1], theirs.identity_key)
    )


def test_fingerprints_of_the_keys_a_live_session_trusted_agree(libsignal: Driver) -> None:
    ours, theirs = _ours(libsignal), LibsignalDevice.create(libsignal, "v3")
    theirs.process_bundle(ours, ours.prekey_bundles()[-1])
    kind, data = theirs.encrypt(ours.address, b"hello")
    assert ours.decrypt(theirs.address, data, kind=kind) == b"hello"
    our_trusted = ours.trusted_identity(theirs.address)
    assert our_trusted == theirs.identity_key
    kind, data = ("message", ours.encrypt(theirs.address, b"hi"))
    assert theirs.decrypt(ours.address, kind, data) == b"hi"
    assert theirs.peer_identity(ours.address) == ours.identity_key
    ids = (b"ours-aci-16bytes", b"their-aci-16byte")
    _check_fingerprints(libsignal, "v3", 2, (ids[0], ours.identity_key), (ids[1], our_trusted))


@LIBS
def test_a_fingerprint_version_mismatch_is_refused_on_both_sides(
    libsignal: Driver, lib: str
) -> None:
    ours, theirs = _ours(libsignal), LibsignalDevice.create(libsignal, lib)
    local, remote = (b"a", ours.identity_key), (b"b", theirs.identity_key)
    their_v2 = libsignal_fingerprint(libsignal, lib, 2, remote, local)["scannable"]
    with pytest.raises(FingerprintVersionMismatch):
        fingerprint(1, *local, *remote).scannable.compare(their_v2)
    with pytest.raises(LibsignalError, match="version"):
        libsignal_fingerprint(
            libsignal,
            lib,
            1,
            remote,
            local,
            scanned=fingerprint(2, *local, *remote).scannable.serialize(),
        )
    assert ScannableFingerprint.deserialize(their_v2).version == 2


# --- Padded content over a v3 session ------------------------------------------------------


def test_padded_content_round_trips_over_a_live_session(libsignal: Driver) -> None:
    ours, theirs = _ours(libsignal), LibsignalDevice.create(libsignal, "v3")
    theirs.process_bundle(ours, ours.prekey_bundles()[-1])
    for size in (0, 1, 78, 79, 158, 159, 500):
        content = random.randbytes(size)
        kind, data = theirs.encrypt(ours.address, pad_content(content))
        assert unpad_content(ours.decrypt(theirs.address, data, kind=kind)) == content
        reply = ours.encrypt(theirs.address, pad_content(content))
        assert unpad_content(theirs.decrypt(ours.address, "message", reply)) == content


# --- Sender keys -----------------------------------------------------------------------------


@LIBS
def test_libsignal_sender_keys_reach_our_member_in_any_order(libsignal: Driver, lib: str) -> None:
    theirs, store = LibsignalDevice.create(libsignal, lib), MemoryStore()
    distribution = theirs.sender_key_distribution(GROUP)
    assert distribution[0] == 0x33  # 95 or 96 bytes: the random chain id's varint is 4 or 5
    assert encode_distribution_message(decode_distribution_message(distribution)) == distribution
    process_distribution_message(store, theirs.address, distribution)
    contents = [random.randbytes(size) for size in (0, 10, 79, 200, 1000)]
    sent = []
    for content in contents:
        kind, data = theirs.group_encrypt(GROUP, pad_content(content))
        assert kind == SENDER_KEY_MESSAGE and data[0] == 0x33
        sent.append(data)
    for i in (4, 0, 2, 1, 3):
        assert unpad_content(group_decrypt(store, theirs.address, sent[i])) == contents[i]
    with pytest.raises(DuplicateMessage):
        group_decrypt(store, theirs.address, sent[0])
    kind, fresh = theirs.group_encrypt(GROUP, b"after")
    with pytest.raises(InvalidSignature):
        group_decrypt(store, theirs.address, fresh[:-1] + bytes([fresh[-1] ^ 1]))
    assert group_decrypt(store, theirs.address, fresh) == b"after"


@LIBS
def test_our_sender_keys_reach_a_libsignal_member_in_any_order(libsignal: Driver, lib: str) -> None:
    theirs, store = LibsignalDevice.create(libsignal, lib), MemoryStore()
    sender = Address(libsignal.fresh_name("ours"), 1)
    theirs.process_sender_key_distribution(
        sender, create_distribution_message(store, sender, GROUP)
    )
    contents = [random.randbytes(size) for size in (0, 10, 79, 200, 1000)]
    sent = [group_encrypt(store, sender, GROUP, pad_content(c)) for c in contents]
    for i in (3, 1, 0, 4, 2):
        assert unpad_content(theirs.group_decrypt(sender, sent[i])) == contents[i]
    with pytest.raises(LibsignalError):  # a replay
        theirs.group_decrypt(sender, sent[0])
    fresh = group_encrypt(store, sender, GROUP, b"after")
    with pytest.raises(LibsignalError, match="signature"):
        theirs.group_decrypt(sender, fresh[:-1] + bytes([fresh[-1] ^ 1]))
    assert theirs.group_decrypt(sender, fresh) == b"after"


@LIBS
def test_libsignal_refuses_other_sender_key_versions_as_we_do(libsignal: Driver, lib: str) -> None:
    theirs, store = LibsignalDevice.create(libsignal, lib), MemoryStore()
    sender = Address(libsignal.fresh_name("ours"), 1)
    distribution = create_distribution_message(store, sender, GROUP)
    for byte in (0x44, 0x23):
        with pytest.raises(LibsignalError):
            theirs.process_sender_key_distribution(sender, bytes([byte]) + distribution[1:])
        with pytest.raises(UnsupportedVersion):
            process_distribution_message(MemoryStore(), sender, bytes([byte]) + distribution[1:])
    theirs.process_sender_key_distribution(sender, distribution)
    message = group_encrypt(store, sender, GROUP, b"v")
    with pytest.raises(LibsignalError):
        theirs.group_decrypt(sender, b"\x44" + message[1:])
    assert theirs.group_decrypt(sender, message) == b"v"
