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
from typing import NamedTuple

from ..models import Disposition, LogLevel, LogRecord, Run, RunStatus, StepRecord


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

    # -- creating and reading runs ---------------------------------------------------

    @abstractmethod
    def create_run(self, new: NewRun, now: int) -> tuple[Run, Disposition]:
        """Insert a pending run, or return the existing one its idempotency key names
        ("idempotent"), or the pending run of its concurrency key when coalescing
        ("coalesced"). Raises ConflictError when the key has a pending run otherwise.

        An idempotency key names the run its first trigger returned, whatever that
        trigger's disposition: a coalesced trigger's key is remembered too, so a retry
        returns the run it was coalesced into (which may belong to another job)."""

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
        """Lease the oldest eligible run of one of `job_names` (pending, or leased with an
        expired lease) whose concurrency key has no live lease; None when there is none.

        `held` are the runs the caller is executing itself: they are never claimed, and
        they block their concurrency key as a live lease does, however long ago their
        lease expired. In the same transaction, every other run of the claimed run's
        concurrency key whose lease expired is fenced (new generation, no owner; still
        `leased`, so claimable once the key is free): its stale holder can write nothing
        from then on. Claiming a run that was still `leased` counts a stalled claim."""

    @abstractmethod
    def renew_lease(self, lease: Lease, now: int, lease_ms: int) -> bool: ...

    @abstractmethod
    def expire_leases(self, now: int) -> int:
        """Make every leased run claimable at once; for a new sole owner of the database."""

    # -- writes by the lease holder (fenced by generation) ---------------------------

    @abstractmethod
    def start_step(self, lease: Lease) -> bool:
        """Whether the lease still holds before a step starts. Writes nothing: the run's
        position is stored with the step's outcome (`persist_step`)."""

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
    ) -> bool:
        """Record a completed step and count it (and the run's latest progress, if
        given), atomically. The run has progressed: its stalled claims reset to 0."""

    @abstractmethod
    def persist_step_failure(
        self, lease: Lease, name: str, index: int, error: str, started_at: int, now: int
    ) -> bool: ...

    @abstractmethod
    def update_progress(self, lease: Lease, progress_json: str, now: int) -> bool:
        """Store the run's latest progress. Like a log line, it is committed at once but
        need not be flushed on its own: the run's next step or completion flushes it."""

    @abstractmethod
    def append_log(
        self,
        lease: Lease,
        level: LogLevel,
        message: str,
        data_json: str | None,
        step_name: str | None,
        now: int,
    ) -> bool:
        """Store a log line, committed at once but flushed with the run's next step or
        completion (see `update_progress`)."""

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
    def fail_run(self, lease: Lease, error: str, now: int, preserve_steps: bool) -> bool: ...

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
        """Cancel a pending or leased run and return it; NotFoundError or ConflictError
        (already finished) otherwise."""

    @abstractmethod
    def delete_run(self, run_id: str) -> Run:
        """Delete a finished run with its steps, logs and labels and return what it was;
        NotFoundError, or ConflictError while it is pending or leased."""

    @abstractmethod
    def purge_runs(self, older_than: int, limit: int) -> list[str]:
        """Delete up to `limit` finished runs completed before `older_than`, oldest first,
        with their steps, logs and labels; returns the deleted runs' ids (for the
        ``runs:purge`` event that tells listeners which runs are gone)."""
