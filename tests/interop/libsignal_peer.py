"""A live libsignal peer: the Node driver (driver.js) and the devices it runs.

tests/interop/README.md describes the command protocol. ``install`` runs
``npm ci`` once per lockfile into an ignored cache; ``Driver`` talks to one
``node driver.js`` process; ``LibsignalDevice`` is one libsignal device
inside it, with the conversions between libsignal's forms (keys as
``0x05 ‖ u``, CiphertextMessageType numbers) and ours.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from protocol.bundle import BundleOneTimePrekey, PrekeyBundle
from protocol.session import Address, SessionManager
from protocol.wire import MessageKind

HERE: Final = Path(__file__).resolve().parent
CACHE: Final = HERE.parents[1] / ".cache" / "libsignal-driver"
PINNED: Final = ("package.json", "package-lock.json")

# libsignal's CiphertextMessageType (rust/protocol/src/protocol.rs): Whisper = 2,
# PreKey = 3. Signal's envelope numbers them CIPHERTEXT = 1, PREKEY_BUNDLE = 3
# (spec/wire.md §3.5); the driver speaks libsignal's numbering.
KIND_OF_TYPE: Final[dict[int, MessageKind]] = {2: "message", 3: "prekey"}
TYPE_OF_KIND: Final = {kind: number for number, kind in KIND_OF_TYPE.items()}


REQUIRE: Final = "E2EE_REQUIRE_LIBSIGNAL"
"""Set to 1 (as .ci/run does) to make a missing libsignal a failure instead of a skip."""


def unavailable(reason: str) -> None:
    """Skip the live tests for ``reason``, or fail them when REQUIRE is set."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE}=1 requires the live libsignal tests")
    pytest.skip(reason)


class LibsignalError(Exception):
    """libsignal (or the driver) refused a request; ``message`` is libsignal's text."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message


def install(cache: Path = CACHE) -> Path:
    """``npm ci`` the pinned packages into ``cache`` unless this lockfile is installed there.

    Returns the node_modules folder. A file lock keeps parallel test workers
    from installing at the same time.
    """
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in PINNED)).hexdigest()
    stamp = cache / "installed.sha256"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != digest:
            for name in PINNED:
                shutil.copyfile(HERE / name, cache / name)
            subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=cache,
                check=True,
                capture_output=True,
                timeout=600,
            )
            stamp.write_text(digest)
    return cache / "node_modules"


class Driver:
    """One ``node driver.js`` process; ``call`` sends a request and returns its answer."""

    def __init__(self, node_modules: Path) -> None:
        env = {**os.environ, "NODE_PATH": str(node_modules)}
        self._process = subprocess.Popen(
            ["node", str(HERE / "driver.js")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._names = 0

    def call(self, op: str, **request: Any) -> dict[str, Any]:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"op": op, **request}) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the libsignal driver exited (status {process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok"):
            raise LibsignalError(answer["error"], answer["message"])
        return answer

    def fresh_name(self, prefix: str) -> str:
        """A party name not used before in this process."""
        self._names += 1
        return f"{prefix}-{self._names}"

    def close(self) -> None:
        process = self._process
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def encoded(key: bytes) -> str:
    """libsignal's serialized public key, 0x05 ‖ u, in hex."""
    return "05" + key.hex()


def raw(encoded_key: str) -> bytes:
    """The raw u of libsignal's 0x05 ‖ u."""
    data = bytes.fromhex(encoded_key)
    assert data[0] == 0x05 and len(data) == 33
    return data[1:]


def bundle_for_libsignal(manager: SessionManager, bundle: PrekeyBundle) -> dict[str, Any]:
    """Our device's bundle in the form libsignal's PreKeyBundle.new takes (driver op bundle)."""
    one_time = bundle.one_time_prekey
    return {
        "registration_id": manager.registration_id,
        "device_id": manager.address.device,
        "identity_key": encoded(bundle.identity_key),
        "signed_prekey_id": bundle.signed_prekey_id,
        "signed_prekey": encoded(bundle.signed_prekey),
        "signed_prekey_signature": bundle.signed_prekey_signature.hex(),
        "prekey_id": None if one_time is None else one_time.prekey_id,
        "prekey": None if one_time is None else encoded(one_time.public),
        "kyber_prekey_id": None,
        "kyber_prekey": None,
        "kyber_prekey_signature": None,
    }


@dataclass
class LibsignalDevice:
    """A libsignal device in the driver, addressed as ``Address(name, 1)``."""

    driver: Driver
    name: str
    lib: str
    identity_key: bytes
    registration_id: int

    @classmethod
    def create(cls, driver: Driver, lib: str, prefix: str = "libsignal") -> LibsignalDevice:
        name = driver.fresh_name(prefix)
        made = driver.call("create", name=name, lib=lib, device_id=1)
        return cls(driver, name, lib, raw(made["identity_key"]), made["registration_id"])

    @property
    def address(self) -> Address:
        return Address(self.name, 1)

    def bundle(self, signed_prekey_id: int, prekey_id: int | None) -> PrekeyBundle:
        """A fresh bundle of this device, as our PrekeyBundle."""
        served = self.driver.call(
            "bundle", name=self.name, signed_prekey_id=signed_prekey_id, prekey_id=prekey_id
        )
        one_time = None
        if served["prekey_id"] is not None:
            one_time = BundleOneTimePrekey(served["prekey_id"], raw(served["prekey"]))
        return PrekeyBundle(
            identity_key=raw(served["identity_key"]),
            signed_prekey_id=served["signed_prekey_id"],
            signed_prekey=raw(served["signed_prekey"]),
            signed_prekey_signature=bytes.fromhex(served["signed_prekey_signature"]),
            one_time_prekey=one_time,
        )

    def process_bundle(self, peer: SessionManager, bundle: PrekeyBundle) -> None:
        """Start a session with our device ``peer`` from one of its bundles."""
        served = bundle_for_libsignal(peer, bundle)
        self.driver.call("process_bundle", name=self.name, peer=_peer(peer.address), bundle=served)

    def encrypt(self, peer: Address, plaintext: bytes) -> tuple[MessageKind, bytes]:
        sent = self.driver.call(
            "encrypt", name=self.name, peer=_peer(peer), plaintext=plaintext.hex()
        )
        return KIND_OF_TYPE[sent["type"]], bytes.fromhex(sent["body"])

    def decrypt(self, peer: Address, kind: MessageKind, data: bytes) -> bytes:
        received = self.driver.call(
            "decrypt", name=self.name, peer=_peer(peer), type=TYPE_OF_KIND[kind], body=data.hex()
        )
        return bytes.fromhex(received["plaintext"])

    def peer_identity(self, peer: Address) -> bytes | None:
        known = self.driver.call("identity", name=self.name, peer=_peer(peer))["peer"]
        return None if known is None else raw(known)

    def registration_ids(self, peer: Address) -> tuple[int, int]:
        ids = self.driver.call("registration_ids", name=self.name, peer=_peer(peer))
        return ids["local"], ids["remote"]

    # --- Sender keys (driver ops sk_create, sk_process, group_encrypt, group_decrypt) ---

    def sender_key_distribution(self, distribution_id: bytes) -> bytes:
        """libsignal's SenderKeyDistributionMessage for this device's chain."""
        made = self.driver.call("sk_create", name=self.name, distribution_id=_uuid(distribution_id))
        return bytes.fromhex(made["distribution"])

    def process_sender_key_distribution(self, sender: Address, data: bytes) -> None:
        self.driver.call("sk_process", name=self.name, peer=_peer(sender), distribution=data.hex())

    def group_encrypt(self, distribution_id: bytes, plaintext: bytes) -> tuple[int, bytes]:
        """(libsignal's CiphertextMessageType, the SenderKeyMessage)."""
        sent = self.driver.call(
            "group_encrypt",
            name=self.name,
            distribution_id=_uuid(distribution_id),
            plaintext=plaintext.hex(),
        )
        return sent["type"], bytes.fromhex(sent["body"])

    def group_decrypt(self, sender: Address, data: bytes) -> bytes:
        received = self.driver.call(
            "group_decrypt", name=self.name, peer=_peer(sender), body=data.hex()
        )
        return bytes.fromhex(received["plaintext"])


def libsignal_fingerprint(
    driver: Driver,
    lib: str,
    version: int,
    local: tuple[bytes, bytes],
    remote: tuple[bytes, bytes],
    scanned: bytes | None = None,
) -> dict[str, Any]:
    """libsignal's Fingerprint.new(5200, version, ...) for (identifier, raw identity key) pairs.

    Answers ``display``, ``scannable`` (bytes) and, given ``scanned``,
    ``matches``: libsignal's ScannableFingerprint.compare.
    """
    request: dict[str, Any] = {
        "lib": lib,
        "version": version,
        "local_id": local[0].hex(),
        "local_key": encoded(local[1]),
        "remote_id": remote[0].hex(),
        "remote_key": encoded(remote[1]),
    }
    if scanned is not None:
        request["scanned"] = scanned.hex()
    answer = driver.call("fingerprint", **request)
    answer["scannable"] = bytes.fromhex(answer["scannable"])
    return answer


def _uuid(distribution_id: bytes) -> str:
    """A distribution id as libsignal's JavaScript API takes it: UUID text."""
    return str(uuid.UUID(bytes=distribution_id))


def _peer(address: Address) -> dict[str, Any]:
    return {"name": address.user, "device_id": address.device}
