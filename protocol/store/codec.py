"""Compiled encoders and decoders of stored values (spec/storage.md §3, §4 step 4).

``encoder(hint)`` and ``decoder(hint)`` build, once per type and from the
schema of protocol/store/schema.py, the function that turns a value of that
type into its msgpack value (the table of spec/storage.md §3) and the one that
turns a msgpack value back into a value, refusing anything else as
STATE_CORRUPT. A record's functions are made of its fields' functions, so a
record is walked once, with no look-up of type hints on the way.

Strictness is structural. A decoder accepts exactly the msgpack values its
encoder writes: a map holds the stored names in their order (an added field
absent, or present with a value other than its default), an int is not a
bool, a literal is one of its values, a profile is a known name, a key
type's bytes are the ones it gives back, a map of pairs has no repeated key.
So ``encode(decode(raw)) == raw`` for every ``raw`` a decoder accepts; what
is left of canonicity, that the bytes are msgpack's shortest packing of
``raw`` with no repeated map key, protocol/store/format.py checks on the
bytes themselves.
"""

from __future__ import annotations

import functools
import operator
import types
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

from protocol.errors import InvalidArgument, ProtocolError, StateCorrupt
from protocol.profiles import Profile, get_profile
from protocol.store.schema import is_record, stored_fields, stores_as_bytes

Encode = Callable[[Any], object]
"""A value of one stored type to its msgpack value."""
Decode = Callable[[object], Any]
"""A msgpack value back to a value of one stored type, or STATE_CORRUPT."""

_NONE: Final = type(None)
# ``None`` stays ``None`` inside a generic's arguments (``dict[K, None]``).
_SCALARS: Final[tuple[object, ...]] = (bytes, str, int, bool, float, _NONE, None)
# What a record's own checks (key lengths, matching halves) raise when they refuse.
_REFUSALS: Final = (ValueError, TypeError, ProtocolError)


def corrupt(what: str) -> StateCorrupt:
    return StateCorrupt(f"serialized state: {what}")


def _same(value: object) -> object:
    """The encoder of a scalar or a literal: its msgpack value is itself."""
    return value


def _optional_of(args: tuple[Any, ...]) -> Any:
    """The X of ``X | None``: the one union the format has (spec/storage.md §3, "X or nil")."""
    options = [a for a in args if a is not _NONE]
    if len(options) != 1 or len(args) != 2:
        raise InvalidArgument(f"a stored union is one type or nil, not {args!r}")
    return options[0]


# --- Encoders (spec/storage.md §3) -----------------------------------------------------


@functools.cache
def encoder(hint: Any) -> Encode:
    """Build the encoder of the stored type ``hint``, once per type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _optional_encoder(encoder(_optional_of(args)))
    if origin is typing.Literal or hint in _SCALARS:
        return _same
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _array_encoder(encoder(args[0]))
        return _array_encoder(*(encoder(a) for a in args))
    if origin in (dict, Mapping):
        return _pairs_encoder(encoder(args[0]), encoder(args[1]))
    if hint is Profile:
        return _profile_name
    if isinstance(hint, type) and stores_as_bytes(hint):
        # A key type that is a bytes subclass (protocol/ratchet_keys.py) is
        # already the bin it is stored as; msgpack packs it as one.
        return _same if issubclass(hint, bytes) else _key_bytes
    if is_record(hint):
        return _map_encoder(hint)
    raise InvalidArgument(f"no encoder for {hint!r}")


def _optional_encoder(encode: Encode) -> Encode:
    if encode is _same:
        return _same

    def encode_optional(value: object) -> object:
        return None if value is None else encode(value)

    return encode_optional


def _array_encoder(*encoders: Encode) -> Encode:
    """An array: of one item type (one encoder), or a fixed tuple (one encoder per item)."""
    if all(e is _same for e in encoders):
        return list
    if len(encoders) == 1:
        (encode,) = encoders
        return lambda value: list(map(encode, value))
    return lambda value: [encode(item) for encode, item in zip(encoders, value, strict=True)]


def _pairs_encoder(encode_key: Encode, encode_value: Encode) -> Encode:
    """A dict as an array of ``[key, value]`` pairs, in insertion order."""

    def encode_pairs(value: Mapping[object, object]) -> object:
        if not value:  # most messages leave no skipped key: no pair to build
            return []
        return [[encode_key(k), encode_value(v)] for k, v in value.items()]

    return encode_pairs


_profile_name: Final[Encode] = operator.attrgetter("name")
_key_bytes: Final[Encode] = operator.methodcaller("stored_bytes")


def _map_encoder(cls: type) -> Encode:
    """A record as the map of its stored fields, in order; an added field at its default omitted.

    Note that the encoder is generated once per record class as the source
    of one function (``encoder_source`` shows it), as ``dataclasses``
    generates ``__init__``: a dict display of the stored names in order,
    each read as an attribute, so writing a record costs no loop over its
    fields. The source holds only the schema's stored names (as literals),
    attribute names (identifiers of the class) and the fields' encoders.
    """
    source, namespace = encoder_source(cls)
    exec(source, namespace)
    encode: Encode = namespace["encode_record"]
    return encode


def encoder_source(cls: type) -> tuple[str, dict[str, Any]]:
    """The generated encoder of a record class: its source and the names it uses."""
    namespace: dict[str, Any] = {}
    display: list[str] = []
    statements: list[str] = []
    for i, f in enumerate(stored_fields(cls)):
        if not f.attribute.isidentifier():
            raise InvalidArgument(f"{cls.__name__}: field {f.attribute!r} is not an identifier")
        expression = f"value.{f.attribute}"
        encode = _shared_items_encoder(f.hint) if f.shared_items else encoder(f.hint)
        if encode is not _same:
            namespace[f"encode_{i}"] = encode
            expression = f"encode_{i}({expression})"
        if f.added:
            namespace[f"default_{i}"] = f.default
            statements += [
                f"    if not value.{f.attribute} == default_{i}:",
                f"        out[{f.name!r}] = {expression}",
            ]
        elif statements:
            statements.append(f"    out[{f.name!r}] = {expression}")
        else:
            display.append(f"{f.name!r}: {expression}")
    lines = ["def encode_record(value):", f"    out = {{{', '.join(display)}}}"]
    source = "\n".join([*lines, *statements, "    return out", ""])
    return source, namespace


def _shared_items_encoder(hint: Any) -> Encode:
    """An array of records shared between successive records, each item encoded once.

    Note that an item's encoded value is cached by identity: a session
    record's archived sessions are the same frozen objects from one write of
    the record to the next (``SessionRecord.with_state``, ``replaced_by``), so
    a write encodes only the current session instead of every archived one
    again (40 in signal-v4). This is safe because the items are frozen
    records whose values are never changed in place, and an entry is used
    only for the very object it was made from. The cache holds its items
    weakly: an entry goes when its item is freed, so an archived session's
    keys (its skipped message keys, once used or dropped) are never kept in
    memory longer than the state that held them, and no other object can
    take the freed item's ``id`` while its entry exists. The encoded values
    are read, never changed, by the packer.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is not tuple or len(args) != 2 or args[1] is not Ellipsis or not is_record(args[0]):
        raise InvalidArgument(f"shared items are an array of records, not {hint!r}")
    if not hasattr(args[0], "__weakref__"):
        raise InvalidArgument(f"shared items must allow weak references: {args[0].__name__}")
    return SharedItemsEncoder(encoder(args[0]))


class SharedItemsEncoder:
    """The encoder ``_shared_items_encoder`` builds: items encoded once, held weakly by identity."""

    def __init__(self, encode_item: Encode) -> None:
        self._encode_item = encode_item
        self.cache: dict[int, tuple[weakref.ref[object], object]] = {}

    def _forget(self, ref: weakref.ref[object], key: int) -> None:
        """Drop the entry of a freed item (a weak reference's callback)."""
        entry = self.cache.get(key)
        if entry is not None and entry[0] is ref:
            del self.cache[key]

    def __call__(self, value: tuple[object, ...]) -> list[object]:
        out = []
        for item in value:
            key = id(item)
            entry = self.cache.get(key)
            if entry is None or entry[0]() is not item:
                ref = weakref.ref(item, functools.partial(self._forget, key=key))
                entry = self.cache[key] = (ref, self._encode_item(item))
            out.append(entry[1])
        return out


# --- Decoders (spec/storage.md §4 step 4) ----------------------------------------------------


@functools.cache
def decoder(hint: Any) -> Decode:
    """Build the strict decoder of the stored type ``hint``, once per type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _optional_decoder(decoder(_optional_of(args)))
    if origin is typing.Literal:
        return _literal_decoder(args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _array_decoder(decoder(args[0]))
        return _tuple_decoder(tuple(decoder(a) for a in args))
    if origin in (dict, Mapping):
        return _pairs_decoder(decoder(args[0]), decoder(args[1]))
    if hint is Profile:
        return _profile
    if isinstance(hint, type) and stores_as_bytes(hint):
        return _key_decoder(hint)
    if is_record(hint):
        return _map_decoder(hint)
    if hint in _SCALARS:
        return _scalar_decoder(_NONE if hint is None else hint)
    raise InvalidArgument(f"no decoder for {hint!r}")


def _scalar_decoder(hint: type) -> Decode:
    """A scalar of exactly its msgpack type: a bool is not an int (``type``, not ``isinstance``).

    A float may be stored as an int, as Python's typing allows (a delay of 5 seconds).
    """
    accepted = (int, float) if hint is float else (hint,)
    what = f"expected {hint.__name__}"

    def decode_scalar(raw: object) -> object:
        if type(raw) not in accepted:
            raise corrupt(what)
        return raw

    return decode_scalar


def _optional_decoder(decode: Decode) -> Decode:
    def decode_optional(raw: object) -> object:
        return None if raw is None else decode(raw)

    return decode_optional


def _literal_decoder(args: tuple[Any, ...]) -> Decode:
    allowed = tuple((type(a), a) for a in args)

    def decode_literal(raw: object) -> object:
        if (type(raw), raw) not in allowed:
            raise corrupt("value is not one of the allowed constants")
        return raw

    return decode_literal


def _array_decoder(decode: Decode) -> Decode:
    def decode_array(raw: object) -> tuple[object, ...]:
        if type(raw) is not list:
            raise corrupt("expected an array")
        return tuple([decode(item) for item in raw])

    return decode_array


def _tuple_decoder(decoders: tuple[Decode, ...]) -> Decode:
    length = len(decoders)

    def decode_tuple(raw: object) -> tuple[object, ...]:
        if type(raw) is not list or len(raw) != length:
            raise corrupt(f"expected an array of {length}")
        return tuple([decode(item) for decode, item in zip(decoders, raw, strict=True)])

    return decode_tuple


def _pairs_decoder(decode_key: Decode, decode_value: Decode) -> Decode:
    def decode_pairs(raw: object) -> dict[object, object]:
        if type(raw) is not list:
            raise corrupt("expected an array of pairs")
        out: dict[object, object] = {}
        for pair in raw:
            if type(pair) is not list or len(pair) != 2:
                raise corrupt("expected a [key, value] pair")
            key = decode_key(pair[0])
            if key in out:
                raise corrupt("duplicate key")
            out[key] = decode_value(pair[1])
        return out

    return decode_pairs


def _profile(raw: object) -> Profile:
    if type(raw) is not str:
        raise corrupt("profile must be a name")
    try:
        profile = get_profile(raw)
    except InvalidArgument:
        raise corrupt("unknown profile") from None
    if profile.name != raw:
        raise corrupt("profile is not under its own name")
    return profile


def _key_decoder(cls: type) -> Decode:
    """A key type from its bin: its own length checks run, and it must give the same bytes back."""
    name = cls.__name__
    encode = encoder(cls)

    def decode_key(raw: object) -> object:
        if type(raw) is not bytes:
            raise corrupt(f"{name} must be bytes")
        try:
            key = cls.from_stored_bytes(raw)  # type: ignore[attr-defined]
        except _REFUSALS as exc:
            raise corrupt(f"{name} refused its bytes ({type(exc).__name__})") from None
        if encode(key) != raw:
            raise corrupt(f"{name} does not give its bytes back")
        return key

    return decode_key


def _map_decoder(cls: type) -> Decode:
    """A record from its map: stored names in order, an added field absent or off its default.

    The record's own checks (``__post_init__``: key lengths, matching halves)
    run when it is built; a refusal is STATE_CORRUPT.
    """
    fields = stored_fields(cls)
    plan = tuple((f.name, decoder(f.hint), f.added, f.default) for f in fields)
    attributes = tuple(f.attribute for f in fields)
    positional = not any(f.keyword_only for f in fields)
    name = cls.__name__

    def decode_record(raw: object) -> object:
        if type(raw) is not dict:
            raise corrupt(f"{name} must be a map")
        values: list[object] = []
        keys = iter(raw)
        key = next(keys, None)
        for stored, decode, added, default in plan:
            if key == stored:
                value = decode(raw[key])
                if added and value == default:
                    raise corrupt(f"{name} writes an added field at its default")
                key = next(keys, None)
            elif added:
                value = default
            else:
                raise corrupt(f"{name} fields differ")
            values.append(value)
        if key is not None:
            raise corrupt(f"{name} fields differ")
        try:
            if positional:
                return cls(*values)
            return cls(**dict(zip(attributes, values, strict=True)))
        except _REFUSALS as exc:
            raise corrupt(f"{name} refused its fields ({type(exc).__name__})") from None

    return decode_record
