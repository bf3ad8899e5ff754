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
  keys produce next (KDF_CK and the AEAD key expansion);
* plaintexts of messages and frames.

File format: JSON ``{"format": "e2ee-demo-secrets-v1", "secrets": {label: [hex, ...]}}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

from protocol.errors import MalformedMessage
from protocol.profiles import Profile
from protocol.randomness import RecordingRandom
from protocol.ratchet import RatchetState, kdf_ck, message_keys
from protocol.secrecy import secret_fields

FORMAT: Final = "e2ee-demo-secrets-v1"
# Draws whose values are sent in the clear on purpose.
PUBLIC_DRAWS: Final = frozenset({"relay_message_id", "header_nonce", "registration_id"})


def _named_fields(value: object) -> list[tuple[str, object]] | None:
    """The (name, value) pairs of a dataclass or named tuple; None for anything else."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return list(zip(value._fields, value, strict=True))
    return None


def secrets_in(value: object, secret: str = "") -> Iterator[tuple[str, bytes]]:
    """Every (field name, bytes) under ``value`` held in a field its type marks secret.

    The marks are on the types (protocol/secrecy.py): a new secret field is
    found as soon as it is marked, or typed as a key, with no list here.
    """
    named = _named_fields(value)
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


def next_message_keys(profile: Profile, ck: bytes) -> Iterator[tuple[str, bytes]]:
    """The message key a chain key produces next, and its AEAD key and nonce."""
    _, mk = kdf_ck(profile, ck)
    keys = message_keys(profile, mk)
    yield "mk", mk
    yield "message_enc_key", keys.enc_key
    yield "message_nonce", keys.nonce


class SecretLog:
    """Secrets seen during a run, by label."""

    def __init__(self) -> None:
        self._secrets: dict[str, set[bytes]] = {}

    def add(self, label: str, value: bytes) -> None:
        if value:
            self._secrets.setdefault(label, set()).add(value)

    def add_draws(self, rng: RecordingRandom) -> None:
        for label, value in rng.draws:
            if label not in PUBLIC_DRAWS:
                self.add(label, value)

    def add_state(self, value: object) -> None:
        """Secret fields of any state, and for a ratchet state its next message keys."""
        for name, secret in secrets_in(value):
            self.add(name, secret)
        for state in _ratchet_states(value):
            for ck in (state.cks, state.ckr):
                if ck is not None:
                    for name, secret in next_message_keys(state.profile, ck):
                        self.add(name, secret)

    def items(self) -> Iterator[tuple[str, bytes]]:
        for label, values in sorted(self._secrets.items()):
            for value in sorted(values):
                yield label, value

    def __len__(self) -> int:
        return sum(len(values) for values in self._secrets.values())

    def write(self, path: Path | str) -> None:
        secrets = {
            label: sorted(v.hex() for v in values) for label, values in self._secrets.items()
        }
        data = json.dumps({"format": FORMAT, "secrets": secrets}, sort_keys=True).encode()
        # Only the owner may read the dump: it opens every message of the run.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(data)

    def __repr__(self) -> str:
        return f"SecretLog(<{len(self)} secrets redacted>)"


def _ratchet_states(value: object) -> Iterator[RatchetState]:
    named = _named_fields(value)
    if isinstance(value, RatchetState):
        yield value
    elif named is not None:
        for _, item in named:
            yield from _ratchet_states(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _ratchet_states(item)


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
