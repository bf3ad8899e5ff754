"""Peer libraries run side by side with ours (README.md "Performance", "Peers").

Two peers, installed with the ``bench`` extra:

* Syndace's ``x3dh`` + ``doubleratchet`` (+ ``xeddsa``): the same protocol
  family on the same runtime (pure Python on pyca). Configured like our
  ``signal-v3`` profile for a like-with-like comparison: X3DH over
  Curve25519 with SHA-256, HKDF root chain, HMAC message chain, AES-256-CBC
  + HMAC-SHA256 messages. Set-up is measured with the pre-key pool a user
  gets by default (100 keys, refilled after each handshake) and with a pool
  of one, because Syndace's set-up cost grows with the pool.
* ``vodozemac`` (Olm, Rust): not Signal-compatible, but the native speed bar.

A peer that is not installed gives the status "not installed" instead of a
workload, and the run goes on. The peers' APIs are loaded dynamically
(``importlib``) so that this module type-checks with or without them.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Final

from protocol.bench.floor import MESSAGE
from protocol.bench.timing import Run, Workload
from protocol.bench.workloads import Endpoints, burst, ping_pong

NOT_INSTALLED: Final = "not installed"

# Syndace's DoS threshold and skipped-key store, set to our classic limits
# (it refuses a threshold above the store size).
_SYNDACE_MAX_SKIP: Final = 1000
_SYNDACE_MAX_STORED: Final = 2000
_SYNDACE_REALISTIC_POOL: Final = 100  # x3dh.State's default refill target


def _load(*names: str) -> list[Any] | None:
    """The named modules, or None when any is missing."""
    try:
        return [importlib.import_module(name) for name in names]
    except ImportError:
        return None


def _sync(coroutine: Any) -> Any:
    """Run a Syndace coroutine to completion: their API is async but never suspends."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("a peer coroutine suspended")


class _Syndace:
    """Syndace's packages, configured as our signal-v3 profile."""

    def __init__(
        self, x3dh: Any, dr: Any, aead: Any, kdf_hkdf: Any, kdf_hmacs: Any, dh: Any
    ) -> None:
        sha256 = importlib.import_module(
            "doubleratchet.recommended.crypto_provider"
        ).HashFunction.SHA_256
        self.x3dh = x3dh
        self.state_class: Any = type(
            "BenchState",
            (x3dh.State,),
            {
                "_encode_public_key": staticmethod(lambda _format, pub: b"\x05" + pub),
                "_publish_bundle": lambda self, bundle: None,
            },
        )
        self.config = (
            dh.DiffieHellmanRatchet,
            type("RootKdf", (kdf_hkdf.KDF,), _static(sha256, b"WhisperRatchet")),
            type("ChainKdf", (kdf_hmacs.KDF,), _static(sha256, None)),
            b"\x01\x02",
            _SYNDACE_MAX_SKIP,
            _SYNDACE_MAX_STORED,
            type("Aead", (aead.AEAD,), _static(sha256, b"WhisperMessageKeys")),
        )
        self.ratchet_class: Any = type(
            "BenchRatchet",
            (dr.DoubleRatchet,),
            {"_build_associated_data": staticmethod(_syndace_associated_data)},
        )

    def new_state(self, pool: int) -> Any:
        return self.state_class.create(
            self.x3dh.IdentityKeyFormat.CURVE_25519,
            self.x3dh.HashFunction.SHA_256,
            b"WhisperText",
            pre_key_refill_threshold=pool,
            pre_key_refill_target=pool,
        )

    def handshake(self, initiator: Any, responder: Any, bundle: Any) -> tuple[Any, Any]:
        """Active X3DH, first message, passive X3DH, its decryption: two ratchets."""
        secret, ad, header = _sync(initiator.get_shared_secret_active(bundle))
        sender, message = _sync(
            self.ratchet_class.encrypt_initial_message(
                *self.config, secret, bundle.signed_pre_key, MESSAGE, ad
            )
        )
        secret_r, ad_r, spk = _sync(responder.get_shared_secret_passive(header))
        receiver, _ = _sync(
            self.ratchet_class.decrypt_initial_message(
                *self.config, secret_r, spk.priv, message, ad_r
            )
        )
        return sender, receiver


def _static(hash_function: Any, info: bytes | None) -> dict[str, Any]:
    methods: dict[str, Any] = {"_get_hash_function": staticmethod(lambda: hash_function)}
    if info is not None:
        methods["_get_info"] = staticmethod(lambda: info)
    return methods


def _syndace_associated_data(associated_data: bytes, header: Any) -> bytes:
    encoded: bytes = (
        associated_data
        + header.ratchet_pub
        + header.previous_sending_chain_length.to_bytes(8, "big")
        + header.sending_chain_length.to_bytes(8, "big")
    )
    return encoded


class _SyndacePair:
    """Two Syndace ratchets after a handshake and one reply (so the session is acknowledged)."""

    def __init__(self, syndace: _Syndace) -> None:
        responder = syndace.new_state(1)
        self.syndace = syndace
        self.ratchets = list(syndace.handshake(syndace.new_state(1), responder, responder.bundle))
        self.ad = b"\x05" * 66
        self.decrypt(0, self.encrypt(1, MESSAGE))

    def encrypt(self, side: int, plaintext: bytes) -> object:
        return _sync(self.ratchets[side].encrypt_message(plaintext, self.ad))

    def decrypt(self, side: int, message: object) -> bytes:
        plaintext: bytes = _sync(self.ratchets[side].decrypt_message(message, self.ad))
        return plaintext


def _syndace_setup(syndace: _Syndace, key: str, pool: int) -> Workload:
    """Responders with a pool of ``pool`` pre keys are made untimed, one per handshake."""
    initiator = syndace.new_state(1)

    def prepare(units: int) -> Run:
        responders = [syndace.new_state(pool) for _ in range(units)]
        bundles = [responder.bundle for responder in responders]

        def run() -> None:
            for responder, bundle in zip(responders, bundles, strict=True):
                syndace.handshake(initiator, responder, bundle)

        return run

    return Workload(key, prepare)


def _syndace_serialize(syndace: _Syndace, key: str) -> Workload:
    def prepare(units: int) -> Run:
        ratchets = [_SyndacePair(syndace).ratchets[0] for _ in range(units)]

        def run() -> None:
            for ratchet in ratchets:
                text = json.dumps(ratchet.json)
                syndace.ratchet_class.from_json(json.loads(text), *syndace.config)

        return run

    return Workload(key, prepare)


def syndace_serialized_size(skipped: int) -> int | str:
    """Bytes of Syndace's JSON session state, with ``skipped`` stored message keys."""
    syndace = _syndace()
    if syndace is None:
        return NOT_INSTALLED
    pair = _SyndacePair(syndace)
    sent = [pair.encrypt(0, MESSAGE) for _ in range(skipped + 1)]
    pair.decrypt(1, sent[-1])
    return len(json.dumps(pair.ratchets[1].json).encode())


def _syndace() -> _Syndace | None:
    modules = _load(
        "x3dh",
        "doubleratchet",
        "doubleratchet.recommended.aead_aes_hmac",
        "doubleratchet.recommended.kdf_hkdf",
        "doubleratchet.recommended.kdf_separate_hmacs",
        "doubleratchet.recommended.diffie_hellman_ratchet_curve25519",
    )
    return None if modules is None else _Syndace(*modules)


class _OlmPair:
    """Two vodozemac Olm sessions after an outbound/inbound handshake and one reply."""

    def __init__(self, vodozemac: Any) -> None:
        initiator, responder = vodozemac.Account(), vodozemac.Account()
        responder.generate_one_time_keys(1)
        (one_time_key,) = responder.one_time_keys.values()
        outbound = initiator.create_outbound_session(responder.curve25519_key, one_time_key)
        first = outbound.encrypt(MESSAGE).to_pre_key()
        inbound, _ = responder.create_inbound_session(initiator.curve25519_key, first)
        self.sessions = [outbound, inbound]
        self.decrypt(0, self.encrypt(1, MESSAGE))

    def encrypt(self, side: int, plaintext: bytes) -> object:
        return self.sessions[side].encrypt(plaintext)

    def decrypt(self, side: int, message: object) -> bytes:
        plaintext: bytes = self.sessions[side].decrypt(message)
        return plaintext


def _olm_setup(vodozemac: Any, key: str) -> Workload:
    """Olm 3DH: one-time keys are made untimed; Olm has no signed pre-key to verify."""
    initiator = vodozemac.Account()

    def prepare(units: int) -> Run:
        responders = [vodozemac.Account() for _ in range(units)]
        keys = []
        for responder in responders:
            responder.generate_one_time_keys(1)
            keys.append(next(iter(responder.one_time_keys.values())))
            responder.mark_keys_as_published()

        def run() -> None:
            for responder, one_time_key in zip(responders, keys, strict=True):
                outbound = initiator.create_outbound_session(responder.curve25519_key, one_time_key)
                first = outbound.encrypt(MESSAGE).to_pre_key()
                responder.create_inbound_session(initiator.curve25519_key, first)

        return run

    return Workload(key, prepare)


def _megolm(vodozemac: Any, key: str, size: int) -> Workload:
    """Megolm group message encrypt + decrypt: signed per message, vodozemac's media option."""
    frame = bytes(size)

    def prepare(units: int) -> Run:
        outbound = vodozemac.GroupSession()
        inbound = vodozemac.InboundGroupSession(outbound.session_key)

        def run() -> None:
            for _ in range(units):
                inbound.decrypt(outbound.encrypt(frame))

        return run

    return Workload(key, prepare)


def _olm_serialize(vodozemac: Any, key: str) -> Workload:
    pickle_key = bytes(32)

    def prepare(units: int) -> Run:
        sessions = [_OlmPair(vodozemac).sessions[0] for _ in range(units)]

        def run() -> None:
            for session in sessions:
                vodozemac.Session.from_pickle(session.pickle(pickle_key), pickle_key)

        return run

    return Workload(key, prepare)


def olm_serialized_size(skipped: int) -> int | str:
    """Characters of vodozemac's encrypted session pickle, with ``skipped`` stored keys."""
    modules = _load("vodozemac")
    if modules is None:
        return NOT_INSTALLED
    pair = _OlmPair(modules[0])
    sent = [pair.encrypt(0, MESSAGE) for _ in range(skipped + 1)]
    pair.decrypt(1, sent[-1])
    return len(pair.sessions[1].pickle(bytes(32)).encode())


PeerRows = dict[str, Workload | str]


def syndace_rows(burst_length: int) -> PeerRows:
    """Syndace workloads keyed by row kind; statuses where it cannot run one."""
    syndace = _syndace()
    if syndace is None:
        return dict.fromkeys(ROW_KINDS, NOT_INSTALLED)

    def make() -> Endpoints:
        return _SyndacePair(syndace)

    no_frames = "n/a: no frame encryption"
    return {
        "setup": _syndace_setup(syndace, "syndace/setup", _SYNDACE_REALISTIC_POOL),
        "setup-pool-1": _syndace_setup(syndace, "syndace/setup-pool-1", 1),
        "pingpong": ping_pong("syndace/pingpong", make),
        "burst": burst("syndace/burst", make, burst_length),
        "reverse": burst("syndace/reverse", make, burst_length, reverse=True),
        "sframe-1200": no_frames,
        "sframe-50k": no_frames,
        "fanout": "n/a: no group keys",
        "serialize": _syndace_serialize(syndace, "syndace/serialize"),
    }


def vodozemac_rows(burst_length: int) -> PeerRows:
    """vodozemac workloads keyed by row kind; statuses where it cannot run one."""
    modules = _load("vodozemac")
    if modules is None:
        return dict.fromkeys(ROW_KINDS, NOT_INSTALLED)
    vodozemac = modules[0]

    def make() -> Endpoints:
        return _OlmPair(vodozemac)

    return {
        "setup": _olm_setup(vodozemac, "vodozemac/setup"),
        "setup-pool-1": "n/a: no pre-key pool",
        "pingpong": ping_pong("vodozemac/pingpong", make),
        "burst": burst("vodozemac/burst", make, burst_length),
        "reverse": "n/a: Olm keeps 40 skipped keys per chain",
        "sframe-1200": _megolm(vodozemac, "vodozemac/megolm-1200", 1200),
        "sframe-50k": _megolm(vodozemac, "vodozemac/megolm-50k", 50_000),
        "fanout": "n/a: no media keys",
        "serialize": _olm_serialize(vodozemac, "vodozemac/serialize"),
    }


ROW_KINDS: Final = (
    "setup",
    "setup-pool-1",
    "pingpong",
    "burst",
    "reverse",
    "sframe-1200",
    "sframe-50k",
    "fanout",
    "serialize",
)
