"""Test-suite settings shared by every test module.

Hypothesis's per-example deadline is a timing assertion: on a shared or
loaded machine it fails tests whose code is correct (DeadlineExceeded,
Flaky). Timings belong to ``e2ee bench``, so the deadline is off everywhere.
"""

from hypothesis import settings

settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
