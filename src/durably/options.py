"""What a caller may ask for, checked before anything is stored: the runtime's settings
and limits, a trigger's options and a run query's filters.

Every check here is pure (it reads no store and no clock): a bad value raises
ValueError (runtime settings) or ValidationError naming the field (per-call options).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .durations import parse_duration_ms
from .errors import ValidationError
from .models import RunStatus, datetime_to_ms
from .store import RunQuery


@dataclass(frozen=True)
class Limits:
    """Bounds on what a trigger may store; larger values raise ValidationError."""

    max_input_bytes: int = 1_048_576  # JSON-encoded input
    max_labels: int = 32
    max_label_length: int = 256  # each label key and value, in characters
    max_key_length: int = 256  # idempotency and concurrency keys


@dataclass(frozen=True)
class Settings:
    """The runtime's options, validated once by `Settings.create`; parts read them."""

    polling_interval_ms: int
    lease_ms: int
    #: Shorter than `lease_ms`, so a live holder renews before its lease runs out.
    lease_renew_interval_ms: int
    max_concurrent_runs: int
    #: A run claimed this many times in a row without finishing a step is failed.
    max_stalled_attempts: int
    preserve_steps: bool
    retain_runs_ms: int | None
    limits: Limits

    @classmethod
    def create(
        cls,
        *,
        polling_interval_ms: int,
        lease_ms: int,
        lease_renew_interval_ms: int,
        max_concurrent_runs: int,
        max_stalled_attempts: int,
        preserve_steps: bool,
        retain_runs: str | None,
        limits: Limits | None,
    ) -> Settings:
        """Validated settings; ValueError names the first option that is wrong."""
        settings = cls(
            polling_interval_ms=check_positive("polling_interval_ms", polling_interval_ms),
            lease_ms=check_positive("lease_ms", lease_ms),
            lease_renew_interval_ms=check_positive(
                "lease_renew_interval_ms", lease_renew_interval_ms
            ),
            max_concurrent_runs=check_positive("max_concurrent_runs", max_concurrent_runs),
            max_stalled_attempts=check_positive("max_stalled_attempts", max_stalled_attempts),
            preserve_steps=bool(preserve_steps),
            retain_runs_ms=None if retain_runs is None else parse_duration_ms(retain_runs),
            limits=limits or Limits(),
        )
        if settings.lease_renew_interval_ms >= settings.lease_ms:
            raise ValueError("lease_renew_interval_ms must be shorter than lease_ms")
        return settings


def check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def check_trigger_options(
    limits: Limits, idempotency_key: Any, concurrency_key: Any, coalesce: Any, labels: Any
) -> dict[str, str]:
    """Check a trigger's keyword options; returns its labels as a plain dict."""
    for name, key in (
        ("idempotency_key", idempotency_key),
        ("concurrency_key", concurrency_key),
    ):
        if key is not None and (not isinstance(key, str) or not key):
            raise ValidationError(f"{name} must be a non-empty string", fields=[name])
        if isinstance(key, str) and len(key) > limits.max_key_length:
            raise ValidationError(
                f"{name} is {len(key)} characters; the limit is {limits.max_key_length}",
                fields=[name],
            )
    if coalesce not in (None, "skip"):
        raise ValidationError(f"coalesce must be None or 'skip', not {coalesce!r}", ["coalesce"])
    if coalesce is not None and concurrency_key is None:
        raise ValidationError("coalesce needs a concurrency_key", fields=["coalesce"])
    return check_labels(limits, labels)


def check_labels(limits: Limits, labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise ValidationError("labels must be a mapping of strings to strings", ["labels"])
    if len(labels) > limits.max_labels:
        raise ValidationError(
            f"{len(labels)} labels given; the limit is {limits.max_labels}", ["labels"]
        )
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationError(
                f"label {key!r}: keys and values must be strings, got "
                f"{type(key).__name__} = {type(value).__name__}",
                [f"labels.{key}"],
            )
        if not key or len(key) > limits.max_label_length or len(value) > limits.max_label_length:
            raise ValidationError(
                f"label {key[:40]!r}: keys must be 1 to {limits.max_label_length} characters "
                f"and values at most {limits.max_label_length}",
                [f"labels.{key}"],
            )
    return dict(labels)


def check_run_at(delay: Any, run_at: Any, now: Callable[[], int]) -> int | None:
    """When a delayed trigger's run becomes due (epoch ms), or None: at once."""
    if delay is not None and run_at is not None:
        raise ValidationError("give delay or run_at, not both", ["delay", "run_at"])
    if delay is not None:
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not 0 <= delay <= 10**10  # seconds; about 317 years
        ):
            raise ValidationError(
                f"delay must be a number of seconds >= 0, not {delay!r}", ["delay"]
            )
        return now() + round(delay * 1000)
    if run_at is not None:
        if not isinstance(run_at, datetime) or run_at.tzinfo is None:
            raise ValidationError("run_at must be a timezone-aware datetime", ["run_at"])
        return datetime_to_ms(run_at)
    return None


def check_input_size(limits: Limits, job_name: str, input_json: str) -> None:
    size = len(input_json.encode())
    if size > limits.max_input_bytes:
        raise ValidationError(
            f"input of job {job_name!r} is {size} bytes as JSON; "
            f"the limit is {limits.max_input_bytes}",
            fields=["input"],
        )


def run_query(
    limits: Limits,
    status: Any,
    job_name: Any,
    labels: Mapping[str, str] | None,
    limit: int | None,
    offset: int | None,
) -> RunQuery:
    """The store query for `get_runs` / `count_runs` filters; ValidationError names a bad one."""
    statuses = [status] if isinstance(status, str) else list(status or [])
    try:
        parsed = [RunStatus(s) for s in statuses]
    except ValueError:
        known = ", ".join(s.value for s in RunStatus)
        raise ValidationError(f"unknown status in {statuses!r}; use {known}", ["status"]) from None
    names = [job_name] if isinstance(job_name, str) else list(job_name or [])
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValidationError(f"{name} must be a non-negative integer", [name])
    return RunQuery(
        statuses=parsed,
        job_names=names,
        labels=check_labels(limits, labels),
        limit=limit,
        offset=offset,
    )
