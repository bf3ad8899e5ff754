"""A symbolic model of signal-v4 sessions: PQXDH-Kyber and the triple ratchet (spec/security.md §4).

The terms of ``knowledge`` (perfect cryptography) for one signal-v4 session,
following spec/pqxdh.md §9 and spec/spqr.md §6, §10 and §13:

* PQXDH with Kyber1024: SK = KDF(DH1 ‖ DH2 ‖ DH3 ‖ DH4 ‖ SS), SS encapsulated
  to the responder's Kyber prekey; SK splits into the root key, a chain key
  and SPQR's authentication key;
* the Double Ratchet with plaintext headers: one KDF_RK step with a fresh
  ratchet key per sending chain, KDF_CK per message;
* SPQR: its chain starts from the authentication key (epoch 0); epoch e
  (1, 2, ...) has a fresh ML-KEM-768 key pair of the side whose turn it is
  (the initiator in odd epochs), its public key and the ciphertext of a
  shared secret K_e travel in field 5, and the epoch secret KDF_e(K_e)
  (its label names the epoch, as the info string does) re-keys the chain;
  each message takes the next key of its direction in the epoch its field
  5 names;
* each message is encrypted under KDF(Double Ratchet message key, SPQR
  message key), libsignal's salted "WhisperMessageKeys".

Note that the model abstracts what confidentiality does not depend on: the
authenticator (MACs over SPQR's header and ciphertext), the chunking of
field 5, the chain key PQXDH gives the responder's unused first sending
chain, and skipped keys. As for pq-default's model (spec/security.md
§2.4), tests evaluate these terms with a real run's values
(tests/security/test_knowledge_model_fidelity.py): for short conversations,
which stay in SPQR's epoch 0, and for conversations long enough that two
SPQR epochs complete, where the epoch secrets, the add-epoch steps and the
message keys of epochs 1 and 2 are the code's.
"""

from __future__ import annotations

from protocol.audit.knowledge import Atom, Enc, Kdf, KemCt, Model, Pub, Term, dh


def triple_session_model(
    model: Model, sid: str, a: str, b: str, chains: list[list[int]]
) -> list[Term]:
    """Add one signal-v4 session from initiator ``a`` to responder ``b``.

    ``chains`` has one list per sending chain, alternating a, b, a, …: the
    SPQR epoch whose chain keys each of its messages uses (field 5's epoch
    less one, non-decreasing in each direction). Returns each chain's last
    message key (the key its message is encrypted under).
    """
    ik_a, ik_b, spk, opk, pq = f"IK:{a}", f"IK:{b}", f"SPK:{b}", f"OPK:{sid}", f"PQSPK:{b}"
    ek, ss = f"EK:{sid}", Atom(f"SS:{sid}")
    sk = Kdf("pqxdh v4", (dh(ik_a, spk), dh(ek, ik_b), dh(ek, spk), dh(ek, opk), ss))
    model.wire |= {Pub(ik_a), Pub(ik_b), Pub(spk), Pub(opk), Pub(pq), Pub(ek), KemCt(pq, ss)}
    model.secrets.update({f"SK {sid}": sk, f"SS {sid}": ss})
    last_epoch = max((epoch for chain in chains for epoch in chain), default=0)
    spqr = _spqr_epochs(model, sid, a, b, Kdf("sk v4", (sk,), 2), last_epoch)
    rk: Term = Kdf("sk v4", (sk,), 0)
    ratchet_keys, last = [spk], []
    for number, epochs in enumerate(chains):
        ratchet_keys.append(f"DHs:{sid}:{number}")
        rk, ck = (Kdf("rk", (rk, dh(ratchet_keys[-1], ratchet_keys[-2])), i) for i in range(2))
        model.wire.add(Pub(ratchet_keys[-1]))
        model.secrets[f"rk {sid}/{number}"] = rk
        direction = number % 2  # 0: a to b
        key: Term = ck
        for index, epoch in enumerate(epochs):
            mk, ck = Kdf("ck", (ck,), 1), Kdf("ck", (ck,), 2)
            pq_key, spqr[(epoch, direction)] = _next(spqr[(epoch, direction)])
            key = Kdf("WhisperMessageKeys", (mk, pq_key))
            plaintext = Atom(f"text:{sid}:{number}:{index}")
            model.wire.add(Enc(key, plaintext))
            model.secrets.update(
                {
                    f"mk {sid}/{number}/{index}": key,
                    f"spqr key {sid}/{number}/{index}": pq_key,
                    f"text {sid}/{number}/{index}": plaintext,
                }
            )
        last.append(key)
    return last


def _spqr_epochs(
    model: Model, sid: str, a: str, b: str, auth: Term, last_epoch: int
) -> dict[tuple[int, int], Term]:
    """SPQR's chain keys of each (epoch, direction) up to ``last_epoch``."""
    root: Term = Kdf("spqr start", (auth,), 0)
    chains: dict[tuple[int, int], Term] = {}
    chains[(0, 0)], chains[(0, 1)] = Kdf("spqr start", (auth,), 1), Kdf("spqr start", (auth,), 2)
    for epoch in range(1, last_epoch + 1):
        owner = f"SPQRDK:{sid}:{epoch}:{a if epoch % 2 else b}"
        shared = Atom(f"SPQRK:{sid}:{epoch}")
        model.wire |= {Pub(owner), KemCt(owner, shared)}
        secret = Kdf(f"scka {epoch}", (shared,))
        model.secrets[f"epoch secret {sid}/{epoch}"] = secret
        inputs = (root, secret)
        root = Kdf("spqr add epoch", inputs, 0)
        chains[(epoch, 0)], chains[(epoch, 1)] = (
            Kdf("spqr add epoch", inputs, 1),
            Kdf("spqr add epoch", inputs, 2),
        )
    return chains


def _next(chain: Term) -> tuple[Term, Term]:
    """SPQR ``chain_next``: (message key, next chain key)."""
    return Kdf("spqr next", (chain,), 1), Kdf("spqr next", (chain,), 0)
