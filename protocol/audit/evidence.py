"""``e2ee audit CAPTURE``: what the relay knows, and that none of it decrypts (spec/relay.md §9).

Five parts, each from the capture alone (plus, optionally, the demo's
secrets dump):

1. The metadata the relay does learn, stated plainly: devices and their
   identity keys, connections, who fetched whose bundle, who sent how many
   bytes to whom and when, call membership over time, frame sizes and the
   SFrame KIDs (RFC 9605 §9.2: KIDs are visible to intermediaries).
2. A scan of every byte it saw for every secret of the run: no 16-byte
   window of any secret of 16 bytes or more may appear (``scan_secrets``).
3. Every key it can compute, tried on a sample of messages and frames
   (``keytrial``), with the real keys as the control; and, with a secrets
   dump, no computable key may equal any real secret.
4. A symbolic closure (``knowledge``) over a model of the key schedule shaped
   like the capture: no message, header, root, chain, media or frame key and
   no plaintext is derivable from what the relay saw. The models are of
   pq-default and signal-v4 sessions; for a capture of another profile this
   part says so and does not run.
5. With the ``video`` extra, every frame fed to each video decoder the
   video view knows, one stream per sender (spec/video.md §4).

The audit fails (non-zero exit) if a secret is found, a computable key opens
anything or equals a secret, the control does not open its samples, the
closure derives a secret, or a frame decodes as video; and it does not pass
a capture that holds no message and no frame, where there was nothing to
check.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from protocol.audit.keytrial import candidate_keys, public_values, samples, spqr_message, trial
from protocol.audit.knowledge import Model, Term, call_model, session_model
from protocol.audit.observe import Message, Observation, observe
from protocol.audit.secrets import read_secrets
from protocol.audit.triple_model import triple_session_model
from protocol.errors import ProtocolError
from protocol.media.sframe import decode_header
from protocol.profiles import DEFAULT_PROFILE, Profile
from protocol.progress import Progress, silent
from protocol.relay.schema import Address

WINDOW = 16
# Secrets shorter than a window but at least this long (AEAD nonces, SFrame
# salts) are looked for whole; shorter ones cannot be told from chance.
SHORTEST = 12
_GRAM = 8  # the capture is indexed by 8-byte grams at every 8th offset (see scan_secrets)


@dataclass
class AuditResult:
    report: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def say(self, line: str = "") -> None:
        self.report.append(line)


def name(address: Address) -> str:
    return f"{address.user}.{address.device}"


# --- 1. Metadata ----------------------------------------------------------------------------


def describe(seen: Observation, result: AuditResult) -> None:
    result.say("What the relay learns (metadata it necessarily sees):")
    result.say(f"  devices and identity keys ({len(seen.identity_keys)}):")
    for address, key in sorted(seen.identity_keys.items(), key=lambda kv: name(kv[0])):
        endorser = seen.endorsements.get(address)
        endorsed = "" if endorser is None else f"  (endorsed by {name(endorser)})"
        result.say(f"    {name(address):<14} {key.hex()}{endorsed}")
    result.say(f"  connections: {len(seen.connections)} (peer addresses and open/close times)")
    fetches = Counter((name(a), name(b)) for _, a, b in seen.bundle_fetches)
    result.say(f"  bundle fetches (who starts a session with whom): {sum(fetches.values())}")
    for (fetcher, owner), count in sorted(fetches.items()):
        result.say(f"    {fetcher:>10} -> {owner:<10} {count}")
    _describe_messages(seen, result)
    _describe_calls(seen, result)
    malformed = [c.number for c in seen.connections.values() if c.malformed]
    result.say(f"  connections that sent malformed frames: {malformed or 'none'}")


def _describe_messages(seen: Observation, result: AuditResult) -> None:
    sizes = [len(m.body) for m in seen.messages]
    if sizes:
        seconds = (seen.messages[-1].time_us - seen.messages[0].time_us) / 1e6
        result.say(
            f"  messages: {len(sizes)} in {seconds:.2f} s, sizes {min(sizes)}-{max(sizes)} bytes "
            f"(median {statistics.median(sizes):.0f})"
        )
    pairs = Counter((name(m.sender), name(m.recipient)) for m in seen.messages)
    result.say("  who writes to whom (messages):")
    for (sender, recipient), count in sorted(pairs.items()):
        result.say(f"    {sender:>10} -> {recipient:<10} {count}")


def _describe_calls(seen: Observation, result: AuditResult) -> None:
    start = min([e.time_us for e in seen.calls], default=0)
    result.say("  call membership over time:")
    for event in seen.calls:
        when = (event.time_us - start) / 1e6
        room = event.call.hex()[:8]
        result.say(f"    +{when:7.3f} s  room {room}  {event.event:<5} {name(event.device)}")
    per_sender: dict[str, list[int]] = {}
    kids: dict[str, set[int | str]] = {}
    for media in seen.media:
        per_sender.setdefault(name(media.sender), []).append(len(media.frame))
        kids.setdefault(name(media.sender), set()).add(_kid(media.frame))
    for sender, sizes in sorted(per_sender.items()):
        result.say(
            f"  frames from {sender}: {len(sizes)}, {sum(sizes):,} bytes, "
            f"sizes {min(sizes)}-{max(sizes)}, "
            f"SFrame KIDs {sorted(kids[sender], key=str)} (key generation << 8 | ratchet step)"
        )


def _kid(frame: bytes) -> int | str:
    """The frame's SFrame KID; the relay forwards any bytes, so it may not parse."""
    try:
        return decode_header(frame)[0]
    except ProtocolError:
        return "unparsable"


# --- 2. Secret scan -----------------------------------------------------------------------------


def scan_secrets(streams: Iterable[bytes], secrets: list[tuple[str, bytes]]) -> list[str]:
    """Labels of secrets with a 16-byte window that occurs in any stream.

    A 16-byte common substring covers a whole 8-byte gram of the stream at
    an offset divisible by 8, so indexing those grams and looking up every
    8-byte window of every secret finds each candidate; a candidate counts
    only if the full 16-byte window is then found in the stream.
    """
    data = b"\x00".join(streams)
    grams = {data[i : i + _GRAM] for i in range(0, len(data) - _GRAM + 1, _GRAM)}
    found = []
    for label, secret in secrets:
        for i in range(len(secret) - _GRAM + 1):
            if secret[i : i + _GRAM] in grams and _window_in(secret, i, data):
                found.append(label)
                break
    return found


def _window_in(secret: bytes, i: int, data: bytes) -> bool:
    """Any 16-byte window of ``secret`` containing the gram at ``i`` occurs in ``data``."""
    first = max(0, i + _GRAM - WINDOW)
    last = min(i, len(secret) - WINDOW)
    return any(secret[s : s + WINDOW] in data for s in range(first, last + 1))


# --- 4. Symbolic model -------------------------------------------------------------------


def model_of(seen: Observation, profile: Profile = DEFAULT_PROFILE) -> Model:
    """A model with the capture's shape: a session per pair that exchanged messages,
    chains from the direction changes, each call sender's generations (one more per
    leave) and steps (one per join) while it was in the call. In signal-v4 each
    message's SPQR epoch is the one its field 5 names (``triple_model``)."""
    model = Model()
    carriers: dict[str, list[Term]] = {}
    for sid, (pair, messages) in enumerate(_conversations(seen).items()):
        initiator = messages[0].sender
        a, b = name(initiator), name(next(iter(pair - {initiator}), initiator))
        runs = _runs(messages)
        if profile.spqr:
            epochs = [[_key_epoch(profile, message.body) for message in run] for run in runs]
            last = triple_session_model(model, f"s{sid}", a, b, epochs)
        else:
            last = session_model(model, f"s{sid}", a, b, [len(r) for r in runs])
        for run, key in zip(runs, last, strict=True):
            carriers.setdefault(name(run[0].sender), []).append(key)
    for sender, (generations, steps) in _call_shape(seen).items():
        keys = carriers.get(sender, [])
        if keys:
            call_model(model, sender, [keys[g % len(keys)] for g in range(generations)], steps, 2)
    return model


def _conversations(seen: Observation) -> dict[frozenset[Address], list[Message]]:
    pairs: dict[frozenset[Address], list[Message]] = {}
    for message in seen.messages:
        pairs.setdefault(frozenset((message.sender, message.recipient)), []).append(message)
    return pairs


def _runs(messages: list[Message]) -> list[list[Message]]:
    runs: list[list[Message]] = []
    for message in messages:
        if runs and runs[-1][0].sender == message.sender:
            runs[-1].append(message)
        else:
            runs.append([message])
    return runs


def _key_epoch(profile: Profile, body: bytes) -> int:
    """The SPQR epoch whose chain key the message uses: its field 5 epoch less one."""
    spqr = spqr_message(profile, body)
    return 0 if spqr is None else spqr.epoch - 1


def _call_shape(seen: Observation) -> dict[str, tuple[int, int]]:
    """Per sender: (generations, ratchet steps) implied by the leaves and joins it saw."""
    members: set[Address] = set()
    shape: dict[str, tuple[int, int]] = {}
    for event in seen.calls:
        for member in members - {event.device}:
            generations, steps = shape.get(name(member), (1, 0))
            shape[name(member)] = (
                generations + (event.event == "leave"),
                steps + (event.event == "join"),
            )
        if event.event == "join":
            members.add(event.device)
            shape.setdefault(name(event.device), (1, 0))
        else:
            members.discard(event.device)
    return shape


# --- Putting it together -----------------------------------------------------------------


def audit(
    capture: Path | str,
    secrets_path: Path | str | None = None,
    profile: Profile = DEFAULT_PROFILE,
    samples_per_kind: int = 1,
    progress: Progress = silent,
) -> AuditResult:
    """Run all five parts on a capture; see the module docstring.

    ``progress`` is told after reading the capture and after each part.
    """
    result = AuditResult()
    seen = observe(capture)
    secrets = read_secrets(secrets_path) if secrets_path is not None else []
    parts: list[Callable[[], None]] = [
        lambda: describe(seen, result),
        lambda: secret_scan(seen, secrets, result),
        lambda: _keys(seen, secrets, profile, samples_per_kind, result),
        lambda: _symbolic(seen, profile, result),
        lambda: _video(seen, result),
    ]
    progress(1, len(parts) + 1)
    for done, part in enumerate(parts, start=2):
        part()
        progress(done, len(parts) + 1)
    if not seen.messages and not seen.media:
        result.problems.append("nothing to check: the capture holds no message and no frame")
    result.say("")
    result.say("RESULT: " + ("nothing the relay saw decrypts or leaks" if result.ok else "FAILED"))
    for problem in result.problems:
        result.say(f"  problem: {problem}")
    return result


def _video(seen: Observation, result: AuditResult) -> None:
    """5. Every frame fed, as the relay has it, to each video decoder (spec/video.md §4)."""
    from protocol import video

    if not video.available():
        result.say(f"Video decoders: not run (needs the video extra: {video.INSTALL_HINT})")
        return
    from protocol.video.relay_view import try_codecs

    streams: dict[str, list[bytes]] = {}
    for media in seen.media:
        streams.setdefault(name(media.sender), []).append(media.frame)
    for codec, decoded, tried in try_codecs(streams):
        result.say(f"Video decoders: {codec} decoded {decoded} of {tried} frames")
        if decoded:
            result.problems.append(f"{decoded} frames the relay forwarded decode as {codec}")


def secret_scan(seen: Observation, secrets: list[tuple[str, bytes]], result: AuditResult) -> None:
    """2. Every secret of the dump looked for in every byte the relay saw."""
    if not secrets:
        result.say("Secret scan: skipped (no --secrets dump given)")
        return
    scanned = [(label, value) for label, value in secrets if len(value) >= WINDOW]
    short = [(label, value) for label, value in secrets if SHORTEST <= len(value) < WINDOW]
    total = sum(len(s) for s in seen.streams)
    found = scan_secrets(seen.streams, scanned)
    found += [label for label, value in short if any(value in s for s in seen.streams)]
    unscanned = len(secrets) - len(scanned) - len(short)
    result.say(
        f"Secret scan: {len(scanned)} secrets by every {WINDOW}-byte window and {len(short)} "
        f"of {SHORTEST}-{WINDOW - 1} bytes whole ({unscanned} shorter not scanned) "
        f"against {total:,} captured bytes: {len(found)} found"
    )
    result.problems += [f"secret {label} appears in the capture" for label in found]


def _keys(
    seen: Observation,
    secrets: list[tuple[str, bytes]],
    profile: Profile,
    per_kind: int,
    result: AuditResult,
) -> None:
    values = public_values(seen, profile)
    candidates = candidate_keys(values)
    picked = samples(seen, values, profile, per_kind)
    opened = trial(candidates, picked, profile)
    result.say(
        f"Key trial: {len(values.x25519)} X25519 keys and {len(values.kem)} KEM values seen; "
        f"{len(candidates):,} computable keys tried on {len(picked)} samples: "
        f"{sum(opened.values())} opened"
    )
    result.problems += [f"a computable key opens {what}" for what, n in opened.items() if n]
    if secrets:
        real = {value for _, value in secrets}
        equal = candidates & real
        control = trial(real, picked, profile)
        if profile.spqr:  # each real message key under each real SPQR key (spec/spqr.md §13)
            salts = _labelled(secrets, "spqr_message_key")
            salted = trial(_labelled(secrets, "mk"), picked, profile, salts)
            control = {what: n + salted[what] for what, n in control.items()}
        result.say(f"  computable keys equal to a real secret: {len(equal)}")
        opened_by_real = sum(1 for n in control.values() if n)
        result.say(f"  control, the real keys: {opened_by_real} of {len(picked)} samples open")
        result.problems += ["a computable key is a real secret"] * bool(equal)
        result.problems += [
            f"control: no real key opens {what}" for what, n in control.items() if not n
        ]


def _labelled(secrets: list[tuple[str, bytes]], label: str) -> list[bytes]:
    return [value for name, value in secrets if name == label]


def _symbolic(seen: Observation, profile: Profile, result: AuditResult) -> None:
    if profile != DEFAULT_PROFILE and not profile.spqr:
        # Note that the models are of pq-default and signal-v4 sessions (spec/relay.md
        # §9.4); either, for another profile's capture, would claim what it does not model.
        result.say("Symbolic check: not run (the models are of pq-default and signal-v4)")
        return
    model = model_of(seen, profile)
    derivable = model.derivable_secrets()
    result.say(
        f"Symbolic check: {len(model.wire)} wire terms, {len(model.secrets)} secrets "
        f"(SK, root, chain, header, message, media and frame keys, plaintexts): "
        f"{len(derivable)} derivable"
    )
    result.problems += [f"derivable: {secret}" for secret in derivable]
