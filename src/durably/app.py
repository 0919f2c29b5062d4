"""The user-facing runtime: `create_durably` and the `Durably` facade.

The facade composes the parts and implements every public operation on runs. Each part
gets what it uses (store, emitter, clock, settings), never the facade: a run goes from
trigger (here) to `scheduler`, `execution`, `step` and the `store`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from .clock import Clock, EpochMs
from .encoding import from_json, to_json
from .errors import ConflictError, NotFoundError, ValidationError
from .events import (
    Event,
    EventEmitter,
    Listener,
    RunCancelEvent,
    RunCoalescedEvent,
    RunDeleteEvent,
    RunResumeEvent,
    RunsPurgeEvent,
    RunTriggerEvent,
)
from .execution import RunExecution
from .jobs import JobDefinition, JobHandle
from .models import LogRecord, Run, StepRecord, datetime_to_ms
from .options import (
    Limits,
    Settings,
    check_input_size,
    check_run_at,
    check_trigger_options,
    run_query,
)
from .scheduler import Scheduler, default_owner
from .store import NewRun, SqliteStore, Store
from .waiters import RunWaiters
from .waits import Network


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
    clock: EpochMs | None = None,
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
    settings = Settings.create(
        polling_interval_ms=polling_interval_ms,
        lease_ms=lease_ms,
        lease_renew_interval_ms=lease_renew_interval_ms,
        max_concurrent_runs=max_concurrent_runs,
        max_stalled_attempts=max_stalled_attempts,
        preserve_steps=preserve_steps,
        retain_runs=retain_runs,
        limits=limits,
    )
    store = open_store(database) if isinstance(database, str) else database
    durably = Durably(store, settings, Clock(clock), owner or default_owner())
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
        self.emitter = EventEmitter(clock.now)
        #: Whether the runtime is online (`set_online`); runs waiting for the network
        #: wake when it comes back.
        self.network = Network()
        self._scheduler = Scheduler(
            store, self.emitter, clock, settings, owner, self.jobs, self.network
        )
        self._waiters = RunWaiters(store, self.emitter, settings.polling_interval_ms)

    # -- time ------------------------------------------------------------------------

    def now_ms(self) -> int:
        return self._clock()

    def now(self) -> datetime:
        return self._clock.now()

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
            handle = existing or JobHandle(definition, self, self.settings.limits)
            self.jobs[definition.name] = handle
            handles.append(handle)
        self._scheduler.wake()
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
        self._scheduler.start()

    async def init(self) -> None:
        """`migrate()` then `start()`."""
        await self.migrate()
        self.start()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop the worker; waits for the runs in flight to finish. With `timeout`
        (seconds), runs still in flight then are abandoned mid-step: they stay leased
        and resume from their last finished step under the next owner (which counts a
        stalled attempt; see `max_stalled_attempts`)."""
        await self._scheduler.stop(timeout)

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
        self._scheduler.wake()
        return count

    # -- the whole database ----------------------------------------------------------

    async def export_database(self, path: str) -> None:
        """Write a consistent copy of the database to the file `path` (SQLite's online
        backup: runs keep going, the copy is one instant of the database)."""
        self.store.export_database(path)

    async def import_database(self, path: str) -> int:
        """Replace the whole database with the durably database in the file `path`.

        The file is checked first (SQLite header and length, integrity check, a durably
        schema no newer than this release); a file that fails raises ValidationError
        and nothing changes, runs in flight included. Otherwise the runs in flight here
        are stopped at once, as `close` does once its grace period ends (their work since
        their last completed step belongs to the database being replaced); the file is
        copied into the database in one transaction and migrated; every run leased in it
        is reclaimed (its holder was another runtime) and the scheduler starts again if
        it was running. Returns the number of reclaimed runs.

        Only for the database's sole user: another process working on the same file
        would keep writing runs that were replaced under it.
        """
        self.store.validate_import(path)
        was_started = self._scheduler.started
        await self._scheduler.stop(0)
        try:
            self.store.import_database(path)
            self.store.migrate()
            return self.reclaim_leases()
        finally:
            if was_started:
                self.start()

    def database_bytes(self) -> int:
        """Bytes the database occupies on its storage (the file and its write-ahead log)."""
        return self.store.database_bytes()

    # -- events ----------------------------------------------------------------------

    def on(self, event_type: str, listener: Listener) -> Callable[[], None]:
        """Listen to one event type, or ``"*"`` for all; returns an unsubscribe function."""
        return self.emitter.on(event_type, listener)

    def subscribe(self, run_id: str) -> AsyncIterator[Event]:
        """Iterate over one run's events; ends after its terminal event."""
        return self._waiters.subscribe(run_id)

    # -- triggering ------------------------------------------------------------------

    async def enqueue(
        self,
        definition: JobDefinition[Any, Any],
        raw_input: Any,
        *,
        idempotency_key: str | None,
        concurrency_key: str | None,
        coalesce: str | None,
        labels: Mapping[str, str] | None,
        delay: float | None = None,
        run_at: datetime | None = None,
    ) -> Run:
        """Store a run of `definition` (what `JobHandle.trigger` calls: use that)."""
        label_map = check_trigger_options(
            self.settings.limits, idempotency_key, concurrency_key, coalesce, labels
        )
        due = check_run_at(delay, run_at, self.now_ms)
        _, input_json = definition.parse_input(raw_input)
        check_input_size(self.settings.limits, definition.name, input_json)
        run, disposition = self.store.create_run(
            NewRun(
                id=uuid.uuid4().hex,
                job_name=definition.name,
                input_json=input_json,
                idempotency_key=idempotency_key,
                concurrency_key=concurrency_key,
                coalesce=coalesce == "skip",
                labels=label_map,
                run_at=due,
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
            self._scheduler.wake()
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

    def executing(self) -> list[RunExecution]:
        """The runs this runtime is executing now (claimed and not yet finished)."""
        return self._scheduler.executing()

    async def process_one(self) -> bool:
        """Claim and execute one run in this task; False when nothing was eligible."""
        execution = self._scheduler.claim_next()
        if execution is None:
            return False
        await self._scheduler.execute(execution)
        return True

    async def process_until_idle(self, max_runs: int | None = None) -> int:
        """Process runs one by one until none is eligible (or `max_runs`); returns the count."""
        processed = 0
        while (max_runs is None or processed < max_runs) and await self.process_one():
            processed += 1
        return processed

    async def wait_for_run(self, run_id: str, timeout: float | None = None) -> Run:
        """Wait until the run finishes (timeout in seconds) and return it; raises
        RunFailedError, RunCancelledError, NotFoundError or WaitTimeoutError otherwise."""
        return await self._waiters.wait(run_id, timeout)

    # -- reading ---------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run | None:
        return self.store.get_run(run_id)

    async def get_runs(
        self,
        status: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        """Runs matching every given filter, newest first."""
        return self.store.get_runs(
            run_query(self.settings.limits, status, job_name, labels, limit, offset)
        )

    async def count_runs(
        self,
        status: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> int:
        return self.store.count_runs(
            run_query(self.settings.limits, status, job_name, labels, None, None)
        )

    async def get_steps(self, run_id: str) -> list[StepRecord]:
        return self.store.get_steps(run_id)

    async def get_logs(self, run_id: str) -> list[LogRecord]:
        return self.store.get_logs(run_id)

    # -- operations on runs ----------------------------------------------------------

    async def send_event(self, run_id: str, name: str, payload: Any = None) -> None:
        """Send the event `name` with a JSON `payload` to a run. It waits in the run's
        mailbox until the run's `wait_for_event(name)` takes it (at once if the run
        waits for it now). NotFoundError for an unknown run, ConflictError for a finished
        one, ValidationError for a payload that is not JSON (nothing is stored)."""
        if not isinstance(name, str) or not name:
            raise ValidationError("an event needs a non-empty string name", ["name"])
        payload_json = to_json(payload, f"payload of event {name!r}")
        if self.store.send_event(run_id, name, payload_json, self.now_ms()):
            self._scheduler.wake()

    async def resume(self, run_id: str) -> Run:
        """Continue a failed run after its last completed step: it is pending again with
        its error cleared; its completed steps return their stored outputs and what did
        not complete runs afresh. ConflictError for a run that did not fail."""
        run = self.store.resume_run(run_id, self.now_ms())
        self.emitter.emit(
            RunResumeEvent(run_id=run.id, job_name=run.job_name, timestamp=self.now())
        )
        self._scheduler.wake()
        return run

    @property
    def online(self) -> bool:
        return self.network.online

    def set_online(self, online: bool) -> None:
        """Tell the runtime whether the network is reachable (the browser bridge does).
        Coming online wakes the runs waiting for the network."""
        self.network.online = bool(online)
        if online and self.store.wake_network_waits(self.now_ms()):
            self._scheduler.wake()

    async def cancel(self, run_id: str) -> Run:
        """Cancel a pending, leased or waiting run. A leased run stops at its next step boundary
        at the latest, and its steps' cancellation signal fires. If it runs here, the
        step in flight gets its step:cancel before run:cancel, the run's last event."""
        before = self.store.cancel_run(run_id, self.now_ms(), self.settings.preserve_steps)
        execution = self._scheduler.execution_of(run_id)
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
        self.emitter.report(exc, context)
