"""The committed X3DH/PQXDH vectors verify, regenerate byte for byte, and catch any change.

The signal-v4 file (``protocol/vectors/handshake_v4.py``) is checked the same way.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocol.vectors import INDEX, handshake_v4, verify_file
from protocol.vectors.common import dump, mutate
from protocol.vectors.handshake import generate

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
FILES = ["x3dh_x25519_sha256_test.json", "pqxdh_x25519_mlkem768_sha256_test.json"]
V4_FILE = handshake_v4.FILE


def entry_for(folder: Path, name: str) -> dict[str, Any]:
    entries = json.loads((folder / INDEX).read_text())["files"]
    found: dict[str, Any] = next(e for e in entries if e["file"] == name)
    return found


@pytest.mark.parametrize("name", [*FILES, V4_FILE])
def test_committed_handshake_vectors_verify_against_the_library(name: str) -> None:
    assert verify_file(VECTORS, entry_for(VECTORS, name)) == []


def test_generator_reproduces_the_committed_files_byte_for_byte() -> None:
    generated = {vector.name: dump(vector.document) for vector in generate()}
    assert sorted(generated) == sorted(FILES)
    for name, data in generated.items():
        assert data == (VECTORS / name).read_bytes(), name


def test_signal_v4_generator_reproduces_the_committed_file_byte_for_byte() -> None:
    (vector,) = handshake_v4.generate()
    assert dump(vector.document) == (VECTORS / V4_FILE).read_bytes()


@pytest.mark.parametrize(
    ("name", "group", "test", "path"),
    [
        (FILES[0], 0, 0, ("outputs", "sk")),
        (FILES[0], 1, 2, ("bundle", "spk_sig")),
        (FILES[1], 0, 4, ("intermediate", "kem_ss")),
        (FILES[1], 0, 9, ("events", 0, "initial_message")),
        (V4_FILE, 0, 0, ("inputs", "initiator", "kem_encaps_m")),
        (V4_FILE, 0, 1, ("intermediate", "kem_k_bar")),
        (V4_FILE, 0, 2, ("outputs", "spqr_auth_key")),
        (V4_FILE, 0, 3, ("outputs", "rk")),
        (V4_FILE, 0, 0, ("intermediate", "km")),
    ],
)
def test_one_changed_byte_fails_verification_naming_the_tcid(
    tmp_path: Path, name: str, group: int, test: int, path: tuple[Any, ...]
) -> None:
    shutil.copytree(VECTORS, tmp_path, dirs_exist_ok=True)
    document = json.loads((tmp_path / name).read_text())
    case = document["testGroups"][group]["tests"][test]
    node = case
    for key in path[:-1]:
        node = node[key]
    value = node[path[-1]]
    node[path[-1]] = value[:-2] + format(int(value[-2:], 16) ^ 0x01, "02x")
    data = dump(document)
    (tmp_path / name).write_bytes(data)
    entry = {**entry_for(tmp_path, name), "sha256": hashlib.sha256(data).hexdigest()}

    failures = verify_file(tmp_path, entry)

    assert failures
    assert all(line.startswith(f"{name}#{case['tcId']}:") for line in failures)


def _private(private_hex: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))


@pytest.mark.parametrize("flag", ["NonCanonicalEphemeral", "TorsionTwinEphemeral"])
def test_a_mutated_signal_v4_base_key_keeps_the_dh_outputs_so_only_the_check_refuses_it(
    flag: str,
) -> None:
    """X25519 gives the mutated EK_A the same DH3 (RFC 7748 masks bit 255; a torsion twin
    differs by a point that the clamped scalar kills): the base-key check is what refuses it."""
    document = json.loads((VECTORS / V4_FILE).read_text())
    test = next(t for t in document["testGroups"][0]["tests"] if t["flags"] == [flag])
    ek_pub = _private(test["inputs"]["initiator"]["ek_priv"]).public_key().public_bytes_raw()
    mutated = mutate(ek_pub, {k: v for k, v in test["mutation"].items() if k != "field"})
    spk = _private(test["inputs"]["responder"]["spk_priv"])

    dh3 = spk.exchange(X25519PublicKey.from_public_bytes(mutated))

    assert mutated != ek_pub
    assert dh3.hex() == test["intermediate"]["dh3"]
    assert [event["result"] for event in test["events"]] == ["INVALID_PUBLIC_KEY", "ok"]
