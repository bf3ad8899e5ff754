"""Profiles are validated compositions of parts (spec/profiles.md §1)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol.agreement import PQXDH_ML_KEM_768, KeyAgreement
from protocol.chains import ChainRules
from protocol.cipher import AesGcmCipher
from protocol.errors import InvalidArgument
from protocol.framing import LIBSIGNAL_V3, MSGPACK
from protocol.headers import EncryptedHeaders
from protocol.profiles import CLASSIC, PQ_DEFAULT, PROFILES, SIGNAL_V3, Profile, with_limits

PACKAGE = Path(__file__).resolve().parent.parent / "protocol"
SESSION_MODULES = {f"session/{path.name}" for path in (PACKAGE / "session").glob("*.py")}

MISFITS: dict[str, tuple[Callable[[], object], str]] = {
    "signal-v3 framed as msgpack": (
        lambda: dataclasses.replace(SIGNAL_V3, framing=MSGPACK),
        "MAC",
    ),
    "classic framed as libsignal protobuf": (
        lambda: dataclasses.replace(CLASSIC, framing=LIBSIGNAL_V3),
        "MAC",
    ),
    "signal-v3 with encrypted headers": (
        lambda: dataclasses.replace(
            SIGNAL_V3, headers=EncryptedHeaders(header_keys_info=b"HeaderKeys")
        ),
        "header",
    ),
    "classic with encrypted headers in libsignal protobuf": (
        lambda: dataclasses.replace(
            CLASSIC,
            cipher=SIGNAL_V3.cipher,
            framing=LIBSIGNAL_V3,
            headers=EncryptedHeaders(header_keys_info=b"HeaderKeys"),
        ),
        "writes the header's fields",
    ),
    "signal-v3 with a 32-byte-SK agreement": (
        lambda: dataclasses.replace(SIGNAL_V3, agreement=PQXDH_ML_KEM_768),
        "SK",
    ),
    "X3DH with a KEM": (
        lambda: dataclasses.replace(SIGNAL_V3.agreement, kem="ML-KEM-768"),
        "KEM",
    ),
    "PQXDH without a KEM": (
        lambda: dataclasses.replace(PQ_DEFAULT.agreement, kem=None),
        "KEM",
    ),
    "equal KDF_CK constants": (
        lambda: dataclasses.replace(CLASSIC.chains, kdf_ck_chain_constant=b"\x01"),
        "KDF_CK",
    ),
    "a zero skip limit": (lambda: with_limits(CLASSIC, max_skip=0), "limits"),
    "a cipher where the framing belongs": (
        lambda: dataclasses.replace(CLASSIC, framing=CLASSIC.cipher),
        "framing",
    ),
    "no size limit": (lambda: dataclasses.replace(CLASSIC, max_message_size=0), "size"),
}


@pytest.mark.parametrize("case", sorted(MISFITS))
def test_parts_that_do_not_fit_are_refused_when_the_profile_is_built(case: str) -> None:
    build, reason = MISFITS[case]
    with pytest.raises(InvalidArgument, match=reason) as refused:
        build()
    assert refused.value.code == "INVALID_ARGUMENT"


def test_every_profile_is_a_composition_its_own_checks_accept() -> None:
    for profile in PROFILES.values():
        rebuilt = Profile(
            profile.name,
            profile.agreement,
            profile.chains,
            profile.cipher,
            profile.headers,
            profile.framing,
            profile.max_message_size,
        )
        assert rebuilt == profile
    assert isinstance(PQ_DEFAULT.agreement, KeyAgreement)
    assert isinstance(CLASSIC.chains, ChainRules)
    assert isinstance(CLASSIC.cipher, AesGcmCipher)


# What reading a profile switch looked like before the parts: a named variant
# compared or tested instead of a part called.
SWITCHES = re.compile(
    r"profile\.(wire|aead|header_encryption|initial_chains|pn_semantics|handshake)\b"
    r"|\.framing\.name|\.cipher\.name|isinstance\([^)]*(Headers|Cipher|Framing)\b"
)


@pytest.mark.parametrize(
    "module", ["ratchet.py", "wire.py", "x3dh.py", "bundle.py", *sorted(SESSION_MODULES)]
)
def test_no_module_above_the_parts_reads_a_profile_switch(module: str) -> None:
    source = (PACKAGE / module).read_text()
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert not SWITCHES.search(code), SWITCHES.search(code)
