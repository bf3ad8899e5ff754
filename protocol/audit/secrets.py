"""The demo's secrets dump, which the audit scans the capture for (spec/relay.md §9.2).

Only ``e2ee demo --secrets-out FILE`` writes one: it holds every private key
and every derived secret of the run, so it exists to prove a negative (none
of it is in what the relay saw) and must never be kept.

``SecretLog`` collects secrets from three places:

* every labelled random draw of every device (private keys, KEM seeds,
  XEdDSA nonces, media base keys, frame payloads), except draws that are
  public by design (``PUBLIC_DRAWS``);
* snapshots of state: every ``bytes`` in a field whose type marks it secret
  (protocol/secrecy.py: rk, cks, ckr, hks, …, a MediaKey's base_key; by type,
  because a name alone misleads: the ``base_key`` of a prekey message is the
  public EK_A, the ``base_key`` of a MediaKey is secret), found by walking
  the frozen dataclasses and named tuples, plus the message keys the chain
  keys produce next (KDF_CK and the AEAD key expansion), and in signal-v4
  what SPQR's states imply (``derived``: SPQR message keys, the Braid's
  shared and epoch secrets, the PQXDH KEM decapsulations);
* plaintexts of messages and frames.

File format: JSON ``{"format": "e2ee-demo-secrets-v1", "secrets": {label: [hex, ...]}}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final, TypeVar

from protocol.audit.derived import (
    kem_decapsulations,
    next_message_keys,
    spqr_epoch_secrets,
    spqr_next_keys,
)
from protocol.errors import MalformedMessage
from protocol.initial_data import InitialData
from protocol.profiles import Profile
from protocol.randomness import RecordingRandom
from protocol.ratchet import RatchetState
from protocol.secrecy import named_fields, secret_fields
from protocol.session.records import SessionState
from protocol.spqr.pq_ratchet import PqRatchet

FORMAT: Final = "e2ee-demo-secrets-v1"
# Draws whose values are sent in the clear on purpose.
PUBLIC_DRAWS: Final = frozenset({"relay_message_id", "header_nonce", "registration_id"})
KEM_PREKEY_SEED: Final = "kem_prekey_seed"
"""The label (before its ``[n]``) of the draws that are KEM prekeys' private seeds."""
T = TypeVar("T")


def secrets_in(value: object, secret: str = "") -> Iterator[tuple[str, bytes]]:
    """Every (field name, bytes) under ``value`` held in a field its type marks secret.

    The marks are on the types (protocol/secrecy.py): a new secret field is
    found as soon as it is marked, or typed as a key, with no list here.
    """
    named = named_fields(value)
    if isinstance(value, bytes):
        if secret:
            yield secret, value
    elif named is not None:
        listed = secret_fields(type(value))
        for name, item in named:
            yield from secrets_in(item, name if name in listed else "")
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from secrets_in(item, secret)
    elif isinstance(value, tuple | list | frozenset):
        for item in value:
            yield from secrets_in(item, secret)


class SecretLog:
    """Secrets seen during a run, by label."""

    def __init__(self) -> None:
        self._secrets: dict[str, set[bytes]] = {}
        self._initial: dict[tuple[str, InitialData], Profile] = {}

    def add(self, label: str, value: bytes) -> None:
        if value:
            self._secrets.setdefault(label, set()).add(value)

    def add_draws(self, rng: RecordingRandom) -> None:
        for label, value in rng.draws:
            if label not in PUBLIC_DRAWS:
                self.add(label, value)

    def add_state(self, value: object) -> None:
        """Secret fields of any state, and what its ratchets yield next (``derived``)."""
        for name, secret in secrets_in(value):
            self.add(name, secret)
        spqr_keys: list[bytes] = []
        for pq in _instances(value, PqRatchet):
            spqr_keys += spqr_next_keys(pq.chain)
            for name, secret in spqr_epoch_secrets(pq.braid):
                self.add(name, secret)
        for key in spqr_keys:
            self.add("spqr_message_key", key)
        for state in _instances(value, RatchetState):
            salts: list[bytes | None] = [None]
            if state.profile.spqr:
                salts += spqr_keys
            for ck in (state.cks, state.ckr):
                if ck is not None:
                    for name, secret in next_message_keys(state.profile, ck, salts):
                        self.add(name, secret)
        for session in _instances(value, SessionState):
            if session.pending is not None:
                self._initial[(session.profile.name, session.pending.initial)] = session.profile

    def _all(self) -> dict[str, set[bytes]]:
        """What was added, and the KEM decapsulations of the initial messages seen."""
        seeds = [
            seed
            for label, values in self._secrets.items()
            if label.startswith(KEM_PREKEY_SEED)
            for seed in values
        ]
        initial = [(profile, data) for (_, data), profile in self._initial.items()]
        everything = dict(self._secrets)
        decapsulated = set(kem_decapsulations(initial, seeds))
        if decapsulated:
            everything["pqxdh_kem_decapsulation"] = decapsulated
        return everything

    def items(self) -> Iterator[tuple[str, bytes]]:
        for label, values in sorted(self._all().items()):
            for value in sorted(values):
                yield label, value

    def __len__(self) -> int:
        return sum(len(values) for values in self._secrets.values())

    def write(self, path: Path | str) -> None:
        secrets = {label: sorted(v.hex() for v in values) for label, values in self._all().items()}
        data = json.dumps({"format": FORMAT, "secrets": secrets}, sort_keys=True).encode()
        # Only the owner may read the dump: it opens every message of the run.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(data)

    def __repr__(self) -> str:
        return f"SecretLog(<{len(self)} secrets redacted>)"


def _instances(value: object, cls: type[T]) -> Iterator[T]:
    """Every ``cls`` under ``value``, through dataclasses, named tuples, tuples and lists."""
    named = named_fields(value)
    if isinstance(value, cls):
        yield value
    elif named is not None:
        for _, item in named:
            yield from _instances(item, cls)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _instances(item, cls)


def read_secrets(path: Path | str) -> list[tuple[str, bytes]]:
    """Parse a secrets dump strictly."""
    try:
        document = json.loads(Path(path).read_text())
        if document["format"] != FORMAT or set(document) != {"format", "secrets"}:
            raise MalformedMessage("not a demo secrets dump")
        return [
            (str(label), bytes.fromhex(value))
            for label, values in document["secrets"].items()
            for value in _strings(values)
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MalformedMessage("not a demo secrets dump") from None


def _strings(values: Iterable[object]) -> Iterator[str]:
    for value in values:
        if not isinstance(value, str):
            raise MalformedMessage("secrets are hex strings")
        yield value
