"""The log lines of one execution: written while a step runs, they are kept in memory and
stored in the same commit as the step's outcome (one commit per step, not one per line);
written outside a step, they are stored at once. Every line's ``log:write`` event is
emitted when it is written.

Invariant kept: lines reach the database in the order they were written (log ids
ascend with it), and a buffered line is never stored without its step's outcome or a
later line. A step whose commit the lease fence rejects (the run was cancelled or
reclaimed) loses its buffered lines with it: the step runs again elsewhere and logs anew.
"""

from __future__ import annotations

from typing import Any, Protocol

from .encoding import from_json, to_json
from .errors import StorageError
from .events import Event, LogWriteEvent
from .models import LogLevel
from .store import Lease, NewLog, Store

#: Lines a step may buffer; the next one stores them all at once (a step that logs a
#: lot keeps its memory bounded and its lines visible while it runs).
MAX_BUFFERED_LINES = 100


class LoggingExecution(Protocol):
    """What `RunLogs` uses of `execution.RunExecution`."""

    @property
    def store(self) -> Store: ...
    @property
    def lease(self) -> Lease: ...
    def now_ms(self) -> int: ...
    def require_applied(self, applied: bool) -> None: ...
    def emit(self, event_class: type[Event], **fields: Any) -> None: ...


class RunLogs:
    def __init__(self, execution: LoggingExecution) -> None:
        self._execution = execution
        #: Lines written inside steps and not stored yet, in the order written.
        self._buffered: list[NewLog] = []

    def write(
        self, level: LogLevel, message: str, data_json: str | None, step_name: str | None
    ) -> None:
        """Store a line (inside a step: with the step's outcome) and emit ``log:write``."""
        execution = self._execution
        line = NewLog(level, message, data_json, step_name, execution.now_ms())
        if step_name is not None and len(self._buffered) < MAX_BUFFERED_LINES:
            self._buffered.append(line)
        else:
            # Buffered lines first, in the same commit: ids keep the order of writing.
            lines = [*self.take(), line]
            execution.require_applied(execution.store.append_logs(execution.lease, lines))
        execution.emit(
            LogWriteEvent,
            level=level,
            message=message,
            data=from_json(data_json),
            step_name=step_name,
        )

    def take(self) -> list[NewLog]:
        """The buffered lines, for the caller's commit to store; the buffer is emptied."""
        lines, self._buffered = self._buffered, []
        return lines

    def flush(self) -> None:
        """Store the buffered lines now (a commit of their own, fenced)."""
        if self._buffered:
            execution = self._execution
            execution.require_applied(execution.store.append_logs(execution.lease, self.take()))

    def write_failure(self, error: str, trace: str, step_name: str | None) -> None:
        """Store the run's failure with its traceback (after the lines still buffered),
        best effort: the traceback is a courtesy; recording the failure itself (smaller)
        matters. A line that cannot be stored is not announced either."""
        execution = self._execution
        data = {"traceback": trace}
        line = NewLog("error", error, to_json(data, "traceback"), step_name, execution.now_ms())
        try:
            logged = execution.store.append_logs(execution.lease, [*self.take(), line])
        except StorageError:
            # If the failure cannot be stored either, fail_run raises: the run stays
            # leased until its lease runs out and is then claimed again.
            logged = False
        if logged:
            execution.emit(
                LogWriteEvent, level="error", message=error, data=data, step_name=step_name
            )
