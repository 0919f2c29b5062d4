"""The step API a job function receives (`step.run`, `progress`, `log`) and its signal.

A completed step's output is stored; on resume `step.run` returns it (always the JSON
form, first run or replay) without calling the function. Every write goes through the
execution's `RunControl`, which keeps the lease fence and the order of events.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable
from types import CodeType, FunctionType
from typing import Any, Protocol

from .encoding import from_json, to_json
from .errors import (
    LeaseLostError,
    RunCancelledError,
    SerializationError,
    StepNameError,
    StrayCancellationError,
)
from .models import LogLevel, Progress, StepRecord
from .retries import RetryPolicy, bounded, retry_or_give_up, wait_again
from .waits import StepWaits, WaitControl, ms

#: Progress is written to the database at most this often (every call still emits an event).
#: Progress reported in between is stored with the next step's commit, or by a timer once
#: the interval has passed, whichever comes first.
PROGRESS_PERSIST_INTERVAL_MS = 250


class CancellationSignal:
    """Fires when the run is cancelled or this worker loses its lease.

    A step function that takes one argument receives it; long steps should check
    `cancelled` (or await `wait()`) and stop early. The run stops at the next step
    boundary whatever the step does.
    """

    def __init__(self) -> None:
        #: None until fired; then "cancelled" or "lease-lost".
        self.reason: str | None = None
        self._event = asyncio.Event()
        self._callbacks: list[Callable[[str], None]] = []

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def add_callback(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` when the signal fires (at once if it already has)."""
        if self.reason is not None:
            callback(self.reason)
        else:
            self._callbacks.append(callback)

    async def wait(self) -> str:
        await self._event.wait()
        assert self.reason is not None
        return self.reason

    def fire(self, reason: str) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        self._event.set()
        for callback in self._callbacks:
            callback(reason)


class RunControl(WaitControl, Protocol):
    """What a `Step` calls on the execution of its run (`execution.RunExecution`): what
    waits call (`waits.WaitControl`) and the rest below. A write the lease fence rejects
    fires the signal and raises RunCancelledError or LeaseLostError, which a step lets
    through."""

    @property
    def signal(self) -> CancellationSignal: ...
    @property
    def finished(self) -> bool: ...
    def raise_if_stopped(self) -> None: ...
    def stop_if_signalled(self) -> None: ...
    def begin_step(self, name: str, index: int, started_at: int) -> None: ...
    def store_progress(self, progress_json: str, now: int) -> None: ...
    def announce_progress(self, progress: Progress) -> None: ...
    def write_log(
        self, level: LogLevel, message: str, data_json: str | None, step_name: str | None
    ) -> None: ...
    def report_error(self, exc: BaseException, context: str) -> None: ...


class StepLog:
    """Structured logs of a run, stored with it and emitted as ``log:write`` events."""

    def __init__(self, step: Step) -> None:
        self._step = step

    def info(self, message: str, data: Any = None) -> None:
        self._step._write_log("info", message, data)

    def warn(self, message: str, data: Any = None) -> None:
        self._step._write_log("warn", message, data)

    def error(self, message: str, data: Any = None) -> None:
        self._step._write_log("error", message, data)


class Step(StepWaits):
    """The context of one run's execution, passed to the job function (its waits:
    `waits.StepWaits`)."""

    _execution: RunControl

    def __init__(
        self,
        execution: RunControl,
        stored_outputs: dict[str, str | None],
        records: dict[str, StepRecord] | None = None,
    ) -> None:
        self._execution = execution
        self._stored = stored_outputs
        self._records = records or {}
        self._seen: set[str] = set()
        self._next_index = 0
        self._current_step: str | None = None
        self._pending_progress: str | None = None
        self._progress_written_at = -math.inf
        #: Writes the pending progress once the interval has passed (None: none scheduled).
        self._progress_timer: asyncio.TimerHandle | None = None
        self.log = StepLog(self)

    @property
    def run_id(self) -> str:
        return self._execution.run_id

    @property
    def signal(self) -> CancellationSignal:
        """The run's cancellation signal (also passed to step functions that take an argument)."""
        return self._execution.signal

    async def run(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        retries: int = 0,
        retry_delay: float = 1.0,
        backoff: float = 2.0,
        max_retry_delay: float = 300.0,
        timeout: float | None = None,
    ) -> Any:
        """Run `fn` as the step `name` once; on resume return its stored output instead.

        `fn` may be sync or async and may take the cancellation signal as its only
        argument. Its result must be JSON-serialisable (or a pydantic model). A failing
        attempt is retried `retries` more times after durable delays (`retry_delay`
        seconds, times `backoff` each time, at most `max_retry_delay`); `timeout` cancels
        an async attempt after that many seconds (a sync one cannot be interrupted).
        """
        policy = RetryPolicy.create(retries, retry_delay, backoff, max_retry_delay, timeout)
        execution = self._execution
        index = self._claim_name(name)
        if name in self._stored:
            return from_json(self._stored[name])
        record = self._waiting_record(name, "step")
        attempts_before = record.attempts if record is not None else 0
        started_at = execution.now_ms()
        first_started = started_at
        if record is not None:
            first_started = ms(record.started_at) or started_at
            due = ms(record.wake_at)
            if due is None and not execution.online:  # still offline: wait on
                self._suspend(wait_again(record, index, "online", None))
            if due is not None and due > started_at:  # woken before its delay ran out
                self._suspend(wait_again(record, index, "retry", due))
        execution.begin_step(name, index, started_at)
        self._current_step = name
        try:
            result = fn(self.signal) if _takes_argument(fn) else fn()
            result = await bounded(result, policy.timeout, name)
            output_json = to_json(result, f"output of step {name!r}")
        except (RunCancelledError, LeaseLostError):
            raise
        except Exception as exc:
            if policy.retries and not execution.signal.cancelled:
                retry_or_give_up(
                    execution, policy, name, index, first_started, attempts_before, exc
                )
            await execution.fail_step(name, index, started_at, exc, attempts=attempts_before + 1)
            raise
        except asyncio.CancelledError as exc:
            if not is_stray_cancellation():
                raise  # the execution itself is cancelled (e.g. stop(timeout))
            # A cancelled inner future or task, not the run: a failure of this step.
            stray = StrayCancellationError(
                f"CancelledError raised inside step {name!r} (a cancelled inner task or "
                "future, not a cancellation of the run)"
            )
            await execution.fail_step(name, index, started_at, stray, attempts=attempts_before + 1)
            raise stray from exc
        finally:
            self._current_step = None
        execution.stop_if_signalled()
        completed_at = execution.now_ms()
        # One commit per step: the output, the count and the latest progress together.
        progress_json = self.take_pending_progress(completed_at)
        return execution.complete_step(
            name,
            index,
            output_json,
            started_at,
            completed_at,
            progress_json,
            attempts=attempts_before + 1,
        )

    def _claim_name(self, name: str) -> int:
        """Check that `name` is new in this run and give it the next index."""
        self._execution.raise_if_stopped()
        if not isinstance(name, str) or not name:
            raise StepNameError("a step needs a non-empty string name")
        if name in self._seen:
            raise StepNameError(
                f"step {name!r} is used twice in run {self.run_id}; "
                "step and wait names must be unique within a run"
            )
        self._seen.add(name)
        index = self._next_index
        self._next_index += 1
        return index

    def progress(
        self, current: int | float, total: int | float | None = None, message: str | None = None
    ) -> None:
        """Report progress; emitted at once, stored at most every 250 ms and at step ends."""
        for label, value in (("current", current), ("total", total)):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise SerializationError(f"progress {label} must be a finite number, not {value!r}")
        if message is not None and not isinstance(message, str):
            raise SerializationError(f"progress message must be a string, not {message!r}")
        self._execution.raise_if_stopped()
        progress = Progress(current=current, total=total, message=message)
        self._pending_progress = to_json(progress.to_dict(), "progress")
        now = self._execution.now_ms()
        waited = now - self._progress_written_at
        if waited >= PROGRESS_PERSIST_INTERVAL_MS:
            self._flush_progress()
        elif self._progress_timer is None:
            delay = (PROGRESS_PERSIST_INTERVAL_MS - waited) / 1000
            self._progress_timer = asyncio.get_running_loop().call_later(
                delay, self._flush_progress_later
            )
        self._execution.announce_progress(progress)

    def take_pending_progress(self, now: int) -> str | None:
        """The progress not stored yet, for the caller's commit to store (None if none).
        A timer already set stays: it stores what is reported after this commit, if
        anything (re-arming it at every step would cost each step a timer)."""
        progress, self._pending_progress = self._pending_progress, None
        if progress is not None:
            self._progress_written_at = now
        return progress

    def cancel_progress_timer(self) -> None:
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._progress_timer = None

    def _flush_progress(self) -> None:
        self.cancel_progress_timer()
        if self._pending_progress is None:
            return
        now = self._execution.now_ms()
        self._execution.store_progress(self._pending_progress, now)
        self._pending_progress = None
        self._progress_written_at = now

    def _flush_progress_later(self) -> None:
        self._progress_timer = None
        if self._pending_progress is None:
            return  # a step's commit stored it meanwhile
        if self._execution.signal.cancelled or self._execution.finished:
            return
        try:
            self._flush_progress()
        except (RunCancelledError, LeaseLostError):
            pass  # the signal has fired: the run stops at its next step boundary
        except Exception as exc:
            self._execution.report_error(exc, "storing progress")

    def _write_log(self, level: LogLevel, message: str, data: Any) -> None:
        if not isinstance(message, str):
            raise SerializationError(
                f"a log message must be a string, not {type(message).__name__}"
            )
        data_json = None if data is None else to_json(data, "log data")
        self._execution.write_log(level, message, data_json, self._current_step)


def is_stray_cancellation() -> bool:
    """Whether an asyncio CancelledError caught now is *not* a cancellation of the
    current task (such as `stop(timeout)` abandoning the run) but one that escaped from
    a cancelled inner future or task. Only a real cancellation must propagate."""
    task = asyncio.current_task()
    return task is None or task.cancelling() == 0


#: `_takes_argument` of plain functions by (code, number of defaults): a job creates a
#: new closure for every step, but from the same few code objects.
_TAKES_ARGUMENT: dict[tuple[CodeType, int], bool] = {}

#: Attributes that make `inspect.signature` describe something other than the function's
#: own code: a decorator's wrapper (`functools.wraps`) shares one code object among all
#: the functions it wraps, so its code says nothing about the wrapped function's arity.
_SIGNATURE_OVERRIDES = ("__wrapped__", "__signature__")


def _takes_argument(fn: Callable[..., Any] | Callable[..., Awaitable[Any]]) -> bool:
    """True if `fn` can be called with one positional argument (the signal)."""
    if (
        isinstance(fn, FunctionType)
        and not fn.__kwdefaults__
        and not any(name in fn.__dict__ for name in _SIGNATURE_OVERRIDES)
    ):
        key = (fn.__code__, len(fn.__defaults__ or ()))
        known = _TAKES_ARGUMENT.get(key)
        if known is None:
            known = _TAKES_ARGUMENT[key] = _inspect_takes_argument(fn)
        return known
    return _inspect_takes_argument(fn)


def _inspect_takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) == 1 or (
        not positional and any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values())
    )
