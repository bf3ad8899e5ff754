"""XEdDSA (spec/xeddsa.md): upstream known answers, properties, libsignal's sign bit, vectors.

Known answers come from tests/kat/libsignal_primitives.json, copied from
libsignal-protocol-c's ``xeddsa_fast_test`` and ``curvesigs_fast_test`` and
libsignal's ``test_signature``. ``xeddsa-sign0-derived-1`` is derived, not
upstream: it only pins which nonce convention a deterministic-Z signer uses.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature as InvalidPyca
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import InvalidArgument, InvalidSignature
from protocol.primitives import P25519, clamp_scalar, sha512, x25519_public_key
from protocol.profiles import CLASSIC, PQ_DEFAULT, SIGNAL_V3
from protocol.randomness import ScriptedRandom
from protocol.vectors import INDEX, verify_file
from protocol.vectors.common import dump
from protocol.vectors.xeddsa import FILE, NOTES, generate, libsignal_sign
from protocol.xeddsa import (
    Q,
    calculate_key_pair,
    hash_i,
    reduce_q,
    scalar_mult_base,
    sign,
    u_to_y,
    verify,
    verify_edwards,
    xeddsa_sign,
    xeddsa_sign_trace,
    xeddsa_verify,
    xeddsa_verify_each,
)

KAT = {
    v["id"]: v
    for v in json.loads((Path(__file__).parent / "kat" / "libsignal_primitives.json").read_text())[
        "vectors"
    ]
}
VECTORS = Path(__file__).resolve().parent.parent / "vectors"

keys = st.binary(min_size=32, max_size=32)
zs = st.binary(min_size=64, max_size=64)
messages = st.binary(max_size=100)
SLOW_PROPERTY = settings(max_examples=30, deadline=None)


def _b(text: str) -> bytes:
    return bytes.fromhex(text)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _e_sign(private_key: bytes) -> int:
    return scalar_mult_base(int.from_bytes(clamp_scalar(private_key), "little"))[31] >> 7


def _rejected(public_key: bytes, message: bytes, signature: bytes, *, libsignal: bool) -> bool:
    try:
        xeddsa_verify(public_key, message, signature, accept_libsignal_sign_bit=libsignal)
    except InvalidSignature:
        return True
    return False


# --- Known answers --------------------------------------------------------------------


def test_spec_signature_matches_libsignal_c_xeddsa_vector_byte_for_byte() -> None:
    vector = KAT["xeddsa-spec-deterministic-1"]
    inputs, expected = vector["inputs"], vector["expected"]
    k, message = _b(inputs["private_key_clamped"]), _b(inputs["message"])
    assert xeddsa_sign(k, message, _b(inputs["Z"])) == _b(expected["signature"])
    assert x25519_public_key(k) == _b(inputs["public_u"])
    assert calculate_key_pair(k)[0] == _b(expected["A_ed25519"])
    xeddsa_verify(_b(inputs["public_u"]), message, _b(expected["signature"]))
    xeddsa_verify(
        _b(inputs["public_u"]), message, _b(expected["signature"]), accept_libsignal_sign_bit=True
    )


def test_upstream_caveats_flipped_first_bit_and_key_ff_are_rejected() -> None:
    inputs = KAT["xeddsa-spec-deterministic-1"]["inputs"]
    signature = _b(KAT["xeddsa-spec-deterministic-1"]["expected"]["signature"])
    message = _b(inputs["message"])
    with pytest.raises(InvalidSignature):
        xeddsa_verify(_b(inputs["public_u"]), message, _flip(signature, 0))
    with pytest.raises(InvalidSignature, match="u >= p"):
        xeddsa_verify(b"\xff" * 32, message, signature)


def test_spec_signer_hashes_a_reduced_mod_q_as_the_derived_sign0_vector_records() -> None:
    vector = KAT["xeddsa-sign0-derived-1"]
    inputs, expected = vector["inputs"], vector["expected"]
    k, message, z = _b(inputs["private_key_clamped"]), _b(inputs["message"]), _b(inputs["Z"])
    assert _e_sign(k) == 0
    assert xeddsa_sign(k, message, z) == _b(expected["signature_spec_a_reduced"])


def test_both_nonce_conventions_verify_for_a_sign0_key() -> None:
    vector = KAT["xeddsa-sign0-derived-1"]
    inputs, expected = vector["inputs"], vector["expected"]
    reduced = _b(expected["signature_spec_a_reduced"])
    unreduced = _b(expected["signature_a_unreduced_as_libsignal_and_libxeddsa"])
    assert reduced != unreduced
    for signature in (reduced, unreduced):
        xeddsa_verify(_b(inputs["public_u"]), _b(inputs["message"]), signature)


def test_libsignal_identity_signature_verifies_only_with_the_sign_bit_flag() -> None:
    inputs = KAT["xeddsa-libsignal-verify-1"]["inputs"]
    private_key, public_key = _b(inputs["signer_private"]), _b(inputs["signer_public_u"])
    message, signature = _b(inputs["message"]), _b(inputs["signature"])
    assert x25519_public_key(private_key) == public_key
    k = int.from_bytes(clamp_scalar(private_key), "little")
    assert calculate_key_pair(clamp_scalar(private_key))[1] == -k % Q  # E.s = 1: a = -k
    assert signature[63] >> 7 == 1
    xeddsa_verify(public_key, message, signature, accept_libsignal_sign_bit=True)
    assert _rejected(public_key, message, signature, libsignal=False)


def test_every_single_bit_flip_of_the_libsignal_signature_is_rejected() -> None:
    inputs = KAT["xeddsa-libsignal-verify-1"]["inputs"]
    public_key, message = _b(inputs["signer_public_u"]), _b(inputs["message"])
    signature = _b(inputs["signature"])
    for bit in range(8 * len(signature)):
        assert _rejected(public_key, message, _flip(signature, bit), libsignal=True), bit


def test_libsignal_c_curvesig_verifies_only_with_the_sign_bit_flag() -> None:
    vector = KAT["xeddsa-libsignal-c-curvesig-1"]
    public_key, message = _b(vector["inputs"]["public_u"]), _b(vector["inputs"]["message"])
    signature = _b(vector["expected"]["signature"])
    xeddsa_verify(public_key, message, signature, accept_libsignal_sign_bit=True)
    assert _rejected(public_key, message, signature, libsignal=False)


def test_vector_generators_libsignal_signer_reproduces_libsignal_c_curvesig() -> None:
    inputs = KAT["xeddsa-libsignal-c-curvesig-1"]["inputs"]
    signature = libsignal_sign(
        _b(inputs["private_key_clamped"]), _b(inputs["message"]), _b(inputs["Z"])
    )
    assert signature == _b(KAT["xeddsa-libsignal-c-curvesig-1"]["expected"]["signature"])


# --- Properties -----------------------------------------------------------------------


@SLOW_PROPERTY
@given(private_key=keys, message=messages, z=zs)
def test_signatures_round_trip_in_both_modes(private_key: bytes, message: bytes, z: bytes) -> None:
    public_key = x25519_public_key(private_key)
    signature = xeddsa_sign(private_key, message, z)
    xeddsa_verify(public_key, message, signature)
    xeddsa_verify(public_key, message, signature, accept_libsignal_sign_bit=True)


@SLOW_PROPERTY
@given(private_key=keys)
def test_calculate_key_pair_gives_a_with_ab_equal_to_the_x25519_key_with_sign_0(
    private_key: bytes,
) -> None:
    a_point, a = calculate_key_pair(clamp_scalar(private_key))
    assert scalar_mult_base(a) == a_point
    assert a_point[31] >> 7 == 0
    u = int.from_bytes(x25519_public_key(private_key), "little")
    y = (u - 1) * pow(u + 1, -1, P25519) % P25519  # the birational map, independently
    assert int.from_bytes(a_point, "little") == y


@SLOW_PROPERTY
@given(private_key=keys, message=messages, z=zs)
def test_spec_signatures_are_ed25519_signatures_under_a_for_pyca(
    private_key: bytes, message: bytes, z: bytes
) -> None:
    # An independent check of the equation: R ‖ s verifies under Ed25519 with
    # public key A (RFC 8032 §5.1.7 via pyca), and a flipped bit fails there too.
    trace = xeddsa_sign_trace(private_key, message, z)
    ed25519_key = Ed25519PublicKey.from_public_bytes(trace.A)
    ed25519_key.verify(trace.signature, message)
    with pytest.raises(InvalidPyca):
        ed25519_key.verify(_flip(trace.signature, 0), message)


def test_sign_draws_one_labelled_64_byte_z() -> None:
    private_key, message, z = bytes(range(32)), b"message", bytes(range(64))
    rng = ScriptedRandom([("xeddsa_z", z)])
    assert sign(private_key, message, rng) == xeddsa_sign(private_key, message, z)
    rng.assert_exhausted()


@SLOW_PROPERTY
@given(
    private_key=keys,
    message=st.binary(min_size=1, max_size=64),
    field=st.sampled_from(["public_key", "message", "signature"]),
    position=st.integers(min_value=0),
    libsignal=st.booleans(),
)
def test_every_one_bit_change_is_rejected(
    private_key: bytes, message: bytes, field: str, position: int, libsignal: bool
) -> None:
    values = {
        "public_key": x25519_public_key(private_key),
        "message": message,
        "signature": xeddsa_sign(private_key, message, bytes(64)),
    }
    values[field] = _flip(values[field], position % (8 * len(values[field])))
    assert _rejected(
        values["public_key"], values["message"], values["signature"], libsignal=libsignal
    )


@SLOW_PROPERTY
@given(signature=st.binary(min_size=64, max_size=64), libsignal=st.booleans())
def test_random_64_byte_strings_are_rejected(signature: bytes, libsignal: bool) -> None:
    public_key = x25519_public_key(bytes(range(32)))
    assert _rejected(public_key, b"message", signature, libsignal=libsignal)


@settings(max_examples=200, deadline=None)
@given(
    public_key=st.binary(max_size=40),
    message=st.binary(max_size=40),
    signature=st.binary(max_size=80),
    libsignal=st.booleans(),
)
def test_verify_raises_only_invalid_signature_for_arbitrary_bytes(
    public_key: bytes, message: bytes, signature: bytes, libsignal: bool
) -> None:
    with contextlib.suppress(InvalidSignature):  # any other exception fails the test
        xeddsa_verify(public_key, message, signature, accept_libsignal_sign_bit=libsignal)


@pytest.mark.parametrize(
    "arguments",
    [("u" * 32, b"m", bytes(64)), (bytes(32), None, bytes(64)), (bytes(32), b"m", bytearray(64))],
)
def test_verify_reports_non_bytes_arguments_as_invalid_argument(arguments: Any) -> None:
    with pytest.raises(InvalidArgument):
        xeddsa_verify(*arguments)


@pytest.mark.parametrize(
    "arguments",
    [(bytes(31), b"m", bytes(64)), (bytes(32), b"m", bytes(63)), (bytes(32), "m", bytes(64))],
)
def test_sign_refuses_wrong_length_key_or_z_and_non_bytes_message(arguments: Any) -> None:
    with pytest.raises(InvalidArgument):
        xeddsa_sign(*arguments)


@SLOW_PROPERTY
@given(private_key=keys, message=messages, z=zs)
def test_libsignal_convention_is_accepted_only_with_the_flag(
    private_key: bytes, message: bytes, z: bytes
) -> None:
    public_key, signature = x25519_public_key(private_key), libsignal_sign(private_key, message, z)
    xeddsa_verify(public_key, message, signature, accept_libsignal_sign_bit=True)
    # With E.s = 0 the libsignal signature is a spec signature; with E.s = 1 it is not.
    assert _rejected(public_key, message, signature, libsignal=False) == bool(_e_sign(private_key))


def test_profile_verify_follows_the_profiles_sign_bit_choice() -> None:
    vector = KAT["xeddsa-libsignal-c-curvesig-1"]
    public_key, message = _b(vector["inputs"]["public_u"]), _b(vector["inputs"]["message"])
    signature = _b(vector["expected"]["signature"])
    verify(public_key, [(message, signature)], SIGNAL_V3)
    for profile in (PQ_DEFAULT, CLASSIC):
        with pytest.raises(InvalidSignature):
            verify(public_key, [(message, signature)], profile)


def test_verifying_several_signatures_by_one_key_is_verifying_each() -> None:
    """xeddsa_verify_each (A's y computed once) accepts exactly when each one verifies."""
    private_key = bytes(range(32))
    public_key = x25519_public_key(private_key)
    signed = [(m, xeddsa_sign(private_key, m, bytes([len(m)]) * 64)) for m in (b"spk", b"pqspk")]
    xeddsa_verify_each(public_key, signed)
    forged = signed[1][1][:-1] + bytes([signed[1][1][-1] ^ 1])
    for bad in ([signed[0], (b"pqspk", forged)], [(b"spk", forged), signed[1]]):
        with pytest.raises(InvalidSignature):
            xeddsa_verify_each(public_key, bad)
    with pytest.raises(InvalidSignature):
        xeddsa_verify(public_key, b"pqspk", forged)


def _signature_with_room_for_q() -> tuple[bytes, bytes, bytes]:
    """A valid signature whose s + q is still below 2^253."""
    private_key, message = bytes(range(32)), b"range"
    for counter in range(64):
        signature = xeddsa_sign(private_key, message, counter.to_bytes(64, "little"))
        if int.from_bytes(signature[32:], "little") + Q < 2**253:
            return x25519_public_key(private_key), message, signature
    raise AssertionError("no signature with s + q < 2^253 in 64 tries")


def test_s_is_range_checked_at_2_253_not_at_q() -> None:
    public_key, message, signature = _signature_with_room_for_q()
    s = int.from_bytes(signature[32:], "little")
    for multiple in range(16):
        shifted = s + multiple * Q
        if shifted >= 2**256:
            break
        candidate = signature[:32] + shifted.to_bytes(32, "little")
        assert _rejected(public_key, message, candidate, libsignal=False) == (shifted >= 2**253)


def test_non_canonical_u_is_rejected_although_it_names_a_valid_key() -> None:
    public_key, message, signature = _signature_with_room_for_q()
    u_plus_p = (int.from_bytes(public_key, "little") + P25519).to_bytes(32, "little")
    for libsignal in (False, True):
        with pytest.raises(InvalidSignature, match="u >= p"):
            xeddsa_verify(u_plus_p, message, signature, accept_libsignal_sign_bit=libsignal)


@pytest.mark.parametrize(
    "u",
    [
        0,
        1,
        0xB8495F16056286FDB1329CEB8D09DA6AC49FF1FAE35616AEB8413B7C7AEBE0,
        0x57119FD0DD4E22D8868E1C58C45C44045BEF839C55B1D0B1248C50A3BC959C5F,
        P25519 - 1,
    ],
)
def test_small_order_keys_are_rejected_even_when_the_equation_holds(u: int) -> None:
    public_key, message = u.to_bytes(32, "little"), b"forged"
    a_point = ((u - 1) * pow(u + 1, P25519 - 2, P25519) % P25519).to_bytes(32, "little")
    r = next(
        r
        for r in range(1, 200)
        if reduce_q(sha512(scalar_mult_base(r) + a_point + message)) % 8 == 0
    )
    r_point = scalar_mult_base(r)
    # h = 0 mod 8 and [8]A is the identity, so sB - hA = rB = R with s = r.
    with pytest.raises(InvalidSignature, match="small order"):
        xeddsa_verify(public_key, message, r_point + r.to_bytes(32, "little"))


@pytest.mark.parametrize(
    "r_point", [(P25519 + 1).to_bytes(32, "little"), (1 | 1 << 255).to_bytes(32, "little")]
)
def test_non_canonical_encodings_of_the_right_r_are_rejected(r_point: bytes) -> None:
    private_key, message = bytes(range(32)), b"non-canonical R"
    a_point, a = calculate_key_pair(clamp_scalar(private_key))
    s = reduce_q(sha512(r_point + a_point + message)) * a % Q  # sB - hA is the identity
    with pytest.raises(InvalidSignature):
        xeddsa_verify(x25519_public_key(private_key), message, r_point + s.to_bytes(32, "little"))


def test_helpers_refuse_out_of_range_input_with_protocol_errors() -> None:
    with pytest.raises(InvalidArgument):
        scalar_mult_base(2**256)
    with pytest.raises(InvalidArgument):
        hash_i(-1, b"")
    with pytest.raises(InvalidSignature):
        verify_edwards(bytes(31), b"m", bytes(32), 0)


def test_signing_trace_repr_hides_the_secret_scalars() -> None:
    trace = xeddsa_sign_trace(bytes(range(32)), b"m", bytes(64))
    text = repr(trace)
    for secret in (trace.a, trace.r):
        assert str(secret) not in text
        assert secret.to_bytes(32, "little").hex() not in text
    assert "redacted" in text


# --- The xeddsa vector family --------------------------------------------------------


def _manifest_entry(folder: Path) -> dict[str, Any]:
    entries = json.loads((folder / INDEX).read_text())["files"]
    return next(entry for entry in entries if entry["file"] == FILE)


def test_committed_xeddsa_vectors_verify() -> None:
    assert verify_file(VECTORS, _manifest_entry(VECTORS)) == []


def test_generator_reproduces_the_committed_file_byte_for_byte() -> None:
    (vector_file,) = generate()
    assert dump(vector_file.document) == (VECTORS / FILE).read_bytes()


@pytest.mark.parametrize("group, index", [(0, 0), (1, 0), (1, 5), (2, 0)])
def test_a_changed_signature_byte_fails_naming_the_tcid(
    group: int, index: int, tmp_path: Path
) -> None:
    shutil.copytree(VECTORS, tmp_path, dirs_exist_ok=True)
    document = json.loads((tmp_path / FILE).read_text())
    test = document["testGroups"][group]["tests"][index]
    signature = bytearray(_b(test["signature"]))
    signature[1] ^= 0x01
    test["signature"] = signature.hex()
    (tmp_path / FILE).write_bytes(dump(document))
    failures = verify_file(tmp_path, _manifest_entry(tmp_path))
    assert any(line.startswith(f"{FILE}#{test['tcId']}: ") for line in failures), failures


def test_sign_vectors_cover_both_sign_bits_of_e_and_every_flag_has_a_note() -> None:
    document = generate()[0].document
    sign_bits = {t["intermediate"]["E_s"] for t in document["testGroups"][0]["tests"]}
    assert sign_bits == {0, 1}
    flags = {f for group in document["testGroups"] for t in group["tests"] for f in t["flags"]}
    assert flags <= set(NOTES)


def test_invalid_vectors_name_a_protocol_error_code() -> None:
    codes = {
        t["error"]
        for group in generate()[0].document["testGroups"]
        for t in group["tests"]
        if t["result"] == "invalid"
    }
    assert codes == {InvalidSignature.code}


@given(st.integers(min_value=0, max_value=P25519 - 1))
def test_u_to_y_is_the_specs_fermat_inverse_formula(u: int) -> None:
    assert u_to_y(u) == (u - 1) * pow(u + 1, P25519 - 2, P25519) % P25519


def test_u_to_y_keeps_the_specs_value_where_u_plus_one_is_zero() -> None:
    assert u_to_y(P25519 - 1) == 0 == (P25519 - 2) * pow(P25519, P25519 - 2, P25519) % P25519
