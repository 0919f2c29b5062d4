"""Durable waits inside a job: `step.sleep`, `step.wait_for_event`, `step.wait_until_online`.

A wait that is not over suspends the run: the execution stores it (a step record and the
run's `waiting` state, in one fenced commit), releases the lease and ends with the
outcome "waiting". When the run is claimed again it replays: completed steps and
finished waits return at once, and a wait in progress keeps its first deadline, so time
spent while nothing ran (a reload, a restart) counts. Wait names share the namespace of
step names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from .encoding import from_json
from .errors import ValidationError, WaitTimeoutError
from .events import Event, RunWaitEvent, StepRetryEvent
from .models import StepKind, StepRecord, datetime_to_ms, ms_to_datetime
from .store import Lease, Store, Wait


class WaitControl(Protocol):
    """What waits call on the execution of their run (`step.RunControl` extends it)."""

    @property
    def run_id(self) -> str: ...
    @property
    def online(self) -> bool: ...
    def now_ms(self) -> int: ...
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
    ) -> Any: ...
    async def fail_step(
        self,
        name: str,
        index: int,
        started_at: int,
        exc: Exception,
        kind: StepKind = "step",
        attempts: int = 1,
    ) -> None: ...
    def suspend(self, wait: Wait, retry: tuple[int, str, int | None] | None = None) -> NoReturn:
        """Store `wait` and end the execution (raises RunSuspended); `retry` (attempt,
        error, next delay ms) announces the failed attempt of a retried step first."""

    def deliver_event(self, name: str, index: int, started_at: int) -> str | None: ...


class SuspendingExecution(Protocol):
    """What `suspend_execution` uses of `execution.RunExecution`."""

    @property
    def store(self) -> Store: ...
    @property
    def lease(self) -> Lease: ...
    def now_ms(self) -> int: ...
    def stop_if_signalled(self) -> None: ...
    def require_applied(self, applied: bool) -> None: ...
    def end_step_event(self, event_class: type[Event], index: int, **fields: Any) -> None: ...
    def emit(self, event_class: type[Event], **fields: Any) -> None: ...


class RunSuspended(BaseException):
    """Unwinds a job function from the wait that suspended its run to the execution.

    A BaseException, like asyncio's CancelledError, so that a job's ``except Exception``
    cannot swallow it: the run's state is already stored as waiting."""

    def __init__(self, wait: Wait) -> None:
        super().__init__(f"run suspended on {wait.kind} {wait.name!r}")
        self.wait = wait


class Network:
    """Whether the runtime is online. CPython assumes it always is; in the browser the
    bridge mirrors ``navigator.onLine`` and the worker's online/offline events here."""

    def __init__(self) -> None:
        self.online = True


def suspend_execution(
    execution: SuspendingExecution,
    wait: Wait,
    retry: tuple[int, str, int | None] | None,
    take_progress: Callable[[int], str | None] | None,
) -> NoReturn:
    """Store `wait` (fenced, with the progress not stored yet) and end the execution with
    the outcome "waiting": step:retry first for a retried step's failed attempt (`retry`:
    attempt, error, next delay ms), then run:wait."""
    execution.stop_if_signalled()
    now = execution.now_ms()
    progress = take_progress(now) if take_progress is not None else None
    execution.require_applied(execution.store.suspend_run(execution.lease, wait, now, progress))
    if retry is not None:
        attempt, error, delay = retry
        execution.end_step_event(
            StepRetryEvent, wait.index, attempt=attempt, error=error,
            next_delay_ms=delay, offline=wait.kind == "online",
        )  # fmt: skip
    execution.emit(RunWaitEvent, kind=wait.kind, name=wait.name, until=ms_to_datetime(wait.until))
    raise RunSuspended(wait)


def replay_records(
    store: Store, run_id: str, with_waits: bool
) -> tuple[dict[str, str | None], dict[str, StepRecord]]:
    """What a run replays: completed steps' outputs, and (`with_waits`: it waited or
    stalled before) its records that did not complete (waits, retried attempts)."""
    outputs = store.get_completed_step_outputs(run_id)
    if not with_waits:
        return outputs, {}
    return outputs, {s.name: s for s in store.get_steps(run_id) if s.status != "completed"}


def check_seconds(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    """A duration in seconds: a finite number >= 0 (or None where allowed)."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValidationError(f"{name} must be a number of seconds >= 0, not {value!r}", [name])
    return float(value)


def ms(record_time: Any) -> int | None:
    return None if record_time is None else datetime_to_ms(record_time)


class StepWaits:
    """The waits of `Step` (a mixin: `Step` provides the name bookkeeping and records)."""

    _execution: WaitControl
    #: Completed steps' and waits' stored JSON outputs by name.
    _stored: dict[str, str | None]
    #: Step records that did not complete (waits in progress, failed or retried steps).
    _records: dict[str, StepRecord]

    def _claim_name(self, name: str) -> int:  # provided by Step
        raise NotImplementedError

    def _waiting_record(self, name: str, kind: str) -> StepRecord | None:
        record = self._records.get(name)
        if record is None or record.status != "waiting" or record.kind != kind:
            return None
        return record

    async def sleep(self, name: str, seconds: float) -> None:
        """Wait `seconds` durably: the run suspends (no lease, no worker slot) and resumes
        once that much time has passed, counting time while nothing ran."""
        duration = check_seconds("seconds", seconds)
        assert duration is not None
        execution = self._execution
        index = self._claim_name(name)
        if name in self._stored:
            return
        now = execution.now_ms()
        record = self._waiting_record(name, "sleep")
        started = ms(record.started_at) if record else now
        until = ms(record.wake_at) if record else now + round(duration * 1000)
        assert started is not None
        if until is None or until <= now:
            execution.complete_step(name, index, "null", started, now, None, kind="sleep")
            return
        self._suspend(Wait("sleep", name, index, started, until))

    async def wait_for_event(self, name: str, timeout: float | None = None) -> Any:
        """Wait for the event `name` sent to this run (`Durably.send_event`) and return its
        JSON payload. An event sent earlier is waiting in the mailbox and returns at once.
        Raises WaitTimeoutError after `timeout` seconds (None: wait forever)."""
        limit = check_seconds("timeout", timeout, allow_none=True)
        execution = self._execution
        index = self._claim_name(name)
        if name in self._stored:
            return from_json(self._stored[name])
        stored = self._records.get(name)
        if stored is not None and stored.kind == "event" and stored.status == "failed":
            raise WaitTimeoutError(stored.error or f"event {name!r} did not arrive in time")
        now = execution.now_ms()
        record = self._waiting_record(name, "event")
        started = ms(record.started_at) if record else now
        assert started is not None
        payload = execution.deliver_event(name, index, started)
        if payload is not None:
            return from_json(payload)
        if record is not None:
            until = ms(record.wake_at)
        else:
            until = None if limit is None else now + round(limit * 1000)
        if until is not None and until <= now:
            error = WaitTimeoutError(
                f"event {name!r} did not arrive within {timeout} s (run {execution.run_id})"
            )
            await execution.fail_step(name, index, started, error, kind="event")
            raise error
        self._suspend(Wait("event", name, index, started, until))

    async def wait_until_online(self, name: str) -> None:
        """Wait until the runtime is online (the browser's network); at once when it is
        (always, on CPython). The run suspends meanwhile."""
        execution = self._execution
        index = self._claim_name(name)
        if name in self._stored:
            return
        now = execution.now_ms()
        record = self._waiting_record(name, "online")
        started = ms(record.started_at) if record else now
        assert started is not None
        if execution.online:
            execution.complete_step(name, index, "null", started, now, None, kind="online")
            return
        self._suspend(Wait("online", name, index, started, None))

    def _suspend(self, wait: Wait) -> NoReturn:
        self._execution.suspend(wait)
        raise AssertionError("suspend returns only by raising")  # pragma: no cover
