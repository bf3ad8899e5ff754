"""The primitive floor of every benchmark row (README.md "Performance", "Floors").

A floor is the cost of the pyca ``cryptography`` calls an operation cannot
avoid, made in the same order and with the same key-object policy as our
implementation, with no protocol logic in between: no parsing, no state, no
checks. Each floor below is a sequence of named steps, and each sequence
says which functions of ours it mirrors; ``ratio = ours / floor`` is then
the price of the protocol logic alone.

Every step calls pyca directly (not ``protocol.primitives``), on fixed
inputs prepared once. The values do not matter to the cost: the curve and
cipher operations run in time independent of the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as pyca_hmac
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from protocol.bench.timing import Run, Workload
from protocol.profiles import Profile

Step = Callable[[], object]

_PRIVATE: Final = bytes(range(32))
_PRIVATE_KEY: Final = X25519PrivateKey.from_private_bytes(_PRIVATE)
_PEER_PUBLIC: Final = X25519PrivateKey.from_private_bytes(bytes(range(1, 33))).public_key()
_PEER_PUBLIC_BYTES: Final = _PEER_PUBLIC.public_bytes_raw()
_KEY32: Final = bytes(range(64, 96))
_NONCE: Final = bytes(12)
_IV: Final = bytes(16)
_AD: Final = bytes(66)  # Encode(IK_A) ‖ Encode(IK_B)
MESSAGE: Final = bytes(100)  # the message size of every messaging row
_HEADER: Final = bytes(40)  # a msgpack header: ratchet key, pn, n


def _x25519_keygen() -> bytes:
    """A ratchet or ephemeral key: 32 drawn bytes, the private key object, its public key."""
    return X25519PrivateKey.from_private_bytes(os.urandom(32)).public_key().public_bytes_raw()


def _x25519_dh() -> bytes:
    """One exchange with a key object already built (X25519KeyPair caches it at keygen)."""
    return _PRIVATE_KEY.exchange(X25519PublicKey.from_public_bytes(_PEER_PUBLIC_BYTES))


def _hkdf(length: int) -> Step:
    return lambda: HKDF(hashes.SHA256(), length, _KEY32, b"info").derive(_KEY32)


def _hmac() -> bytes:
    mac = pyca_hmac.HMAC(_KEY32, hashes.SHA256())
    mac.update(b"\x01")
    return mac.finalize()


def _gcm_seal(plaintext: bytes, ad: bytes) -> Step:
    return lambda: AESGCM(_KEY32).encrypt(_NONCE, plaintext, ad)


def _gcm_open(plaintext: bytes, ad: bytes) -> Step:
    sealed = AESGCM(_KEY32).encrypt(_NONCE, plaintext, ad)
    return lambda: AESGCM(_KEY32).decrypt(_NONCE, sealed, ad)


def _header_subkey() -> AESGCM:
    """The one-header key HKDF-Expand(hk, info ‖ r) of spec/header-encryption.md §2."""
    return AESGCM(HKDFExpand(hashes.SHA256(), 32, b"info" + bytes(16)).derive(_KEY32))


def _header_seal() -> bytes:
    """HENCRYPT: 16 random bytes r, the subkey, AES-256-GCM under the zero nonce."""
    os.urandom(16)
    return _header_subkey().encrypt(_NONCE, _HEADER, b"")


def _header_open(opens: bool) -> Step:
    """HDECRYPT with the right header key, or a trial under the wrong one."""
    key = _header_subkey() if opens else AESGCM(bytes(32))
    sealed = key.encrypt(_NONCE, _HEADER, b"")

    def run() -> None:
        with contextlib.suppress(InvalidTag):
            _header_subkey().decrypt(_NONCE, sealed, b"")

    return run


def _cbc_hmac_seal() -> bytes:
    """libsignal v3 ENCRYPT: PKCS#7, AES-256-CBC, HMAC-SHA256 over IK ‖ IK ‖ message."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(MESSAGE) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_KEY32), modes.CBC(_IV)).encryptor()
    body = encryptor.update(padded) + encryptor.finalize()
    mac = pyca_hmac.HMAC(_KEY32, hashes.SHA256())
    mac.update(_AD + _HEADER + body)
    return body + mac.finalize()[:8]


def _cbc_hmac_open() -> Step:
    """libsignal v3 DECRYPT: the MAC first, then AES-256-CBC and the PKCS#7 check."""
    body = _cbc_hmac_seal()[:-8]

    def run() -> bytes:
        mac = pyca_hmac.HMAC(_KEY32, hashes.SHA256())
        mac.update(_AD + _HEADER + body)
        mac.finalize()
        decryptor = Cipher(algorithms.AES(_KEY32), modes.CBC(_IV)).decryptor()
        padded = decryptor.update(body) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()

    return run


def _ed25519_verify() -> Step:
    """XEdDSA verification costs at least one Ed25519 verification (XEdDSA §2.5)."""
    signing = ed25519.Ed25519PrivateKey.from_private_bytes(_KEY32)
    public = signing.public_key().public_bytes_raw()
    message = b"\x05" + _PEER_PUBLIC_BYTES
    signature = signing.sign(message)
    return lambda: ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, message)


def _frame_key() -> object:
    """derive_frame_key (RFC 9605 §4.4.2): HKDF-Extract, two HKDF-Expand, one AESGCM object."""
    secret = HKDF.extract(hashes.SHA256(), None, _KEY32)
    key = HKDFExpand(hashes.SHA256(), 16, b"SFrame 1.0 Secret key").derive(secret)
    HKDFExpand(hashes.SHA256(), 12, b"SFrame 1.0 Secret salt").derive(secret)
    return AESGCM(key)


def _kem_steps(kem: str | None) -> tuple[Step, Step]:
    """PQXDH's encapsulation and decapsulation: ML-KEM-768, or Kyber1024 through ML-KEM-1024.

    Kyber1024 (kyber1024.py) is ML-KEM-1024 with Kyber's final KDF,
    SHAKE-256(K̄ ‖ SHA3-256(c)), which ``hashlib`` computes: part of the
    primitive, so part of the floor. The private key object is built from
    the seed on every decapsulation, as ``kem_decapsulate`` builds it.
    """
    seed = bytes(64)
    if kem == "Kyber1024":
        private_1024 = mlkem.MLKEM1024PrivateKey.from_seed_bytes(seed)
        public_1024 = private_1024.public_key().public_bytes_raw()
        _, ciphertext_1024 = private_1024.public_key().encapsulate()

        def kyber_kdf(k_bar: bytes, ciphertext: bytes) -> bytes:
            return hashlib.shake_256(k_bar + hashlib.sha3_256(ciphertext).digest()).digest(32)

        def encapsulate_1024() -> object:
            k_bar, ct = mlkem.MLKEM1024PublicKey.from_public_bytes(public_1024).encapsulate()
            return kyber_kdf(k_bar, ct)

        def decapsulate_1024() -> object:
            private = mlkem.MLKEM1024PrivateKey.from_seed_bytes(seed)
            return kyber_kdf(private.decapsulate(ciphertext_1024), ciphertext_1024)

        return encapsulate_1024, decapsulate_1024
    private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    public = private.public_key().public_bytes_raw()
    _, ciphertext = private.public_key().encapsulate()

    def encapsulate() -> object:
        return mlkem.MLKEM768PublicKey.from_public_bytes(public).encapsulate()

    def decapsulate() -> object:
        return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).decapsulate(ciphertext)

    return encapsulate, decapsulate


def _spqr_keygen() -> bytes:
    """SPQR's ``generate``: a drawn 64-byte seed, pyca's ML-KEM-768 KeyGen, the key's bytes."""
    seed = os.urandom(64)
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()


def _hmac_over(size: int) -> Step:
    """HMAC-SHA256 over ``size`` bytes (SPQR's MACs: over the header, or over ct1 ‖ ct2)."""
    data = bytes(size)

    def run() -> bytes:
        mac = pyca_hmac.HMAC(_KEY32, hashes.SHA256())
        mac.update(data)
        return mac.finalize()

    return run


def _spqr_steps() -> dict[str, Step]:
    """SPQR's pyca calls (spqr/chain.py, authenticator.py, states.py, incremental_mlkem768.py)."""
    _, decapsulate_768 = _kem_steps("ML-KEM-768")
    label_and_epoch = 35 + 8
    return {
        "spqr_chain_start": _hkdf(96),  # Chain::new
        "spqr_add_epoch": _hkdf(96),  # Chain::add_epoch
        "spqr_chain_key": _hkdf(64),  # next_key_internal: next key ‖ message key
        "spqr_auth_update": _hkdf(64),  # Authenticator::new and ::update
        "spqr_epoch_secret": _hkdf(32),  # the SCKA key of an epoch
        "spqr_mac_hdr": _hmac_over(label_and_epoch + 64),  # mac_hdr and verify_hdr
        "spqr_mac_ct": _hmac_over(label_and_epoch + 960 + 128),  # mac_ct and verify_ct
        "spqr_keygen": _spqr_keygen,
        "spqr_decaps": decapsulate_768,  # decaps of ct1 ‖ ct2 (pyca)
    }


def primitive_steps(profile: Profile) -> dict[str, Step]:
    """Every named step, with the message AEAD and KDF lengths of ``profile``."""
    header_encryption = profile.headers.encrypted
    encapsulate, decapsulate = _kem_steps(profile.kem)
    steps: dict[str, Step] = {
        "keygen": _x25519_keygen,
        "dh": _x25519_dh,
        # curve25519.is_torsion_free: X25519(5q − 1, EK_A), a key object built once.
        "torsion_check": _x25519_dh,
        "hmac": _hmac,
        "verify": _ed25519_verify(),
        "encaps": encapsulate,
        "decaps": decapsulate,
        "kdf_sk": _hkdf(profile.agreement.sk_len),
        "kdf_initial": _hkdf(96 if header_encryption else 32),
        "kdf_rk": _hkdf(96 if header_encryption else 64),
        "header_seal": _header_seal,
        "header_open": _header_open(opens=True),
        "header_open_fails": _header_open(opens=False),
        "media_base_key": lambda: os.urandom(32),  # Nh bytes of the default suite
        "frame_key": _frame_key,
        **_spqr_steps(),
    }
    if profile.cipher.name == "AES-256-GCM":
        steps["message_keys"] = _hkdf(44)
        steps["seal"] = _gcm_seal(MESSAGE, _AD + _HEADER)
        steps["open"] = _gcm_open(MESSAGE, _AD + _HEADER)
    else:
        steps["message_keys"] = _hkdf(80)
        steps["seal"] = _cbc_hmac_seal
        steps["open"] = _cbc_hmac_open()
    return steps


def sequence_workload(
    key: str, profile: Profile, sequence: Sequence[str], ops: int = 1, *, per_unit: bool = False
) -> Workload:
    """A floor workload performing ``sequence`` once per operation (or once per unit of ``ops``)."""
    steps = primitive_steps(profile)
    calls = [steps[name] for name in sequence]
    repeats = 1 if per_unit else ops

    def prepare(units: int) -> Run:
        def run() -> None:
            for _ in range(units * repeats):
                for call in calls:
                    call()

        return run

    return Workload(key, prepare, ops)
