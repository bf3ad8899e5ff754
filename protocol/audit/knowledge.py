"""A symbolic (Dolev-Yao) model of what the relay can derive (spec/relay.md §9.4).

Terms are perfect-cryptography abstractions of our key schedule: a secret
random value (``Atom``), its public key (``Pub``), a Diffie-Hellman value
(``DH``: computable from one private key and the other public key), a KDF
output (``Kdf``: computable from all its inputs; labels are public), an
AEAD ciphertext (``Enc``: opens with its key), a KEM ciphertext (``KemCt``:
yields its shared secret to the holder of the decapsulation key) and a
concatenation (``Tup``).

``closure(known, universe)`` saturates an attacker's knowledge under those
rules, restricted to the subterms of the model (enough to decide whether a
model term is derivable). ``session_model`` and ``call_model`` build the
terms of PQXDH + the Double Ratchet with header encryption (pq-default) and
of RFC 9605 §5.1 sender keys, following spec/pqxdh.md, spec/ratchet.md and
spec/media.md; the wire terms are what the relay sees. The tests
(tests/audit/test_audit.py) show the model is not vacuous: leaking the right
private keys makes exactly the expected secrets derivable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True)
class Atom:
    name: str


@dataclass(frozen=True, slots=True)
class Pub:
    owner: str


@dataclass(frozen=True, slots=True)
class DH:
    pair: frozenset[str]


@dataclass(frozen=True, slots=True)
class Kdf:
    label: str
    inputs: tuple[Term, ...]
    index: int = 0


@dataclass(frozen=True, slots=True)
class Enc:
    key: Term
    body: Term


@dataclass(frozen=True, slots=True)
class KemCt:
    owner: str
    secret: Atom


@dataclass(frozen=True, slots=True)
class Tup:
    items: tuple[Term, ...]


Term = Union[Atom, Pub, DH, Kdf, Enc, KemCt, Tup]  # noqa: UP007 - recursive alias


def dh(a: str, b: str) -> DH:
    return DH(frozenset((a, b)))


def subterms(term: Term) -> Iterator[Term]:
    yield term
    children: tuple[Term, ...] = ()
    if isinstance(term, Kdf | Tup):
        children = term.inputs if isinstance(term, Kdf) else term.items
    elif isinstance(term, Enc):
        children = (term.key, term.body)
    elif isinstance(term, KemCt):
        children = (Pub(term.owner), term.secret)
    elif isinstance(term, DH):
        children = tuple(Pub(owner) for owner in sorted(term.pair))
    for child in children:
        yield from subterms(child)


def _composable(term: Term, known: set[Term]) -> bool:
    if isinstance(term, Pub):
        return Atom(term.owner) in known
    if isinstance(term, DH):
        a, b = sorted(term.pair)
        return (Atom(a) in known and Pub(b) in known) or (Atom(b) in known and Pub(a) in known)
    if isinstance(term, Kdf):
        return all(t in known for t in term.inputs)
    if isinstance(term, Tup):
        return all(t in known for t in term.items)
    if isinstance(term, Enc):
        return term.key in known and term.body in known
    if isinstance(term, KemCt):
        return Pub(term.owner) in known and term.secret in known
    return False


def _opened(term: Term, known: set[Term]) -> Iterator[Term]:
    if isinstance(term, Enc) and term.key in known:
        yield term.body
    elif isinstance(term, KemCt) and Atom(term.owner) in known:
        yield term.secret
    elif isinstance(term, Tup):
        yield from term.items


def closure(known: Iterable[Term], universe: Iterable[Term]) -> set[Term]:
    """Everything in ``universe`` derivable from ``known`` (which is added whole)."""
    derived = set(known)
    pending = {t for term in universe for t in subterms(term)} - derived
    changed = True
    while changed:
        changed = False
        for term in list(derived):
            for opened in _opened(term, derived):
                if opened not in derived:
                    derived.add(opened)
                    pending.discard(opened)
                    changed = True
        for term in [t for t in pending if _composable(t, derived)]:
            derived.add(term)
            pending.discard(term)
            changed = True
    return derived


@dataclass
class Model:
    """Wire terms (what the relay sees) and named secrets (what it must not derive)."""

    wire: set[Term] = field(default_factory=set)
    secrets: dict[str, Term] = field(default_factory=dict)

    def derivable_secrets(self, extra: Iterable[Term] = ()) -> list[str]:
        """Names of the secrets the relay (plus ``extra`` leaked terms) can derive."""
        known = closure([*self.wire, *extra], self.secrets.values())
        return sorted(name for name, term in self.secrets.items() if term in known)


def session_model(model: Model, sid: str, a: str, b: str, chains: list[int]) -> list[Term]:
    """Add one pq-default session from initiator ``a`` to responder ``b``.

    ``chains`` gives the number of messages in each sending chain, alternating
    a, b, a, … (one DH ratchet step per chain). Returns each chain's last
    message key, for carrying other secrets (MediaKey messages).
    """
    ik_a, ik_b, spk, opk, pq = f"IK:{a}", f"IK:{b}", f"SPK:{b}", f"OPK:{sid}", f"PQSPK:{b}"
    ek, ss = f"EK:{sid}", Atom(f"SS:{sid}")
    ct = KemCt(pq, ss)
    sk = Kdf("pqxdh", (dh(ik_a, spk), dh(ek, ik_b), dh(ek, spk), dh(ek, opk), ss))
    model.wire |= {Pub(ik_a), Pub(ik_b), Pub(spk), Pub(opk), Pub(pq), Pub(ek), ct}
    model.secrets.update({f"SK {sid}": sk, f"SS {sid}": ss})
    rk: Term = Kdf("initial", (sk,), 0)
    header_keys: list[Term] = [Kdf("initial", (sk,), 1), Kdf("initial", (sk,), 2)]
    ratchet_keys, last = [spk], []
    for number, count in enumerate(chains):
        ratchet_keys.append(f"DHs:{sid}:{number}")
        rk, ck, nhk = (Kdf("rk", (rk, dh(ratchet_keys[-1], ratchet_keys[-2])), i) for i in range(3))
        header_keys.append(nhk)
        model.wire.add(Pub(ratchet_keys[-1]))
        model.secrets.update({f"rk {sid}/{number}": rk, f"hk {sid}/{number}": header_keys[number]})
        mk: Term = ck
        for index in range(count):
            mk, ck = Kdf("ck", (ck,), 1), Kdf("ck", (ck,), 2)
            plaintext = Atom(f"text:{sid}:{number}:{index}")
            header = Tup((Pub(ratchet_keys[-1]),))
            model.wire |= {Enc(header_keys[number], header), Enc(mk, plaintext)}
            model.secrets.update(
                {f"mk {sid}/{number}/{index}": mk, f"text {sid}/{number}/{index}": plaintext}
            )
        last.append(mk)
    return last


def call_model(model: Model, sender: str, carriers: list[Term], steps: int, frames: int) -> None:
    """Add one sender's generations of a call: generation g's base key travels
    encrypted under ``carriers[g]`` (a message key of a session); each
    generation ratchets ``steps`` times (joins) and protects ``frames``
    frames per step (RFC 9605 §5.1)."""
    for generation, carrier in enumerate(carriers):
        base: Term = Atom(f"base:{sender}:{generation}")
        model.wire.add(Enc(carrier, Tup((base,))))
        for step in range(steps + 1):
            key = Kdf("sframe", (base,), 0)
            model.secrets.update(
                {
                    f"base {sender}/{generation}/{step}": base,
                    f"frame key {sender}/{generation}/{step}": key,
                }
            )
            for index in range(frames):
                frame = Atom(f"frame:{sender}:{generation}:{step}:{index}")
                model.wire.add(Enc(key, frame))
                model.secrets[f"frame {sender}/{generation}/{step}/{index}"] = frame
            base = Kdf("sframe ratchet", (base,))
