"""The worker loop: claim runs up to `max_concurrent_runs`, execute them, repeat.

The loop sleeps until woken (a trigger in this process, a finished run) or the
polling interval passes (the fallback for runs triggered by other processes).
When idle it does housekeeping that is due (retention purge, at most once a
minute); it never does it on the claim path, and an idle loop writes nothing.
"""

from __future__ import annotations

import asyncio
import os
import platform
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from .events import RunsPurgeEvent, WorkerErrorEvent
from .runtime import describe_error

if TYPE_CHECKING:
    from .durably import Durably

RETENTION_INTERVAL_MS = 60_000
RETENTION_BATCH = 100


def default_owner() -> str:
    """A lease owner name unique to this process."""
    return f"{platform.node() or 'worker'}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(self, durably: Durably) -> None:
        self._durably = durably
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._last_retention_at: int | None = None
        self._unwatch: Callable[[], None] | None = None

    @property
    def started(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    def start(self) -> None:
        if self.started:
            return
        self._stopping = False
        self._loop_task = asyncio.ensure_future(self._loop())
        # Runs made claimable by other processes (a shared PostgreSQL database) wake the
        # loop at once; the store calls back from its own thread.
        loop = asyncio.get_running_loop()

        def wake_from_any_thread() -> None:
            loop.call_soon_threadsafe(self.wake)

        self._unwatch = self._durably.store.watch(wake_from_any_thread)

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming and wait for the runs in flight to finish. After `timeout`
        seconds, abandon the rest: they stay leased and resume under the next owner."""
        self._stopping = True
        self._wake.set()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self) -> None:
        interval = self._durably.settings.polling_interval_ms / 1000
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = self._fill_slots()
                if not claimed and not self._running:
                    self.run_housekeeping()
            except Exception as exc:
                self._report(exc, "worker loop")
            await self._sleep_until_woken(interval)

    async def _sleep_until_woken(self, timeout: float) -> None:
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
        # the wait ends, and this loop would then outlive asyncio.run's final cancel and
        # keep the program from exiting. A timer that sets the event cannot do that.
        timer = asyncio.get_running_loop().call_later(timeout, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def _fill_slots(self) -> bool:
        claimed_any = False
        while len(self._running) < self._durably.settings.max_concurrent_runs:
            execution = self._durably._claim_next()
            if execution is None:
                break
            claimed_any = True
            task: asyncio.Task[object] = asyncio.ensure_future(self._durably._execute(execution))
            self._running.add(task)
            task.add_done_callback(self._on_done)
        return claimed_any

    def _on_done(self, task: asyncio.Task[object]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._report(task.exception(), "run execution")  # type: ignore[arg-type]
        self._wake.set()

    def run_housekeeping(self) -> None:
        """Purge one batch of runs past the retention period, when it is due."""
        durably = self._durably
        retain_ms = durably.settings.retain_runs_ms
        if retain_ms is None:
            return
        now = durably.now_ms()
        if (
            self._last_retention_at is not None
            and now - self._last_retention_at < RETENTION_INTERVAL_MS
        ):
            return
        # One batch per idle cycle keeps each pause short; a full batch leaves it due.
        run_ids = durably.store.purge_runs(now - retain_ms, RETENTION_BATCH)
        if run_ids:
            durably.emitter.emit(RunsPurgeEvent.of(run_ids, durably.now()))
        if len(run_ids) < RETENTION_BATCH:
            self._last_retention_at = now

    def _report(self, exc: BaseException, context: str) -> None:
        self._durably.emitter.emit(
            WorkerErrorEvent(
                run_id=None,
                job_name=None,
                timestamp=self._durably.now(),
                error=describe_error(exc),
                context=context,
            )
        )
