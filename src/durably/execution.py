"""Executes one leased run to an outcome: completed, failed, cancelled, lease-lost or
waiting (suspended on a wait: stored, lease released; see waits.py).

Control flow never throws out of `execute`: a failing job is recorded as a failure; a
cancel or a lost lease only stops it. Every write is fenced by the lease generation
(a rejected one stops the run); a background task renews the lease meanwhile.
"""

from __future__ import annotations

import asyncio
import traceback
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from .clock import Clock
from .encoding import from_json
from .errors import (
    LeaseLostError,
    RunCancelledError,
    StalledRunError,
    StorageUnavailableError,
    StrayCancellationError,
    describe_error,
)
from .events import (
    Event,
    EventEmitter,
    RunCancelEvent,
    RunCompleteEvent,
    RunFailEvent,
    RunLeasedEvent,
    RunProgressEvent,
    RunWakeEvent,
    StepCancelEvent,
    StepCompleteEvent,
    StepFailEvent,
    StepStartEvent,
)
from .models import LogLevel, Progress, Run, RunStatus, StepKind
from .options import Settings
from .renewal import keep_lease
from .run_logs import RunLogs
from .step import CancellationSignal, Step, is_stray_cancellation
from .store import Claim, Store, Wait
from .waits import Network, RunSuspended, replay_records, suspend_execution

if TYPE_CHECKING:
    from .jobs import JobDefinition

#: "waiting": the run suspended on a wait (stored, lease released); it resumes by replay.
#: "abandoned": the database went out of reach; the run stays leased and is reclaimed.
Outcome = Literal["completed", "failed", "cancelled", "lease-lost", "waiting", "abandoned"]


class RunExecution:
    """One attempt at executing a run under one lease generation."""

    def __init__(
        self,
        store: Store,
        emitter: EventEmitter,
        clock: Clock,
        settings: Settings,
        definition: JobDefinition[Any, Any],
        claim: Claim,
        network: Network | None = None,
    ) -> None:
        self.store = store
        self._emitter = emitter
        self._clock = clock
        self._settings = settings
        self.definition = definition
        self.run: Run = claim.run
        self.lease = claim.lease
        self.stalled_claims = claim.stalled_claims
        #: The step in flight when the run was last abandoned (while recovering: now).
        self.stalled_step = claim.stalled_step
        #: What the run waited for before this claim (None: it was not waiting).
        self.woken_from = claim.woken_from
        self._network = network or Network()
        self.signal = CancellationSignal()
        #: Set once run:cancel was emitted for this run (by `Durably.cancel` or here).
        self.cancel_announced = False
        #: Steps that emitted step:start but no ending event yet, by index. Each gets its
        #: step:complete, step:fail or step:cancel before the run's terminal event, so a
        #: listener never sees a step of a finished run still running.
        self._steps_in_flight: dict[int, str] = {}
        self._finished = False
        self._failed_step: str | None = None
        self._step: Step | None = None
        self.logs = RunLogs(self)

    # -- what a Step calls (step.RunControl) -----------------------------------------

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def online(self) -> bool:
        return self._network.online

    @property
    def replays_waits(self) -> bool:
        """Whether the run waited or stalled before: its replay needs its records of
        waits and attempts that did not complete."""
        return self.woken_from is not None or self.recovering

    @property
    def recovering(self) -> bool:
        """True until the first step finishes in a run that was abandoned before: each
        step started meanwhile is recorded, so a stalled run can name its step."""
        return self.stalled_claims > 0

    def begin_step(self, name: str, index: int, started_at: int) -> None:
        """Check the lease before step `name` runs (a read), and while recovering record
        the step as the one in flight (a fenced write); then announce step:start."""
        if self.recovering:
            self.stalled_step = name
            self.require_applied(self.store.record_stalled_step(self.lease, name, started_at))
        else:
            self.require_applied(self.store.start_step(self.lease))
        self._steps_in_flight[index] = name
        self.emit(StepStartEvent, step_name=name, step_index=index)

    def complete_step(
        self,
        name: str,
        index: int,
        output_json: str,
        started_at: int,
        completed_at: int,
        progress_json: str | None,
        kind: StepKind = "step",
        attempts: int = 1,
    ) -> Any:
        """Store a finished step (or wait) with the latest progress in one fenced commit
        and announce step:complete; returns the output as stored (its JSON form)."""
        self.require_applied(
            self.store.persist_step(
                self.lease,
                name,
                index,
                output_json,
                started_at,
                completed_at,
                progress_json,
                kind,
                attempts,
                self.logs.take(),
            )
        )
        # The run progressed: the store reset its stalled claims with the step.
        self.stalled_claims = 0
        self.stalled_step = None
        output = from_json(output_json)
        self.end_step_event(
            StepCompleteEvent, index, output=output, duration_ms=completed_at - started_at
        )
        return output

    def store_progress(self, progress_json: str, now: int) -> None:
        self.require_applied(self.store.update_progress(self.lease, progress_json, now))

    def announce_progress(self, progress: Progress) -> None:
        self.emit(RunProgressEvent, progress=progress)

    def write_log(
        self, level: LogLevel, message: str, data_json: str | None, step_name: str | None
    ) -> None:
        self.logs.write(level, message, data_json, step_name)

    def now_ms(self) -> int:
        return self._clock()

    def emit(self, event_class: type[Event], **fields: Any) -> None:
        self._emitter.emit(
            event_class(
                run_id=self.run.id,
                job_name=self.run.job_name,
                timestamp=self._clock.now(),
                **fields,
            )
        )

    @property
    def finished(self) -> bool:
        return self._finished

    def finished_by_us(self) -> bool:
        """Whether this execution's own generation finished or suspended the run (a
        renewal that failed because of it is no lost lease)."""
        current = self.store.get_run(self.run.id)
        return (
            current is not None
            and current.lease_generation == self.lease.generation
            and current.status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.WAITING)
        )

    def report_error(self, exc: BaseException, context: str) -> None:
        self._emitter.report(exc, context, self.run.id, self.run.job_name)

    def raise_if_stopped(self) -> None:
        if self.signal.reason == "cancelled":
            raise RunCancelledError(f"run {self.run.id} was cancelled")
        if self.signal.reason == "lease-lost":
            raise LeaseLostError(
                f"run {self.run.id} was reclaimed by another worker "
                f"(lease generation {self.lease.generation} is stale)"
            )

    def require_applied(self, applied: bool) -> None:
        """Stop the execution if a fenced write was rejected, saying why."""
        if not applied:
            self.signal_rejection()
            self.raise_if_stopped()

    def signal_rejection(self) -> None:
        """The lease fence rejected a write: fire the signal with the reason. The one
        place that tells a cancel (or delete) from another worker reclaiming the run."""
        current = self.store.get_run(self.run.id)
        cancelled = current is None or current.status == RunStatus.CANCELLED
        self.signal.fire("cancelled" if cancelled else "lease-lost")

    def end_step_event(self, event_class: type[Event], index: int, **fields: Any) -> None:
        """Emit a step's ending event, unless it was already ended (a cancel did)."""
        name = self._steps_in_flight.pop(index, None)
        if name is not None:
            self.emit(event_class, step_name=name, step_index=index, **fields)

    def cancel_steps_in_flight(self) -> None:
        """Emit step:cancel for every step still running: the run is being stopped."""
        for index in list(self._steps_in_flight):
            self.end_step_event(StepCancelEvent, index)

    def announce_cancel(self) -> None:
        """Called by `Durably.cancel` just before it emits run:cancel: end the steps in
        flight first, and make this execution emit nothing more about them or the run."""
        self.cancel_steps_in_flight()
        self.cancel_announced = True

    def stop_if_signalled(self) -> None:
        if self.signal.cancelled:
            self.cancel_steps_in_flight()
        self.raise_if_stopped()

    async def fail_step(
        self,
        name: str,
        index: int,
        started_at: int,
        exc: Exception,
        kind: StepKind = "step",
        attempts: int = 1,
    ) -> None:
        # A step that gave up because the signal fired was stopped, not failed.
        self.stop_if_signalled()
        self._failed_step = name
        error = describe_error(exc)
        self.require_applied(
            self.store.persist_step_failure(
                self.lease,
                name,
                index,
                error,
                started_at,
                self.now_ms(),
                kind,
                attempts,
                self.logs.take(),
            )
        )
        self.end_step_event(StepFailEvent, index, error=error)

    def suspend(self, wait: Wait, retry: tuple[int, str, int | None] | None = None) -> NoReturn:
        step = self._step
        self.logs.flush()  # the suspension's commit flushes them to disk
        suspend_execution(self, wait, retry, step.take_pending_progress if step else None)

    def deliver_event(self, name: str, index: int, started_at: int) -> str | None:
        return self.store.deliver_event(self.lease, name, index, started_at, self.now_ms())

    # -- the execution ---------------------------------------------------------------

    async def execute(self) -> Outcome:
        assert self.run.lease_expires_at is not None
        if self.signal.reason is not None:
            return self._stopped()  # cancelled between the claim and now: the job never starts
        self.emit(
            RunLeasedEvent,
            lease_owner=self.lease.owner,
            lease_expires_at=self.run.lease_expires_at,
            lease_generation=self.lease.generation,
        )
        if self.woken_from is not None:
            woken = self.woken_from
            self.emit(RunWakeEvent, kind=woken.get("kind"), name=woken.get("name"))
        limit = self._settings.max_stalled_attempts
        if self.stalled_claims >= limit:
            # A poison run: its worker or tab stopped every time before a step finished
            # (e.g. the step crashes the tab). Executing it again would loop forever.
            self._failed_step = self.stalled_step
            try:
                return self._fail(StalledRunError.naming(self.stalled_step, limit))
            finally:
                self._finished = True
        keeper = asyncio.ensure_future(keep_lease(self, self._settings))
        try:
            return await self._execute()
        finally:
            self._finished = True
            if self._step is not None:
                self._step.cancel_progress_timer()
            keeper.cancel()
            with suppress(asyncio.CancelledError):
                await keeper

    async def _execute(self) -> Outcome:
        started = self.now_ms()
        try:
            step = self._step = Step(
                self, *replay_records(self.store, self.run.id, self.replays_waits)
            )
            result = await self.definition.run(step, self.definition.load_input(self.run.input))
            output_json = self.definition.dump_output(result)
            self.raise_if_stopped()
            self.logs.flush()  # lines of steps the job left running
            now = self.now_ms()
            self.require_applied(
                self.store.complete_run(
                    self.lease,
                    output_json,
                    now,
                    self._settings.preserve_steps,
                    step.take_pending_progress(now),
                )
            )
        except RunCancelledError as exc:
            if not self.signal.cancelled:
                return self._fail(exc)  # raised by job code, not by a cancellation
            return self._stopped()
        except LeaseLostError:
            return self._stopped()
        except RunSuspended:
            return "waiting"  # stored by `suspend`; claimed again when the wait is over
        except StorageUnavailableError as exc:
            return self._abandon(exc)
        except Exception as exc:
            return self._fail(exc)
        except asyncio.CancelledError as exc:
            if not is_stray_cancellation():
                raise  # the execution itself is cancelled (e.g. stop(timeout))
            # Not ours: left alone, it would end the execution with the run still leased,
            # to be re-executed after every lease expiry with nothing recorded.
            stray = StrayCancellationError(
                f"CancelledError raised in job {self.run.job_name!r} outside any step "
                "(a cancelled inner task or future, not a cancellation of the run)"
            )
            stray.__cause__ = exc
            return self._fail(stray)
        self.cancel_steps_in_flight()  # steps the job left running: none may outlive the run
        self.emit(
            RunCompleteEvent, output=from_json(output_json), duration_ms=self.now_ms() - started
        )
        return "completed"

    def _fail(self, exc: Exception) -> Outcome:
        if self._step is not None:
            # Progress reported before the failure is kept, as a finished step keeps it.
            with suppress(Exception):
                self._step._flush_progress()
        error = describe_error(exc)
        trace = "".join(traceback.format_exception(exc))
        self.logs.write_failure(error, trace, self._failed_step)
        now = self.now_ms()
        if not self.store.fail_run(self.lease, error, now):
            self.signal_rejection()
            return self._stopped()
        self.cancel_steps_in_flight()
        self.emit(RunFailEvent, error=error, failed_step=self._failed_step)
        return "failed"

    def _abandon(self, exc: StorageUnavailableError) -> Outcome:
        """The database went out of reach: a failure could not be recorded reliably, and
        the job did nothing wrong. Stop here and leave the run leased; once its lease runs
        out, a worker reclaims it and it resumes from its last completed step."""
        self.cancel_steps_in_flight()
        self.report_error(exc, "run execution: the database is out of reach; the run resumes")
        return "abandoned"

    def _stopped(self) -> Outcome:
        """The outcome of an execution stopped by a cancel or a lost lease, announced in
        order: the steps in flight end first, then run:cancel unless it was already
        emitted here. A lost lease emits no terminal event: the run goes on elsewhere."""
        self.cancel_steps_in_flight()
        if self.signal.reason != "cancelled":
            return "lease-lost"
        if not self.cancel_announced:
            self.cancel_announced = True
            self.emit(RunCancelEvent)  # cancelled by another process
        return "cancelled"
