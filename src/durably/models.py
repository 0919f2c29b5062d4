"""Read models returned by the public API: runs, steps, logs, trigger results.

All are frozen snapshots of what the store held when they were read. Times are UTC
datetimes (`ms_to_datetime` is the one conversion from stored milliseconds); `to_dict()`
gives the JSON-safe form the bridge sends. The finished statuses are listed once here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, overload


class RunStatus(StrEnum):
    """A run's status. The finished ones (`is_terminal`) are listed once, below."""

    PENDING = "pending"  # waiting to be claimed by a worker
    LEASED = (
        "leased"  # claimed; the lease holder is executing it (or died, until the lease expires)
    )
    #: suspended without a lease: sleeping, waiting for an event, the network or a retry's
    #: delay (`waiting_for`); claimable again at `wake_at`. Still in progress: it keeps
    #: its concurrency key.
    WAITING = "waiting"
    COMPLETED = "completed"  # finished; `output` holds the result
    FAILED = "failed"  # finished with an error; `error` holds the message
    CANCELLED = "cancelled"  # cancelled before it finished

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})

Disposition = Literal["created", "idempotent", "coalesced"]


@overload
def ms_to_datetime(ms: int | float) -> datetime: ...
@overload
def ms_to_datetime(ms: None) -> None: ...
def ms_to_datetime(ms: int | float | None) -> datetime | None:
    """Epoch milliseconds as a UTC datetime (None stays None): the one conversion."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("use a timezone-aware datetime (e.g. datetime.now(UTC))")
    # Integer arithmetic: float timestamps * 1000 can land just below the millisecond.
    return (value - _UNIX_EPOCH) // _ONE_MS


def _json_safe(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, Progress):
        return value.to_dict()
    return value


class _Snapshot:
    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form of this snapshot (datetimes as ISO-8601 UTC strings)."""
        return {f.name: _json_safe(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Progress(_Snapshot):
    current: int | float
    total: int | float | None = None
    message: str | None = None


@dataclass(frozen=True)
class Run(_Snapshot):
    id: str
    job_name: str
    input: Any
    status: RunStatus
    idempotency_key: str | None
    concurrency_key: str | None
    labels: dict[str, str]
    current_step_index: int
    completed_step_count: int
    progress: Progress | None
    output: Any
    error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    lease_generation: int
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    #: A waiting run: when it becomes claimable again (None: when its event arrives or
    #: the network returns).
    wake_at: datetime | None = None
    #: A waiting run: what it waits for, ``{"kind": "sleep"|"event"|"online"|"retry",
    #: "name", "until"}`` (`until` an ISO-8601 UTC string or None).
    waiting_for: dict[str, Any] | None = None
    #: A delayed run (``trigger(delay=...)``): not claimed before this time.
    run_at: datetime | None = None
    #: How the trigger call that returned this run got it; None on runs read back later.
    disposition: Disposition | None = None


StepStatus = Literal["completed", "failed", "cancelled", "waiting"]
#: What a step record is: a step, or one of the waits that share its namespace.
StepKind = Literal["step", "sleep", "event", "online"]


@dataclass(frozen=True)
class StepRecord(_Snapshot):
    run_id: str
    name: str
    index: int
    status: StepStatus
    output: Any
    error: str | None
    started_at: datetime
    completed_at: datetime | None
    kind: StepKind = "step"
    #: Attempts made (a step with retries); the error of the last failed one.
    attempts: int = 1
    last_error: str | None = None
    #: A wait in progress: its deadline (a sleep's end, an event's timeout, a retry's
    #: next attempt); None otherwise.
    wake_at: datetime | None = None


LogLevel = Literal["info", "warn", "error"]


@dataclass(frozen=True)
class LogRecord(_Snapshot):
    id: int
    run_id: str
    step_name: str | None
    level: LogLevel
    message: str
    data: Any
    created_at: datetime


@dataclass(frozen=True)
class RunResult(_Snapshot):
    """What `trigger_and_wait` returns for a completed run."""

    id: str
    output: Any
    disposition: Disposition
    labels: dict[str, str] = field(default_factory=dict)
