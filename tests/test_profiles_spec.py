"""spec/profiles.md states every profile constant and every error code the code has."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from protocol.errors import ALL_ERRORS
from protocol.profiles import ALL_PROFILES as PROFILES

SPEC = (Path(__file__).resolve().parent.parent / "spec" / "profiles.md").read_text()
COLUMNS = ("pq-default", "classic", "signal-v3", "signal-v4")


def rows(first_cell: str) -> dict[str, list[str]]:
    """Table rows of the spec whose first cell is a backticked name, by that name."""
    found = {}
    for line in SPEC.splitlines():
        match = re.match(rf"^\| `({first_cell})` \|(.*)\|$", line)
        if match:
            found[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return found


def shown(value: object) -> str:
    """How the spec writes a constant: quoted ASCII, 0x-hex, or the value itself."""
    if isinstance(value, bytes):
        if all(32 <= byte < 127 for byte in value):
            return f'`"{value.decode()}"`'
        return f"`0x{value.hex()}`"
    return f"`{value}`"


def test_profile_table_lists_every_field_with_its_value() -> None:
    table = rows(r"[a-z_0-9.]+")
    for field in dataclasses.fields(PROFILES["classic"]):
        assert field.name in table, field.name
        cells = table[field.name][: len(COLUMNS)]
        values = [getattr(PROFILES[name], field.name) for name in COLUMNS]
        parts = all(dataclasses.is_dataclass(value) for value in values)
        expected = [f"`{type(value).__name__}`" if parts else shown(value) for value in values]
        assert cells == expected, field.name
        if not parts:
            continue
        constants = {f.name for value in values for f in dataclasses.fields(value)}
        for constant in sorted(constants):
            row = f"{field.name}.{constant}"
            assert row in table, row
            cells = table[row][: len(COLUMNS)]
            assert cells == [shown(getattr(value, constant)) for value in values], row


def test_error_table_lists_every_error_code() -> None:
    table = rows(r"[A-Z_]+")
    for error in ALL_ERRORS:
        assert error.code in table, error.code
        assert table[error.code][0] == f"`{error.__name__}`"
