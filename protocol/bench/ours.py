"""Our rows and their floors (README.md "Performance").

Each row pairs a workload on our public API with the floor built from the
exact primitive sequence that API performs: the ``floor.py`` steps listed
by ``sequences.py``, which names the functions whose pyca calls they
repeat. SFrame's floor is here, next to its workload.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.bench.fanout import fanout_workloads
from protocol.bench.floor import sequence_workload
from protocol.bench.forged import forged_workload
from protocol.bench.rows import RowSpec
from protocol.bench.sequences import (
    burst_unit_sequence,
    epoch_pingpong_sequence,
    handshake_sequence,
    pingpong_sequence,
)
from protocol.bench.session_pair import (
    RatchetPair,
    SessionPair,
    handshake_workload,
    make_pair,
    spqr_epochs,
)
from protocol.bench.timing import Run, Workload
from protocol.bench.workloads import burst, ping_pong
from protocol.media.sframe import DEFAULT_SUITE, derive_frame_key, encrypt_frame, open_frame
from protocol.profiles import DEFAULT_PROFILE, PROFILES, SIGNAL_V4, Profile
from protocol.session.records import SessionRecord
from protocol.store import dump_state, load_state

# --- SFrame: encrypt_frame + open_frame ---------------------------------------------------

_METADATA: Final = b""


def _sframe(size: int) -> tuple[Workload, Workload]:
    """Ours: encrypt_frame + open_frame under one FrameKey, counters 0, 1, 2, ...

    Floor: the same two pyca calls on one cached ``AESGCM`` object, as
    FrameKey caches it: AESGCM.encrypt and AESGCM.decrypt.
    """
    frame = os.urandom(size)

    def prepare_ours(units: int) -> Run:
        key = derive_frame_key(DEFAULT_SUITE, os.urandom(16), 0x0100)

        def run() -> None:
            for ctr in range(units):
                open_frame(key, encrypt_frame(key, ctr, _METADATA, frame), _METADATA)

        return run

    def prepare_floor(units: int) -> Run:
        aead, nonce, aad = AESGCM(os.urandom(16)), bytes(12), b"\x08\x01\x00"

        def run() -> None:
            for _ in range(units):
                aead.decrypt(nonce, aead.encrypt(nonce, frame, aad), aad)

        return run

    key = f"sframe-{size}"
    return Workload(f"ours/{key}", prepare_ours), Workload(f"floor/{key}", prepare_floor)


# --- The rows ---------------------------------------------------------------------------


def _ping_pong_row(profile: Profile) -> RowSpec:
    """Ping-pong per message; with SPQR, averaged over whole epochs (workloads.ping_pong)."""
    name = profile.name

    def make() -> RatchetPair:
        return make_pair(profile)

    if profile.spqr:
        warmup, period = spqr_epochs(profile)
        sequence = epoch_pingpong_sequence(profile, period)
        return RowSpec(
            "pingpong-spqr",
            name,
            f"ping-pong per message, {name}, SPQR epochs of {period}",
            ping_pong(f"ours/pingpong/{name}", make, warmup=warmup, period=period),
            sequence_workload(f"floor/pingpong/{name}", profile, sequence, period, per_unit=True),
        )
    kind = "pingpong-he" if profile.headers.encrypted else "pingpong"
    encrypted_headers = ", header-encrypted" if profile.headers.encrypted else ""
    return RowSpec(
        kind,
        name,
        f"ping-pong per message, {name}{encrypted_headers}",
        ping_pong(f"ours/pingpong/{name}", make),
        sequence_workload(f"floor/pingpong/{name}", profile, pingpong_sequence(profile)),
    )


def _profile_rows(profile: Profile, burst_length: int) -> list[RowSpec]:
    name = profile.name

    def make() -> RatchetPair:
        return make_pair(profile)

    def floor(kind: str, sequence: list[str], ops: int = 1) -> Workload:
        return sequence_workload(f"floor/{kind}/{name}", profile, sequence, ops, per_unit=True)

    burst_floor = burst_unit_sequence(profile, burst_length)
    return [
        RowSpec(
            "setup",
            name,
            f"set-up, {name}",
            handshake_workload(f"ours/setup/{name}", profile),
            floor("setup", handshake_sequence(profile)),
        ),
        _ping_pong_row(profile),
        RowSpec(
            "burst",
            name,
            f"burst of {burst_length} per message, {name}",
            burst(f"ours/burst/{name}", make, burst_length),
            floor("burst", burst_floor, burst_length),
        ),
        RowSpec(
            "reverse",
            name,
            f"{burst_length} in reverse per message, {name}",
            burst(f"ours/reverse/{name}", make, burst_length, reverse=True),
            floor("reverse", burst_floor, burst_length),
        ),
    ]


def _serialize(profile: Profile) -> Workload:
    """store.load_state then store.dump_state of an acknowledged session's stored record."""
    stored: list[bytes] = []

    def prepare(units: int) -> Run:
        if not stored:
            stored.append(SessionPair(profile).serialized(1))
        data = stored[0]

        def run() -> None:
            for _ in range(units):
                dump_state(load_state(SessionRecord, data))

        return run

    return Workload(f"ours/serialize/{profile.name}", prepare)


def our_rows(burst_length: int, fanout_devices: int) -> list[RowSpec]:
    """Every timed row of ours, in the order of the table."""
    rows: list[RowSpec] = []
    for profile in (*PROFILES.values(), SIGNAL_V4):
        rows += _profile_rows(profile, burst_length)
    for size, variant in ((1200, "1200 B"), (50_000, "50 KB")):
        ours, floor = _sframe(size)
        kind = "sframe-1200" if size == 1200 else "sframe-50k"
        rows.append(RowSpec(kind, variant, f"SFrame encrypt+decrypt, {variant}", ours, floor))
    session_title = f"ping-pong per message via SessionManager, {DEFAULT_PROFILE.name}"
    rows.append(
        RowSpec(
            "session-pingpong",
            DEFAULT_PROFILE.name,
            session_title,
            ping_pong("ours/session-pingpong", lambda: SessionPair(DEFAULT_PROFILE)),
            sequence_workload(
                "floor/session-pingpong", DEFAULT_PROFILE, pingpong_sequence(DEFAULT_PROFILE)
            ),
        )
    )
    ours, floor = fanout_workloads(fanout_devices)
    title = f"MediaKey fan-out to {fanout_devices} devices"
    rows.append(RowSpec("fanout", str(fanout_devices), title, ours, floor))
    for profile in PROFILES.values():
        title = f"reload + serialize session, {profile.name}"
        rows.append(RowSpec("serialize", profile.name, title, _serialize(profile), None))
    for profile in (*PROFILES.values(), SIGNAL_V4):
        title = f"worst-case forged message, {profile.name}"
        rows.append(RowSpec("forged", profile.name, title, forged_workload(profile), None))
    return rows
