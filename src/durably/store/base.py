"""The storage interface: everything the runtime asks of a database, in one place.

A store knows nothing about jobs or Python callables: it keeps runs, steps,
logs and labels, and enforces the queue's invariants (one claim per
generation, one pending run per concurrency key, fenced lease-holder writes).
Methods are synchronous; the runtime calls them from its event loop.

Writes made on behalf of a lease holder take a `Lease` and return whether they
applied: False means the run was reclaimed by another worker (new generation)
or left the `leased` state (cancelled), and nothing was written.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ..errors import StorageError
from ..models import Disposition, LogLevel, LogRecord, Run, RunStatus, StepKind, StepRecord

#: What a waiting run waits for: a time, an event, the network, or a retry's delay.
WaitKind = Literal["sleep", "event", "online", "retry"]


@dataclass(frozen=True)
class Lease:
    """Proof of ownership of a leased run: valid while the stored generation matches."""

    run_id: str
    generation: int
    owner: str


class Claim(NamedTuple):
    """What `claim_next` leased: the run as the claim left it, and the new lease."""

    run: Run
    lease: Lease
    #: Claims since the run's last finished step that found it abandoned by its previous
    #: holder (0 when it was claimed from `pending`, or has progressed since).
    stalled_claims: int = 0
    #: The step that was in flight when it was last abandoned, if known.
    stalled_step: str | None = None
    #: The run was `waiting` until this claim: its stored `waiting_for` (decoded JSON,
    #: `until` in epoch ms), for the ``run:wake`` event. None for any other claim.
    woken_from: dict[str, Any] | None = None


@dataclass(frozen=True)
class Wait:
    """A wait a run suspends on (`Store.suspend_run`): stored as the run's `wake_at` and
    `waiting_for`, and as the step record `name` (status ``waiting``)."""

    kind: WaitKind
    #: The wait's name (a retry's: its step's name), unique per run like a step name.
    name: str
    index: int
    #: When the wait (or the retried step) first started, epoch ms.
    started_at: int
    #: When the run becomes claimable again, epoch ms; None: no time (an event without
    #: a timeout, the network).
    until: int | None
    #: A retry: failed attempts so far and the last error.
    attempts: int = 1
    last_error: str | None = None
    #: The kind of its step record, when it is not the wait's own kind: a step waiting
    #: for the network before its next attempt is a ``step`` record.
    record_kind: StepKind | None = None

    @property
    def step_kind(self) -> StepKind:
        """The kind of its step record (a retry's is its step's)."""
        if self.record_kind is not None:
            return self.record_kind
        return "step" if self.kind == "retry" else self.kind

    def waiting_for(self) -> dict[str, Any]:
        """The run's `waiting_for` as stored (JSON; `until` in epoch ms)."""
        return {"kind": self.kind, "name": self.name, "until": self.until}


class NewLog(NamedTuple):
    """A log line to store (`append_logs`, or with a step's outcome: `persist_step`)."""

    level: LogLevel
    message: str
    data_json: str | None
    step_name: str | None
    #: When it was written, epoch ms (a buffered line is stored later).
    created_at: int


@dataclass(frozen=True)
class NewRun:
    id: str
    job_name: str
    input_json: str
    idempotency_key: str | None = None
    concurrency_key: str | None = None
    #: With a concurrency key: return the pending run instead of raising ConflictError.
    coalesce: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    #: A delayed run: pending, but not claimable before this time (epoch ms).
    run_at: int | None = None


@dataclass(frozen=True)
class RunQuery:
    statuses: Sequence[RunStatus] = ()
    job_names: Sequence[str] = ()
    labels: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    offset: int | None = None


def _nothing() -> None:
    pass


class Store(ABC):
    # -- lifecycle -------------------------------------------------------------------

    @abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call on every start."""

    @abstractmethod
    def close(self) -> None:
        """Release the database; the store is unusable afterwards."""

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` whenever another process may have made a run claimable (a
        trigger, a finished run of a concurrency key), so a worker need not poll for it;
        returns a function that stops watching. The callback may run on another thread:
        it must be thread-safe. A store whose database has no other writers (SQLite in
        one process, the browser) has nothing to announce and never calls it."""
        return _nothing

    def release_lease(self, lease: Lease, now: int) -> bool:
        """Hand a leased run back (its lease expires now) so another worker may claim it
        without waiting for the lease to run out; fenced like every holder write.
        Returns whether it applied. Stores without other workers need not do anything."""
        return False

    # -- the whole database: export and import ---------------------------------------
    # Optional: a store that cannot copy itself into one file (a server database) keeps
    # these defaults, which refuse with a StorageError naming the tool to use instead.

    #: What to use instead of export_database / import_database, for the error message.
    backup_tool = "the database's own backup tools"

    def export_database(self, path: str) -> None:
        """Write a consistent copy of the whole database to the file `path`, while runs
        keep going. StorageError if it cannot be written."""
        raise StorageError(f"{type(self).__name__} cannot export to a file; use {self.backup_tool}")

    def validate_import(self, path: str) -> None:
        """Raise ValidationError unless `path` is a database `import_database` accepts:
        intact, of this runtime's kind, with a schema no newer than this release's."""
        raise StorageError(f"{type(self).__name__} cannot import a file; use {self.backup_tool}")

    def import_database(self, path: str) -> None:
        """Replace the whole database, atomically, with the file `path` (checked as by
        `validate_import`: ValidationError changes nothing). The caller has stopped every
        lease holder of this database and migrates the result afterwards."""
        raise StorageError(f"{type(self).__name__} cannot import a file; use {self.backup_tool}")

    def database_bytes(self) -> int:
        """How many bytes the database occupies on its storage (files and logs)."""
        raise StorageError(f"{type(self).__name__} does not report its size")

    # -- creating and reading runs ---------------------------------------------------

    @abstractmethod
    def create_run(self, new: NewRun, now: int) -> tuple[Run, Disposition]:
        """Insert a pending run, or return the existing one its idempotency key names
        ("idempotent"), or the pending run of its concurrency key when coalescing
        ("coalesced"). Raises ConflictError when the key has a pending run otherwise.

        An idempotency key names the run its first trigger returned, whatever that
        trigger's disposition: a coalesced trigger's key is remembered too, so a retry
        returns the run it was coalesced into (which may belong to another job).
        A run with `run_at` is stored pending but is not claimable before that time."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run | None: ...

    @abstractmethod
    def get_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching every filter, newest first."""

    @abstractmethod
    def count_runs(self, query: RunQuery) -> int: ...

    @abstractmethod
    def get_statuses(self, run_ids: Sequence[str]) -> dict[str, RunStatus]:
        """Current status of each existing run (deleted runs are absent)."""

    # -- leases ----------------------------------------------------------------------

    @abstractmethod
    def claim_next(
        self,
        owner: str,
        now: int,
        lease_ms: int,
        job_names: Sequence[str],
        held: Sequence[str] = (),
    ) -> Claim | None:
        """Lease the oldest eligible run of one of `job_names` (pending and due, i.e.
        `run_at` unset or passed; leased with an expired lease; or waiting with `wake_at`
        passed) whose concurrency key has no live lease and no waiting run; None when
        there is none. A waiting run's claim clears its `wake_at` and `waiting_for` and
        returns what it waited for as `Claim.woken_from`.

        `held` are the runs the caller is executing itself: they are never claimed, and
        they block their concurrency key as a live lease does, however long ago their
        lease expired. In the same transaction, every other run of the claimed run's
        concurrency key whose lease expired is fenced (new generation, no owner; still
        `leased`, so claimable once the key is free): its stale holder can write nothing
        from then on. Claiming a run that was still `leased` counts a stalled claim."""

    @abstractmethod
    def next_wake_at(self, job_names: Sequence[str]) -> int | None:
        """The earliest time (epoch ms) a run of `job_names` becomes due: a waiting run's
        `wake_at` or a delayed pending run's `run_at`; None when no run waits for a
        time. A read: the scheduler sets its timer from it."""

    @abstractmethod
    def renew_lease(self, lease: Lease, now: int, lease_ms: int) -> bool: ...

    @abstractmethod
    def expire_leases(self, now: int) -> int:
        """Make every leased run claimable at once; for a new sole owner of the database."""

    # -- writes by the lease holder (fenced by generation) ---------------------------

    @abstractmethod
    def start_step(self, lease: Lease) -> bool:
        """Whether the lease still holds before a step starts. Writes nothing: the run's
        position is stored with the step's outcome (`persist_step`), fenced again. A
        store that is its database's only writer may answer True without reading: it
        changes every lease itself, and the runtime learns of those changes in-process."""

    @abstractmethod
    def record_stalled_step(self, lease: Lease, name: str, now: int) -> bool:
        """Remember `name` as the step in flight of a recovering run (one that was
        abandoned before), so that failing it for stalling can name the step."""

    @abstractmethod
    def persist_step(
        self,
        lease: Lease,
        name: str,
        index: int,
        output_json: str,
        started_at: int,
        now: int,
        progress_json: str | None = None,
        kind: StepKind = "step",
        attempts: int = 1,
        logs: Sequence[NewLog] = (),
    ) -> bool:
        """Record a completed step and count it (and the run's latest progress, if
        given), atomically. The run has progressed: its stalled claims reset to 0.
        `kind` says whether it is a step or a finished wait; `attempts` how many attempts
        the step took (a step with retries); `logs` the lines written while it ran, stored
        in the same commit, in order (nothing of it if the lease no longer holds)."""

    @abstractmethod
    def persist_step_failure(
        self,
        lease: Lease,
        name: str,
        index: int,
        error: str,
        started_at: int,
        now: int,
        kind: StepKind = "step",
        attempts: int = 1,
        logs: Sequence[NewLog] = (),
    ) -> bool:
        """Record a failed step (or a timed-out wait: `kind` ``event``) after `attempts`
        attempts; `error` is also its `last_error`. `logs` as in `persist_step`."""

    @abstractmethod
    def suspend_run(
        self, lease: Lease, wait: Wait, now: int, progress_json: str | None = None
    ) -> bool:
        """Suspend the leased run on `wait`, atomically: upsert its step record `wait.name`
        (kind `wait.step_kind`, status ``waiting``, `wake_at` = `wait.until`, attempts and
        last error), and set the run ``waiting`` with `wake_at` and `waiting_for`, no lease
        owner or expiry, stalled claims reset (a wait is progress) and the latest progress.
        False (nothing written) if the lease no longer holds."""

    @abstractmethod
    def deliver_event(
        self, lease: Lease, name: str, index: int, started_at: int, now: int
    ) -> str | None:
        """If the run's mailbox holds an undelivered event `name`, take the oldest: mark it
        delivered and record the wait `name` (kind ``event``) completed with its payload
        as output, counted like a step, in one fenced transaction; return the payload's
        JSON. None (nothing written) when there is no such event or the lease is lost."""

    @abstractmethod
    def update_progress(self, lease: Lease, progress_json: str, now: int) -> bool:
        """Store the run's latest progress. Like a log line, it is committed at once but
        need not be flushed on its own: the run's next step or completion flushes it."""

    @abstractmethod
    def append_logs(self, lease: Lease, logs: Sequence[NewLog]) -> bool:
        """Store log lines in order, in one commit made at once but flushed with the run's
        next step or completion (see `update_progress`); all or none: none if the lease
        no longer holds."""

    @abstractmethod
    def complete_run(
        self,
        lease: Lease,
        output_json: str,
        now: int,
        preserve_steps: bool,
        progress_json: str | None = None,
    ) -> bool: ...

    @abstractmethod
    def fail_run(self, lease: Lease, error: str, now: int) -> bool:
        """Fail the run. Its completed steps keep their outputs whatever `preserve_steps`
        says, so `resume_run` can continue it; deleting or purging the run drops them."""

    # -- steps and logs --------------------------------------------------------------

    @abstractmethod
    def get_completed_step_outputs(self, run_id: str) -> dict[str, str | None]:
        """Completed steps' stored JSON outputs by name, for replay."""

    @abstractmethod
    def get_steps(self, run_id: str) -> list[StepRecord]: ...

    @abstractmethod
    def get_logs(self, run_id: str) -> list[LogRecord]: ...

    # -- operations on whole runs ----------------------------------------------------

    @abstractmethod
    def cancel_run(self, run_id: str, now: int, preserve_steps: bool) -> Run:
        """Cancel a pending, leased or waiting run and return it; NotFoundError or
        ConflictError (already finished) otherwise."""

    @abstractmethod
    def send_event(self, run_id: str, name: str, payload_json: str, now: int) -> bool:
        """Put an event in the run's mailbox. NotFoundError for an unknown run,
        ConflictError for a finished one (nothing stored). If the run waits for an event
        of that name, it becomes claimable at once (`wake_at` = now); returns whether it
        did."""

    @abstractmethod
    def wake_network_waits(self, now: int) -> int:
        """Make every run waiting for the network (kind ``online``) claimable now; returns
        their count. Called when the network comes back."""

    @abstractmethod
    def resume_run(self, run_id: str, now: int) -> Run:
        """Put a failed run back to pending so it continues after its last completed step:
        error, completion time and stalled counters cleared, its step records that did not
        complete (failed, waiting) deleted so they run afresh; returns it as stored now.
        NotFoundError; ConflictError if it did not fail, or if its concurrency key has a
        pending run already."""

    @abstractmethod
    def delete_run(self, run_id: str) -> Run:
        """Delete a finished run with its steps, logs, labels and events and return what it
        was; NotFoundError, or ConflictError while it is pending, leased or waiting."""

    @abstractmethod
    def purge_runs(self, older_than: int, limit: int) -> list[str]:
        """Delete up to `limit` finished runs completed before `older_than`, oldest first,
        with their steps, logs and labels; returns the deleted runs' ids (for the
        ``runs:purge`` event that tells listeners which runs are gone)."""
