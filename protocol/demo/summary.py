"""The table ``e2ee demo`` prints at the end of a run (spec/relay.md §8)."""

from __future__ import annotations

from protocol.demo.run import DemoOptions, DemoReport
from protocol.profiles import PQ_DEFAULT

COLUMNS = ("sent", "received", "decrypted", "refused*", "failures", "rekeys")


def summary(report: DemoReport, options: DemoOptions) -> str:
    """Per member frame counts, then the messages, the relay's counters and the verdict."""
    header = f"{'participant':<11}" + "".join(f"{c:>10}" for c in COLUMNS)
    lines = [header, "-" * len(header)]
    for m in report.members.values():
        row = (
            m.frames_sent,
            m.frames_received,
            m.frames_decrypted,
            m.refused_as_expected,
            m.failures,
            m.rekeys,
        )
        lines.append(f"{m.media_id:<11}" + "".join(f"{c:10d}" for c in row))
    counts, stats = report.messages, report.stats
    client_drops = sum(d.client.media_dropped for d in report.devices)
    lines += [
        "* frames handed to a member not entitled to them; each must fail",
        "bob.2, the fifth device, is in the messages only: bob is in the call on bob.1",
        f"messages over {options.profile.name} sessions: {counts.text_ok} of "
        f"{counts.text_sent} text messages and "
        f"{counts.keys_ok} of {counts.keys_sent} MediaKey messages (call keys) decrypted",
        "frames in the rotation delay after the leave (not forwarded to the leaver): "
        f"{report.entitlement.delay_window_frames}",
        f"relay: {stats.bytes_received:,} bytes in, {stats.bytes_sent:,} bytes out, "
        f"{stats.media_forwarded} frames forwarded, {stats.media_dropped} dropped for slow "
        f"members, {stats.connections} connections; frames dropped by devices: {client_drops}",
        _capture_line(report, options),
        f"media time: {report.media_seconds:.1f} s of 30 fps video "
        f"({'real time' if options.realtime else 'simulated'}); "
        f"wall time: {report.wall_seconds:.1f} s",
        "RESULT: " + ("OK" if report.ok else "FAILED " + "; ".join(report.entitlement.violations)),
    ]
    return "\n".join(lines)


def _capture_line(report: DemoReport, options: DemoOptions) -> str:
    if report.capture is None:
        return "capture: removed (keep one with --capture FILE, then run e2ee audit FILE)"
    secrets = f" --secrets {options.secrets_out}" if options.secrets_out else ""
    if options.profile != PQ_DEFAULT:
        secrets += f" --profile {options.profile.name}"
    return f"capture: {report.capture}; audit it with: e2ee audit {report.capture}{secrets}"
