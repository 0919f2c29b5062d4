"""A real crash: a worker process is SIGKILLed in the middle of a run, and a new
runtime on the same database file resumes the run without re-running the steps
that had completed. The database must come through intact."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from harness import FakeClock

import durably
from durably import RunStatus, create_durably

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

STEPS = 12
KILL_AFTER = 4  # steps started when the process is killed
LEASE_MS = 60_000

JOB_MODULE = '''
"""A job whose every step appends its name to an execution log before it returns."""
import asyncio
import os

from durably import define_job

LOG = os.environ["CRASH_TEST_LOG"]


def make_step(name):
    async def run_step():
        with open(LOG, "a") as log:
            log.write(name + "\\n")
            log.flush()
            os.fsync(log.fileno())
        await asyncio.sleep(0.02)
        return name

    return run_step


@define_job(name="crashy")
async def crashy(step, input):
    return [await step.run(f"s{i}", make_step(f"s{i}")) for i in range(input["steps"])]
'''

WORKER_SCRIPT = """
import asyncio
import sys

from crash_job import crashy
from durably import create_durably


async def main():
    runtime = create_durably(sys.argv[1], [crashy], lease_ms={lease_ms}, polling_interval_ms=10)
    await runtime.init()
    await runtime.jobs["crashy"].trigger({{"steps": {steps}}})
    await asyncio.Event().wait()  # run until killed


asyncio.run(main())
"""


def load_job_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_job", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_log(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_killed_worker_is_resumed_without_rerunning_completed_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = tmp_path / "crash.db"
    log_path = tmp_path / "execution.log"
    (tmp_path / "crash_job.py").write_text(JOB_MODULE)
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT.format(lease_ms=LEASE_MS, steps=STEPS))
    monkeypatch.setenv("CRASH_TEST_LOG", str(log_path))
    src = str(Path(durably.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), src, os.environ.get("PYTHONPATH", "")]),
    }

    with (tmp_path / "worker.err").open("w") as stderr:
        proc = subprocess.Popen([sys.executable, str(script), str(db_path)], env=env, stderr=stderr)
        try:
            deadline = time.monotonic() + 30
            while len(read_log(log_path)) < KILL_AFTER:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"worker did not get going:\n{(tmp_path / 'worker.err').read_text()}"
                    )
                await asyncio.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    killed_at = read_log(log_path)
    with sqlite3.connect(db_path) as conn:
        done_before = {
            row[0]
            for row in conn.execute("SELECT name FROM durably_steps WHERE status = 'completed'")
        }
        (status,) = conn.execute("SELECT status FROM durably_runs").fetchone()
    conn.close()
    assert status == "leased"
    assert KILL_AFTER - 1 <= len(done_before) < STEPS
    assert done_before <= set(killed_at)

    # A new runtime on the same file, at a time when the dead worker's lease has run out.
    job = load_job_module(tmp_path / "crash_job.py").crashy
    clock = FakeClock(time.time_ns() // 1_000_000 + 2 * LEASE_MS)
    runtime = create_durably(str(db_path), [job], lease_ms=LEASE_MS, clock=clock)
    try:
        await runtime.migrate()
        assert await runtime.process_one() is True
        (run,) = await runtime.get_runs()
    finally:
        await runtime.close()

    assert run.status == RunStatus.COMPLETED
    assert run.output == [f"s{i}" for i in range(STEPS)]
    assert run.lease_generation == 2
    assert run.completed_step_count == STEPS

    executions = Counter(read_log(log_path))
    assert set(executions) == {f"s{i}" for i in range(STEPS)}
    for name in done_before:
        assert executions[name] == 1, f"completed step {name} ran again"
    twice = [name for name, count in executions.items() if count > 1]
    in_flight = f"s{len(done_before)}"
    assert twice in ([], [in_flight])  # only the step in flight at the kill may run again
    assert max(executions.values()) <= 2

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
