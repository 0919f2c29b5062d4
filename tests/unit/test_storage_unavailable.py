"""A database out of reach mid-run (a lost connection, a server restarting) is not the
job's failure: the execution stops, the run stays leased, and once its lease runs out it
is reclaimed and resumes from its last completed step. Written once, run on every store."""

from __future__ import annotations

from typing import Any

from harness import Database, claim_and_execute, record

from durably import RunStatus, define_job
from durably.errors import StorageUnavailableError

LEASE_MS = 10_000
executed: list[str] = []


@define_job(name="two-steps")
async def two_steps(step: Any, input: Any) -> Any:
    for name in ("first", "second"):
        await step.run(name, lambda name=name: executed.append(name) or name)
    return {"done": True}


async def test_a_lost_database_leaves_the_run_to_resume_not_failed(db: Database) -> None:
    executed.clear()
    durably = await db.runtime([two_steps], lease_ms=LEASE_MS, lease_renew_interval_ms=1_000)
    events = record(durably)
    store = durably.store
    persist_step = store.persist_step
    calls = 0

    def unreachable_once(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second step's commit: the server went away
            raise StorageUnavailableError("lost the database: server closed the connection")
        return persist_step(*args, **kwargs)

    store.persist_step = unreachable_once  # type: ignore[method-assign]
    run = await durably.jobs["two-steps"].trigger({})
    assert await claim_and_execute(durably) == "abandoned"
    stopped = await durably.get_run(run.id)
    assert stopped is not None and stopped.status == RunStatus.LEASED and stopped.error is None
    assert stopped.completed_step_count == 1
    assert "run:fail" not in events.types(run.id)
    # No step is left "running", and the error is reported, not recorded as the run's.
    assert events.types(run.id)[-2:] == ["step:cancel", "worker:error"]
    assert [e.context for e in events.of("worker:error")] == [
        "run execution: the database is out of reach; the run resumes"
    ]

    db.clock.advance(LEASE_MS + 1)  # the lease runs out: another worker may take it
    other = await db.runtime([two_steps], lease_ms=LEASE_MS)
    assert await claim_and_execute(other) == "completed"
    done = await other.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED and done.output == {"done": True}
    assert executed == ["first", "second", "second"]  # the first step was not run again
