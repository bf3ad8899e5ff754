"""Without node and npm the live tests skip, unless CI requires them (tests/interop/README.md)."""

from __future__ import annotations

import pytest
from libsignal_peer import REQUIRE, unavailable


def test_missing_libsignal_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no node"):
        unavailable("no node")


def test_missing_libsignal_fails_when_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="requires the live libsignal tests"):
        unavailable("no node")
