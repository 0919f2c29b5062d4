"""Retries and timeouts of `step.run`: the policy, its checks, and what a failed attempt
leads to (another attempt after a durable delay, a wait for the network, or failure).

The attempt count is stored with the step's record, so a reload or restart does not
reset it. A delay is a durable wait (the run is `waiting`, kind retry), not a sleep in a
worker slot. An attempt that fails while the runtime is offline is not counted: the next
one starts when the network is back.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any

from .errors import StepTimeoutError, ValidationError, describe_error
from .models import StepRecord
from .store import Wait
from .waits import WaitControl, check_seconds, ms


@dataclass(frozen=True)
class RetryPolicy:
    """How `step.run` retries: `retries` more attempts after the first, the n-th delay
    `retry_delay * backoff**(n-1)` seconds up to `max_retry_delay`; `timeout` bounds one
    attempt of an async step (None: no bound)."""

    retries: int = 0
    retry_delay: float = 1.0
    backoff: float = 2.0
    max_retry_delay: float = 300.0
    timeout: float | None = None

    @classmethod
    def create(
        cls,
        retries: Any,
        retry_delay: Any,
        backoff: Any,
        max_retry_delay: Any,
        timeout: Any,
    ) -> RetryPolicy:
        """A checked policy; ValidationError names the option that is wrong."""
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError(f"retries must be an integer >= 0, not {retries!r}", ["retries"])
        delay = check_seconds("retry_delay", retry_delay)
        cap = check_seconds("max_retry_delay", max_retry_delay)
        factor = check_seconds("backoff", backoff)
        assert delay is not None and cap is not None and factor is not None
        if factor < 1:
            raise ValidationError(f"backoff must be >= 1, not {backoff!r}", ["backoff"])
        limit = check_seconds("timeout", timeout, allow_none=True)
        if limit == 0:
            raise ValidationError("timeout must be more than 0 seconds", ["timeout"])
        return cls(retries, delay, factor, cap, limit)

    def delay_ms(self, failed_attempt: int) -> int:
        """The delay after the `failed_attempt`-th attempt (1-based), in milliseconds."""
        exponent = min(failed_attempt - 1, 1000)  # beyond it, the cap applies anyway
        try:
            seconds = self.retry_delay * self.backoff**exponent
        except OverflowError:
            seconds = self.max_retry_delay
        return round(min(seconds, self.max_retry_delay) * 1000)


async def bounded(result: Any, timeout: float | None, step_name: str) -> Any:
    """Await `result` if it is awaitable, cancelling it after `timeout` seconds with
    StepTimeoutError. A synchronous step has already returned here: nothing can
    interrupt it."""
    if not inspect.isawaitable(result):
        return result
    if timeout is None:
        return await result
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await result
    except TimeoutError as exc:
        if not scope.expired():
            raise  # the step's own TimeoutError, not ours
        raise StepTimeoutError(
            f"step {step_name!r} did not finish within {timeout} s and was cancelled"
        ) from exc


def retry_or_give_up(
    execution: WaitControl,
    policy: RetryPolicy,
    name: str,
    index: int,
    first_started: int,
    attempts_before: int,
    exc: Exception,
) -> None:
    """After a failed attempt: suspend until the next attempt is due, or return when the
    attempts are used up (the step then fails). Offline, the failed attempt is not
    counted: the next one starts when the network is back."""
    attempt = attempts_before + 1
    error = describe_error(exc)
    if not execution.online:
        wait = Wait("online", name, index, first_started, None, attempts_before, error, "step")
        execution.suspend(wait, retry=(attempt, error, None))
    if attempt > policy.retries:
        return
    delay = policy.delay_ms(attempt)
    due = execution.now_ms() + delay
    execution.suspend(
        Wait("retry", name, index, first_started, due, attempt, error),
        retry=(attempt, error, delay),
    )


def wait_again(record: StepRecord, index: int, kind: str, until: int | None) -> Wait:
    """The wait a retried step suspends on again (woken early, or still offline)."""
    started = ms(record.started_at)
    assert started is not None
    return Wait(
        "online" if kind == "online" else "retry",
        record.name,
        index,
        started,
        until,
        record.attempts,
        record.last_error,
        "step",
    )
