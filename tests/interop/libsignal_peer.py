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

from protocol.bundle import BundleKemPrekey, BundleOneTimePrekey, PrekeyBundle
from protocol.encoding import KEM_TYPE
from protocol.protobuf import Schema, read_fields
from protocol.session import Address, SessionManager
from protocol.spqr.messages import Message, decode_message
from protocol.wire import MessageKind

HERE: Final = Path(__file__).resolve().parent
CACHE: Final = HERE.parents[1] / ".cache" / "libsignal-driver"
PINNED: Final = ("package.json", "package-lock.json")

# libsignal's CiphertextMessageType (rust/protocol/src/protocol.rs): Whisper = 2,
# PreKey = 3. Signal's envelope numbers them CIPHERTEXT = 1, PREKEY_BUNDLE = 3
# (spec/wire.md §3.5); the driver speaks libsignal's numbering.
KIND_OF_TYPE: Final[dict[int, MessageKind]] = {2: "message", 3: "prekey"}
TYPE_OF_KIND: Final = {kind: number for number, kind in KIND_OF_TYPE.items()}


# libsignal's wire.proto, session version 4 (rust/protocol/src/proto/wire.proto):
# PreKeySignalMessage fields 1-8 and SignalMessage fields 1-6 (5 is pq_ratchet).
PREKEY_MESSAGE: Final[Schema] = {
    1: "varint",
    2: "bytes",
    3: "bytes",
    4: "bytes",
    5: "varint",
    6: "varint",
    7: "varint",
    8: "bytes",
}
SIGNAL_MESSAGE: Final[Schema] = {
    1: "bytes",
    2: "varint",
    3: "varint",
    4: "bytes",
    5: "bytes",
    6: "bytes",
}
MAC_LEN: Final = 8


def signal_message(kind: MessageKind, body: bytes) -> bytes:
    """The SignalMessage (version byte ‖ protobuf ‖ MAC) a v4 message carries, unwrapped."""
    if kind == "prekey":
        return bytes(read_fields(body[1:], PREKEY_MESSAGE)[4])
    return body


def pq_ratchet_field(kind: MessageKind, body: bytes) -> bytes:
    """Field 5 (pq_ratchet) of a v4 message, read with our protobuf reader."""
    inner = signal_message(kind, body)
    return bytes(read_fields(inner[1:-MAC_LEN], SIGNAL_MESSAGE)[5])


def spqr_message(kind: MessageKind, body: bytes) -> Message:
    """The SPQR message in field 5: 0x01 ‖ varint epoch ‖ varint index ‖ type [‖ chunk]."""
    return decode_message(pq_ratchet_field(kind, body))


REQUIRE: Final = "E2EE_REQUIRE_LIBSIGNAL"
"""Set to 1 (as .ci/run does) to make a missing libsignal a failure instead of a skip."""


def unavailable(reason: str) -> None:
    """Skip the live tests for ``reason``, or fail them when REQUIRE is set."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE}=1 requires the live libsignal tests")
    pytest.skip(reason)


class LibsignalError(Exception):
    """libsignal (or the driver) refused a request; ``message`` is libsignal's text.

    ``code`` is libsignal's error code (``ErrorCode``), or None when the
    refusal carried none.
    """

    def __init__(self, name: str, message: str, code: str | None = None) -> None:
        super().__init__(f"{name}: {message}")
        self.name, self.message, self.code = name, message, code


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
            raise LibsignalError(answer["error"], answer["message"], answer.get("code"))
        return answer

    def bench(self, lib: str, workload: str, units: int, length: int = 1) -> dict[str, int]:
        """libsignal talking to itself in the driver: times (ns), ``ops`` and record bytes.

        ``workload`` is ``setup``, ``pingpong`` or ``burst`` (of ``length`` per
        unit), counted as protocol/bench/workloads.py counts ours; the time is
        taken around libsignal's calls inside the Node process.
        """
        answer = self.call("bench", lib=lib, workload=workload, units=units, length=length)
        return {key: int(answer[key]) for key in ("elapsed_ns", "cpu_ns", "ops", "record_bytes")}

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
    one_time, kyber = bundle.one_time_prekey, bundle.kem_prekey
    return {
        "registration_id": manager.registration_id,
        "device_id": manager.address.device,
        "identity_key": encoded(bundle.identity_key),
        "signed_prekey_id": bundle.signed_prekey_id,
        "signed_prekey": encoded(bundle.signed_prekey),
        "signed_prekey_signature": bundle.signed_prekey_signature.hex(),
        "prekey_id": None if one_time is None else one_time.prekey_id,
        "prekey": None if one_time is None else encoded(one_time.public),
        "kyber_prekey_id": None if kyber is None else kyber.prekey_id,
        "kyber_prekey": None if kyber is None else kyber.encoded().hex(),
        "kyber_prekey_signature": None if kyber is None else kyber.signature.hex(),
    }


def _kem_prekey(served: dict[str, Any]) -> BundleKemPrekey | None:
    """The Kyber prekey of a served bundle, named by its key type byte (0x08: Kyber1024)."""
    if served["kyber_prekey_id"] is None:
        return None
    encoded_key = bytes.fromhex(served["kyber_prekey"])
    kem = next(name for name, number in KEM_TYPE.items() if number == encoded_key[0])
    return BundleKemPrekey(
        kem,
        served["kyber_prekey_id"],
        encoded_key[1:],
        bytes.fromhex(served["kyber_prekey_signature"]),
    )


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

    def bundle(
        self,
        signed_prekey_id: int,
        prekey_id: int | None,
        kyber_prekey_id: int | None = None,
        *,
        kyber_last_resort: bool = True,
    ) -> PrekeyBundle:
        """A fresh bundle of this device, as our PrekeyBundle (0.103.0 needs a Kyber prekey)."""
        served = self.driver.call(
            "bundle",
            name=self.name,
            signed_prekey_id=signed_prekey_id,
            prekey_id=prekey_id,
            kyber_prekey_id=kyber_prekey_id,
            kyber_last_resort=kyber_last_resort,
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
            kem_prekey=_kem_prekey(served),
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

    def session_record(self, peer: Address) -> bytes:
        """The serialized SessionRecord libsignal's session store holds for ``peer``."""
        return bytes.fromhex(
            self.driver.call("session_record", name=self.name, peer=_peer(peer))["record"]
        )

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
