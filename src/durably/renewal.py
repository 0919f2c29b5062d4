"""Keeping a lease alive while its run executes: renew every `lease_renew_interval_ms`.

A renewal is fenced like every other write of the holder. One that does not apply means
the run was reclaimed or cancelled (the execution's signal fires), unless the execution's
own generation just finished or suspended the run.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from .events import Event, RunLeaseRenewedEvent
from .models import ms_to_datetime
from .options import Settings
from .store import Lease, Store


class RenewingExecution(Protocol):
    """What the renewal uses of `execution.RunExecution`."""

    @property
    def store(self) -> Store: ...
    @property
    def lease(self) -> Lease: ...
    @property
    def finished(self) -> bool: ...
    def now_ms(self) -> int: ...
    def emit(self, event_class: type[Event], **fields: Any) -> None: ...
    def finished_by_us(self) -> bool: ...
    def signal_rejection(self) -> None: ...
    def report_error(self, exc: BaseException, context: str) -> None: ...


async def keep_lease(execution: RenewingExecution, settings: Settings) -> None:
    """Renew `execution`'s lease until it finishes (the caller cancels this task)."""
    while True:
        await asyncio.sleep(settings.lease_renew_interval_ms / 1000)
        if execution.finished:
            return
        try:
            now = execution.now_ms()
            if execution.store.renew_lease(execution.lease, now, settings.lease_ms):
                execution.emit(
                    RunLeaseRenewedEvent,
                    lease_owner=execution.lease.owner,
                    lease_expires_at=ms_to_datetime(now + settings.lease_ms),
                )
                continue
            if execution.finished or execution.finished_by_us():
                return  # the renewal raced our own completion: not a lost lease
            execution.signal_rejection()
            return
        except Exception as exc:
            execution.report_error(exc, "lease renewal")
