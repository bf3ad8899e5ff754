"""Session policy: the replaced sessions a record keeps and when an unanswered one expires.

Implements spec/session.md §7 and §7.1. A profile's ``SessionPolicy`` part
holds the session layer's own limits, those that lie above the ratchet and
never reach the wire: how many replaced (archived) sessions a record keeps
and how much they may hold together, whether an archived session keeps the
initial message it was still repeating, and how long an initiator's session
may go unanswered before it is no longer used for sending.

``signal-v4`` takes libsignal's (b056faa, ``consts.rs``,
``state/session.rs``, ``session_management.rs``); the other profiles keep
the smaller archive of spec/session.md §7, whose reasons still hold for
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DAY_SECONDS: Final = 24 * 60 * 60


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """The session layer's limits (spec/session.md §7)."""

    # Replaced sessions kept to decrypt late messages and to find a repeated
    # initial message's session (libsignal ARCHIVED_STATES_MAX_LENGTH).
    max_archived_sessions: int
    # Skipped message keys and evicted ids (SPQR's skipped keys too) that the
    # archived sessions of one record hold together. The current session is
    # bounded by its profile; without this bound each archived session could
    # hold as much, and a valid but malicious peer that starts session after
    # session grew its record to about 1.1 MB, every message of it then
    # costing about 300 ms to load and store (issue 11). Oldest archived
    # sessions are dropped first, whole, until the rest fit.
    max_archived_keys: int
    # Seconds an initiator's session may go unanswered and still send
    # (libsignal MAX_UNACKNOWLEDGED_SESSION_AGE); None: no limit.
    max_unacknowledged_age: int | None
    # An archived session forgets the initial message it was repeating, as
    # libsignal's ``archive_current_state_inner`` clears the pending pre-key.
    archive_drops_pending: bool

    def __post_init__(self) -> None:
        counts = (self.max_archived_sessions, self.max_archived_keys)
        if any(type(n) is not int or n < 0 for n in counts):
            raise ValueError("archive limits are non-negative integers")
        age = self.max_unacknowledged_age
        if age is not None and (type(age) is not int or age < 0):
            raise ValueError("the unacknowledged age is a non-negative integer or None")

    def pending_since(self, now: int) -> int | None:
        """The creation time an initiator's session keeps: ``now``, if it can expire."""
        return None if self.max_unacknowledged_age is None else now

    def unacknowledged_expired(self, pending_since: int | None, now: int) -> bool:
        """libsignal ``message_encrypt``: ``timestamp + MAX_UNACKNOWLEDGED_SESSION_AGE < now``.

        Note that the session is still usable at exactly the age limit (the
        comparison is strict, as libsignal's), and that a session stored
        without a time (made before the time was kept) never expires.
        """
        if self.max_unacknowledged_age is None or pending_since is None:
            return False
        return pending_since + self.max_unacknowledged_age < now


SPEC_POLICY: Final = SessionPolicy(
    max_archived_sessions=4,
    max_archived_keys=2000,
    max_unacknowledged_age=None,
    archive_drops_pending=False,
)

LIBSIGNAL_V4_POLICY: Final = SessionPolicy(
    max_archived_sessions=40,  # consts.rs ARCHIVED_STATES_MAX_LENGTH
    max_archived_keys=2000,
    max_unacknowledged_age=30 * DAY_SECONDS,  # consts.rs MAX_UNACKNOWLEDGED_SESSION_AGE
    archive_drops_pending=True,
)
