"""Steps: stored outputs replayed on resume, JSON-only outputs, unique names,
failures, progress and logs, and input/output validation around a run."""

from __future__ import annotations

import asyncio
import functools
import math
from collections import Counter
from typing import Any

import pydantic
import pytest
from harness import Crash, Database, FakeClock, claim_and_execute, record, until

from durably import CancellationSignal, RunStatus, define_job
from durably.step import PROGRESS_PERSIST_INTERVAL_MS

LEASE_MS = 10_000


class Point(pydantic.BaseModel):
    x: int
    y: int


async def test_completed_steps_are_replayed_after_a_crash(db: Database, clock: FakeClock) -> None:
    calls: Counter[str] = Counter()
    crash = {"b": True}

    def counted(name: str) -> Any:
        def fn() -> Any:
            calls[name] += 1
            if name == "b" and crash["b"]:
                raise Crash
            return f"{name}{calls[name]}"

        return fn

    @define_job(name="abc")
    async def abc(step: Any, input: Any) -> Any:
        return [await step.run(n, counted(n)) for n in ("a", "b", "c")]

    durably = await db.runtime([abc], lease_ms=LEASE_MS)
    run = await durably.jobs["abc"].trigger(None)
    with pytest.raises(Crash):
        await durably.process_one()
    stalled = await durably.get_run(run.id)
    assert stalled is not None
    assert stalled.status == RunStatus.LEASED
    assert stalled.completed_step_count == 1

    crash["b"] = False
    assert await durably.process_one() is False  # the lease has not expired yet
    clock.advance(LEASE_MS)
    assert await durably.process_one() is True
    done = await durably.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED
    # "a" ran once; its stored output "a1" came back on resume.
    assert done.output == ["a1", "b2", "c1"]
    assert calls == Counter({"a": 1, "b": 2, "c": 1})
    assert done.completed_step_count == 3 == db.count("durably_steps", "status = 'completed'")


async def test_another_runtime_resumes_after_lease_expiry(db: Database, clock: FakeClock) -> None:
    calls: Counter[str] = Counter()
    gate = asyncio.Event()

    async def first() -> dict[str, int]:
        calls["first"] += 1
        return {"value": calls["first"]}

    async def second_a() -> str:
        calls["second"] += 1
        await gate.wait()
        return "from-a"

    def second_b() -> str:
        calls["second"] += 1
        return "from-b"

    def make(second: Any) -> Any:
        @define_job(name="two")
        async def two(step: Any, input: Any) -> Any:
            one = await step.run("first", first)
            return {"first": one, "second": await step.run("second", second)}

        return two

    a = await db.runtime([make(second_a)], lease_ms=LEASE_MS)
    b = await db.runtime([make(second_b)], lease_ms=LEASE_MS)
    run = await a.jobs["two"].trigger(None)
    task = asyncio.ensure_future(claim_and_execute(a))
    await until(lambda: calls["second"] == 1)

    clock.advance(LEASE_MS)
    assert await claim_and_execute(b) == "completed"
    gate.set()
    assert await asyncio.wait_for(task, 2) == "lease-lost"
    done = await b.get_run(run.id)
    assert done is not None
    assert done.output == {"first": {"value": 1}, "second": "from-b"}
    assert calls == Counter({"first": 1, "second": 2})


async def test_step_run_returns_the_json_form_first_time_and_on_replay(
    db: Database, clock: FakeClock
) -> None:
    seen: list[list[Any]] = []
    crash = {"now": True}

    def stop_here() -> None:
        if crash["now"]:
            raise Crash

    @define_job(name="forms")
    async def forms(step: Any, input: Any) -> Any:
        values = [
            await step.run("tuple", lambda: (1, 2)),
            await step.run("model", lambda: Point(x=1, y=2)),
            await step.run("int-keys", lambda: {1: "one"}),
            await step.run("nested", lambda: {"p": Point(x=3, y=4), "t": ("a",)}),
            await step.run("none", lambda: None),
        ]
        seen.append(values)
        await step.run("stop", stop_here)
        return values

    durably = await db.runtime([forms], lease_ms=LEASE_MS)
    await durably.jobs["forms"].trigger(None)
    with pytest.raises(Crash):
        await durably.process_one()
    crash["now"] = False
    clock.advance(LEASE_MS)
    assert await durably.process_one() is True

    expected = [[1, 2], {"x": 1, "y": 2}, {"1": "one"}, {"p": {"x": 3, "y": 4}, "t": ["a"]}, None]
    assert seen == [expected, expected]


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, {1, 2}, object(), {"deep": [float("-inf")]}, {(1, 2): "tuple key"}],
    ids=["nan", "inf", "set", "object", "nested-inf", "tuple-key"],
)
async def test_unserialisable_step_output_fails_the_run_naming_the_step(
    db: Database, value: Any
) -> None:
    @define_job(name="bad")
    async def bad(step: Any, input: Any) -> Any:
        return await step.run("bad-step", lambda: value)

    durably = await db.runtime([bad])
    events = record(durably)
    run = await durably.jobs["bad"].trigger(None)
    assert await claim_and_execute(durably) == "failed"
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("SerializationError: output of step 'bad-step'")
    steps = await durably.get_steps(run.id)
    assert [(s.name, s.status) for s in steps] == [("bad-step", "failed")]
    assert db.count("durably_steps", "status = 'completed'") == 0
    (fail_event,) = events.of("run:fail")
    assert fail_event.failed_step == "bad-step"


async def test_duplicate_step_names_fail_the_run_naming_the_step(db: Database) -> None:
    @define_job(name="dup")
    async def dup(step: Any, input: Any) -> Any:
        await step.run("twice", lambda: 1)
        await step.run("twice", lambda: 2)

    durably = await db.runtime([dup])
    run = await durably.jobs["dup"].trigger(None)
    await durably.process_one()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("StepNameError: step 'twice' is used twice")
    assert failed.completed_step_count == 1


@pytest.mark.parametrize("name", ["", None, 3])
async def test_a_step_needs_a_non_empty_string_name(db: Database, name: Any) -> None:
    @define_job(name="unnamed")
    async def unnamed(step: Any, input: Any) -> Any:
        await step.run(name, lambda: 1)

    durably = await db.runtime([unnamed])
    run = await durably.jobs["unnamed"].trigger(None)
    await durably.process_one()
    failed = await durably.get_run(run.id)
    assert failed is not None
    assert failed.error == "StepNameError: a step needs a non-empty string name"


async def test_failing_step_is_recorded_and_fails_the_run(db: Database) -> None:
    def broken() -> None:
        raise ValueError("no good")

    @define_job(name="broken")
    async def job(step: Any, input: Any) -> Any:
        await step.run("ok", lambda: 1)
        await step.run("broken", broken)

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["broken"].trigger(None)
    await durably.process_one()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.error == "ValueError: no good"
    steps = await durably.get_steps(run.id)
    assert [(s.name, s.index, s.status, s.error) for s in steps] == [
        ("ok", 0, "completed", None),
        ("broken", 1, "failed", "ValueError: no good"),
    ]
    (step_fail,) = events.of("step:fail")
    assert (step_fail.step_name, step_fail.step_index) == ("broken", 1)
    # The traceback is kept as an error log of the failing step.
    logs = await durably.get_logs(run.id)
    assert logs[-1].level == "error" and logs[-1].step_name == "broken"
    assert "Traceback" in logs[-1].data["traceback"]


async def test_caught_step_failure_is_retried_on_resume(db: Database, clock: FakeClock) -> None:
    attempts: Counter[str] = Counter()
    crash = {"now": True}

    def flaky() -> str:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise RuntimeError("first attempt fails")
        return "second attempt works"

    def later() -> str:
        if crash["now"]:
            raise Crash
        return "later"

    @define_job(name="flaky")
    async def job(step: Any, input: Any) -> Any:
        try:
            first = await step.run("flaky", flaky)
        except RuntimeError:
            first = None
        return [first, await step.run("later", later)]

    durably = await db.runtime([job], lease_ms=LEASE_MS, preserve_steps=True)
    run = await durably.jobs["flaky"].trigger(None)
    with pytest.raises(Crash):
        await durably.process_one()
    assert db.rows("SELECT name, status FROM durably_steps") == [("flaky", "failed")]

    crash["now"] = False
    clock.advance(LEASE_MS)
    await durably.process_one()
    done = await durably.get_run(run.id)
    assert done is not None
    assert done.status == RunStatus.COMPLETED, done.error
    assert done.output == ["second attempt works", "later"]
    assert sorted(db.rows("SELECT name, status FROM durably_steps")) == [
        ("flaky", "completed"),
        ("later", "completed"),
    ]
    assert done.completed_step_count == 2


async def test_sync_and_async_step_functions_and_the_signal_argument(db: Database) -> None:
    received: list[Any] = []

    async def async_fn() -> str:
        await asyncio.sleep(0)
        return "async"

    def with_signal(signal: CancellationSignal) -> str:
        received.append(signal)
        return "signal"

    async def async_with_signal(signal: CancellationSignal) -> str:
        received.append(signal)
        return "async-signal"

    @define_job(name="fns")
    async def job(step: Any, input: Any) -> Any:
        return [
            await step.run("sync", lambda: "sync"),
            await step.run("async", async_fn),
            await step.run("signal", with_signal),
            await step.run("async-signal", async_with_signal),
            step.run_id,
        ]

    durably = await db.runtime([job])
    run = await durably.jobs["fns"].trigger(None)
    await durably.process_one()
    done = await durably.get_run(run.id)
    assert done is not None
    assert done.output == ["sync", "async", "signal", "async-signal", run.id]
    assert len(received) == 2
    assert all(isinstance(s, CancellationSignal) and not s.cancelled for s in received)


async def test_progress_is_emitted_every_time_and_stored_at_most_every_interval(
    db: Database, clock: FakeClock
) -> None:
    stored: list[Any] = []

    def read_progress(run_id: str) -> Any:
        return db.rows("SELECT progress FROM durably_runs WHERE id = ?", (run_id,))[0][0]

    @define_job(name="progress")
    async def job(step: Any, input: Any) -> Any:
        step.progress(1, 10)
        stored.append(read_progress(step.run_id))
        step.progress(2, 10)  # within the interval: emitted, not yet stored
        stored.append(read_progress(step.run_id))
        clock.advance(PROGRESS_PERSIST_INTERVAL_MS)
        step.progress(3, 10, "three")
        stored.append(read_progress(step.run_id))
        step.progress(4, 10)
        await step.run("s", lambda: None)  # a step boundary stores the latest progress
        stored.append(read_progress(step.run_id))
        step.progress(5, 10)
        return None

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["progress"].trigger(None)
    await durably.process_one()
    assert stored == [
        '{"current":1,"total":10,"message":null}',
        '{"current":1,"total":10,"message":null}',
        '{"current":3,"total":10,"message":"three"}',
        '{"current":4,"total":10,"message":null}',
    ]
    assert [e.progress.current for e in events.of("run:progress")] == [1, 2, 3, 4, 5]
    done = await durably.get_run(run.id)
    assert done is not None and done.progress is not None
    assert (done.progress.current, done.progress.total) == (5, 10)  # flushed at the end


@pytest.mark.parametrize("bad", [math.nan, "3", True, math.inf])
async def test_progress_rejects_non_numbers(db: Database, bad: Any) -> None:
    @define_job(name="progress")
    async def job(step: Any, input: Any) -> Any:
        step.progress(bad)

    durably = await db.runtime([job])
    run = await durably.jobs["progress"].trigger(None)
    await durably.process_one()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.error is not None
    assert failed.error.startswith("SerializationError: progress current must be a finite number")


async def test_logs_are_stored_with_their_step_and_data(db: Database) -> None:
    @define_job(name="logs")
    async def job(step: Any, input: Any) -> Any:
        step.log.info("before", {"n": 1})

        def inside() -> None:
            step.log.warn("inside")
            step.log.error("oops", [Point(x=1, y=1)])

        await step.run("work", inside)
        step.log.info("after")

    durably = await db.runtime([job])
    events = record(durably)
    run = await durably.jobs["logs"].trigger(None)
    await durably.process_one()
    logs = await durably.get_logs(run.id)
    assert [(log.level, log.message, log.step_name, log.data) for log in logs] == [
        ("info", "before", None, {"n": 1}),
        ("warn", "inside", "work", None),
        ("error", "oops", "work", [{"x": 1, "y": 1}]),
        ("info", "after", None, None),
    ]
    assert [e.message for e in events.of("log:write")] == ["before", "inside", "oops", "after"]


async def test_unserialisable_log_data_fails_the_run(db: Database) -> None:
    @define_job(name="logs")
    async def job(step: Any, input: Any) -> Any:
        step.log.info("bad", {"s": {1}})

    durably = await db.runtime([job])
    run = await durably.jobs["logs"].trigger(None)
    await durably.process_one()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.error is not None
    assert "SerializationError: log data cannot be stored as JSON" in failed.error


# -- typed input and output ---------------------------------------------------------------


class Order(pydantic.BaseModel):
    item: str
    quantity: int


class Receipt(pydantic.BaseModel):
    total: int


async def test_job_receives_its_input_model_and_output_is_validated(db: Database) -> None:
    received: list[Any] = []

    @define_job(name="order", input=Order, output=Receipt)
    async def order(step: Any, input: Order) -> Any:
        received.append(input)
        return Receipt(total=input.quantity * 3)

    durably = await db.runtime([order])
    run = await durably.jobs["order"].trigger({"item": "tea", "quantity": "2"})
    assert run.input == {"item": "tea", "quantity": 2}  # stored as the validated model
    await durably.process_one()
    done = await durably.get_run(run.id)
    assert done is not None and done.output == {"total": 6}
    assert received == [Order(item="tea", quantity=2)]


async def test_invalid_output_fails_the_run_with_a_clear_message(db: Database) -> None:
    @define_job(name="order", output=Receipt)
    async def order(step: Any, input: Any) -> Any:
        return {"total": "lots"}

    durably = await db.runtime([order])
    events = record(durably)
    run = await durably.jobs["order"].trigger(None)
    assert await claim_and_execute(durably) == "failed"
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == RunStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("ValidationError: invalid output from job 'order': total:")
    assert failed.output is None
    assert not events.of("run:complete")


async def test_unserialisable_output_fails_the_run(db: Database) -> None:
    @define_job(name="out")
    async def out(step: Any, input: Any) -> Any:
        return {"when": object()}

    durably = await db.runtime([out])
    run = await durably.jobs["out"].trigger(None)
    await durably.process_one()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.error is not None
    assert failed.error.startswith("SerializationError: output of job 'out' cannot be stored")


def test_define_job_checks_its_arguments() -> None:
    async def run(step: Any, input: Any) -> None:
        return None

    def not_async(step: Any, input: Any) -> None:
        return None

    with pytest.raises(ValueError, match="non-empty name"):
        define_job(name=" ", run=run)
    with pytest.raises(TypeError, match="async function"):
        define_job(name="x", run=not_async)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="input must be a pydantic model"):
        define_job(name="x", input=dict, run=run)  # type: ignore[arg-type]


async def test_registering_a_different_job_under_a_taken_name_fails(db: Database) -> None:
    @define_job(name="same")
    async def one(step: Any, input: Any) -> None:
        return None

    @define_job(name="same")
    async def two(step: Any, input: Any) -> None:
        return None

    durably = await db.runtime([one])
    durably.register(one)  # the same definition again is fine
    with pytest.raises(ValueError, match="already registered"):
        durably.register(two)


def _shared_decorator(fn: Any) -> Any:
    """A decorator used on many step functions: every wrapper shares one code object,
    while `inspect.signature` follows `__wrapped__` to each wrapped function."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


class _Steps:
    def with_signal(self, signal: CancellationSignal) -> str:
        return f"method got {type(signal).__name__}"

    def without_signal(self) -> str:
        return "method"

    def __call__(self, signal: CancellationSignal) -> str:
        return f"callable got {type(signal).__name__}"


class _NoSignalCallable:
    def __call__(self) -> str:
        return "callable"


def _two_args(signal: CancellationSignal, extra: str) -> str:
    return f"partial got {type(signal).__name__} and {extra}"


def _one_arg(extra: str) -> str:
    return f"partial bound {extra}"


async def test_decorated_partial_method_and_callable_step_functions(db: Database) -> None:
    @_shared_decorator
    def decorated_without_signal() -> str:
        return "decorated"

    @_shared_decorator
    def decorated_with_signal(signal: CancellationSignal) -> str:
        return f"decorated got {type(signal).__name__}"

    steps = _Steps()
    # Both orders: whichever decorated function is seen first must not decide the other.
    functions = [
        decorated_without_signal,
        decorated_with_signal,
        decorated_without_signal,
        functools.partial(_two_args, extra="x"),
        functools.partial(_one_arg, "y"),
        steps.with_signal,
        steps.without_signal,
        steps,
        _NoSignalCallable(),
    ]

    @define_job(name="shapes")
    async def job(step: Any, input: Any) -> Any:
        return [await step.run(f"s{i}", fn) for i, fn in enumerate(functions)]

    durably = await db.runtime([job])
    run = await durably.jobs["shapes"].trigger(None)
    await durably.process_one()
    done = await durably.get_run(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED, done and done.error
    assert done.output == [
        "decorated",
        "decorated got CancellationSignal",
        "decorated",
        "partial got CancellationSignal and x",
        "partial bound y",
        "method got CancellationSignal",
        "method",
        "callable got CancellationSignal",
        "callable",
    ]
