"""The project's error classes, and `describe_error`, the form a failure is stored in.

Every error derives from `DurablyError`; each class's docstring is its default message
and its name is the error name the page sees. `LeaseLostError` and `RunCancelledError`
are control flow: the runtime never records them as job failures.
"""

from __future__ import annotations


class DurablyError(Exception):
    """A durably operation failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self)


class NotFoundError(DurablyError):
    """The run or job does not exist."""


class ValidationError(DurablyError, ValueError):
    """A value did not match what was expected."""

    def __init__(self, message: str | None = None, fields: list[str] | None = None) -> None:
        super().__init__(message)
        #: Dotted paths of the offending fields, where known (e.g. ``["steps", "items.0.name"]``).
        self.fields: list[str] = fields or []


class ConflictError(DurablyError):
    """The operation conflicts with the run's current state."""


class RunCancelledError(DurablyError):
    """The run was cancelled."""


#: The former name, kept for code written against it. Not asyncio's CancelledError.
CancelledError = RunCancelledError


class LeaseLostError(DurablyError):
    """This worker no longer holds the run's lease; another worker took it over."""


class StalledRunError(DurablyError):
    """The run was abandoned too many times in a row before it finished a step; it is
    failed instead of retried forever."""

    @classmethod
    def naming(cls, step_name: str | None, attempts: int) -> StalledRunError:
        """The error of a run that stalled `attempts` times, naming its step if known."""
        where = (
            f"step {step_name!r} did not finish"
            if step_name is not None
            else "no step finished (the step in flight is not known)"
        )
        return cls(
            f"run stalled: {where} in {attempts} consecutive attempts (the worker or tab "
            "stopped each time); it is failed instead of retried forever"
        )


class StepTimeoutError(DurablyError, TimeoutError):
    """An attempt of a step took longer than its `timeout`; it counts as a failed attempt."""


class StrayCancellationError(DurablyError):
    """An asyncio CancelledError was raised inside the job that was not a cancellation of
    the run (a cancelled inner task or future); the step or run fails with this error."""


class SerializationError(ValidationError):
    """A value cannot be stored as JSON."""


class StepNameError(DurablyError):
    """A step name was used twice in one run."""


class RunFailedError(DurablyError):
    """The run failed."""

    def __init__(self, run_id: str, error: str | None) -> None:
        super().__init__(f"run {run_id} failed: {error or 'unknown error'}")
        self.run_id = run_id
        self.error = error


class WaitTimeoutError(DurablyError, TimeoutError):
    """Waiting for the run timed out; the run itself goes on."""


class NotOwnerError(DurablyError):
    """Another tab owns the job runtime for this database; this tab cannot write to it."""


class StorageError(DurablyError):
    """The database could not be read or written."""


class StorageUnavailableError(StorageError):
    """The database could not be reached (a lost connection, a server restarting); the
    same operation may succeed later. A run that meets it is not failed: its execution
    stops, the run stays leased, and it resumes after its lease runs out."""


class SchemaVersionError(StorageError):
    """The database was written by a newer release of durably; it was left unchanged."""


class ProtocolError(DurablyError):
    """A message to the browser runtime was malformed."""


class JobModuleError(DurablyError):
    """A job module could not be loaded."""


def describe_error(exc: BaseException) -> str:
    """How a failure is stored and announced: ``"TypeName: message"`` (or the name alone)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
