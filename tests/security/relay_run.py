"""A generated run through a real relay: conversations, then a group call (spec/security.md §2.1).

``Run`` starts a relay on 127.0.0.1 with a database and a capture file, four
devices of one profile (``relay_parties``), a generated conversation between
them, and a call of three with a leave, whose frames go out under two
generations. It collects every secret as it goes (``Secrets``: every record of
every store after every step, the call states, the draws, the plaintexts)
and keeps the parties, whose stores a test may then steal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from hypothesis import strategies as st
from relay_parties import Party, create_party
from security_harness import Secrets, snapshot

from protocol.audit.secrets import SecretLog
from protocol.client.device import TEXT
from protocol.demo.call import FPS, SHORT_CALL_LIMITS, Call, SimClock, media_id
from protocol.profiles import Profile
from protocol.randomness import DrbgRandom
from protocol.relay.harness import running_relay
from protocol.relay.schema import Address

ADDRESSES: Final = (Address("alice", 1), Address("bob", 1), Address("bob", 2), Address("carol", 1))
CALL_MEMBERS: Final = ("alice.1", "bob.1", "carol.1")
LEAVER: Final = "carol.1"
# Past the rotation delay at 30 fps, so frames go out under two generations.
CALL_TICKS: Final = int(SHORT_CALL_LIMITS.rotation_delay * FPS) + 3

# (sender, recipient, plaintext length, everyone fetches afterwards)
Step = tuple[int, int, int, bool]
steps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(16, 300), st.booleans()).filter(
        lambda s: ADDRESSES[s[0]].user != ADDRESSES[s[1]].user
    ),
    min_size=1,
    max_size=8,
)


class Run:
    """One generated run; collects secrets as it goes."""

    def __init__(self, profile: Profile, seed: bytes) -> None:
        self.profile = profile
        self.seed = seed
        self.secrets = Secrets()
        self.log = SecretLog()
        self.rng = DrbgRandom(seed + b" plaintexts")
        self.parties: list[Party] = []

    def steal(self, parties: list[Party]) -> None:
        for party in parties:
            self.secrets.add_records(snapshot(party.store))

    async def converse(self, parties: list[Party], script: list[Step]) -> None:
        for sender, recipient, length, fetch in script:
            body = self.rng.draw("plaintext", length)
            await parties[sender].device.send(parties[recipient].address, TEXT, body)
            self.secrets.add("plaintext", bytes([TEXT]) + body)
            if fetch:
                for party in parties:
                    await party.device.receive()
            self.steal(parties)
        for party in parties:
            await party.device.receive()
        self.steal(parties)

    async def call(self, parties: list[Party]) -> Call:
        devices = [p.device for p in parties if media_id(p.address) in CALL_MEMBERS]
        call_id, room = self.rng.draw("call_id", 16), self.rng.draw("relay_room_id", 16)
        call = Call(devices, call_id, room, SimClock(), SHORT_CALL_LIMITS)
        await call.start(CALL_MEMBERS)
        for tick in range(CALL_TICKS):
            call.clock.now = tick / FPS
            if tick == 1:
                await call.leave(LEAVER, tick)
            await call.tick(tick)
            for member in call.members.values():
                self.secrets.add_state(None if member.sender is None else member.sender.state)
                self.secrets.add_state(None if member.receiver is None else member.receiver.state)
            self.steal(parties)
        for frame in call.frames:
            self.secrets.add("frame_plaintext", frame.plaintext)
        return call

    async def run(self, folder: Path, script: list[Step]) -> Call:
        capture = folder / "relay.capture"
        async with running_relay(folder / "relay.db", capture_path=capture) as relay:
            parties: list[Party] = []
            for address in ADDRESSES:
                endorser = next((p for p in parties if p.address.user == address.user), None)
                parties.append(
                    await create_party(
                        relay.port, address, self.profile, self.seed, self.log, endorser
                    )
                )
            self.parties = parties
            try:
                await self.converse(parties, script)
                call = await self.call(parties)
                for party in parties:  # everything queued is delivered before the run ends
                    await party.device.receive()
            finally:
                for party in parties:
                    party.device.collect(None)
                    await party.device.close()
        for label, value in self.log.items():
            self.secrets.add(label, value)
        return call
