"""Secrets a device's states imply but do not hold, for the demo's dump (spec/security.md §2.2).

The marked fields of a state (protocol/secrecy.py) are what it holds; these
are what it computes from them next, or computed once and did not keep:

* ``next_message_keys``: the message key each Double Ratchet chain key
  yields next (KDF_CK) and its expansion (ENCRYPT's keys; in signal-v4 with
  every SPQR message key the record yields next as the HKDF salt, and with
  none, as for a message that has no SPQR key, spec/spqr.md §13);
* ``spqr_next_keys``: the SPQR message key each kept chain direction yields
  next (``chain_next``, spec/spqr.md §6);
* ``spqr_epoch_secrets``: while a Braid state holds its encapsulation
  (m, r) and the peer's header, the ML-KEM-768 shared secret K = G(m ‖ H(ek))
  and the epoch secret made from it (spec/spqr.md §4, §10); the peer that
  decapsulates derives the same two values;
* ``kem_decapsulations``: an initial message's PQXDH KEM ciphertext
  decapsulated with every KEM prekey seed of the run (spec/pqxdh.md §4).
  The dump does not know whose prekey a ciphertext was for, so it holds the
  shared secret together with the implicit-rejection values of the seeds
  the ciphertext was not for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from protocol import kyber1024
from protocol.initial_data import InitialData
from protocol.primitives import kem_decapsulate
from protocol.profiles import Profile
from protocol.ratchet import kdf_ck, message_keys
from protocol.spqr import kpke
from protocol.spqr.chain import Chain, chain_next
from protocol.spqr.states import BraidState, epoch_secret


def next_message_keys(
    profile: Profile, ck: bytes, salts: Iterable[bytes | None] = (None,)
) -> Iterator[tuple[str, bytes]]:
    """The message key a chain key produces next, and its expansion under each salt."""
    _, mk = kdf_ck(profile, ck)
    yield "mk", mk
    for salt in salts:
        keys = message_keys(profile, mk, salt)
        yield "message_enc_key", keys.enc_key
        yield "message_auth_key", keys.auth_key
        yield "message_nonce", keys.nonce


def spqr_next_keys(chain: Chain) -> Iterator[bytes]:
    """The next SPQR message key of every chain direction the chain still keeps."""
    for link in chain.links:
        for direction in (link.send, link.recv):
            if direction.next:
                yield chain_next(direction.next, direction.ctr + 1)[1]


def spqr_epoch_secrets(braid: BraidState) -> Iterator[tuple[str, bytes]]:
    """K and the epoch secret of an epoch whose ciphertext this side is sending."""
    if braid.encaps is not None and braid.hdr:
        shared, _ = kpke.g(braid.encaps.m + braid.hdr[32:])
        yield "spqr_kem_shared_secret", shared
        yield "spqr_epoch_secret", epoch_secret(shared, braid.epoch)


def kem_decapsulations(
    initial: Iterable[tuple[Profile, InitialData]], seeds: Iterable[bytes]
) -> Iterator[bytes]:
    """Each initial message's KEM ciphertext decapsulated with each of ``seeds``."""
    seeds = sorted(set(seeds))
    for profile, data in initial:
        if data.kem_ciphertext is None or profile.kem is None:
            continue
        for seed in seeds:
            if profile.kem == "Kyber1024":
                yield kyber1024.decapsulate(seed, data.kem_ciphertext)
            else:
                yield kem_decapsulate(profile.kem, seed, data.kem_ciphertext)
