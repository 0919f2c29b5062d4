"""The runtime's one source of time: epoch milliseconds, and the same instant as a datetime.

The facade builds one `Clock` and hands it to every part, so a test's fake clock moves
leases, event timestamps and retention together. No other module reads the system time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from .models import ms_to_datetime

EpochMs = Callable[[], int]


def system_epoch_ms() -> int:
    return time.time_ns() // 1_000_000


class Clock:
    """Call it for epoch milliseconds; `now()` is the same instant as a UTC datetime."""

    def __init__(self, epoch_ms: EpochMs | None = None) -> None:
        self._epoch_ms = epoch_ms or system_epoch_ms

    def __call__(self) -> int:
        return self._epoch_ms()

    def now(self) -> datetime:
        return ms_to_datetime(self._epoch_ms())
