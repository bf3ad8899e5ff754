"""The relay's persistent state in SQLite (spec/relay.md §4).

Every mutation is one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``) and the
server answers a request only after its transaction committed, so a process
killed at any instant leaves either the whole effect of a request or none of
it (spec/relay.md §4.2). The database runs in WAL mode with
``synchronous=FULL``: a commit is on disk before the answer is sent.

The store holds only what the server may know: identity public keys, opaque
bundle and prekey bytes, and opaque message bodies with their routing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from protocol.errors import (
    AccessDenied,
    LimitExceeded,
    MalformedMessage,
    StateCorrupt,
    UnknownDevice,
    UnsupportedVersion,
)
from protocol.primitives import constant_time_equal
from protocol.relay.schema import (
    FETCH_BUDGET,
    MAX_DEVICES,
    Address,
    Envelope,
    FetchedBundle,
    Prekey,
    envelope_size,
)

SCHEMA_VERSION: Final = 1

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS devices (
    user TEXT NOT NULL, device INTEGER NOT NULL, identity_key BLOB NOT NULL,
    PRIMARY KEY (user, device));
CREATE TABLE IF NOT EXISTS bundles (
    user TEXT NOT NULL, device INTEGER NOT NULL, bundle BLOB NOT NULL,
    PRIMARY KEY (user, device));
CREATE TABLE IF NOT EXISTS prekeys (
    user TEXT NOT NULL, device INTEGER NOT NULL, kind TEXT NOT NULL,
    prekey_id INTEGER NOT NULL, prekey BLOB NOT NULL,
    PRIMARY KEY (user, device, kind, prekey_id));
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL, device INTEGER NOT NULL,
    from_user TEXT NOT NULL, from_device INTEGER NOT NULL,
    mid BLOB NOT NULL, body BLOB NOT NULL, ts INTEGER NOT NULL,
    UNIQUE (user, device, from_user, from_device, mid));
"""


class RelayStore:
    """The relay's tables; one instance per server process."""

    def __init__(
        self, path: Path | str, max_queued: int, max_prekeys: int, max_devices: int = MAX_DEVICES
    ) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError:
            self._db.close()
            raise StateCorrupt("the file is not a relay database") from None
        self._db.execute("PRAGMA synchronous=FULL")
        self._max_queued = max_queued
        self._max_prekeys = max_prekeys
        self._max_devices = max_devices
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version not in (0, SCHEMA_VERSION):
            raise UnsupportedVersion(f"relay database has schema version {version}")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # --- Identities (spec/relay.md §3) ----------------------------------------

    def register(
        self, address: Address, identity_key: bytes, endorsed_by: Address | None = None
    ) -> bool:
        """Bind a device's identity key on first sight; refuse a different one later.

        The first device of a user name binds the name; a further device is
        registered only if ``endorsed_by``, a registered device of the same
        user, vouched for it (the caller checked its signature, spec/relay.md
        §3.1), and only while the user has fewer than ``max_devices``.
        Returns True if this call registered the device.
        """
        with self._transaction() as db:
            known = self._identity(db, address)
            if known is None:
                self._admit(db, address, endorsed_by)
                db.execute(
                    "INSERT INTO devices VALUES (?, ?, ?)",
                    (address.user, address.device, identity_key),
                )
                return True
        if not constant_time_equal(known, identity_key):
            raise AccessDenied("a different identity key is registered for this device")
        return False

    def _admit(self, db: sqlite3.Connection, address: Address, endorsed_by: Address | None) -> None:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM devices WHERE user = ?", (address.user,)
        ).fetchone()
        if count == 0:
            return
        if endorsed_by is None or endorsed_by.user != address.user:
            raise AccessDenied("a further device needs the endorsement of a device of its user")
        if self._identity(db, endorsed_by) is None:
            raise AccessDenied("the endorsing device is not registered")
        if count >= self._max_devices:
            raise LimitExceeded(f"a user has at most {self._max_devices} devices")

    def identity(self, address: Address) -> bytes | None:
        return self._identity(self._db, address)

    @staticmethod
    def _identity(db: sqlite3.Connection, address: Address) -> bytes | None:
        row = db.execute(
            "SELECT identity_key FROM devices WHERE user = ? AND device = ?",
            (address.user, address.device),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def devices(self, user: str) -> list[int]:
        rows = self._db.execute(
            "SELECT device FROM devices WHERE user = ? ORDER BY device", (user,)
        ).fetchall()
        return [int(row[0]) for row in rows]

    # --- Bundles and one-time prekeys (spec/relay.md §2.2, §4.1) --------------

    def put_bundle(self, address: Address, bundle: bytes) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO bundles VALUES (?, ?, ?)",
                (address.user, address.device, bundle),
            )

    def add_prekeys(self, address: Address, kind: str, prekeys: Sequence[Prekey]) -> int:
        """Store one-time prekeys; all or none. Returns how many of ``kind`` are stored."""
        with self._transaction() as db:
            stored = self._count(db, address, kind) + len(prekeys)
            if stored > self._max_prekeys:
                raise LimitExceeded(f"at most {self._max_prekeys} one-time prekeys per kind")
            try:
                db.executemany(
                    "INSERT INTO prekeys VALUES (?, ?, ?, ?, ?)",
                    [(address.user, address.device, kind, p.id, p.key) for p in prekeys],
                )
            except sqlite3.IntegrityError:
                raise MalformedMessage("a prekey id is already stored") from None
            return stored

    def prekey_count(self, address: Address, kind: str) -> int:
        return self._count(self._db, address, kind)

    @staticmethod
    def _count(db: sqlite3.Connection, address: Address, kind: str) -> int:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM prekeys WHERE user = ? AND device = ? AND kind = ?",
            (address.user, address.device, kind),
        ).fetchone()
        return int(count)

    def take_bundle(self, address: Address) -> FetchedBundle:
        """Hand out the bundle with one prekey of each kind, each removed in the same
        transaction, so no two fetches ever receive the same one-time prekey."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT bundle FROM bundles WHERE user = ? AND device = ?",
                (address.user, address.device),
            ).fetchone()
            if row is None:
                raise UnknownDevice("no bundle for this device")
            return FetchedBundle(
                bytes(row[0]), self._pop(db, address, "ec"), self._pop(db, address, "kem")
            )

    @staticmethod
    def _pop(db: sqlite3.Connection, address: Address, kind: str) -> Prekey | None:
        row = db.execute(
            "DELETE FROM prekeys WHERE rowid = (SELECT rowid FROM prekeys"
            " WHERE user = ? AND device = ? AND kind = ? ORDER BY prekey_id LIMIT 1)"
            " RETURNING prekey_id, prekey",
            (address.user, address.device, kind),
        ).fetchone()
        return None if row is None else Prekey(int(row[0]), bytes(row[1]))

    # --- Mailboxes (spec/relay.md §2.2, §4.2) ---------------------------------

    def enqueue(self, recipient: Address, sender: Address, mid: bytes, body: bytes, ts: int) -> int:
        """Queue a message; a resend with the same (sender, mid) returns the first id."""
        with self._transaction() as db:
            if self._identity(db, recipient) is None:
                raise UnknownDevice("no such recipient device")
            existing = db.execute(
                "SELECT id FROM messages WHERE user = ? AND device = ? AND from_user = ?"
                " AND from_device = ? AND mid = ?",
                (recipient.user, recipient.device, sender.user, sender.device, mid),
            ).fetchone()
            if existing is not None:
                return int(existing[0])
            (queued,) = db.execute(
                "SELECT COUNT(*) FROM messages WHERE user = ? AND device = ?",
                (recipient.user, recipient.device),
            ).fetchone()
            if queued >= self._max_queued:
                raise LimitExceeded(f"mailbox holds {self._max_queued} messages")
            cursor = db.execute(
                "INSERT INTO messages (user, device, from_user, from_device, mid, body, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (recipient.user, recipient.device, sender.user, sender.device, mid, body, ts),
            )
            return int(cursor.lastrowid or 0)

    def fetch(self, address: Address, limit: int) -> list[Envelope]:
        """The oldest queued messages, at most ``limit`` and at most what one response
        frame holds (``FETCH_BUDGET``); they stay queued until acknowledged.

        Note that the budget, not only ``limit``, decides where a fetch ends:
        a response never outgrows its frame, and since the largest message
        fits alone, every queued message is eventually handed out.
        """
        rows = self._db.execute(
            "SELECT id, from_user, from_device, mid, body, ts FROM messages"
            " WHERE user = ? AND device = ? ORDER BY id LIMIT ?",
            (address.user, address.device, limit),
        )
        envelopes, spent = [], 0
        for r in rows:
            sender = Address(str(r[1]), int(r[2]))
            envelope = Envelope(int(r[0]), sender, bytes(r[3]), bytes(r[4]), int(r[5]))
            spent += envelope_size(envelope)
            if spent > FETCH_BUDGET:
                break
            envelopes.append(envelope)
        rows.close()
        return envelopes

    def ack(self, address: Address, ids: Sequence[int]) -> int:
        """Delete acknowledged messages of this mailbox only; returns how many went."""
        with self._transaction() as db:
            removed = 0
            for message_id in ids:
                cursor = db.execute(
                    "DELETE FROM messages WHERE id = ? AND user = ? AND device = ?",
                    (message_id, address.user, address.device),
                )
                removed += cursor.rowcount
            return removed

    def queued(self, address: Address) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE user = ? AND device = ?",
            (address.user, address.device),
        ).fetchone()
        return int(count)
