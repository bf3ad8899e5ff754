"""What one benchmark row is, and the targets rows are judged by (README.md "Performance").

A row pairs our workload with its primitive floor (or with nothing, for
rows such as serialization that have no primitive floor) and, where a peer
library can do the same thing, with the peer's workload of the same kind.
Targets are reported next to the figures, never asserted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol.bench.timing import Workload

# Largest acceptable ours / floor ratio per row kind (the project's targets).
FLOOR_TARGETS: Final[dict[str, float]] = {
    "setup": 1.3,
    "pingpong": 1.25,
    "pingpong-he": 1.25,
    # signal-v4 (issue 13): ping-pong averaged over SPQR epochs, within 1.3x.
    "pingpong-spqr": 1.3,
    "burst": 1.5,
    "sframe-1200": 2.0,
    "sframe-50k": 1.1,
}

# Smallest acceptable Syndace / ours speed-up per row kind; "ahead" elsewhere.
SYNDACE_TARGETS: Final[dict[str, float]] = {
    "setup-pool-1": 1.8,
    "setup": 1.8,
    "pingpong": 1.8,
    "burst": 2.8,
}
AHEAD: Final = 1.0

# Largest acceptable ours / vodozemac ratio per row kind.
VODOZEMAC_TARGETS: Final[dict[str, float]] = {"pingpong": 1.5}

# The serialized session without skipped keys must stay under this many bytes.
SESSION_SIZE_TARGET: Final = 1024

# Our profile compared with the peers: the same message AEAD as Syndace's
# recommended one and Olm's (AES-256-CBC + HMAC-SHA256).
PEER_PROFILE: Final = "signal-v3"


@dataclass(frozen=True, slots=True)
class RowSpec:
    """One row before measurement: ours is a workload or a status such as "pending: ..."."""

    kind: str
    variant: str
    title: str
    ours: Workload | str
    floor: Workload | None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.variant}"

    @property
    def target(self) -> float | None:
        return FLOOR_TARGETS.get(self.kind)
