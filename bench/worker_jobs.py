"""The job the worker-process benchmark runs (``--jobs bench.worker_jobs``): `steps`
no-op steps, so the figures measure the runtime and the store, not the work."""

from __future__ import annotations

from typing import Any

from durably import Step, define_job


@define_job(name="bench-steps")
async def bench_steps(step: Step, input: dict[str, Any]) -> int:
    for i in range(int(input["steps"])):
        await step.run(f"step-{i}", lambda: None)
    return int(input["steps"])
