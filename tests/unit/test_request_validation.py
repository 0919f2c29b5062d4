"""Every request type × every field × wrong types and out-of-range values, generated from
the bridge's own tables: a bad request is answered with one of the project's errors
(ValidationError naming the field, or ProtocolError for a broken envelope), never with
TypeError, StorageError, OSError or OverflowError. The same for the runtime options and
limits given to open_bridge."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_bridge import Page, ask, count

from durably import create_durably, errors
from durably.browser.bridge import _LIMIT_OPTIONS, _RUNTIME_OPTIONS, HANDLERS, Bridge, open_bridge
from durably.browser.protocol import REQUEST_FIELDS, any_json, record

PROJECT_ERRORS = {
    name
    for name, value in vars(errors).items()
    if inspect.isclass(value) and issubclass(value, errors.DurablyError)
}
#: Valid for no field of any request (`input` is user data and excepted).
NEVER_VALID: list[Any] = [True, -1, -0.5, 2**64, 1e20, -1e308, [{}], [[]], {"x": {}}]
#: Any other JSON value, valid for some fields.
OTHER_VALUES: list[Any] = [0, 1.5, 7, "", "x", "2020-01-01T00:00:00Z", [], ["x"], {}]
RUN_ID = "RUN_ID"  # replaced by a real run's id


def valid_request(kind: str) -> dict[str, Any]:
    """A request of `kind` with every required field valid."""
    base: dict[str, Any] = {"type": kind}
    fields = REQUEST_FIELDS[kind]
    if "job" in fields:
        base.update(job="count", input={"steps": 1})
    if "runId" in fields:
        base["runId"] = RUN_ID
    if "olderThan" in fields:
        base["olderThan"] = "2020-01-01T00:00:00Z"
    if "name" in fields:
        base["name"] = "approval"
    return base


#: Fields that carry user data (any JSON; its job or wait checks it), by request type.
USER_DATA = {(kind, name) for kind, fields in REQUEST_FIELDS.items()
             for name, field in fields.items() if field.decode is any_json}  # fmt: skip


def field_paths(kind: str) -> list[str]:
    """Every field of `kind`, with the nested ones of `options` as dotted paths."""
    paths = list(REQUEST_FIELDS[kind])
    for name, field in REQUEST_FIELDS[kind].items():
        if isinstance(field.decode, record):  # its nested fields, from the same table
            paths += [f"{name}.{nested}" for nested in field.decode.fields]
    return [*paths, *(f"{path}.user" for path in paths if path.split(".")[-1] == "labels")]


def with_value(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    request = json.loads(json.dumps(request))
    *parents, last = path.split(".")
    target = request
    for name in parents:
        target = target.setdefault(name, {})
    target[last] = value
    return request


def cases() -> list[tuple[str, str, Any]]:
    return [
        (kind, path, value)
        for kind in REQUEST_FIELDS
        for path in field_paths(kind)
        for value in [*NEVER_VALID, *OTHER_VALUES]
    ]


@pytest.fixture
async def bridged() -> AsyncIterator[tuple[Bridge, Page, str]]:
    page = Page()
    durably = create_durably(":memory:", [count], polling_interval_ms=5)
    bridge = Bridge(durably, page.post)
    await durably.init()
    run = await durably.jobs["count"].trigger_and_wait({"steps": 1}, timeout=5)
    yield bridge, page, run.id
    await bridge.close()


async def ask_quickly(bridge: Bridge, page: Page, request: dict[str, Any]) -> dict[str, Any]:
    """`ask` without its 10 ms naps: most answers come within a few turns of the loop."""
    bridge.handle(json.dumps(request))
    for turn in range(5000):
        if (response := page.responses().get(request["id"])) is not None:
            return response
        await asyncio.sleep(0 if turn < 50 else 0.001)
    raise AssertionError(f"no response to {request}")


def test_every_handler_has_a_field_table() -> None:
    assert set(HANDLERS) == set(REQUEST_FIELDS)


async def test_every_field_of_every_request_is_validated(
    bridged: tuple[Bridge, Page, str],
) -> None:
    bridge, page, run_id = bridged
    failures: list[str] = []
    for n, (kind, path, value) in enumerate(cases()):
        request = with_value(valid_request(kind), path, value)
        request["id"] = n
        if request.get("runId") == RUN_ID:
            request["runId"] = run_id
        if kind in ("triggerAndWait", "waitForRun") and path != "timeout":
            request["timeout"] = 2000
        response = await ask_quickly(bridge, page, request)
        if response["ok"]:
            continue
        error = response["error"]
        if error["name"] not in PROJECT_ERRORS:
            failures.append(f"{kind} {path}={value!r}: {error['name']}: {error['message']}")
        elif value in NEVER_VALID and (kind, path.split(".")[0]) not in USER_DATA and (
            error["name"] != "ValidationError"
            or not any(f == path or f.startswith(f"{path}.") for f in error.get("fields", []))
        ):  # fmt: skip
            failures.append(f"{kind} {path}={value!r}: not naming the field: {error}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("kind", sorted(REQUEST_FIELDS))
async def test_unknown_fields_are_refused_by_name(
    bridged: tuple[Bridge, Page, str], kind: str
) -> None:
    bridge, page, _ = bridged
    request = {**valid_request(kind), "id": 1, "runID": "typo", "extra": None}
    response = await ask(bridge, page, request)
    assert response["ok"] is False
    assert response["error"]["name"] == "ValidationError"
    assert response["error"]["fields"] == ["extra", "runID"]
    assert "runID" in response["error"]["message"]


@pytest.mark.parametrize(
    "text",
    ['{"id": 1, "type": "getRuns", "limit": NaN}', '{"id": 1, "type": "getRuns", "limit": 1e400}',
     '{"id": 1, "type": "purgeRuns", "olderThan": -Infinity}'],
)  # fmt: skip
async def test_numbers_json_cannot_hold_are_refused(
    bridged: tuple[Bridge, Page, str], text: str
) -> None:
    bridge, page, _ = bridged
    bridge.handle(text)
    response = await ask(bridge, page, {"id": "after", "type": "getJobs"})
    assert response["ok"]
    # Refused while parsing, before the id is read: answered with id null.
    [refused] = [m for m in page.messages if "ok" in m and m["id"] in (1, None)]
    assert refused["error"]["name"] in ("ProtocolError", "ValidationError"), refused


def runtime_option_cases() -> list[tuple[str, Any]]:
    bad: list[Any] = [*NEVER_VALID, 0, 1.5, "x", "0d", [], {}]
    paths = [*_RUNTIME_OPTIONS, "limits", *(f"limits.{key}" for key in _LIMIT_OPTIONS)]
    cases = [(path, value) for path in paths for value in bad]
    # Values that are wrong only for some options.
    cases += [("preserveSteps", 1), ("limits", "x"), ("retainRuns", 30), ("bogus", 1)]
    # Valid after all: a boolean for preserveSteps, an empty limits object (the defaults).
    valid = [("preserveSteps", True), ("limits", {})]
    return [(p, v) for p, v in cases if not any(p == q and v == w and type(v) is type(w)
                                                for q, w in valid)]  # fmt: skip


@pytest.mark.parametrize(("path", "value"), runtime_option_cases())
async def test_bad_runtime_options_and_limits_are_named(
    tmp_path: Path, path: str, value: Any
) -> None:
    options = with_value({}, path, value)
    config = {"databasePath": str(tmp_path / "x.sqlite3"), "options": options}
    with pytest.raises(errors.ValidationError) as raised:
        await open_bridge(json.dumps(config), Page().post)
    assert any(f == f"options.{path}" or f.startswith(f"options.{path}.")
               for f in raised.value.fields), raised.value.fields  # fmt: skip


@pytest.mark.parametrize(
    ("config", "field"),
    [({"options": "x"}, "options"), ({"options": []}, "options"),
     ({"synchronous": "fast"}, "synchronous"), ({"synchronous": 1}, "synchronous"),
     ({"options": {"leaseMs": 1000, "leaseRenewIntervalMs": 1000}}, "options")],
)  # fmt: skip
async def test_bad_runtime_configuration_is_named(
    tmp_path: Path, config: dict[str, Any], field: str
) -> None:
    config = {"databasePath": str(tmp_path / "x.sqlite3"), **config}
    with pytest.raises(errors.ValidationError) as raised:
        await open_bridge(json.dumps(config), Page().post)
    assert raised.value.fields == [field]
