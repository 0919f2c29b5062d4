"""Log lines written inside a step are stored with the step's outcome (one commit per
step): completed, failed or waiting for a retry. Lines written outside a step are
stored at once; ids follow the order of writing; a rejected step drops its lines."""

from __future__ import annotations

from typing import Any

from harness import Database, FakeClock, record

from durably import define_job
from durably.run_logs import MAX_BUFFERED_LINES


def messages(logs: list[Any]) -> list[str]:
    return [log.message for log in logs]


async def test_lines_of_a_step_are_stored_with_its_outcome(db: Database) -> None:
    seen_inside: list[list[str]] = []

    @define_job(name="logs")
    async def job(step: Any, input: Any) -> Any:
        step.log.info("before")

        async def inside() -> int:
            step.log.info("inside")
            seen_inside.append(messages(await durably.get_logs(step.run_id)))
            return 1

        await step.run("work", inside)
        step.log.info("after")

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["logs"].trigger(None)
    await durably.process_one()
    # Outside a step: stored at once. Inside: not before the step's own commit.
    assert seen_inside == [["before"]]
    logs = await durably.get_logs(run.id)
    assert [(log.message, log.step_name) for log in logs] == [
        ("before", None),
        ("inside", "work"),
        ("after", None),
    ]
    assert [log.id for log in logs] == sorted(log.id for log in logs)
    # The event is not delayed: it comes before the step's completion.
    kinds = [(e.type, getattr(e, "message", None)) for e in events.events]
    assert kinds.index(("log:write", "inside")) < kinds.index(("step:complete", None))


async def test_a_failed_step_keeps_its_lines(db: Database) -> None:
    @define_job(name="broken")
    async def job(step: Any, input: Any) -> Any:
        def broken() -> None:
            step.log.warn("about to fail")
            raise ValueError("no good")

        await step.run("broken", broken)

    durably = await db.runtime([job])
    run = await durably.jobs["broken"].trigger(None)
    await durably.process_one()
    logs = await durably.get_logs(run.id)
    assert [(log.level, log.message, log.step_name) for log in logs] == [
        ("warn", "about to fail", "broken"),
        ("error", "ValueError: no good", "broken"),  # the traceback, after the step's line
    ]


async def test_a_step_waiting_for_its_retry_keeps_its_lines(db: Database, clock: FakeClock) -> None:
    attempts: list[int] = []

    @define_job(name="flaky")
    async def job(step: Any, input: Any) -> Any:
        def flaky() -> int:
            attempts.append(1)
            step.log.info(f"attempt {len(attempts)}")
            if len(attempts) == 1:
                raise ValueError("not yet")
            return 1

        await step.run("flaky", flaky, retries=1, retry_delay=1)

    durably = await db.runtime([job])
    run = await durably.jobs["flaky"].trigger(None)
    await durably.process_one()
    assert messages(await durably.get_logs(run.id)) == ["attempt 1"]
    clock.advance(2_000)
    await durably.process_one()
    assert messages(await durably.get_logs(run.id)) == ["attempt 1", "attempt 2"]


async def test_a_step_that_logs_a_lot_stores_its_lines_while_it_runs(db: Database) -> None:
    seen: list[int] = []

    @define_job(name="chatty")
    async def job(step: Any, input: Any) -> Any:
        async def chatty() -> None:
            for i in range(MAX_BUFFERED_LINES + 1):
                step.log.info(f"line {i}")
            seen.append(len(await durably.get_logs(step.run_id)))

        await step.run("chatty", chatty)
        step.log.info("done")

    durably = await db.runtime([job])
    run = await durably.jobs["chatty"].trigger(None)
    await durably.process_one()
    assert seen == [MAX_BUFFERED_LINES + 1]
    logs = await durably.get_logs(run.id)
    assert messages(logs) == [f"line {i}" for i in range(MAX_BUFFERED_LINES + 1)] + ["done"]
    assert [log.id for log in logs] == sorted(log.id for log in logs)


async def test_a_cancelled_step_drops_its_lines(db: Database) -> None:
    @define_job(name="cancelled")
    async def job(step: Any, input: Any) -> Any:
        async def inside() -> None:
            step.log.info("lost with the step")
            await durably.cancel(step.run_id)

        await step.run("inside", inside)

    durably = await db.runtime([job])
    run = await durably.jobs["cancelled"].trigger(None)
    await durably.process_one()
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == "cancelled"
    assert await durably.get_logs(run.id) == []
