"""Exactly-once delivery on top of the relay's at-least-once fetches (spec/relay.md §7).

``Inbox`` hands each message to the application once per (sender, message
id) and acknowledges a fetch only after the handler returned, so a lost
acknowledgement or a relay restart redelivers without duplicating.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol.client.connection import RelayClient
from protocol.randomness import SYSTEM_RANDOM, Random
from protocol.relay.schema import MAX_FETCH, MESSAGE_ID_LEN, Address, Envelope


def new_message_id(rng: Random = SYSTEM_RANDOM) -> bytes:
    """A sender's message id: 16 random bytes (draws ``relay_message_id``)."""
    return rng.draw("relay_message_id", MESSAGE_ID_LEN)


class Inbox:
    """Exactly-once delivery to the application on top of at-least-once fetches."""

    def __init__(self) -> None:
        self._seen: set[tuple[Address, bytes]] = set()
        self.duplicates = 0

    async def receive(
        self, client: RelayClient, handle: Callable[[Envelope], None], limit: int = MAX_FETCH
    ) -> int:
        """Fetch once, hand each new message to ``handle``, then acknowledge all fetched.

        Returns how many new messages were handled. A message fetched again
        (the ack was lost, or the relay restarted) is acknowledged again but
        not handed over twice.
        """
        client.mail.clear()
        envelopes = await client.fetch(limit)
        handled = 0
        for envelope in envelopes:
            key = (envelope.sender, envelope.mid)
            if key in self._seen:
                self.duplicates += 1
                continue
            handle(envelope)
            self._seen.add(key)
            handled += 1
        if envelopes:
            await client.ack([e.id for e in envelopes])
        return handled
