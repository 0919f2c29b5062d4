"""The user-facing runtime: `create_durably` and the `Durably` instance.

It owns the store, the registered jobs, the event emitter and the worker, and
implements every public operation on runs. Execution of one run lives in
`runtime.py`, the loop in `worker.py`, waiting in `waiters.py`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .durations import parse_duration_ms
from .encoding import from_json
from .errors import ConflictError, NotFoundError, ValidationError
from .events import (
    Event,
    EventEmitter,
    Listener,
    RunCancelEvent,
    RunCoalescedEvent,
    RunDeleteEvent,
    RunsPurgeEvent,
    RunTriggerEvent,
    WorkerErrorEvent,
)
from .jobs import JobDefinition, JobHandle
from .models import LogRecord, Run, RunStatus, StepRecord, datetime_to_ms
from .runtime import Outcome, RunExecution, describe_error
from .store import NewRun, RunQuery, SqliteStore, Store
from .waiters import RunWaiters
from .worker import Worker, default_owner

Clock = Callable[[], int]


@dataclass(frozen=True)
class Limits:
    """Bounds on what a trigger may store; larger values raise ValidationError."""

    max_input_bytes: int = 1_048_576  # JSON-encoded input
    max_labels: int = 32
    max_label_length: int = 256  # each label key and value, in characters
    max_key_length: int = 256  # idempotency and concurrency keys


@dataclass(frozen=True)
class Settings:
    polling_interval_ms: int
    lease_ms: int
    lease_renew_interval_ms: int
    max_concurrent_runs: int
    #: A run claimed this many times in a row without finishing a step is failed.
    max_stalled_attempts: int
    preserve_steps: bool
    retain_runs_ms: int | None
    limits: Limits


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def open_store(database: str) -> Store:
    """The store a database string names: a PostgreSQL URL, else a SQLite path."""
    if database.startswith(("postgresql://", "postgres://")):
        try:
            from .store.postgres import PostgresStore
        except ImportError as exc:
            raise ImportError(
                f"{database.split(':', 1)[0]} URLs need the PostgreSQL driver: "
                "pip install 'durably[postgres]'"
            ) from exc
        return PostgresStore(database)
    return SqliteStore(database)


def create_durably(
    database: str | Store = "durably.db",
    jobs: Sequence[JobDefinition[Any, Any]] = (),
    *,
    polling_interval_ms: int = 1000,
    lease_ms: int = 30_000,
    lease_renew_interval_ms: int = 5_000,
    max_concurrent_runs: int = 1,
    max_stalled_attempts: int = 3,
    preserve_steps: bool = False,
    retain_runs: str | None = None,
    clock: Clock | None = None,
    owner: str | None = None,
    limits: Limits | None = None,
) -> Durably:
    """Create a runtime on a SQLite file path, ":memory:", a PostgreSQL URL
    (``postgresql://user@host:5432/db``; needs ``durably[postgres]``), or a `Store`.

    `retain_runs` ("30d", "12h", "90m") purges finished runs that old during idle time.
    `max_stalled_attempts`: a run whose worker (or tab) stopped this many times in a row
    before it finished a step is failed instead of retried forever.
    `clock` returns epoch milliseconds (for tests). Call `await durably.init()` next.
    """
    settings = Settings(
        polling_interval_ms=_positive("polling_interval_ms", polling_interval_ms),
        lease_ms=_positive("lease_ms", lease_ms),
        lease_renew_interval_ms=_positive("lease_renew_interval_ms", lease_renew_interval_ms),
        max_concurrent_runs=_positive("max_concurrent_runs", max_concurrent_runs),
        max_stalled_attempts=_positive("max_stalled_attempts", max_stalled_attempts),
        preserve_steps=bool(preserve_steps),
        retain_runs_ms=None if retain_runs is None else parse_duration_ms(retain_runs),
        limits=limits or Limits(),
    )
    if settings.lease_renew_interval_ms >= settings.lease_ms:
        raise ValueError("lease_renew_interval_ms must be shorter than lease_ms")
    store = open_store(database) if isinstance(database, str) else database
    durably = Durably(store, settings, clock or _epoch_ms, owner or default_owner())
    durably.register(*jobs)
    return durably


class Durably:
    """A durable job runtime on one database. Create it with `create_durably`."""

    def __init__(self, store: Store, settings: Settings, clock: Clock, owner: str) -> None:
        self.store = store
        self.settings = settings
        self.owner = owner
        self._clock = clock
        self.jobs: dict[str, JobHandle] = {}
        self.emitter = EventEmitter(self.now)
        self._worker = Worker(self)
        self._waiters = RunWaiters(self)
        self._executions: dict[str, RunExecution] = {}

    # -- time ------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self._clock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock() / 1000, tz=UTC)

    # -- jobs and lifecycle ----------------------------------------------------------

    def register(self, *definitions: JobDefinition[Any, Any]) -> list[JobHandle]:
        """Register jobs; a second, different job with a taken name raises ValueError."""
        handles = []
        for definition in definitions:
            if not isinstance(definition, JobDefinition):
                raise TypeError(f"expected a job from define_job, got {definition!r}")
            existing = self.jobs.get(definition.name)
            if existing is not None and existing.definition is not definition:
                raise ValueError(f"a different job named {definition.name!r} is already registered")
            handle = existing or JobHandle(self, definition)
            self.jobs[definition.name] = handle
            handles.append(handle)
        self._worker.wake()
        return handles

    def get_job(self, name: str) -> JobHandle | None:
        return self.jobs.get(name)

    def _require_job(self, name: str) -> JobHandle:
        handle = self.jobs.get(name)
        if handle is None:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise NotFoundError(f"job {name!r} is not registered (registered jobs: {known})")
        return handle

    async def migrate(self) -> None:
        """Create or upgrade the database schema."""
        self.store.migrate()

    def start(self) -> None:
        """Start the worker loop in the running event loop."""
        self._worker.start()

    async def init(self) -> None:
        """`migrate()` then `start()`."""
        await self.migrate()
        self.start()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop the worker; waits for the runs in flight to finish. With `timeout`
        (seconds), runs still in flight then are abandoned mid-step: they stay leased
        and resume from their last finished step under the next owner (which counts a
        stalled attempt; see `max_stalled_attempts`)."""
        await self._worker.stop(timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Stop (see `stop`) and close the store. Pending `wait_for_run` calls and
        subscriptions end with a DurablyError."""
        await self.stop(timeout)
        await self._waiters.close()
        self.store.close()

    def reclaim_leases(self) -> int:
        """Make every leased run claimable now. Only for a process that knows it is the
        database's sole owner (the browser tab holding the Web Lock): the previous
        holders are gone, so their leases need not run out."""
        count = self.store.expire_leases(self.now_ms())
        self._worker.wake()
        return count

    # -- events ----------------------------------------------------------------------

    def on(self, event_type: str, listener: Listener) -> Callable[[], None]:
        """Listen to one event type, or ``"*"`` for all; returns an unsubscribe function."""
        return self.emitter.on(event_type, listener)

    def subscribe(self, run_id: str) -> AsyncIterator[Event]:
        """Iterate over one run's events; ends after its terminal event."""
        return self._waiters.subscribe(run_id)

    # -- triggering ------------------------------------------------------------------

    def _check_options(
        self, idempotency_key: Any, concurrency_key: Any, coalesce: Any, labels: Any
    ) -> dict[str, str]:
        limits = self.settings.limits
        for name, key in (
            ("idempotency_key", idempotency_key),
            ("concurrency_key", concurrency_key),
        ):
            if key is not None and (not isinstance(key, str) or not key):
                raise ValidationError(f"{name} must be a non-empty string", fields=[name])
            if isinstance(key, str) and len(key) > limits.max_key_length:
                raise ValidationError(
                    f"{name} is {len(key)} characters; the limit is {limits.max_key_length}",
                    fields=[name],
                )
        if coalesce not in (None, "skip"):
            raise ValidationError(
                f"coalesce must be None or 'skip', not {coalesce!r}", ["coalesce"]
            )
        if coalesce is not None and concurrency_key is None:
            raise ValidationError("coalesce needs a concurrency_key", fields=["coalesce"])
        if labels is None:
            return {}
        if not isinstance(labels, Mapping):
            raise ValidationError("labels must be a mapping of strings to strings", ["labels"])
        if len(labels) > limits.max_labels:
            raise ValidationError(
                f"{len(labels)} labels given; the limit is {limits.max_labels}", ["labels"]
            )
        for key, value in labels.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValidationError(
                    f"label {key!r}: keys and values must be strings, got "
                    f"{type(key).__name__} = {type(value).__name__}",
                    [f"labels.{key}"],
                )
            if (
                not key
                or len(key) > limits.max_label_length
                or len(value) > limits.max_label_length
            ):
                raise ValidationError(
                    f"label {key[:40]!r}: keys must be 1 to {limits.max_label_length} characters "
                    f"and values at most {limits.max_label_length}",
                    [f"labels.{key}"],
                )
        return dict(labels)

    async def _trigger(
        self,
        definition: JobDefinition[Any, Any],
        raw_input: Any,
        *,
        idempotency_key: str | None,
        concurrency_key: str | None,
        coalesce: str | None,
        labels: Mapping[str, str] | None,
    ) -> Run:
        label_map = self._check_options(idempotency_key, concurrency_key, coalesce, labels)
        _, input_json = definition.parse_input(raw_input)
        limit = self.settings.limits.max_input_bytes
        if len(input_json.encode()) > limit:
            raise ValidationError(
                f"input of job {definition.name!r} is {len(input_json.encode())} bytes as JSON; "
                f"the limit is {limit}",
                fields=["input"],
            )
        run, disposition = self.store.create_run(
            NewRun(
                id=uuid.uuid4().hex,
                job_name=definition.name,
                input_json=input_json,
                idempotency_key=idempotency_key,
                concurrency_key=concurrency_key,
                coalesce=coalesce == "skip",
                labels=label_map,
            ),
            self.now_ms(),
        )
        if disposition == "created":
            self.emitter.emit(
                RunTriggerEvent(
                    run_id=run.id,
                    job_name=run.job_name,
                    timestamp=self.now(),
                    input=run.input,
                    labels=run.labels,
                )
            )
            self._worker.wake()
        elif disposition == "coalesced":
            self.emitter.emit(
                RunCoalescedEvent(
                    run_id=run.id,
                    job_name=run.job_name,
                    timestamp=self.now(),
                    skipped_input=from_json(input_json),
                    skipped_labels=label_map,
                )
            )
        return replace(run, disposition=disposition)

    async def trigger(self, job_name: str, input: Any, **options: Any) -> Run:
        """Trigger a job by name (see `JobHandle.trigger`); NotFoundError for unknown jobs."""
        return await self._require_job(job_name).trigger(input, **options)

    # -- executing -------------------------------------------------------------------

    def _claim_next(self) -> RunExecution | None:
        # Runs executing here are never claimed again, however late their lease: a
        # step that blocked the event loop past lease_ms is still running, not dead.
        claimed = self.store.claim_next(
            self.owner,
            self.now_ms(),
            self.settings.lease_ms,
            list(self.jobs),
            list(self._executions),
        )
        if claimed is None:
            return None
        run = claimed.run
        execution = RunExecution(self, self.jobs[run.job_name].definition, claimed)
        # Known from the claim on, not from when its task starts: a cancel in between
        # must reach it.
        self._executions[run.id] = execution
        return execution

    def executing(self) -> list[RunExecution]:
        """The runs this runtime is executing now (claimed and not yet finished)."""
        return list(self._executions.values())

    async def _execute(self, execution: RunExecution) -> Outcome:
        try:
            return await execution.execute()
        finally:
            if self._executions.get(execution.run.id) is execution:
                del self._executions[execution.run.id]

    async def process_one(self) -> bool:
        """Claim and execute one run in this task; False when nothing was eligible."""
        execution = self._claim_next()
        if execution is None:
            return False
        await self._execute(execution)
        return True

    async def process_until_idle(self, max_runs: int | None = None) -> int:
        """Process runs one by one until none is eligible (or `max_runs`); returns the count."""
        processed = 0
        while (max_runs is None or processed < max_runs) and await self.process_one():
            processed += 1
        return processed

    async def wait_for_run(self, run_id: str, timeout: float | None = None) -> Run:
        """Wait until the run finishes (timeout in seconds) and return it; raises
        RunFailedError, CancelledError, NotFoundError or WaitTimeoutError otherwise."""
        return await self._waiters.wait(run_id, timeout)

    # -- reading ---------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run | None:
        return self.store.get_run(run_id)

    def _query(
        self,
        status: Any,
        job_name: Any,
        labels: Mapping[str, str] | None,
        limit: int | None,
        offset: int | None,
    ) -> RunQuery:
        statuses = [status] if isinstance(status, str) else list(status or [])
        try:
            parsed = [RunStatus(s) for s in statuses]
        except ValueError:
            known = ", ".join(s.value for s in RunStatus)
            raise ValidationError(
                f"unknown status in {statuses!r}; use {known}", ["status"]
            ) from None
        names = [job_name] if isinstance(job_name, str) else list(job_name or [])
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValidationError(f"{name} must be a non-negative integer", [name])
        label_filter = self._check_options(None, None, None, labels)
        return RunQuery(
            statuses=parsed, job_names=names, labels=label_filter, limit=limit, offset=offset
        )

    async def get_runs(
        self,
        status: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        """Runs matching every given filter, newest first."""
        return self.store.get_runs(self._query(status, job_name, labels, limit, offset))

    async def count_runs(
        self,
        status: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> int:
        return self.store.count_runs(self._query(status, job_name, labels, None, None))

    async def get_steps(self, run_id: str) -> list[StepRecord]:
        return self.store.get_steps(run_id)

    async def get_logs(self, run_id: str) -> list[LogRecord]:
        return self.store.get_logs(run_id)

    # -- operations on runs ----------------------------------------------------------

    async def cancel(self, run_id: str) -> Run:
        """Cancel a pending or leased run. A leased run stops at its next step boundary
        at the latest, and its steps' cancellation signal fires. If it runs here, the
        step in flight gets its step:cancel before run:cancel, the run's last event."""
        before = self.store.cancel_run(run_id, self.now_ms(), self.settings.preserve_steps)
        execution = self._executions.get(run_id)
        if execution is not None:
            # step:cancel for the step in flight first: run:cancel is the run's last event.
            execution.announce_cancel()
        self.emitter.emit(
            RunCancelEvent(run_id=run_id, job_name=before.job_name, timestamp=self.now())
        )
        if execution is not None:
            execution.signal.fire("cancelled")
        return self.store.get_run(run_id) or before

    async def retrigger(self, run_id: str) -> Run:
        """Trigger a fresh run of a finished run's job with the same input and labels."""
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} not found")
        if not run.status.is_terminal:
            raise ConflictError(
                f"run {run_id} is still {run.status}; only finished runs can be retriggered"
            )
        handle = self._require_job(run.job_name)
        return await handle.trigger(
            run.input, concurrency_key=run.concurrency_key, labels=run.labels
        )

    async def delete_run(self, run_id: str) -> None:
        """Delete a finished run with its steps, logs and labels."""
        run = self.store.delete_run(run_id)
        self.emitter.emit(
            RunDeleteEvent(run_id=run_id, job_name=run.job_name, timestamp=self.now())
        )

    async def purge_runs(self, older_than: datetime, limit: int = 500) -> int:
        """Delete up to `limit` finished runs completed before `older_than`; returns the
        count. Emits one ``runs:purge`` event naming the deleted runs (none if none were)."""
        if not isinstance(limit, int) or limit <= 0:
            raise ValidationError("limit must be a positive integer", ["limit"])
        run_ids = self.store.purge_runs(datetime_to_ms(older_than), limit)
        if run_ids:
            self.emitter.emit(RunsPurgeEvent.of(run_ids, self.now()))
        return len(run_ids)

    def report_error(self, exc: BaseException, context: str) -> None:
        """Emit `worker:error` for a failure outside any run (used by integrations)."""
        self.emitter.emit(
            WorkerErrorEvent(
                run_id=None,
                job_name=None,
                timestamp=self.now(),
                error=describe_error(exc),
                context=context,
            )
        )
