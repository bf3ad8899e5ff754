"""Which fields hold secrets, marked on the types themselves (spec/security.md §2.2).

A field is secret when its type says so:

* a dataclass field declared ``field(metadata=SECRET)``;
* a field annotated ``Annotated[T, SECRET]`` (named tuples, which have no
  field metadata, mark their fields this way);
* a field whose type is a *secret type*: a class that sets
  ``__secret__ = True``, as the typed root, chain, header and message keys
  do, so a key-typed field is secret without further marking.

The leak scan (protocol/audit/secrets.py) and the repr test
(tests/security/test_reprs.py) find secrets from these marks alone; there is
no list of class or field names to keep in step.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Final

SECRET: Final[Mapping[str, object]] = types.MappingProxyType({"secret": True})
"""``field(metadata=SECRET)`` or ``Annotated[T, SECRET]``: the field holds a secret."""


def is_secret_type(hint: Any) -> bool:
    """Whether ``hint`` is, or contains (``X | None``, ``tuple[X, ...]``), a secret type."""
    if isinstance(hint, type):
        return bool(getattr(hint, "__secret__", False))
    return any(is_secret_type(arg) for arg in typing.get_args(hint))


def _marked(hint: Any) -> bool:
    if typing.get_origin(hint) is typing.Annotated:
        return any(extra is SECRET for extra in hint.__metadata__)
    return False


def _fields(cls: type) -> list[tuple[str, Any, Mapping[str, object]]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    if dataclasses.is_dataclass(cls):
        return [(f.name, hints.get(f.name), f.metadata) for f in dataclasses.fields(cls)]
    names: tuple[str, ...] = getattr(cls, "_fields", ())
    return [(name, hints.get(name), {}) for name in names]


_SECRET_FIELDS: dict[type, frozenset[str]] = {}


def secret_fields(cls: type) -> frozenset[str]:
    """The names of the secret fields of a dataclass or named tuple ``cls`` (cached per class)."""
    known = _SECRET_FIELDS.get(cls)
    if known is not None:
        return known
    found: frozenset[str] = frozenset()
    if dataclasses.is_dataclass(cls) or hasattr(cls, "_fields"):
        found = frozenset(
            name
            for name, hint, metadata in _fields(cls)
            if metadata.get("secret") or _marked(hint) or is_secret_type(hint)
        )
    _SECRET_FIELDS[cls] = found
    return found


def holds_secrets(cls: type) -> bool:
    """Whether ``cls`` is a secret type or has a secret field (so its repr must redact)."""
    return is_secret_type(cls) or bool(secret_fields(cls))


def named_fields(value: object) -> list[tuple[str, object]] | None:
    """The (name, value) pairs of a dataclass or named tuple instance; None for anything else.

    The walkers that look for marked fields in live objects (the audit's
    secrets dump, the leak scan's harness) read records of both kinds
    through this.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return list(zip(value._fields, value, strict=True))
    return None
