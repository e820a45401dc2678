"""Wall-clock time in integer milliseconds, the unit every stored timestamp uses."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch.

    >>> now_ms() > 1_600_000_000_000
    True
    """
    return time.time_ns() // 1_000_000
