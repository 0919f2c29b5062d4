"""Decoding requests from the page and encoding runtime values for it.

Every request type's fields are declared once, in `REQUEST_FIELDS`; a wrong envelope
raises `ProtocolError`, a wrong, missing or unknown field a `ValidationError` naming
it. Only our own records' keys become camelCase, never user data inside them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from ..models import ms_to_datetime

#: 2: the runtime's messages cross as JSON text; events' dates as epoch milliseconds.
PROTOCOL_VERSION = 2
#: The largest integer JavaScript numbers hold exactly; also keeps SQLite's 64-bit ints safe.
MAX_SAFE_INTEGER = 2**53 - 1
#: The longest wait a request may ask for (what `setTimeout` accepts: about 24.8 days).
MAX_TIMEOUT_MS = 2**31 - 1
#: Fields of every request's envelope; the bridge reads them itself.
ENVELOPE = frozenset({"id", "type"})


@functools.cache
def camel_key(key: str) -> str:
    # Only our own records' field names come here: a small, fixed set.
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_camel(record: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a record's own keys to camelCase (values are left as they are)."""
    return {camel_key(key): value for key, value in record.items()}


# -- field decoders: (value, path) -> decoded value, or ValidationError naming `path` ----

Decoder = Callable[[Any, str], Any]


def kind_of(decoder: Decoder) -> str:
    """The JSON type a decoder accepts, as the page's protocol definition names it: string,
    integer, number, boolean, date (ISO-8601 or epoch ms), string-or-strings, string-map,
    object, or json (anything JSON, e.g. user data)."""
    return str(getattr(decoder, "kind", "json"))


def _kind(name: str) -> Callable[[Decoder], Decoder]:
    def mark(decoder: Decoder) -> Decoder:
        decoder.kind = name  # type: ignore[attr-defined]
        return decoder

    return mark


def invalid(path: str, expected: str, value: Any) -> ValidationError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else f"{shown[:57]}..."
    return ValidationError(f"field {path!r} must be {expected}, not {shown}", [path])


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def of_type(kind: str, python_type: type, expected: str) -> Decoder:
    """A decoder of the JSON values that decode to `python_type` (e.g. str), as they are."""

    @_kind(kind)
    def decode(value: Any, path: str) -> Any:
        if not isinstance(value, python_type):
            raise invalid(path, expected, value)
        return value

    return decode


text = of_type("string", str, "a string")
flag = of_type("boolean", bool, "true or false")
any_object = of_type("object", dict, "an object")


@_kind("json")
def any_json(value: Any, path: str) -> Any:
    return value  # user data: its job's schema validates it


def integer_in(low: int, high: int = MAX_SAFE_INTEGER) -> Decoder:
    @_kind("integer")
    def decode(value: Any, path: str) -> int:
        if not is_int(value) or not low <= value <= high:
            raise invalid(path, f"an integer from {low} to {high}", value)
        return int(value)

    return decode


@_kind("number")
def timeout_ms(value: Any, path: str) -> float:
    if not is_number(value) or not 0 <= value <= MAX_TIMEOUT_MS:
        raise invalid(path, f"a number of milliseconds from 0 to {MAX_TIMEOUT_MS}", value)
    return float(value)


@_kind("string-or-strings")
def text_or_texts(value: Any, path: str) -> str | list[str]:
    if isinstance(value, list):
        return [text(item, f"{path}.{i}") for i, item in enumerate(value)]
    if not isinstance(value, str):
        raise invalid(path, "a string or an array of strings", value)
    return value


@_kind("string-map")
def text_map(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise invalid(path, "an object of strings", value)
    return {key: text(item, f"{path}.{key}") for key, item in value.items()}


#: The dates SQLite's integer milliseconds and Python's datetime both hold.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


@_kind("date")
def instant(value: Any, path: str) -> datetime:
    """An ISO-8601 string or epoch milliseconds, from 1970 to 9999."""
    expected = "an ISO-8601 date or epoch milliseconds, from 1970 to 9999"
    parsed: datetime | None = None
    if is_number(value) and 0 <= value <= (_LATEST - _EARLIEST).total_seconds() * 1000:
        parsed = ms_to_datetime(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    if parsed is None or not _EARLIEST <= parsed <= _LATEST:
        raise invalid(path, expected, value)
    return parsed


class record:
    """An object with exactly these (optional) fields, decoded one by one."""

    kind = "object"

    def __init__(self, fields: Mapping[str, Field]) -> None:
        #: Its fields, by name (tests generate their cases from them).
        self.fields = fields

    def __call__(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(path, "an object", value)
        return decode_fields(value, self.fields, prefix=f"{path}.")


@dataclass(frozen=True)
class Field:
    decode: Decoder
    required: bool = False


def decode_fields(
    message: Mapping[str, Any], fields: Mapping[str, Field], prefix: str = ""
) -> dict[str, Any]:
    """Decode `message`'s fields; unknown ones are refused, absent or null ones are None."""
    unknown = sorted(set(message) - set(fields) - (ENVELOPE if not prefix else set()))
    if unknown:
        names = [f"{prefix}{name}" for name in unknown]
        known = ", ".join(fields) or "none"
        raise ValidationError(
            f"unknown field(s) {', '.join(map(repr, names))}; known: {known}", names
        )
    decoded: dict[str, Any] = {}
    for name, field in fields.items():
        value = message.get(name)
        if value is None:
            if field.required:
                raise ValidationError(f"field {prefix}{name!r} is required", [prefix + name])
            decoded[name] = None
        else:
            decoded[name] = field.decode(value, prefix + name)
    return decoded


# -- the requests ----------------------------------------------------------------------

_RUN_ID = {"runId": Field(text, required=True)}
_TRIGGER = {
    "job": Field(text, required=True),
    "input": Field(any_json),
    "options": Field(
        record(
            {
                "idempotencyKey": Field(text),
                "concurrencyKey": Field(text),
                "coalesce": Field(text),
                "labels": Field(text_map),
                # A delayed run: due after delayMs, or at runAt (not both).
                "delayMs": Field(integer_in(0)),
                "runAt": Field(instant),
            }
        )
    ),
}
_FILTERS = {
    "status": Field(text_or_texts),
    "jobName": Field(text_or_texts),
    "labels": Field(text_map),
}

#: Every request type the runtime answers and the fields it takes: the one definition
#: both sides read. To add a request: add its entry here, its handler to
#: `bridge.HANDLERS` (a unit test checks both name the same requests) and its method to
#: web/durably/client.js (+ client.d.ts), then run `make setup` (or
#: `python scripts/gen_protocol.py`) to regenerate web/durably/protocol-definition.js.
REQUEST_FIELDS: dict[str, dict[str, Field]] = {
    "trigger": _TRIGGER,
    "triggerAndWait": {**_TRIGGER, "timeout": Field(timeout_ms)},
    "waitForRun": {**_RUN_ID, "timeout": Field(timeout_ms)},
    "getRun": _RUN_ID,
    "getRuns": {**_FILTERS, "limit": Field(integer_in(0)), "offset": Field(integer_in(0))},
    "countRuns": _FILTERS,
    "getSteps": _RUN_ID,
    "getLogs": _RUN_ID,
    "cancel": _RUN_ID,
    "retrigger": _RUN_ID,
    "deleteRun": _RUN_ID,
    "sendEvent": {**_RUN_ID, "name": Field(text, required=True), "payload": Field(any_json)},
    "resume": _RUN_ID,
    "purgeRuns": {"olderThan": Field(instant, required=True), "limit": Field(integer_in(1))},
    "getJobs": {},
    # The whole database. The page sends exportDatabase and importDatabase {data: bytes};
    # the worker moves the bytes through a temporary file in Pyodide's in-memory
    # filesystem and names that file here (worker.js, handleDatabaseTransfer).
    "exportDatabase": {},
    "importDatabase": {"file": Field(text, required=True)},
    "getDatabaseSize": {},
}


#: Requests the worker (web/durably/worker.js) answers itself, before or without the runtime.
WORKER_REQUEST_FIELDS: dict[str, dict[str, Field]] = {
    "init": {"config": Field(any_object, required=True)},  # the one start-up, see worker.js
    "ping": {},
    "close": {},
    # The page's network state (its window's online/offline events), which the worker
    # passes on to the runtime: a dedicated worker's own navigator.onLine may not follow.
    "network": {"online": Field(flag, required=True)},
}

#: Events the worker posts itself, besides the runtime's noun:verb events (`events.py`).
WORKER_EVENT_TYPES = (
    "boot",  # {phase}: waiting-for-lock, loading-python, ..., ready
    "secondary",  # {message}: another tab owns the database
    "owner",  # {message, jobs, jobErrors}: this tab became the owner after being secondary
)

#: Error names the page's side raises itself (client.js, worker.js), besides `errors.py`'s.
PAGE_ERROR_NAMES = (
    "WorkerError",  # the worker could not be loaded or failed
    "TimeoutError",  # no answer within the request timeout
    "UnsupportedError",  # the browser context lacks OPFS, Web Locks or a secure context
)


def decode_request(message: Mapping[str, Any]) -> dict[str, Any]:
    """The request's fields, decoded; ValidationError names a field that is wrong.

    Requests are JSON objects ``{"id", "type", ...}`` with camelCase fields; a null
    field is the same as an absent one."""
    kind = message["type"]
    try:
        return decode_fields(message, REQUEST_FIELDS[kind])
    except ValidationError as exc:
        raise ValidationError(f"{kind}: {exc}", exc.fields) from None
