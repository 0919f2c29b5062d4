"""Jobs for the reliability tests (bad input, storage faults)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from durably import Step, define_job


class EchoInput(BaseModel):
    text: str = Field(max_length=100_000)


@define_job(name="echo", input=EchoInput)
async def echo(step: Step, input: EchoInput) -> dict[str, Any]:
    """One small step: the runtime is serving."""
    text = await step.run("echo", lambda: input.text)
    return {"text": text}


class FillInput(BaseModel):
    steps: int = Field(ge=1, le=10_000)
    kib: int = Field(ge=1, le=4096)


@define_job(name="fill", input=FillInput)
async def fill(step: Step, input: FillInput) -> dict[str, Any]:
    """Stores `steps` step outputs of `kib` KiB each: fills the disk on purpose."""
    for i in range(input.steps):
        await step.run(f"chunk-{i}", lambda i=i: f"{i:08d}" * (input.kib * 128))
    return {"chunks": input.steps}


@define_job(name="unserialisable")
async def unserialisable(step: Step, input: Any) -> Any:
    """A step whose result is not JSON: the run must fail naming the step."""
    await step.run("ok", lambda: 1)
    await step.run("bad", lambda: {"value": object()})
    return {"unreachable": True}


@define_job(name="code-as-data")
async def code_as_data(step: Step, input: Any) -> Any:
    """Returns its input unchanged: strings that look like code stay strings."""
    return await step.run("echo", lambda: input)
