"""Splitting prekey bundles for upload and reassembling them on fetch (spec/relay.md §2.5).

The relay stores one signed part per device — the ``PrekeyBundle`` bytes
without a one-time prekey, carrying the last-resort KEM prekey — and the
one-time prekeys separately, so that it can hand each one out once without
parsing anything. A one-time prekey travels as opaque bytes:

* kind ``ec``:  Encode(OPK) (33 bytes, X3DH §2.1);
* kind ``kem``: EncodeKEM(PQOPK) ‖ Sig(IK, EncodeKEM(PQOPK)) (64 bytes, PQXDH §3.2).

These helpers run on devices. The relay is untrusted, so a reassembled
bundle is only a candidate: ``SessionManager.initiate`` verifies both
signatures before any key is used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final, NamedTuple, cast

from protocol.bundle import BundleKemPrekey, BundleOneTimePrekey, PrekeyBundle
from protocol.encoding import KEM_TYPE, decode_ec, encode_ec
from protocol.errors import InvalidArgument, InvalidPublicKey
from protocol.primitives import KemName
from protocol.relay.schema import FetchedBundle, Prekey

SIGNATURE_LEN: Final = 64
_KEM_BY_TYPE: Final = {value: cast(KemName, name) for name, value in KEM_TYPE.items()}


class Publication(NamedTuple):
    """What a device uploads: the signed part and its one-time prekeys by kind."""

    signed: bytes
    ec: list[Prekey]
    kem: list[Prekey]


def split_bundles(bundles: Sequence[PrekeyBundle]) -> Publication:
    """Split ``SessionManager.prekey_bundles()`` into the relay's upload.

    The last bundle of that list has no one-time prekey; with at most as
    many one-time KEM prekeys as one-time prekeys, it carries the
    last-resort KEM prekey, which makes it the signed part.
    """
    if not bundles or bundles[-1].one_time_prekey is not None:
        raise InvalidArgument("the last bundle must be the one without a one-time prekey")
    signed = bundles[-1]
    last_resort = signed.kem_prekey
    ec, kem = [], []
    for bundle in bundles[:-1]:
        opk, pqpk = bundle.one_time_prekey, bundle.kem_prekey
        if opk is None:
            raise InvalidArgument("every bundle but the last carries a one-time prekey")
        ec.append(Prekey(opk.prekey_id, encode_ec(opk.public)))
        if pqpk is not None and pqpk != last_resort:
            kem.append(Prekey(pqpk.prekey_id, pqpk.encoded() + pqpk.signature))
    return Publication(signed.to_bytes(), ec, kem)


def assemble_bundle(fetched: FetchedBundle) -> PrekeyBundle:
    """The candidate bundle an initiator uses: the signed part plus the prekeys handed out.

    Strict: INVALID_PUBLIC_KEY or MALFORMED_MESSAGE for anything that does
    not decode (the relay may be lying).
    """
    bundle = PrekeyBundle.from_bytes(fetched.bundle)
    if fetched.ec_prekey is not None:
        opk = BundleOneTimePrekey(fetched.ec_prekey.id, decode_ec(fetched.ec_prekey.key))
        bundle = dataclasses.replace(bundle, one_time_prekey=opk)
    if fetched.kem_prekey is not None:
        key = fetched.kem_prekey.key
        encoded, signature = key[:-SIGNATURE_LEN], key[-SIGNATURE_LEN:]
        kem = _KEM_BY_TYPE.get(encoded[0]) if encoded else None
        if kem is None:
            raise InvalidPublicKey("the one-time KEM prekey is not EncodeKEM(PQOPK) ‖ Sig")
        try:
            pqpk = BundleKemPrekey(kem, fetched.kem_prekey.id, encoded[1:], signature)
        except InvalidArgument:
            raise InvalidPublicKey("the one-time KEM prekey has the wrong length") from None
        bundle = dataclasses.replace(bundle, kem_prekey=pqpk)
    return bundle
