"""durably: durable, resumable Python jobs on SQLite, in the browser and on CPython.

Re-exports only: the public names live in their modules (`app` composes them).
"""

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
