"""``python -m durably worker``: a worker process for servers.

It imports the job modules, opens the database (a PostgreSQL URL or a SQLite path),
migrates it, and runs the claim loop until SIGTERM or SIGINT. Shutdown is graceful: the
worker stops claiming, lets runs in flight finish for `shutdown_timeout` seconds, then
abandons the rest and hands their leases back (expired at once), so another worker
resumes them from their last finished step without waiting for the lease to run out.
One log line per run (claimed, completed, failed, cancelled, lease lost).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Sequence
from typing import Any

from .app import create_durably
from .errors import JobModuleError
from .events import Event
from .jobs import JobDefinition

log = logging.getLogger("durably.worker")


def import_jobs(modules: Sequence[str]) -> list[JobDefinition[Any, Any]]:
    """Every job defined at the top level of the named modules (``package.module``)."""
    jobs: list[JobDefinition[Any, Any]] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise JobModuleError(f"cannot import job module {name!r}: {exc}") from exc
        found = [v for v in vars(module).values() if isinstance(v, JobDefinition)]
        if not found:
            raise JobModuleError(f"job module {name!r} defines no jobs (use define_job)")
        jobs.extend(j for j in found if j not in jobs)
    return jobs


def _log_event(event: Event) -> None:
    run = getattr(event, "run_id", None)
    job = getattr(event, "job_name", None)
    if event.type == "run:leased":
        log.info("run %s (%s) claimed", run, job)
    elif event.type == "run:complete":
        log.info("run %s (%s) completed", run, job)
    elif event.type == "run:fail":
        log.warning("run %s (%s) failed: %s", run, job, getattr(event, "error", ""))
    elif event.type == "run:cancel":
        log.info("run %s (%s) cancelled", run, job)
    elif event.type == "worker:error":
        log.error("worker error (%s): %s", getattr(event, "context", ""), event)


async def run_worker(
    database: str,
    modules: Sequence[str],
    *,
    concurrency: int = 1,
    shutdown_timeout: float = 30.0,
    polling_interval_ms: int = 1000,
    lease_ms: int = 30_000,
    lease_renew_interval_ms: int = 5_000,
    max_stalled_attempts: int = 3,
) -> None:
    """Run a worker until SIGTERM/SIGINT; see the module docstring."""
    jobs = import_jobs(modules)
    durably = create_durably(
        database,
        jobs,
        max_concurrent_runs=concurrency,
        polling_interval_ms=polling_interval_ms,
        lease_ms=lease_ms,
        lease_renew_interval_ms=lease_renew_interval_ms,
        max_stalled_attempts=max_stalled_attempts,
    )
    for event_type in ("run:leased", "run:complete", "run:fail", "run:cancel", "worker:error"):
        durably.on(event_type, _log_event)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await durably.init()
    log.info(
        "worker %s on %s: jobs %s, concurrency %d",
        durably.owner,
        _redacted(database),
        ", ".join(sorted(durably.jobs)),
        concurrency,
    )
    await stopping.wait()
    log.info("stopping: no new claims; waiting up to %ss for runs in flight", shutdown_timeout)
    in_flight = durably.executing()
    await durably.stop(shutdown_timeout)
    handed_back = 0
    for execution in in_flight:
        # A run still leased under our generation was abandoned by stop(): hand it back.
        if durably.store.release_lease(execution.lease, durably.now_ms()):
            handed_back += 1
            log.info("run %s (%s) handed back", execution.run.id, execution.run.job_name)
    durably.store.close()
    log.info("stopped (%d runs handed back)", handed_back)


def _redacted(database: str) -> str:
    """The database without a password, for the log."""
    if "://" in database and "@" in database:
        scheme, rest = database.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return database
