"""A decrypting process killed at any point loses no message (spec/storage.md §7).

A writer subprocess decrypts a stream of messages into a SQLite store,
storing each plaintext in an ``inbox`` table inside the decrypt's own
transaction and acknowledging it on stdout after the commit. The test kills
it with SIGKILL at random points, reopens the store, and checks that every
acknowledged message is in the inbox exactly once and cannot be decrypted
again, and that every other message still decrypts, once.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

from protocol.errors import DuplicateMessage
from protocol.profiles import CLASSIC, SIGNAL_V3, Profile
from protocol.randomness import DrbgRandom
from protocol.session import Address, SessionManager
from protocol.session.records import ONE_TIME_PREKEYS
from protocol.store import MemoryStore, SqliteStore, Transaction

SENDER = Address("sender", 1)
RECEIVER = Address("receiver", 1)
MESSAGES = 40
RUNS = 4
INBOX = "inbox"


def plaintext(index: int) -> bytes:
    return f"message {index}".encode()


def delivery_order(count: int, rng: random.Random) -> list[int]:
    """Send order shuffled in windows of five: every receive may skip or use stored keys."""
    order = list(range(count))
    for start in range(0, count, 5):
        window = order[start : start + 5]
        rng.shuffle(window)
        order[start : start + 5] = window
    return order


def prepare(folder: Path, profile: Profile) -> tuple[Path, list[bytes], str]:
    """A receiver store with one one-time prekey, and the sender's messages in delivery order."""
    path = folder / "initial.db"
    store = SqliteStore(path)
    receiver = SessionManager.create(store, RECEIVER, profile, now=0, rng=DrbgRandom(b"receiver"))
    receiver.generate_one_time_prekeys(1)
    bundle = receiver.prekey_bundles()[0]
    opk = bundle.one_time_prekey
    assert opk is not None
    store.close()
    sender = SessionManager.create(MemoryStore(), SENDER, profile, now=0, rng=DrbgRandom(b"sender"))
    sender.initiate(RECEIVER, bundle)
    sent = [sender.encrypt(RECEIVER, plaintext(i)) for i in range(MESSAGES)]
    order = delivery_order(MESSAGES, random.Random(profile.name))
    return path, [sent[i] for i in order], str(opk.prekey_id)


def writer(db: str, messages_file: str) -> None:
    """The process under test: decrypt every message, acknowledging each after its commit."""
    messages = msgpack.unpackb(Path(messages_file).read_bytes())
    manager = SessionManager(SqliteStore(db))
    for position, data in enumerate(messages):

        def deliver(txn: Transaction, text: bytes, position: int = position) -> None:
            txn.put(INBOX, f"{position:04d}", text)

        manager.decrypt(SENDER, data, deliver=deliver)
        print(f"ack {position}", flush=True)
    print("done", flush=True)


def run_and_kill(db: Path, messages_file: Path, kill_after: int, delay: float) -> set[int]:
    """Start the writer, SIGKILL it after ``kill_after`` acks plus ``delay``; return the acks."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]); "
        "from test_store_crash import writer; writer(sys.argv[1], sys.argv[2])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(db), str(messages_file), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acked: set[int] = set()
    try:
        while len(acked) < kill_after:
            line = process.stdout.readline()
            if not line.startswith("ack"):
                break
            acked.add(int(line.split()[1]))
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        remaining, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    acked.update(int(line.split()[1]) for line in remaining.splitlines() if line.startswith("ack"))
    return acked


def check_after_crash(
    db: Path, messages: list[bytes], expected: list[bytes], acked: set[int], opk: str
) -> None:
    store = SqliteStore(db)
    inbox = {int(key): store.get(INBOX, key) for key in store.keys(INBOX)}
    assert acked <= set(inbox), "an acknowledged message was lost"
    assert set(inbox) == set(range(len(inbox))), "commits happen in delivery order"
    assert (opk in store.keys(ONE_TIME_PREKEYS)) == (not inbox), (
        "prekey use commits with the session"
    )
    manager = SessionManager(store)
    for position, data in enumerate(messages):
        if position in inbox:
            assert inbox[position] == expected[position]
            with pytest.raises(DuplicateMessage):
                manager.decrypt(SENDER, data)
        else:
            assert manager.decrypt(SENDER, data) == expected[position]
            with pytest.raises(DuplicateMessage):
                manager.decrypt(SENDER, data)
    store.close()


@pytest.mark.parametrize("profile", [CLASSIC, SIGNAL_V3], ids=lambda p: p.name)
def test_sigkilled_writer_loses_no_message_and_decrypts_none_twice(
    profile: Profile, tmp_path: Path
) -> None:
    initial, messages, opk = prepare(tmp_path, profile)
    order = delivery_order(MESSAGES, random.Random(profile.name))
    expected = [plaintext(i) for i in order]
    messages_file = tmp_path / "messages.bin"
    messages_file.write_bytes(msgpack.packb(messages))
    chooser = random.Random(f"kill points {profile.name}")
    kill_points = [0, *sorted(chooser.randrange(1, MESSAGES) for _ in range(RUNS - 1))]
    for run, kill_after in enumerate(kill_points):
        db = tmp_path / f"run{run}.db"
        shutil.copyfile(initial, db)
        acked = run_and_kill(db, messages_file, kill_after, chooser.uniform(0, 0.01))
        check_after_crash(db, messages, expected, acked, opk)
