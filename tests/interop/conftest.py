"""The live libsignal peer for tests/interop (README.md there).

Without ``node`` and ``npm`` on the PATH every live test is skipped with one
reason; with E2EE_REQUIRE_LIBSIGNAL=1 (set by .ci/run) that skip is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from libsignal_peer import Driver, install

REQUIRE: str = "E2EE_REQUIRE_LIBSIGNAL"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE}=1 requires the live libsignal tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def libsignal() -> Iterator[Driver]:
    """One driver process per test worker, over packages installed once per lockfile."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"live libsignal tests need node and npm on the PATH ({missing} missing)")
    try:
        node_modules = install()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"npm ci of tests/interop/package-lock.json failed: {exc}")
    driver = Driver(node_modules)
    yield driver
    driver.close()
