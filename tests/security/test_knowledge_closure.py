"""What the relay can derive, symbolically: spec/security.md §3.2.

The Dolev-Yao model of ``protocol.audit.knowledge`` (spec/relay.md §9.4)
abstracts our pq-default key schedule: PQXDH -> SK -> KDF_RK / KDF_CK ->
message keys, header keys, and MediaKey base keys -> SFrame keys. Over
generated shapes of sessions and calls, the closure of what the relay holds
(public keys, KEM ciphertexts, encrypted headers, ciphertexts, frames)
derives no secret. Each leak then derives exactly what the protocol says it
should, which shows the closure can derive and the check can fail: a state
stolen mid-chain opens that chain onwards and the peer's answer, and nothing
after the next round trip (forward secrecy and post-compromise security);
every classical private key together opens nothing while ML-KEM holds; a
relay's own one-time prekey opens nothing; a removed member's base keys
open only the generations it was given.
"""

from __future__ import annotations

from typing import Final

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.audit.knowledge import (
    Atom,
    Kdf,
    Model,
    Pub,
    Term,
    call_model,
    session_model,
    subterms,
)

SENDER: Final = "alice"
shapes = st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=5), min_size=1, max_size=3)
calls = st.tuples(st.integers(1, 3), st.integers(0, 3), st.integers(1, 2))


def build(sessions: list[list[int]], call: tuple[int, int, int] | None = None) -> Model:
    """Sessions from alice to peer0, peer1, …; with ``call`` = (generations, steps,
    frames), alice's generations travel over the last message key of her chains."""
    model = Model()
    carriers: list[Term] = []
    for sid, chains in enumerate(sessions):
        last = session_model(model, f"s{sid}", SENDER, f"peer{sid}", chains)
        carriers += last[::2]  # alice sends the even chains
    if call is not None:
        generations, steps, frames = call
        chosen = [carriers[g % len(carriers)] for g in range(generations)]
        call_model(model, SENDER, chosen, steps, frames)
    return model


def readable(derivable: list[str]) -> set[str]:
    """The message keys, plaintexts, base keys, frame keys and frames among the names."""
    kinds = ("mk ", "text ", "base ", "frame key ", "frame ")
    return {name for name in derivable if name.startswith(kinds)}


@settings(max_examples=40, deadline=None)
@given(shapes, calls)
def test_relay_knowledge_derives_no_key_and_no_plaintext_of_any_session_or_call(
    sessions: list[list[int]], call: tuple[int, int, int]
) -> None:
    model = build(sessions, call)
    assert model.secrets and model.derivable_secrets() == []


@settings(max_examples=40, deadline=None)
@given(shapes, st.data())
def test_state_stolen_mid_chain_reveals_that_chain_onwards_and_the_answer_then_heals(
    sessions: list[list[int]], data: st.DataObject
) -> None:
    """The sender of chain k, after j messages, holds its ratchet private key, the root
    key, its chain key and the header keys of chains k-1 to k+2 (HKr, HKs, NHKr, NHKs).
    Earlier messages stay closed (forward secrecy); chain k+1, the peer's answer to a
    key the thief holds, opens; chain k+2 and later, under the sender's next fresh
    ratchet key, stay closed (post-compromise security). Headers heal later than
    content: the thief also derives the header key of chain k+3."""
    chains = sessions[0]
    model = build([chains])
    k = data.draw(st.integers(0, len(chains) - 1), label="chain")
    j = data.draw(st.integers(0, chains[k] - 1), label="messages sent")
    chain_key = model.secrets[f"mk s0/{k}/{j}"]
    assert isinstance(chain_key, Kdf)
    header_keys = [f"hk s0/{n}" for n in range(max(k - 1, 0), k + 4) if n < len(chains)]
    stolen = [Atom(f"DHs:s0:{k}"), model.secrets[f"rk s0/{k}"], chain_key.inputs[0]]
    stolen += [model.secrets[name] for name in header_keys if int(name.split("/")[1]) <= k + 2]
    expected = {f"{kind} s0/{k}/{n}" for kind in ("mk", "text") for n in range(j, chains[k])}
    if k + 1 < len(chains):
        expected |= {
            f"{kind} s0/{k + 1}/{n}" for kind in ("mk", "text") for n in range(chains[k + 1])
        }
    derivable = model.derivable_secrets(stolen)
    assert readable(derivable) == expected
    assert {name for name in derivable if name.startswith("hk ")} == set(header_keys)


@settings(max_examples=40, deadline=None)
@given(shapes, calls)
def test_every_classical_private_key_together_opens_nothing_while_ml_kem_holds(
    sessions: list[list[int]], call: tuple[int, int, int]
) -> None:
    model = build(sessions, call)
    owners = key_pair_owners(model)
    classical = {Atom(name) for name in owners if not name.startswith("PQSPK:")}
    assert len(classical) == len(owners) - len(sessions)  # each responder's PQSPK is ML-KEM
    assert classical and model.derivable_secrets(classical) == []


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_a_one_time_prekey_the_relay_substituted_opens_nothing(sessions: list[list[int]]) -> None:
    model = build(sessions)
    relay_prekeys = [Atom(f"OPK:s{sid}") for sid in range(len(sessions))]
    assert model.derivable_secrets(relay_prekeys) == []


@settings(max_examples=40, deadline=None)
@given(shapes, calls, st.data())
def test_a_removed_member_derives_only_the_generations_it_was_given(
    sessions: list[list[int]], call: tuple[int, int, int], data: st.DataObject
) -> None:
    generations, steps, frames = call
    model = build(sessions, call)
    given_to_it = data.draw(st.integers(0, generations), label="generations before removal")
    leaked = [Atom(f"base:{SENDER}:{g}") for g in range(given_to_it)]
    expected = {
        name
        for g in range(given_to_it)
        for s in range(steps + 1)
        for name in (
            f"base {SENDER}/{g}/{s}",
            f"frame key {SENDER}/{g}/{s}",
            *(f"frame {SENDER}/{g}/{s}/{n}" for n in range(frames)),
        )
    }
    assert readable(model.derivable_secrets(leaked)) == expected


def key_pair_owners(model: Model) -> set[str]:
    """The name of every key pair whose public key the model uses."""
    return {sub.owner for term in model.wire for sub in subterms(term) if isinstance(sub, Pub)}
