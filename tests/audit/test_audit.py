"""The audit: the symbolic model derives exactly what leaked keys allow, the secret
scan finds any 16-byte window, and an audit with a planted leak fails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final
from unittest import mock

import pytest

from protocol.audit.evidence import (
    AuditResult,
    audit,
    describe,
    model_of,
    scan_secrets,
    secret_scan,
)
from protocol.audit.keytrial import (
    candidate_keys,
    public_values,
    samples,
    spqr_public_values,
    trial,
)
from protocol.audit.knowledge import Atom, Model, call_model, session_model
from protocol.audit.observe import observe
from protocol.audit.secrets import SecretLog, read_secrets
from protocol.audit.triple_model import triple_session_model
from protocol.demo.run import DemoOptions, run_demo
from protocol.profiles import PQ_DEFAULT, SIGNAL_V4
from protocol.randomness import DrbgRandom, RecordingRandom
from protocol.relay.capture import _HEADER, Kind
from protocol.session import Address as PeerAddress
from protocol.session import SessionManager
from protocol.store import MemoryStore

# --- The symbolic model is not vacuous (spec/relay.md §9.4) --------------------------------


def one_session() -> tuple[Model, list[object]]:
    model = Model()
    last = session_model(model, "s", "a", "b", [2, 1, 2])
    return model, list(last)


def test_relay_derives_no_secret_of_a_session_and_a_call() -> None:
    model, last = one_session()
    call_model(model, "a", [last[0], last[2]], steps=2, frames=2)
    assert model.derivable_secrets() == []


def test_classical_private_keys_alone_do_not_reveal_the_pqxdh_secret() -> None:
    model, _ = one_session()
    leaked = [Atom("IK:a"), Atom("IK:b"), Atom("SPK:b"), Atom("OPK:s"), Atom("EK:s")]
    derivable = model.derivable_secrets(leaked)
    assert "SK s" not in derivable
    assert not [name for name in derivable if name.startswith(("mk ", "text "))]


def test_the_responders_prekeys_reveal_the_first_chain_and_the_ratchet_heals_the_rest() -> None:
    model, _ = one_session()
    leaked = [Atom("IK:b"), Atom("SPK:b"), Atom("OPK:s"), Atom("PQSPK:b")]
    derivable = model.derivable_secrets(leaked)
    texts = sorted(name for name in derivable if name.startswith("text "))
    assert "SK s" in derivable
    assert texts == ["text s/0/0", "text s/0/1"]  # later chains need fresh ratchet keys


def test_a_leaked_message_key_reveals_its_message_only() -> None:
    model, _ = one_session()
    derivable = model.derivable_secrets([model.secrets["mk s/1/0"]])
    assert [name for name in derivable if name.startswith("text ")] == ["text s/1/0"]


def test_a_leaked_base_key_reveals_later_steps_of_its_generation_only() -> None:
    model, last = one_session()
    call_model(model, "a", [last[0], last[2]], steps=2, frames=1)
    derivable = model.derivable_secrets([model.secrets["base a/0/1"]])
    frames = sorted(name for name in derivable if name.startswith("frame a/"))
    assert frames == ["frame a/0/1/0", "frame a/0/2/0"]


# --- The symbolic model of signal-v4 sessions (spec/security.md §4) ----------------------

V4_CHAINS = [[0, 0], [0], [1, 1], [1], [2, 2]]  # SPQR's key epoch of each message of each chain


def v4_session() -> Model:
    model = Model()
    triple_session_model(model, "s", "a", "b", V4_CHAINS)
    return model


def classical_keys() -> list[Atom]:
    ratchet_keys = [Atom(f"DHs:s:{n}") for n in range(len(V4_CHAINS))]
    return [Atom("IK:a"), Atom("IK:b"), Atom("SPK:b"), Atom("OPK:s"), Atom("EK:s"), *ratchet_keys]


def texts(names: list[str]) -> list[str]:
    return sorted(name for name in names if name.startswith("text "))


def test_relay_derives_no_secret_of_a_v4_session() -> None:
    model = v4_session()
    assert sum(name.startswith("epoch secret ") for name in model.secrets) == 2
    assert model.derivable_secrets() == []


def test_a_quantum_adversary_with_every_x25519_key_and_the_kyber_prekey_reads_only_epoch_0() -> (
    None
):
    # Every X25519 private key and the PQXDH Kyber key: SK and the Double
    # Ratchet fall, but each SPQR epoch's fresh ML-KEM-768 secret keeps the
    # messages of epochs 1 and 2 (chains 2-4) unreadable.
    derivable = v4_session().derivable_secrets([*classical_keys(), Atom("PQSPK:b")])
    assert "SK s" in derivable
    assert texts(derivable) == ["text s/0/0", "text s/0/1", "text s/1/0"]


def test_one_spqr_epochs_ml_kem_key_opens_that_epoch_and_no_later_one() -> None:
    leaked = [*classical_keys(), Atom("PQSPK:b"), Atom("SPQRDK:s:1:a")]
    derivable = v4_session().derivable_secrets(leaked)
    assert texts(derivable) == sorted(
        f"text s/{chain}/{i}" for chain in range(4) for i in range(len(V4_CHAINS[chain]))
    )


def test_every_post_quantum_key_without_the_classical_ones_opens_nothing() -> None:
    # The hybrid: the Kyber prekey and every SPQR ML-KEM key, but no X25519
    # private key, leave the Double Ratchet's keys, and so every message, sealed.
    pq_keys = [Atom("PQSPK:b"), Atom("SPQRDK:s:1:a"), Atom("SPQRDK:s:2:b")]
    derivable = v4_session().derivable_secrets(pq_keys)
    assert texts(derivable) == [] and not [n for n in derivable if n.startswith("mk ")]
    assert "epoch secret s/2" in derivable  # the leak did reach SPQR


# --- The secret scan (spec/relay.md §9.2) -----------------------------------------------


@pytest.mark.parametrize("offset", range(17))
def test_secret_scan_finds_a_16_byte_window_at_any_offset(offset: int) -> None:
    secret = bytes(range(100, 140))
    stream = bytes(offset) + b"\xaa" * 7 + secret[5:21] + b"\xbb" * 9
    assert scan_secrets([stream], [("key", secret)]) == ["key"]


def test_secret_scan_ignores_a_15_byte_overlap() -> None:
    secret = bytes(range(100, 140))
    assert scan_secrets([b"\xaa" * 8 + secret[3:18] + b"\xbb" * 8], [("key", secret)]) == []


# --- The audit on a demo capture ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("demo")
    options = DemoOptions(
        seconds=1.0, capture=folder / "c", secrets_out=folder / "s.json", seed=b"\x04"
    )
    assert asyncio.run(run_demo(options)).ok
    return folder / "c", folder / "s.json"


def test_audit_report_states_the_metadata_the_relay_learns(demo_run: tuple[Path, Path]) -> None:
    result = AuditResult()
    describe(observe(demo_run[0]), result)
    text = "\n".join(result.report)
    assert "alice.1 -> bob.1" in text and "join  dave.1" in text and "leave carol.1" in text
    assert "(endorsed by bob.1)" in text  # bob.2's registration shows who vouched for it
    fetches = next(line for line in text.splitlines() if "bundle fetches" in line)
    assert fetches.rsplit(": ", 1)[1].isdigit()  # a count, then one line per pair: no dict
    assert "{" not in text


def test_a_planted_secret_is_found_in_the_capture_and_among_computable_keys(
    demo_run: tuple[Path, Path],
) -> None:
    # An identity key stands in for a leaked secret: it is in the capture, and
    # it is also a key the relay can compute.
    seen = observe(demo_run[0])
    planted = next(iter(seen.identity_keys.values()))
    secrets = [*read_secrets(demo_run[1]), ("planted", planted)]
    assert scan_secrets(seen.streams, secrets) == ["planted"]
    assert planted in candidate_keys(public_values(seen, PQ_DEFAULT))


def test_real_keys_open_the_sampled_message_and_frame(demo_run: tuple[Path, Path]) -> None:
    # The control that makes "no computable key opens anything" meaningful.
    seen = observe(demo_run[0])
    values = public_values(seen, PQ_DEFAULT)
    picked = samples(seen, values, PQ_DEFAULT, 1)
    opened = trial([value for _, value in read_secrets(demo_run[1])], picked, PQ_DEFAULT)
    assert len(opened) == 2 and all(opened.values())


def test_symbolic_model_of_the_demo_has_its_sessions_and_call(demo_run: tuple[Path, Path]) -> None:
    model = model_of(observe(demo_run[0]))
    # 5 devices make 10 pairs; the two devices of bob write each other nothing.
    assert sum(name.startswith("SK ") for name in model.secrets) == 9
    assert any(name.startswith("frame key dave.1/") for name in model.secrets)
    assert model.derivable_secrets() == []


def test_secrets_dump_holds_every_kind_of_secret_and_its_log_redacts_them(
    demo_run: tuple[Path, Path],
) -> None:
    labels = {label for label, _ in read_secrets(demo_run[1])}
    expected = {"private", "identity_key", "rk", "cks", "hks", "mk", "message_enc_key", "base_key"}
    expected |= {"media_base_key", "key", "plaintext", "frame_plaintext", "call_id", "xeddsa_z"}
    assert expected <= labels
    assert any(label.startswith("kem_prekey_seed") for label in labels)
    log = SecretLog()
    log.add("rk", bytes(range(32)))
    assert bytes(range(32)).hex() not in repr(log) and "redacted" in repr(log)


def test_audit_reports_garbage_traffic_and_unparsable_frames_without_failing(
    tmp_path: Path,
) -> None:
    from protocol.client.connection import LOOPBACK, connect_device
    from protocol.prekeys import IdentityKeyPair
    from protocol.relay.harness import running_relay

    capture = tmp_path / "relay.capture"

    async def main() -> None:
        async with running_relay(tmp_path / "relay.db", capture_path=capture) as server:
            a = await connect_device(server.port, "alice", 1, IdentityKeyPair.generate())
            b = await connect_device(server.port, "bob", 1, IdentityKeyPair.generate())
            await a.join(b"room")
            await b.join(b"room")
            await a.send_media(b"room", b"\x80")  # a KID byte is missing
            reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
            writer.write(b"\x00\x00\x00\x02\xc1\xc1")
            await reader.read()
            writer.close()
            await a.close()
            await b.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    result = audit(capture)
    text = "\n".join(result.report)
    assert "'unparsable'" in text and "malformed frames: [3]" in text
    assert result.ok, result.problems


# --- The audit over signal-v4 sessions -----------------------------------------------------

V4_SECRET_KINDS: Final = {
    "rk", "cks", "ckr", "mk", "message_enc_key", "message_auth_key",  # the Double Ratchet
    "next", "next_root", "spqr_message_key",  # SPQR's chain (spec/spqr.md §6)
    "root_key", "mac_key",  # its authenticator (spec/spqr.md §7)
    "seed", "spqr_kem_seed", "m", "r",  # the ML-KEM-768 seed, encapsulation (spec/spqr.md §4)
    "spqr_kem_shared_secret", "spqr_epoch_secret",  # the KEM output (spec/spqr.md §10)
    "pqxdh_kem_decapsulation", "kem_prekey_seed[1]",  # PQXDH-Kyber (spec/pqxdh.md §9)
}  # fmt: skip


@pytest.fixture(scope="module")
def v4_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("demo-v4")
    options = DemoOptions(
        seconds=1.0,
        capture=folder / "c",
        secrets_out=folder / "s.json",
        seed=b"\x04",
        profile=SIGNAL_V4,
    )
    assert asyncio.run(run_demo(options)).ok
    return folder / "c", folder / "s.json"


def test_the_v4_dump_holds_every_kind_of_v4_secret(v4_run: tuple[Path, Path]) -> None:
    labels = {label for label, _ in read_secrets(v4_run[1])}
    assert labels >= V4_SECRET_KINDS, sorted(V4_SECRET_KINDS - labels)


def test_audit_of_a_v4_capture_passes_with_its_control(v4_run: tuple[Path, Path]) -> None:
    result = audit(v4_run[0], v4_run[1], SIGNAL_V4)
    assert result.ok, result.problems
    text = "\n".join(result.report)
    assert "control, the real keys: 2 of 2 samples open" in text  # a message and a frame
    assert "Symbolic check: " in text and " 0 derivable" in text


def test_symbolic_model_of_the_v4_demo_has_its_sessions_spqr_keys_and_call(
    v4_run: tuple[Path, Path],
) -> None:
    model = model_of(observe(v4_run[0]), SIGNAL_V4)
    assert sum(name.startswith("SK ") for name in model.secrets) == 9
    messages = sum(name.startswith("text ") for name in model.secrets)
    assert messages == len(observe(v4_run[0]).messages)
    assert sum(name.startswith("spqr key ") for name in model.secrets) == messages
    assert any(name.startswith("frame key dave.1/") for name in model.secrets)
    assert model.derivable_secrets() == []


def _planted(capture: Path, folder: Path, data: bytes) -> Path:
    """A copy of the capture with one more connection that sent ``data`` to the relay."""
    copy = folder / "planted.capture"
    records = [(Kind.OPEN, b"127.0.0.1:1"), (Kind.RECEIVED, data), (Kind.CLOSE, b"eof")]
    extra = b"".join(_HEADER.pack(kind, 999, 0, len(d)) + d for kind, d in records)
    copy.write_bytes(capture.read_bytes() + extra)
    return copy


@pytest.mark.parametrize(
    "label", ["spqr_message_key", "mac_key", "spqr_epoch_secret", "pqxdh_kem_decapsulation"]
)
def test_a_v4_secret_planted_in_the_capture_fails_the_audit(
    v4_run: tuple[Path, Path], tmp_path: Path, label: str
) -> None:
    secret = next(value for name, value in read_secrets(v4_run[1]) if name == label)
    capture = _planted(v4_run[0], tmp_path, b"\x00\x00\x00\x30 a client's bytes " + secret[5:])
    result = AuditResult()
    secret_scan(observe(capture), read_secrets(v4_run[1]), result)
    assert result.problems == [f"secret {label} appears in the capture"]


def test_a_real_spqr_key_sent_as_a_field_5_chunk_is_caught_by_the_key_trial(
    v4_run: tuple[Path, Path], tmp_path: Path
) -> None:
    # The relay reads every field 5 chunk; one that is a real SPQR message key
    # is among its computable keys, which the audit compares with the dump.
    seen = observe(v4_run[0])
    chunk = min(value for value in spqr_public_values(seen, SIGNAL_V4) if len(value) == 32)
    key = next(value for name, value in read_secrets(v4_run[1]) if name == "spqr_message_key")
    capture = tmp_path / "swapped.capture"
    capture.write_bytes(v4_run[0].read_bytes().replace(chunk, key))
    candidates = candidate_keys(public_values(observe(capture), SIGNAL_V4))
    real = {value for _, value in read_secrets(v4_run[1])}
    assert candidates & real == {
        key
    }  # what the audit reports as "a computable key is a real secret"


def test_the_v4_dump_holds_the_real_pqxdh_kyber_and_spqr_epoch_secrets() -> None:
    # The values the dump derives (secrets.py, derived.py) are the ones the code computed.
    from protocol import pqxdh
    from protocol.spqr import states

    computed: dict[str, list[bytes]] = {"ss": [], "epoch": []}

    def encapsulate(*args: object, **kwargs: object) -> tuple[bytes, bytes]:
        ct, ss = real_encapsulate(*args, **kwargs)  # type: ignore[arg-type]
        computed["ss"].append(ss)
        return ct, ss

    def epoch_secret(shared: bytes, epoch: int) -> bytes:
        computed["epoch"].append(real_epoch_secret(shared, epoch))
        return computed["epoch"][-1]

    real_encapsulate, real_epoch_secret = pqxdh.encapsulate, states.epoch_secret
    log = SecretLog()
    rngs = {name: RecordingRandom(DrbgRandom(name.encode())) for name in ("a", "b")}
    with (
        mock.patch.object(pqxdh, "encapsulate", encapsulate),
        mock.patch.object(states, "epoch_secret", epoch_secret),
    ):
        a, b = (
            SessionManager.create(MemoryStore(), PeerAddress(n, 1), SIGNAL_V4, now=0, rng=rngs[n])
            for n in ("a", "b")
        )
        b.generate_one_time_prekeys(1)
        b.generate_kem_prekeys(1)
        a.initiate(b.address, b.prekey_bundles()[0])
        for _ in range(100):
            for sender, receiver in ((a, b), (b, a)):
                for manager in (a, b):
                    for peer in manager.peers():
                        log.add_state(manager.session_record(peer))
                receiver.decrypt(sender.address, sender.encrypt(receiver.address, b"x" * 20))
    for rng in rngs.values():
        log.add_draws(rng)
    dumped: dict[str, set[bytes]] = {}
    for label, value in log.items():
        dumped.setdefault(label, set()).add(value)
    assert len(computed["ss"]) == 1 and computed["ss"][0] in dumped["pqxdh_kem_decapsulation"]
    assert len(computed["epoch"]) >= 3  # both sides, two epochs or more
    assert set(computed["epoch"]) <= dumped["spqr_epoch_secret"]
