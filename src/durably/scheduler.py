"""The scheduler: the claim loop that hands leased runs to `RunExecution`s (not the Web Worker).

It sleeps until woken, until the next waiting or delayed run is due (a timer set from
the store's next due time), or until the polling interval passes, whichever comes first;
at most `max_concurrent_runs` execute at once, and a run executing here is never claimed
again. Waiting runs hold no slot. Housekeeping (retention) runs only when idle: an idle
loop writes nothing, however many runs wait.
"""

from __future__ import annotations

import asyncio
import os
import platform
import uuid
from collections.abc import Callable, Mapping

from .clock import Clock
from .events import EventEmitter, RunsPurgeEvent
from .execution import Outcome, RunExecution
from .jobs import JobHandle
from .options import Settings
from .store import Store
from .waits import Network

RETENTION_INTERVAL_MS = 60_000
RETENTION_BATCH = 100


def default_owner() -> str:
    """A lease owner name unique to this process."""
    return f"{platform.node() or 'worker'}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    def __init__(
        self,
        store: Store,
        emitter: EventEmitter,
        clock: Clock,
        settings: Settings,
        owner: str,
        jobs: Mapping[str, JobHandle],
        network: Network | None = None,
    ) -> None:
        self._store = store
        self._emitter = emitter
        self._clock = clock
        self._settings = settings
        self._owner = owner
        #: The registered jobs (the facade's live mapping): only these are claimed.
        self._jobs = jobs
        self._network = network or Network()
        #: Executions claimed here and not finished, by run id: from the claim on, so a
        #: cancel between the claim and the start of its task reaches it.
        self._executions: dict[str, RunExecution] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._last_retention_at: int | None = None
        #: Stops the store's watch (set while the loop runs on a store with other writers).
        self._unwatch: Callable[[], None] | None = None

    # -- claiming and executing one run ----------------------------------------------

    def claim_next(self) -> RunExecution | None:
        """Lease the next eligible run of a registered job; None when there is none."""
        # Runs executing here are never claimed again, however late their lease: a
        # step that blocked the event loop past lease_ms is still running, not dead.
        claimed = self._store.claim_next(
            self._owner,
            self._clock(),
            self._settings.lease_ms,
            list(self._jobs),
            list(self._executions),
        )
        if claimed is None:
            return None
        run = claimed.run
        execution = RunExecution(
            self._store,
            self._emitter,
            self._clock,
            self._settings,
            self._jobs[run.job_name].definition,
            claimed,
            self._network,
        )
        self._executions[run.id] = execution
        return execution

    async def execute(self, execution: RunExecution) -> Outcome:
        try:
            return await execution.execute()
        finally:
            if self._executions.get(execution.run.id) is execution:
                del self._executions[execution.run.id]

    def execution_of(self, run_id: str) -> RunExecution | None:
        """The execution of `run_id` in this process, if it is running here."""
        return self._executions.get(run_id)

    def executing(self) -> list[RunExecution]:
        """The runs executing in this process now (claimed and not yet finished)."""
        return list(self._executions.values())

    # -- the loop --------------------------------------------------------------------

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

        self._unwatch = self._store.watch(wake_from_any_thread)

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
        interval = self._settings.polling_interval_ms / 1000
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = self._fill_slots()
                if not claimed and not self._running:
                    self.run_housekeeping()
            except Exception as exc:
                self._emitter.report(exc, "worker loop")
            await self._sleep_until_woken(self._next_timeout(interval))

    def _next_timeout(self, interval: float) -> float:
        """Seconds until the next waiting or delayed run is due, at most `interval`. A
        due time already passed means its run could not be claimed (no free slot, or its
        concurrency key is busy): a finished run or the next poll wakes the loop then."""
        try:
            due = self._store.next_wake_at(list(self._jobs))
        except Exception as exc:
            self._emitter.report(exc, "worker loop")
            return interval
        if due is None:
            return interval
        remaining = (due - self._clock()) / 1000
        return interval if remaining <= 0 else min(interval, remaining)

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
        while len(self._running) < self._settings.max_concurrent_runs:
            execution = self.claim_next()
            if execution is None:
                break
            claimed_any = True
            task: asyncio.Task[object] = asyncio.ensure_future(self.execute(execution))
            self._running.add(task)
            task.add_done_callback(self._on_done)
        return claimed_any

    def _on_done(self, task: asyncio.Task[object]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._emitter.report(task.exception(), "run execution")  # type: ignore[arg-type]
        self._wake.set()

    def run_housekeeping(self) -> None:
        """Purge one batch of runs past the retention period, when it is due."""
        retain_ms = self._settings.retain_runs_ms
        if retain_ms is None:
            return
        now = self._clock()
        if (
            self._last_retention_at is not None
            and now - self._last_retention_at < RETENTION_INTERVAL_MS
        ):
            return
        # One batch per idle cycle keeps each pause short; a full batch leaves it due.
        run_ids = self._store.purge_runs(now - retain_ms, RETENTION_BATCH)
        if run_ids:
            self._emitter.emit(RunsPurgeEvent.of(run_ids, self._clock.now()))
        if len(run_ids) < RETENTION_BATCH:
            self._last_retention_at = now
