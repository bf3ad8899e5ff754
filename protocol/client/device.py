"""A messaging device on the relay: sessions whose messages travel through it (spec/relay.md §8).

``Device`` joins a ``SessionManager`` (spec/session.md) to a ``RelayClient``:
it registers with the identity key of its sessions, publishes its prekeys
(``publish.split_bundles``), sets up a session from a fetched bundle on
first send, and decrypts what it fetches, each message handed over once
(``client.Inbox``). A decryption failure is counted, never raised: the
application sees only authenticated plaintexts.

Every payload carries a one-byte type so one session can carry both chat
text and MediaKey messages (spec/media.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

from protocol.client.connection import RelayClient, connect_device
from protocol.client.inbox import Inbox, new_message_id
from protocol.client.publish import assemble_bundle, split_bundles
from protocol.errors import ProtocolError
from protocol.profiles import Profile
from protocol.randomness import RecordingRandom
from protocol.relay.auth import Endorsement, endorse_device
from protocol.relay.schema import Address, Envelope
from protocol.secrecy import SECRET
from protocol.session import Address as PeerAddress
from protocol.session import SessionManager
from protocol.store import MemoryStore

TEXT: Final = 0x01
MEDIA_KEY: Final = 0x02


@dataclass(frozen=True, slots=True)
class Received:
    """An authenticated plaintext: who sent it (per its session), its type and body."""

    sender: Address
    kind: int
    body: bytes = field(repr=False, metadata=SECRET)


class SecretSink(Protocol):
    """Where a device reports its secrets when a run keeps evidence for the audit.

    ``protocol.audit.secrets.SecretLog`` is one; devices never need one.
    """

    def add(self, label: str, value: bytes) -> None: ...

    def add_state(self, value: object) -> None: ...

    def add_draws(self, rng: RecordingRandom) -> None: ...


def _peer(address: Address) -> PeerAddress:
    return PeerAddress(address.user, address.device)


class Device:
    """One device: its sessions (in memory) and its relay connection."""

    def __init__(
        self,
        address: Address,
        manager: SessionManager,
        client: RelayClient,
        rng: RecordingRandom,
        secrets: SecretSink | None,
    ) -> None:
        self.address = address
        self.manager = manager
        self.client = client
        self.rng = rng
        self._secrets = secrets
        self._inbox = Inbox()
        self.sent = 0
        self.received = 0
        self.refused: list[str] = []  # the error code of each message that did not decrypt

    @classmethod
    async def create(
        cls,
        port: int,
        address: Address,
        profile: Profile,
        rng: RecordingRandom,
        *,
        now: int,
        prekeys: int = 8,
        secrets: SecretSink | None = None,
        endorser: Device | None = None,
    ) -> Device:
        """Make the device's keys, register with the relay and publish its prekeys.

        A further device of a user needs ``endorser``, a registered device of
        the same user, to vouch for it (spec/relay.md §3.1).
        """
        manager = SessionManager.create(MemoryStore(), _peer(address), profile, now=now, rng=rng)
        manager.generate_one_time_prekeys(prekeys)
        if profile.kem is not None:
            manager.generate_kem_prekeys(prekeys)
        identity = manager.identity_key_pair
        endorsement = None if endorser is None else endorser.endorse(address, identity.public)
        client = await connect_device(
            port, address.user, address.device, identity, rng, endorsement
        )
        try:
            await publish(client, manager)
        except BaseException:
            await client.close()
            raise
        return cls(address, manager, client, rng, secrets)

    def endorse(self, address: Address, identity_key: bytes) -> Endorsement:
        """Vouch for a further device of this device's user (spec/relay.md §3.1)."""
        private = self.manager.identity_key_pair.private
        return endorse_device(
            private, self.address.device, address.user, address.device, identity_key, self.rng
        )

    @property
    def failures(self) -> int:
        return len(self.refused)

    async def send(self, peer: Address, kind: int, body: bytes) -> None:
        """Encrypt over the session with ``peer`` (set up from a fetched bundle if new or stale)."""
        session_peer = _peer(peer)
        if not self.manager.has_usable_session(session_peer):
            bundle = assemble_bundle(await self.client.get_bundle(peer))
            self.manager.initiate(session_peer, bundle)
        plaintext = bytes([kind]) + body
        self._snapshot(session_peer)
        data = self.manager.encrypt(session_peer, plaintext)
        self._remember(plaintext)
        await self.client.send(peer, data, new_message_id(self.rng))
        self.sent += 1

    async def receive(self) -> list[Received]:
        """Fetch once; return each new message that decrypted, in order."""
        out: list[Received] = []
        await self._inbox.receive(self.client, lambda e: self._open(e, out))
        return out

    def _open(self, envelope: Envelope, out: list[Received]) -> None:
        peer = _peer(envelope.sender)
        self._snapshot(peer)
        try:
            plaintext = self.manager.decrypt(peer, envelope.body)
        except ProtocolError as error:
            self.refused.append(error.code)
            return
        self._snapshot(peer)
        self._remember(plaintext)
        self.received += 1
        out.append(Received(envelope.sender, plaintext[0], plaintext[1:]))

    def _snapshot(self, peer: PeerAddress) -> None:
        record = self.manager.session_record(peer)
        if self._secrets is not None and record is not None:
            self._secrets.add_state(record)
        self._flush_draws()

    def _flush_draws(self) -> None:
        if self._secrets is not None:
            self._secrets.add_draws(self.rng)
        self.rng.draws.clear()

    def _remember(self, plaintext: bytes) -> None:
        if self._secrets is not None:
            self._secrets.add("plaintext", plaintext)

    def collect(self, state: object) -> None:
        """Add a state's secrets (a call sender or receiver) to the log, if kept."""
        if self._secrets is not None:
            self._secrets.add_state(state)
        self._flush_draws()

    async def close(self) -> None:
        await self.client.close()


async def publish(client: RelayClient, manager: SessionManager) -> None:
    """Upload the signed part of the bundle and the one-time prekeys (spec/relay.md §2.5)."""
    publication = split_bundles(manager.prekey_bundles())
    await client.put_bundle(publication.signed)
    await client.add_prekeys("ec", publication.ec)
    if publication.kem:
        await client.add_prekeys("kem", publication.kem)
