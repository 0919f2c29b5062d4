"""Trigger options: idempotency keys, concurrency keys and coalescing, labels,
and validation of everything a trigger would store."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from harness import Database, FakeClock, record

from durably import Limits, RunStatus, define_job
from durably.errors import ConflictError, ValidationError

LEASE_MS = 10_000


@define_job(name="a")
async def job_a(step: Any, input: Any) -> Any:
    return input


@define_job(name="b")
async def job_b(step: Any, input: Any) -> Any:
    return input


class Signup(pydantic.BaseModel):
    email: str
    age: int


@define_job(name="signup", input=Signup)
async def signup(step: Any, input: Signup) -> Any:
    return input.email


def stored_counts(db: Database) -> tuple[int, int]:
    return db.count("durably_runs"), db.count("durably_run_labels")


# -- idempotency ----------------------------------------------------------------------------


async def test_idempotency_key_returns_the_existing_run(db: Database) -> None:
    durably = await db.runtime([job_a, job_b])
    events = record(durably)
    first = await durably.jobs["a"].trigger({"v": 1}, idempotency_key="once")
    again = await durably.jobs["a"].trigger({"v": 2}, idempotency_key="once")
    assert first.disposition == "created"
    assert again.disposition == "idempotent"
    assert again.id == first.id
    assert again.input == {"v": 1}
    assert events.types() == ["run:trigger"]
    assert db.count("durably_runs") == 1


async def test_idempotency_key_holds_after_the_run_finished(db: Database) -> None:
    durably = await db.runtime([job_a])
    first = await durably.jobs["a"].trigger(1, idempotency_key="once")
    await durably.process_one()
    again = await durably.jobs["a"].trigger(2, idempotency_key="once")
    assert (again.id, again.status, again.disposition) == (first.id, "completed", "idempotent")


async def test_idempotency_key_is_per_job(db: Database) -> None:
    durably = await db.runtime([job_a, job_b])
    events = record(durably)
    on_a = await durably.jobs["a"].trigger(1, idempotency_key="k")
    on_b = await durably.jobs["b"].trigger(1, idempotency_key="k")
    assert on_b.id != on_a.id
    assert on_b.disposition == "created"
    assert events.types() == ["run:trigger", "run:trigger"]


# -- concurrency keys -----------------------------------------------------------------------


async def test_second_pending_run_of_a_key_conflicts(db: Database) -> None:
    durably = await db.runtime([job_a, job_b])
    first = await durably.jobs["a"].trigger(1, concurrency_key="k")
    with pytest.raises(ConflictError, match=f"already has a pending run \\({first.id}\\)"):
        await durably.jobs["a"].trigger(2, concurrency_key="k")
    # The key spans jobs.
    with pytest.raises(ConflictError):
        await durably.jobs["b"].trigger(2, concurrency_key="k")
    assert db.count("durably_runs") == 1
    other = await durably.jobs["a"].trigger(3, concurrency_key="other")
    assert other.disposition == "created"


async def test_coalesce_skip_returns_the_pending_run(db: Database) -> None:
    durably = await db.runtime([job_a])
    events = record(durably)
    first = await durably.jobs["a"].trigger(1, concurrency_key="k", labels={"who": "first"})
    folded = await durably.jobs["a"].trigger(
        {"v": 2}, concurrency_key="k", coalesce="skip", labels={"who": "second"}
    )
    assert folded.id == first.id
    assert folded.disposition == "coalesced"
    assert folded.input == 1 and folded.labels == {"who": "first"}
    assert events.types() == ["run:trigger", "run:coalesced"]
    coalesced = events.of("run:coalesced")[0]
    assert coalesced.run_id == first.id
    assert coalesced.job_name == "a"
    assert coalesced.skipped_input == {"v": 2}
    assert coalesced.skipped_labels == {"who": "second"}
    assert db.count("durably_runs") == 1


async def test_retrying_a_coalesced_trigger_returns_the_same_run(db: Database) -> None:
    durably = await db.runtime([job_a, job_b])
    first = await durably.jobs["a"].trigger(1, idempotency_key="k1", concurrency_key="c")
    folded = await durably.jobs["a"].trigger(
        2, idempotency_key="k2", concurrency_key="c", coalesce="skip"
    )
    assert (first.disposition, folded.disposition) == ("created", "coalesced")
    assert folded.id == first.id

    # The retry finds the run the key was coalesced into, even once the run is no
    # longer pending (a plain trigger with a new key would now create a run).
    assert durably._scheduler.claim_next() is not None
    retry = await durably.jobs["a"].trigger(2, idempotency_key="k2", concurrency_key="c")
    assert (retry.id, retry.disposition) == (first.id, "idempotent")
    assert db.count("durably_runs") == 1
    # Concurrency keys span jobs: a trigger of job "b" coalesced into the run of "a".
    pending = await durably.jobs["a"].trigger(3, concurrency_key="c")
    other = await durably.jobs["b"].trigger(
        4, idempotency_key="k2", concurrency_key="c", coalesce="skip"
    )
    assert (other.id, other.disposition) == (pending.id, "coalesced")
    again = await durably.jobs["b"].trigger(4, idempotency_key="k2")
    assert (again.id, again.job_name, again.disposition) == (pending.id, "a", "idempotent")
    assert db.count("durably_runs") == 2


async def test_a_coalesced_key_goes_with_its_run(db: Database) -> None:
    durably = await db.runtime([job_a])
    first = await durably.jobs["a"].trigger(1, concurrency_key="c")
    await durably.jobs["a"].trigger(2, idempotency_key="k", concurrency_key="c", coalesce="skip")
    await durably.cancel(first.id)
    await durably.delete_run(first.id)
    assert db.count("durably_idempotency_keys") == 0
    fresh = await durably.jobs["a"].trigger(2, idempotency_key="k")
    assert fresh.disposition == "created"


async def test_coalesce_creates_a_run_when_none_is_pending(db: Database) -> None:
    durably = await db.runtime([job_a])
    run = await durably.jobs["a"].trigger(1, concurrency_key="k", coalesce="skip")
    assert run.disposition == "created"


async def test_coalesce_options_are_checked(db: Database) -> None:
    durably = await db.runtime([job_a])
    with pytest.raises(ValidationError, match="coalesce needs a concurrency_key"):
        await durably.jobs["a"].trigger(1, coalesce="skip")
    with pytest.raises(ValidationError, match="coalesce must be None or 'skip'"):
        await durably.jobs["a"].trigger(1, concurrency_key="k", coalesce="merge")
    assert db.count("durably_runs") == 0


async def test_a_leased_run_and_a_pending_run_may_share_a_key(db: Database) -> None:
    durably = await db.runtime([job_a])
    first = await durably.jobs["a"].trigger(1, concurrency_key="k")
    assert durably._scheduler.claim_next() is not None
    second = await durably.jobs["a"].trigger(2, concurrency_key="k")
    assert second.disposition == "created"
    statuses = db.rows("SELECT id, status FROM durably_runs ORDER BY rowid")
    assert statuses == [(first.id, "leased"), (second.id, "pending")]
    # ...but still only one pending run for the key.
    with pytest.raises(ConflictError):
        await durably.jobs["a"].trigger(3, concurrency_key="k")


async def test_lease_expiry_keeps_one_pending_run_per_key_and_reclaims_first(
    db: Database, clock: FakeClock
) -> None:
    stalled = await db.runtime([job_a], lease_ms=LEASE_MS, owner="stalled")
    durably = await db.runtime([job_a], lease_ms=LEASE_MS, owner="live")
    expired = await durably.jobs["a"].trigger(1, concurrency_key="k")
    assert stalled._scheduler.claim_next() is not None
    clock.advance(1)
    waiting = await durably.jobs["a"].trigger(2, concurrency_key="k")
    clock.advance(LEASE_MS)

    # The expired lease is not turned back into a second pending run.
    with pytest.raises(ConflictError):
        await durably.jobs["a"].trigger(3, concurrency_key="k")
    assert db.count("durably_runs", "concurrency_key = 'k' AND status = 'pending'") == 1

    reclaimed = durably._scheduler.claim_next()
    assert reclaimed is not None
    assert (reclaimed.run.id, reclaimed.lease.generation) == (expired.id, 2)
    assert durably._scheduler.claim_next() is None  # the key's lease is live again
    assert await durably._scheduler.execute(reclaimed) == "completed"
    nxt = durably._scheduler.claim_next()
    assert nxt is not None and nxt.run.id == waiting.id


async def test_key_lengths_are_limited(db: Database) -> None:
    durably = await db.runtime([job_a], limits=Limits(max_key_length=8))
    with pytest.raises(ValidationError, match="idempotency_key is 9 characters") as info:
        await durably.jobs["a"].trigger(1, idempotency_key="x" * 9)
    assert info.value.fields == ["idempotency_key"]
    with pytest.raises(ValidationError, match="concurrency_key"):
        await durably.jobs["a"].trigger(1, concurrency_key="x" * 9)
    with pytest.raises(ValidationError, match="non-empty string"):
        await durably.jobs["a"].trigger(1, concurrency_key="")
    assert db.count("durably_runs") == 0


# -- input and labels -----------------------------------------------------------------------


async def test_invalid_input_names_the_fields_and_stores_nothing(db: Database) -> None:
    durably = await db.runtime([signup])
    events = record(durably)
    with pytest.raises(ValidationError) as info:
        await durably.jobs["signup"].trigger({"age": "old"}, labels={"a": "b"})
    assert sorted(info.value.fields) == ["age", "email"]
    assert "invalid input for job 'signup'" in str(info.value)
    assert "email: Field required" in str(info.value)
    assert stored_counts(db) == (0, 0)
    assert events.events == []


@pytest.mark.parametrize("value", [float("nan"), {1, 2}, object()], ids=["nan", "set", "object"])
async def test_unserialisable_untyped_input_is_rejected(db: Database, value: Any) -> None:
    durably = await db.runtime([job_a])
    with pytest.raises(ValidationError, match="input of job 'a' cannot be stored as JSON"):
        await durably.jobs["a"].trigger({"v": value})
    assert stored_counts(db) == (0, 0)


async def test_oversized_input_is_rejected(db: Database) -> None:
    durably = await db.runtime([job_a], limits=Limits(max_input_bytes=100))
    accepted = await durably.jobs["a"].trigger("x" * 90)
    assert accepted.disposition == "created"
    with pytest.raises(ValidationError, match="bytes as JSON; the limit is 100") as info:
        await durably.jobs["a"].trigger("é" * 60)  # 120 bytes as UTF-8
    assert info.value.fields == ["input"]
    assert db.count("durably_runs") == 1


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"n": 1}, "keys and values must be strings"),
        ({1: "x"}, "keys and values must be strings"),
        ({"k": None}, "keys and values must be strings"),
        ({f"k{i}": "v" for i in range(5)}, "5 labels given; the limit is 4"),
        ({"k" * 17: "v"}, "keys must be 1 to 16 characters"),
        ({"k": "v" * 17}, "values at most 16"),
        ({"": "v"}, "keys must be 1 to 16 characters"),
        (["k", "v"], "labels must be a mapping"),
    ],
    ids=[
        "int-value",
        "int-key",
        "none-value",
        "too-many",
        "long-key",
        "long-value",
        "empty",
        "list",
    ],
)
async def test_bad_labels_are_rejected_and_nothing_is_stored(
    db: Database, labels: Any, message: str
) -> None:
    durably = await db.runtime([job_a], limits=Limits(max_labels=4, max_label_length=16))
    with pytest.raises(ValidationError, match=message):
        await durably.jobs["a"].trigger(1, labels=labels)
    assert stored_counts(db) == (0, 0)


async def test_labels_at_the_limits_are_stored(db: Database) -> None:
    durably = await db.runtime([job_a], limits=Limits(max_labels=4, max_label_length=16))
    labels = {f"key{i}": "v" * 16 for i in range(4)}
    run = await durably.jobs["a"].trigger(1, labels=labels)
    assert run.labels == labels
    assert db.count("durably_run_labels", "run_id = ?", (run.id,)) == 4


async def test_batch_trigger_validates_every_input_before_storing_any(db: Database) -> None:
    durably = await db.runtime([signup])
    with pytest.raises(ValidationError):
        await durably.jobs["signup"].batch_trigger(
            [{"email": "a@x", "age": 1}, {"email": "b@x", "age": "?"}]
        )
    assert db.count("durably_runs") == 0
    with pytest.raises(ValidationError, match="label"):
        await durably.jobs["signup"].batch_trigger(
            [
                {"email": "a@x", "age": 1},
                {"input": {"email": "b@x", "age": 2}, "options": {"labels": {"n": 2}}},
            ]
        )
    assert db.count("durably_runs") == 0
    runs = await durably.jobs["signup"].batch_trigger(
        [
            {"email": "a@x", "age": 1},
            {"input": {"email": "b@x", "age": 2}, "options": {"labels": {"n": "2"}}},
        ]
    )
    assert [r.status for r in runs] == [RunStatus.PENDING, RunStatus.PENDING]
    assert runs[1].labels == {"n": "2"}
