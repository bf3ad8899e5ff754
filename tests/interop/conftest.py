"""The live libsignal peer for tests/interop (README.md there).

Without ``node`` and ``npm`` on the PATH every live test is skipped with one
reason; with E2EE_REQUIRE_LIBSIGNAL=1 (set by .ci/run) that skip is a failure.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from libsignal_peer import Driver, install, unavailable


@pytest.fixture(scope="session")
def libsignal() -> Iterator[Driver]:
    """One driver process per test worker, over packages installed once per lockfile."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        unavailable(
            f"live libsignal tests need node and npm on the PATH ({' and '.join(missing)} missing)"
        )
    try:
        node_modules = install()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        unavailable(f"npm ci of tests/interop/package-lock.json failed: {exc}")
    driver = Driver(node_modules)
    yield driver
    driver.close()
