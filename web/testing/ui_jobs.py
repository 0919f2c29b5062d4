"""Jobs for the runs element's tests: one whose log line, progress message, error and
output carry caller-chosen text (markup-looking text must stay text), one that
reports progress as fast as the event loop allows, and one that waits for an event."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from durably import Step, define_job


class EchoInput(BaseModel):
    text: str
    fail: bool = False


@define_job(name="echo", input=EchoInput)
async def echo(step: Step, input: EchoInput) -> dict[str, Any]:
    def say() -> str:
        step.log.info(input.text, {"text": input.text})
        return input.text

    await step.run("say", say)
    step.progress(1, 1, input.text)
    if input.fail:
        raise RuntimeError(input.text)
    return {"text": input.text}


class StormInput(BaseModel):
    events: int = Field(ge=1, le=100_000)
    pause_ms: float = Field(default=2, ge=0)


@define_job(name="progress-storm", input=StormInput)
async def progress_storm(step: Step, input: StormInput) -> dict[str, int]:
    async def storm() -> int:
        for i in range(input.events):
            step.progress(i + 1, input.events, f"event {i + 1}")
            await asyncio.sleep(input.pause_ms / 1000)
        return input.events

    await step.run("storm", storm)
    return {"events": input.events}


@define_job(name="approval")
async def approval(step: Step, input: Any) -> Any:
    """Waits for the event "approval" and returns its payload."""
    return await step.wait_for_event("approval")
