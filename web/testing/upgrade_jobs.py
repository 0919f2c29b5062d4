"""The job of the upgrade fixtures (tests/fixtures/databases), as every release defines it.

A fixture database holds runs of `import-items` written by an earlier release; the
upgrade tests (CPython and browser) register this same job so that the fixture's
pending and leased runs can finish under the current code. Its step names, inputs and
outputs must therefore never change. Every step logs "executing <item>" when its
function runs, so a test can count how often each step really ran.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from durably import Step, define_job

#: Items whose step stops the execution as a killed tab would (set only by the fixture
#: generator, to leave runs leased mid-run).
INTERRUPT_AT: set[str] = set()


class Interrupted(BaseException):
    """Abandons an execution mid-step; nothing in the runtime catches it."""


class ImportInput(BaseModel):
    items: list[str]


@define_job(name="import-items", input=ImportInput)
async def import_items(step: Step, input: ImportInput) -> dict[str, Any]:
    """One step per item; an item starting with "bad" fails its step (and the run)."""
    imported = []
    for position, item in enumerate(input.items):

        def work(item: str = item) -> dict[str, Any]:
            if item in INTERRUPT_AT:
                raise Interrupted(item)
            step.log.info(f"executing {item}")
            if item.startswith("bad"):
                raise ValueError(f"cannot import {item!r}")
            return {"item": item, "length": len(item)}

        imported.append(await step.run(f"import-{item}", work))
        step.log.info(f"imported {item}", data={"position": position})
        step.progress(position + 1, len(input.items), f"imported {item}")
    return {"imported": imported}
