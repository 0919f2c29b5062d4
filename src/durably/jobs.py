"""Job definitions (name, typed input and output, the run function) and job handles.

A `JobDefinition` is inert: it only describes a job. Registering it with a
`Durably` instance gives a `JobHandle`, which triggers runs of it through the
`JobRuntime` interface; a handle never sees the runtime's other parts.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

import pydantic

from .encoding import to_json, to_json_value
from .errors import ValidationError
from .models import Run, RunResult
from .options import Limits, check_trigger_options

if TYPE_CHECKING:
    from .step import Step

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")
JobFunction = Callable[["Step", Any], Awaitable[Any]]


def _describe(errors: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    fields: list[str] = []
    parts: list[str] = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ())) or "(root)"
        fields.append(where)
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts), fields


@dataclass(frozen=True)
class JobDefinition(Generic[InputT, OutputT]):
    """A job: its unique name, optional pydantic models for input and output, and
    the async function that runs it as a sequence of steps."""

    name: str
    run: JobFunction
    input: type[pydantic.BaseModel] | None = None
    output: type[pydantic.BaseModel] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a job needs a non-empty name")
        if not inspect.iscoroutinefunction(self.run):
            raise TypeError(f"job {self.name!r}: run must be an async function (async def)")
        for role, model in (("input", self.input), ("output", self.output)):
            if model is not None and not (
                isinstance(model, type) and issubclass(model, pydantic.BaseModel)
            ):
                raise TypeError(f"job {self.name!r}: {role} must be a pydantic model class")

    def parse_input(self, raw: Any) -> tuple[Any, str]:
        """Validate a trigger's input; returns (value given to the job, stored JSON)."""
        if self.input is None:
            return to_json_value(raw, f"input of job {self.name!r}"), to_json(raw, "input")
        try:
            model = self.input.model_validate(raw)
        except pydantic.ValidationError as exc:
            message, fields = _describe(exc.errors())
            raise ValidationError(
                f"invalid input for job {self.name!r}: {message}", fields=fields
            ) from exc
        return model, to_json(model, f"input of job {self.name!r}")

    def load_input(self, stored: Any) -> Any:
        """Rebuild the job's input from its stored JSON, for execution."""
        return stored if self.input is None else self.input.model_validate(stored)

    def dump_output(self, value: Any) -> str:
        """Validate and encode a job's return value; ValidationError names what is wrong."""
        if self.output is None:
            return to_json(value, f"output of job {self.name!r}")
        try:
            model = self.output.model_validate(
                value.model_dump() if isinstance(value, pydantic.BaseModel) else value
            )
        except pydantic.ValidationError as exc:
            message, fields = _describe(exc.errors())
            raise ValidationError(
                f"invalid output from job {self.name!r}: {message}", fields=fields
            ) from exc
        return to_json(model, f"output of job {self.name!r}")


@overload
def define_job(
    *,
    name: str,
    input: type[pydantic.BaseModel] | None = ...,
    output: type[pydantic.BaseModel] | None = ...,
    run: JobFunction,
) -> JobDefinition[Any, Any]: ...
@overload
def define_job(
    *,
    name: str,
    input: type[pydantic.BaseModel] | None = ...,
    output: type[pydantic.BaseModel] | None = ...,
    run: None = ...,
) -> Callable[[JobFunction], JobDefinition[Any, Any]]: ...
def define_job(
    *,
    name: str,
    input: type[pydantic.BaseModel] | None = None,
    output: type[pydantic.BaseModel] | None = None,
    run: JobFunction | None = None,
) -> JobDefinition[Any, Any] | Callable[[JobFunction], JobDefinition[Any, Any]]:
    """Define a job, as a decorator (``@define_job(name=...)``) or with ``run=fn``."""
    if run is not None:
        return JobDefinition(name=name, run=run, input=input, output=output)

    def decorate(fn: JobFunction) -> JobDefinition[Any, Any]:
        return JobDefinition(name=name, run=fn, input=input, output=output)

    return decorate


class JobRuntime(Protocol):
    """What a `JobHandle` calls on the runtime it is registered with (the facade)."""

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
    ) -> Run: ...

    async def wait_for_run(self, run_id: str, timeout: float | None = None) -> Run: ...


class JobHandle:
    """A registered job: trigger runs of it on the runtime it is registered with."""

    def __init__(
        self, definition: JobDefinition[Any, Any], runtime: JobRuntime, limits: Limits
    ) -> None:
        self.definition = definition
        self._runtime = runtime
        self._limits = limits

    @property
    def name(self) -> str:
        return self.definition.name

    async def trigger(
        self,
        input: Any,
        *,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        coalesce: str | None = None,
        labels: Mapping[str, str] | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
    ) -> Run:
        """Queue a run; returns it with `disposition` "created", "idempotent" or "coalesced".
        `delay` (seconds) or `run_at` (an aware datetime) delays it: it stays pending
        and is not claimed before then."""
        return await self._runtime.enqueue(
            self.definition,
            input,
            idempotency_key=idempotency_key,
            concurrency_key=concurrency_key,
            coalesce=coalesce,
            labels=labels,
            delay=delay,
            run_at=run_at,
        )

    async def trigger_and_wait(
        self,
        input: Any,
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        coalesce: str | None = None,
        labels: Mapping[str, str] | None = None,
        delay: float | None = None,
        run_at: datetime | None = None,
    ) -> RunResult:
        """Trigger and wait for the run to finish (timeout in seconds). Raises RunFailedError,
        RunCancelledError or WaitTimeoutError when it does not complete."""
        run = await self.trigger(
            input,
            idempotency_key=idempotency_key,
            concurrency_key=concurrency_key,
            coalesce=coalesce,
            labels=labels,
            delay=delay,
            run_at=run_at,
        )
        done = await self._runtime.wait_for_run(run.id, timeout=timeout)
        return RunResult(
            id=done.id,
            output=done.output,
            disposition=run.disposition or "created",
            labels=done.labels,
        )

    async def batch_trigger(self, items: Sequence[Any]) -> list[Run]:
        """Trigger several runs. Each item is an input, or ``{"input": ..., "options": {...}}``
        with the keyword options of `trigger`. Every input and its options are validated
        before any run is stored."""
        prepared: list[tuple[Any, dict[str, Any]]] = []
        for item in items:
            if isinstance(item, Mapping) and "input" in item and set(item) <= {"input", "options"}:
                prepared.append((item["input"], dict(item.get("options") or {})))
            else:
                prepared.append((item, {}))
        for raw, options in prepared:
            self.definition.parse_input(raw)
            check_trigger_options(
                self._limits,
                options.get("idempotency_key"),
                options.get("concurrency_key"),
                options.get("coalesce"),
                options.get("labels"),
            )
        return [await self.trigger(raw, **options) for raw, options in prepared]
