"""The runtime's side of the page protocol, running inside the browser worker.

The worker hands every request to `Bridge.handle` as JSON text and posts
whatever the bridge emits through the `post` callable it supplied: exactly one
response per request (``{"id", "ok", "result" | "error"}``) and every runtime
event, in order. Events emitted in one turn of the event loop travel as one
message (``{"type": "events", "events": [...]}``, or ``{"type": "event", "event"}``
for a single one): a job reporting progress in a tight loop costs one postMessage,
not thousands. Queued events are always posted before any later response, so the
page sees events and responses in the order they happened. A request that fails
for any reason gets an error response; nothing a page sends can stop the bridge.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..durably import Durably, Limits, create_durably
from ..errors import DurablyError, ProtocolError
from ..events import Event
from ..models import Run
from ..store import SqliteStore
from .loader import JobModule, load_job_modules
from .protocol import (
    PROTOCOL_VERSION,
    optional,
    optional_number,
    parse_time,
    require,
    to_camel,
)

Post = Callable[[str], None]
#: How long `close()` lets runs in flight finish before abandoning them.
CLOSE_TIMEOUT_S = 2.0
Handler = Callable[[Durably, Mapping[str, Any]], Awaitable[Any]]

_RUNTIME_OPTIONS = {
    "pollingIntervalMs": "polling_interval_ms",
    "leaseMs": "lease_ms",
    "leaseRenewIntervalMs": "lease_renew_interval_ms",
    "maxConcurrentRuns": "max_concurrent_runs",
    "maxStalledAttempts": "max_stalled_attempts",
    "preserveSteps": "preserve_steps",
    "retainRuns": "retain_runs",
}
_LIMIT_OPTIONS = {
    "maxInputBytes": "max_input_bytes",
    "maxLabels": "max_labels",
    "maxLabelLength": "max_label_length",
    "maxKeyLength": "max_key_length",
}


def run_to_js(run: Run | None) -> dict[str, Any] | None:
    return None if run is None else to_camel(run.to_dict())


def _trigger_options(message: Mapping[str, Any]) -> dict[str, Any]:
    options = optional(message, "options", dict) or {}
    known = {"idempotencyKey", "concurrencyKey", "coalesce", "labels"}
    unknown = set(options) - known
    if unknown:
        raise ProtocolError(f"unknown trigger option(s): {', '.join(sorted(unknown))}")
    return {
        "idempotency_key": options.get("idempotencyKey"),
        "concurrency_key": options.get("concurrencyKey"),
        "coalesce": options.get("coalesce"),
        "labels": options.get("labels"),
    }


async def _trigger(durably: Durably, message: Mapping[str, Any]) -> Any:
    job = durably._require_job(require(message, "job", str))
    run = await job.trigger(message.get("input"), **_trigger_options(message))
    return run_to_js(run)


async def _trigger_and_wait(durably: Durably, message: Mapping[str, Any]) -> Any:
    job = durably._require_job(require(message, "job", str))
    timeout_ms = optional_number(message, "timeout")
    result = await job.trigger_and_wait(
        message.get("input"),
        timeout=None if timeout_ms is None else timeout_ms / 1000,
        **_trigger_options(message),
    )
    return to_camel(result.to_dict())


async def _wait_for_run(durably: Durably, message: Mapping[str, Any]) -> Any:
    timeout_ms = optional_number(message, "timeout")
    run = await durably.wait_for_run(
        require(message, "runId", str), None if timeout_ms is None else timeout_ms / 1000
    )
    return run_to_js(run)


async def _get_run(durably: Durably, message: Mapping[str, Any]) -> Any:
    return run_to_js(await durably.get_run(require(message, "runId", str)))


def _filters(message: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": optional(message, "status", (str, list)),
        "job_name": optional(message, "jobName", (str, list)),
        "labels": optional(message, "labels", dict),
    }


async def _get_runs(durably: Durably, message: Mapping[str, Any]) -> Any:
    runs = await durably.get_runs(
        **_filters(message),
        limit=optional(message, "limit", int),
        offset=optional(message, "offset", int),
    )
    return [run_to_js(run) for run in runs]


async def _count_runs(durably: Durably, message: Mapping[str, Any]) -> Any:
    return await durably.count_runs(**_filters(message))


async def _get_steps(durably: Durably, message: Mapping[str, Any]) -> Any:
    steps = await durably.get_steps(require(message, "runId", str))
    return [to_camel(step.to_dict()) for step in steps]


async def _get_logs(durably: Durably, message: Mapping[str, Any]) -> Any:
    logs = await durably.get_logs(require(message, "runId", str))
    return [to_camel(log.to_dict()) for log in logs]


async def _cancel(durably: Durably, message: Mapping[str, Any]) -> Any:
    return run_to_js(await durably.cancel(require(message, "runId", str)))


async def _retrigger(durably: Durably, message: Mapping[str, Any]) -> Any:
    return run_to_js(await durably.retrigger(require(message, "runId", str)))


async def _delete_run(durably: Durably, message: Mapping[str, Any]) -> Any:
    await durably.delete_run(require(message, "runId", str))
    return None


async def _purge_runs(durably: Durably, message: Mapping[str, Any]) -> Any:
    limit = optional(message, "limit", int)
    return await durably.purge_runs(
        parse_time(message, "olderThan"), 500 if limit is None else limit
    )


async def _get_jobs(durably: Durably, message: Mapping[str, Any]) -> Any:
    return sorted(durably.jobs)


HANDLERS: dict[str, Handler] = {
    "trigger": _trigger,
    "triggerAndWait": _trigger_and_wait,
    "waitForRun": _wait_for_run,
    "getRun": _get_run,
    "getRuns": _get_runs,
    "countRuns": _count_runs,
    "getSteps": _get_steps,
    "getLogs": _get_logs,
    "cancel": _cancel,
    "retrigger": _retrigger,
    "deleteRun": _delete_run,
    "purgeRuns": _purge_runs,
    "getJobs": _get_jobs,
}


def error_payload(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, DurablyError):
        return {"name": type(exc).__name__, "message": str(exc)}
    # An unexpected failure: keep its class name so it can be recognised on the page.
    return {"name": type(exc).__name__, "message": str(exc) or type(exc).__name__}


class Bridge:
    """Serves one page's requests against one `Durably` runtime."""

    def __init__(self, durably: Durably, post: Post) -> None:
        self.durably = durably
        self._post = post
        # Strong references to request tasks in flight (asyncio keeps only weak ones).
        self._tasks: set[asyncio.Task[None]] = set()
        # Events not posted yet, in emission order; posted together at the end of this
        # turn of the event loop (`_flush_handle` is the scheduled post) or before a response.
        self._queued: list[dict[str, Any]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._unsubscribe = durably.on("*", self._forward_event)
        #: What start-up found: registered jobs, job module errors, reclaimed runs.
        self.info: dict[str, Any] = {}

    def info_json(self) -> str:
        return json.dumps(self.info)

    def _send(self, message: Mapping[str, Any]) -> None:
        self._post(json.dumps(message, allow_nan=False, separators=(",", ":")))

    def _forward_event(self, event: Event) -> None:
        self._queued.append(to_camel(event.to_dict()))
        if self._flush_handle is not None:
            return
        try:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush_events)
        except RuntimeError:  # no running loop (e.g. while closing): post at once
            self.flush_events()

    def flush_events(self) -> None:
        """Post the queued events now, as one message."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._queued:
            return
        events, self._queued = self._queued, []
        if len(events) == 1:
            self._send({"type": "event", "event": events[0]})
        else:
            self._send({"type": "events", "events": events})

    def handle(self, text: str) -> None:
        """Accept one request (JSON text); its response is posted when ready."""
        task = asyncio.ensure_future(self._respond(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(self, text: str) -> None:
        request_id: Any = None
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ProtocolError("a request must be a JSON object")
            request_id = message.get("id")
            if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
                request_id = None
                raise ProtocolError("a request needs an 'id' (string or integer)")
            kind = message.get("type")
            handler = HANDLERS.get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise ProtocolError(
                    f"unknown request type {kind!r}; known: {', '.join(sorted(HANDLERS))}"
                )
            result = await handler(self.durably, message)
            reply = {"id": request_id, "ok": True, "result": result}
            self.flush_events()
            try:
                self._send(reply)
                return
            except ValueError as exc:  # e.g. NaN in a stored value: report, don't hang
                raise ProtocolError(f"the result cannot be sent as JSON: {exc}") from exc
        except json.JSONDecodeError as exc:
            error = {"name": "ProtocolError", "message": f"a request must be JSON: {exc}"}
        except Exception as exc:
            error = error_payload(exc)
        self.flush_events()
        self._send({"id": request_id, "ok": False, "error": error})

    async def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the runtime and close the database. Runs still in flight after
        `timeout` seconds are abandoned; the next owner resumes them."""
        await self.durably.close(timeout)
        self._unsubscribe()
        self.flush_events()


def _runtime_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(_RUNTIME_OPTIONS) - {"limits"}
    if unknown:
        raise ProtocolError(f"unknown runtime option(s): {', '.join(sorted(unknown))}")
    kwargs = {_RUNTIME_OPTIONS[key]: value for key, value in options.items() if key != "limits"}
    limits = options.get("limits") or {}
    if not isinstance(limits, dict) or set(limits) - set(_LIMIT_OPTIONS):
        raise ProtocolError(f"limits accepts {', '.join(_LIMIT_OPTIONS)}")
    kwargs["limits"] = Limits(**{_LIMIT_OPTIONS[k]: v for k, v in limits.items()})
    return kwargs


async def open_bridge(config_json: str, post: Post) -> Bridge:
    """Load the job modules, open the database as its sole owner and start the runtime.

    `config_json`: ``{"databasePath", "synchronous", "owner", "options": {...},
    "jobModules": [{"source", "module", "path"}]}``. Returns the bridge; its
    `info` says which jobs registered and which modules failed.
    """
    config = json.loads(config_json)
    modules = [
        JobModule(source=m["source"], module=m["module"], path=m.get("path"))
        for m in config.get("jobModules", [])
    ]
    jobs, job_errors = load_job_modules(modules)
    store = SqliteStore(
        config["databasePath"], synchronous=config.get("synchronous", "FULL"), exclusive=True
    )
    try:
        durably = create_durably(
            store, jobs, owner=config.get("owner"), **_runtime_options(config.get("options", {}))
        )
        bridge = Bridge(durably, post)
        await durably.migrate()
        # We hold the database's Web Lock, so every earlier lease holder is gone.
        reclaimed = durably.reclaim_leases()
    except BaseException:
        store.close()
        raise
    for error in job_errors:
        durably.report_error(DurablyError(error["message"]), "loading job modules")
    durably.start()
    bridge.flush_events()  # start-up's events reach the page before its first reply
    bridge.info = {
        "protocol": PROTOCOL_VERSION,
        "jobs": sorted(durably.jobs),
        "jobErrors": job_errors,
        "reclaimedRuns": reclaimed,
    }
    return bridge
