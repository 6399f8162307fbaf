"""What to do when a containment test needs something this machine lacks.

Some cases need root, `unshare`/`setpriv`, a PID namespace or unprivileged user
namespaces. On a laptop without them the case is skipped with the reason. Where the
machine is known to have them — CI, which runs as root on a kernel with namespaces —
`SELFTAUGHT_REQUIRE_CONTAINMENT=1` (set by `.ci/run`) turns that skip into a
failure, so a lost capability cannot hide a containment test behind a skip.
"""

from __future__ import annotations

import os

import pytest

REQUIRED = os.environ.get("SELFTAUGHT_REQUIRE_CONTAINMENT") == "1"


def unavailable(reason: str) -> None:
    """Skip for `reason`, or fail when the capabilities are required here."""
    if REQUIRED:
        pytest.fail(f"SELFTAUGHT_REQUIRE_CONTAINMENT=1 but {reason}")
    pytest.skip(reason)
