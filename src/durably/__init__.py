"""durably: durable, resumable Python jobs on SQLite, in the browser and on CPython, and
on PostgreSQL with many worker processes.

Re-exports only: the public names live in their modules (`app` composes them).
"""

from typing import TYPE_CHECKING, Any

from .app import Durably, create_durably
from .events import Event
from .jobs import JobDefinition, JobHandle, define_job
from .models import LogRecord, Progress, Run, RunResult, RunStatus, StepRecord
from .options import Limits
from .step import CancellationSignal, Step
from .store import SqliteStore, Store

__all__ = [
    "CancellationSignal",
    "Durably",
    "Event",
    "JobDefinition",
    "JobHandle",
    "Limits",
    "LogRecord",
    "PostgresStore",
    "Progress",
    "Run",
    "RunResult",
    "RunStatus",
    "SqliteStore",
    "Step",
    "StepRecord",
    "Store",
    "create_durably",
    "define_job",
]

if TYPE_CHECKING:
    from .store.postgres import PostgresStore


def __getattr__(name: str) -> Any:
    # Imported on first use: psycopg is an optional dependency (durably[postgres]), and
    # the browser never loads it.
    if name == "PostgresStore":
        from .store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
