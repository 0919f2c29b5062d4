"""Typed events, one class per ``noun:verb``, and the emitter that delivers them.

Listeners run in the emitting task (sync) or as their own task (async). A listener that
raises never reaches the run: its error becomes ``worker:error`` (logged if that fails
too). Every ``worker:error`` is built by `WorkerErrorEvent.of`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from .errors import describe_error
from .models import Progress, _json_safe

logger = logging.getLogger("durably")


@dataclass(frozen=True, kw_only=True)
class Event:
    type: ClassVar[str]
    run_id: str | None
    job_name: str | None
    timestamp: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, with ``type`` first."""
        data: dict[str, Any] = {"type": self.type}
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            # Every event of a run's steps is converted: look its class's fields up once.
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in fields(self))
        for name in names:
            data[name] = _json_safe(getattr(self, name))
        return data


_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {}


@dataclass(frozen=True, kw_only=True)
class RunTriggerEvent(Event):
    type: ClassVar[str] = "run:trigger"
    input: Any
    labels: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class RunCoalescedEvent(Event):
    """A trigger was folded into the already pending run `run_id` (``coalesce="skip"``)."""

    type: ClassVar[str] = "run:coalesced"
    skipped_input: Any
    skipped_labels: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class RunLeasedEvent(Event):
    type: ClassVar[str] = "run:leased"
    lease_owner: str
    lease_expires_at: datetime
    lease_generation: int


@dataclass(frozen=True, kw_only=True)
class RunLeaseRenewedEvent(Event):
    type: ClassVar[str] = "run:lease-renewed"
    lease_owner: str
    lease_expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class RunProgressEvent(Event):
    type: ClassVar[str] = "run:progress"
    progress: Progress


@dataclass(frozen=True, kw_only=True)
class RunCompleteEvent(Event):
    type: ClassVar[str] = "run:complete"
    output: Any
    duration_ms: int


@dataclass(frozen=True, kw_only=True)
class RunFailEvent(Event):
    type: ClassVar[str] = "run:fail"
    error: str
    failed_step: str | None


@dataclass(frozen=True, kw_only=True)
class RunCancelEvent(Event):
    type: ClassVar[str] = "run:cancel"


@dataclass(frozen=True, kw_only=True)
class RunWaitEvent(Event):
    """The run suspended: it holds no lease until `until` passes, or its event arrives,
    or the network returns. `kind` is sleep, event, online or retry; `name` the wait's
    (a retry's: its step's)."""

    type: ClassVar[str] = "run:wait"
    kind: str
    name: str
    until: datetime | None


@dataclass(frozen=True, kw_only=True)
class RunWakeEvent(Event):
    """A waiting run was claimed again; it replays to the wait `name` and goes on."""

    type: ClassVar[str] = "run:wake"
    kind: str
    name: str


@dataclass(frozen=True, kw_only=True)
class RunResumeEvent(Event):
    """A failed run was put back to pending; it continues after its last completed step."""

    type: ClassVar[str] = "run:resume"


@dataclass(frozen=True, kw_only=True)
class StepRetryEvent(Event):
    """An attempt of a step with retries failed; attempt `attempt + 1` starts after
    `next_delay_ms` (or, with `offline`, once the network is back: not counted)."""

    type: ClassVar[str] = "step:retry"
    step_name: str
    step_index: int
    attempt: int
    error: str
    next_delay_ms: int | None
    offline: bool = False


@dataclass(frozen=True, kw_only=True)
class RunDeleteEvent(Event):
    type: ClassVar[str] = "run:delete"


@dataclass(frozen=True, kw_only=True)
class StepStartEvent(Event):
    type: ClassVar[str] = "step:start"
    step_name: str
    step_index: int


@dataclass(frozen=True, kw_only=True)
class StepCompleteEvent(Event):
    type: ClassVar[str] = "step:complete"
    step_name: str
    step_index: int
    output: Any
    duration_ms: int


@dataclass(frozen=True, kw_only=True)
class StepFailEvent(Event):
    type: ClassVar[str] = "step:fail"
    step_name: str
    step_index: int
    error: str


@dataclass(frozen=True, kw_only=True)
class StepCancelEvent(Event):
    type: ClassVar[str] = "step:cancel"
    step_name: str
    step_index: int


@dataclass(frozen=True, kw_only=True)
class LogWriteEvent(Event):
    type: ClassVar[str] = "log:write"
    level: str
    message: str
    data: Any
    step_name: str | None


@dataclass(frozen=True, kw_only=True)
class RunsPurgeEvent(Event):
    """Finished runs were deleted in bulk (`purge_runs` or `retain_runs`): one event per
    purge that deleted any, instead of a ``run:delete`` per run. `run_id` and
    `job_name` are None: the event is about many runs."""

    type: ClassVar[str] = "runs:purge"
    run_ids: list[str]
    count: int

    @classmethod
    def of(cls, run_ids: list[str], timestamp: datetime) -> RunsPurgeEvent:
        return cls(
            run_id=None, job_name=None, timestamp=timestamp, run_ids=run_ids, count=len(run_ids)
        )


@dataclass(frozen=True, kw_only=True)
class WorkerErrorEvent(Event):
    """A failure outside any run's own failure path (a listener, storage, housekeeping)."""

    type: ClassVar[str] = "worker:error"
    error: str
    context: str

    @classmethod
    def of(
        cls,
        exc: BaseException,
        context: str,
        timestamp: datetime,
        run_id: str | None = None,
        job_name: str | None = None,
    ) -> WorkerErrorEvent:
        return cls(
            run_id=run_id,
            job_name=job_name,
            timestamp=timestamp,
            error=describe_error(exc),
            context=context,
        )


EVENT_CLASSES: tuple[type[Event], ...] = (
    RunTriggerEvent,
    RunCoalescedEvent,
    RunLeasedEvent,
    RunLeaseRenewedEvent,
    RunProgressEvent,
    RunCompleteEvent,
    RunFailEvent,
    RunCancelEvent,
    RunDeleteEvent,
    RunWaitEvent,
    RunWakeEvent,
    RunResumeEvent,
    RunsPurgeEvent,
    StepStartEvent,
    StepCompleteEvent,
    StepFailEvent,
    StepCancelEvent,
    StepRetryEvent,
    LogWriteEvent,
    WorkerErrorEvent,
)
EVENT_TYPES: tuple[str, ...] = tuple(cls.type for cls in EVENT_CLASSES)
TERMINAL_RUN_EVENTS = frozenset({"run:complete", "run:fail", "run:cancel", "run:delete"})

Listener = Callable[[Event], Awaitable[None] | None]


class EventEmitter:
    """Delivers events to listeners registered per type or for every type (``"*"``)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._clock = clock
        # Strong references to async listener tasks, so they are not collected mid-flight.
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, event_type: str, listener: Listener) -> Callable[[], None]:
        """Register `listener`; returns a function that unregisters it."""
        if event_type != "*" and event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
        bucket = self._listeners.setdefault(event_type, [])
        bucket.append(listener)

        def unsubscribe() -> None:
            if listener in bucket:
                bucket.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for listener in [*self._listeners.get(event.type, ()), *self._listeners.get("*", ())]:
            self._call(listener, event)

    def report(
        self,
        exc: BaseException,
        context: str,
        run_id: str | None = None,
        job_name: str | None = None,
    ) -> None:
        """Emit ``worker:error`` for a failure that is not a run's own failure."""
        self.emit(WorkerErrorEvent.of(exc, context, self._clock(), run_id, job_name))

    def _call(self, listener: Listener, event: Event) -> None:
        try:
            result = listener(event)
        except Exception as exc:
            self._report(exc, event)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._await(result, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _await(self, awaitable: Awaitable[None], event: Event) -> None:
        try:
            await awaitable
        except Exception as exc:
            self._report(exc, event)

    def _report(self, exc: Exception, event: Event) -> None:
        if isinstance(event, WorkerErrorEvent):
            # A failing worker:error listener has nowhere left to report to.
            logger.error("worker:error listener raised", exc_info=exc)
            return
        self.report(exc, f"listener for {event.type}", event.run_id, event.job_name)
