"""Jobs for the crash-torture and reliability tests.

Every step function first appends one line ``<instance> <run id> <step name> <ms>`` to an
execution journal: an OPFS file outside the database (``durably-torture/<journal>.log``)
written through this worker's own FileSystemSyncAccessHandle and flushed before the step
returns. The tests count executions there, so a step that ran again after it had been
stored shows up even though the database only keeps one result per step.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import js  # type: ignore[import-not-found]
from pydantic import BaseModel, Field
from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

from durably import Step, define_job

#: Identifies this worker (one per page load): a re-executed step names who ran it before.
INSTANCE = uuid.uuid4().hex[:8]
JOURNAL_DIRECTORY = "durably-torture"
#: A previous page's handle on the journal is released a moment after it goes away.
OPEN_ATTEMPTS = 600
OPEN_RETRY_S = 0.05

_journals: dict[str, asyncio.Future[Any]] = {}


def _options(**fields: Any) -> Any:
    return to_js(fields, dict_converter=js.Object.fromEntries)


async def _open_journal(name: str) -> Any:
    root = await js.navigator.storage.getDirectory()
    directory = await root.getDirectoryHandle(JOURNAL_DIRECTORY, _options(create=True))
    file = await directory.getFileHandle(f"{name}.log", _options(create=True))
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return await file.createSyncAccessHandle()
        except JsException as exc:
            if "NoModificationAllowedError" not in str(exc) or attempt == OPEN_ATTEMPTS - 1:
                raise
            await asyncio.sleep(OPEN_RETRY_S)
    raise AssertionError("unreachable")


async def journal(name: str) -> Any:
    """This worker's open handle on journal `name` (opened once, shared by every run)."""
    if name not in _journals:
        _journals[name] = asyncio.ensure_future(_open_journal(name))
    try:
        return await _journals[name]
    except BaseException:
        _journals.pop(name, None)
        raise


def record(handle: Any, run_id: str, step_name: str) -> None:
    """Append one execution line and flush it before the step goes on."""
    line = f"{INSTANCE} {run_id} {step_name} {int(js.Date.now())}\n"
    data = js.Uint8Array.new(to_js(line.encode()))
    written = handle.write(data, _options(at=handle.getSize()))
    if written != data.length:
        raise OSError(f"journal write wrote {written} of {data.length} bytes")
    handle.flush()


class TortureInput(BaseModel):
    journal: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    steps: int = Field(ge=1, le=200)
    step_ms: int = Field(default=20, ge=0, le=10_000)
    #: For torture-fail: the index of the step that raises.
    fail_at: int = Field(default=0, ge=0)


@define_job(name="torture-good", input=TortureInput)
async def torture_good(step: Step, input: TortureInput) -> dict[str, Any]:
    """Alternates async steps (which sleep) and sync steps; output is the steps' sum."""
    handle = await journal(input.journal)
    total = 0
    for i in range(input.steps):
        name = f"s{i}"
        if i % 2 == 0:

            async def work(i: int = i, name: str = name) -> int:
                record(handle, step.run_id, name)
                await asyncio.sleep(input.step_ms * random.uniform(0.5, 1.5) / 1000)
                return i * i

        else:

            def work(i: int = i, name: str = name) -> int:  # type: ignore[misc]
                record(handle, step.run_id, name)
                return i * i

        total += await step.run(name, work)
        step.progress(i + 1, input.steps)
    return {"sum": total, "steps": input.steps}


@define_job(name="torture-fail", input=TortureInput)
async def torture_fail(step: Step, input: TortureInput) -> dict[str, Any]:
    """Completes steps up to `fail_at`, then that step raises: the run must end failed."""
    handle = await journal(input.journal)
    for i in range(input.steps):
        name = f"s{i}"

        async def work(i: int = i, name: str = name) -> int:
            record(handle, step.run_id, name)
            await asyncio.sleep(input.step_ms / 1000)
            if i == input.fail_at:
                raise RuntimeError(f"intentional failure in step {name}")
            return i

        await step.run(name, work)
    return {"unreachable": True}


@define_job(name="torture-recover", input=TortureInput)
async def torture_recover(step: Step, input: TortureInput) -> dict[str, Any]:
    """A step that fails on purpose is caught and the run completes anyway."""
    handle = await journal(input.journal)
    caught = 0
    for i in range(input.steps):
        name = f"s{i}"

        async def work(i: int = i, name: str = name) -> int:
            record(handle, step.run_id, name)
            await asyncio.sleep(input.step_ms / 1000)
            if i == input.fail_at:
                raise ValueError(f"recoverable failure in step {name}")
            return i

        try:
            await step.run(name, work)
        except ValueError:
            caught += 1
    return {"caught": caught, "steps": input.steps}
