"""The runtime's side of the page protocol, running inside the browser worker.

Every request gets exactly one response (``{"id", "ok", "result" | "error"}``), and
queued events are always posted before any later response, so the page sees them in
the order they happened. Nothing a page sends can stop the bridge.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from .. import Durably, Limits, create_durably
from ..durations import parse_duration_ms
from ..errors import DurablyError, ProtocolError, ValidationError
from ..jobs import JobDefinition
from ..models import Run
from ..store import SqliteStore
from ..store.sqlite import Synchronous
from .event_stream import EventBatch
from .loader import JobModule, load_job_modules
from .protocol import (
    MAX_SAFE_INTEGER,
    PROTOCOL_VERSION,
    decode_request,
    integer_in,
    invalid,
    to_camel,
)

Post = Callable[[str], None]
#: How long `close()` lets runs in flight finish before abandoning them.
CLOSE_TIMEOUT_S = 2.0
#: A handler gets the runtime and the request's decoded fields (see protocol.REQUEST_FIELDS).
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
_SYNCHRONOUS = ("FULL", "NORMAL")


def run_to_js(run: Run | None) -> dict[str, Any] | None:
    return None if run is None else to_camel(run.to_dict())


def _trigger_options(fields: Mapping[str, Any]) -> dict[str, Any]:
    options = fields["options"] or {}
    return {
        "idempotency_key": options.get("idempotencyKey"),
        "concurrency_key": options.get("concurrencyKey"),
        "coalesce": options.get("coalesce"),
        "labels": options.get("labels"),
        "delay": None if options.get("delayMs") is None else options["delayMs"] / 1000,
        "run_at": options.get("runAt"),
    }


def _seconds(timeout_ms: float | None) -> float | None:
    return None if timeout_ms is None else timeout_ms / 1000


async def _trigger(durably: Durably, fields: Mapping[str, Any]) -> Any:
    job = durably._require_job(fields["job"])
    run = await job.trigger(fields["input"], **_trigger_options(fields))
    return run_to_js(run)


async def _trigger_and_wait(durably: Durably, fields: Mapping[str, Any]) -> Any:
    job = durably._require_job(fields["job"])
    result = await job.trigger_and_wait(
        fields["input"], timeout=_seconds(fields["timeout"]), **_trigger_options(fields)
    )
    return to_camel(result.to_dict())


async def _wait_for_run(durably: Durably, fields: Mapping[str, Any]) -> Any:
    run = await durably.wait_for_run(fields["runId"], _seconds(fields["timeout"]))
    return run_to_js(run)


async def _get_run(durably: Durably, fields: Mapping[str, Any]) -> Any:
    return run_to_js(await durably.get_run(fields["runId"]))


def _filters(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": fields["status"], "job_name": fields["jobName"], "labels": fields["labels"]}


async def _get_runs(durably: Durably, fields: Mapping[str, Any]) -> Any:
    runs = await durably.get_runs(
        **_filters(fields), limit=fields["limit"], offset=fields["offset"]
    )
    return [run_to_js(run) for run in runs]


async def _count_runs(durably: Durably, fields: Mapping[str, Any]) -> Any:
    return await durably.count_runs(**_filters(fields))


async def _get_steps(durably: Durably, fields: Mapping[str, Any]) -> Any:
    steps = await durably.get_steps(fields["runId"])
    return [to_camel(step.to_dict()) for step in steps]


async def _get_logs(durably: Durably, fields: Mapping[str, Any]) -> Any:
    logs = await durably.get_logs(fields["runId"])
    return [to_camel(log.to_dict()) for log in logs]


async def _cancel(durably: Durably, fields: Mapping[str, Any]) -> Any:
    return run_to_js(await durably.cancel(fields["runId"]))


async def _retrigger(durably: Durably, fields: Mapping[str, Any]) -> Any:
    return run_to_js(await durably.retrigger(fields["runId"]))


async def _delete_run(durably: Durably, fields: Mapping[str, Any]) -> Any:
    await durably.delete_run(fields["runId"])
    return None


async def _send_event(durably: Durably, fields: Mapping[str, Any]) -> Any:
    await durably.send_event(fields["runId"], fields["name"], fields["payload"])
    return None


async def _resume(durably: Durably, fields: Mapping[str, Any]) -> Any:
    return run_to_js(await durably.resume(fields["runId"]))


async def _purge_runs(durably: Durably, fields: Mapping[str, Any]) -> Any:
    limit = fields["limit"]
    return await durably.purge_runs(fields["olderThan"], 500 if limit is None else limit)


async def _get_jobs(durably: Durably, fields: Mapping[str, Any]) -> Any:
    return sorted(durably.jobs)


async def _export_database(durably: Durably, fields: Mapping[str, Any]) -> Any:
    # A temporary file in the worker's in-memory filesystem, never OPFS: the worker
    # reads it, deletes it and transfers its bytes to the page.
    handle, path = tempfile.mkstemp(prefix="durably-export-", suffix=".sqlite3")
    os.close(handle)
    try:
        await durably.export_database(path)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return {"file": path, "bytes": os.path.getsize(path)}


async def _import_database(durably: Durably, fields: Mapping[str, Any]) -> Any:
    reclaimed = await durably.import_database(fields["file"])
    return {"runs": await durably.count_runs(), "reclaimedRuns": reclaimed}


async def _get_database_size(durably: Durably, fields: Mapping[str, Any]) -> Any:
    return {"databaseBytes": durably.database_bytes()}


#: One handler per request of protocol.REQUEST_FIELDS (a unit test checks they match).
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
    "sendEvent": _send_event,
    "resume": _resume,
    "deleteRun": _delete_run,
    "purgeRuns": _purge_runs,
    "getJobs": _get_jobs,
    "exportDatabase": _export_database,
    "importDatabase": _import_database,
    "getDatabaseSize": _get_database_size,
}


def error_payload(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ValidationError) and exc.fields:
        return {"name": type(exc).__name__, "message": str(exc), "fields": exc.fields}
    if isinstance(exc, DurablyError):
        return {"name": type(exc).__name__, "message": str(exc)}
    # An unexpected failure: keep its class name so it can be recognised on the page.
    return {"name": type(exc).__name__, "message": str(exc) or type(exc).__name__}


class Bridge:
    """Serves one page's requests against one `Durably` runtime.

    The worker hands every request to `handle` as JSON text and posts whatever the
    bridge emits through its `post` callable, as the JSON text it is. Events emitted in
    one turn of the event loop travel as one message (see event_stream.py): a job
    reporting progress in a tight loop costs one postMessage, not thousands.
    """

    def __init__(self, durably: Durably, post: Post) -> None:
        self.durably = durably
        self._post = post
        # Strong references to request tasks in flight (asyncio keeps only weak ones).
        self._tasks: set[asyncio.Task[None]] = set()
        self._events = EventBatch(post)
        self._unsubscribe = durably.on("*", self._events.add)
        #: What start-up found: registered jobs, job module errors, reclaimed runs.
        self.info: dict[str, Any] = {}

    def info_json(self) -> str:
        return json.dumps(self.info)

    def flush_events(self) -> None:
        """Post the queued events now, as one message."""
        self._events.flush()

    def handle(self, text: str) -> None:
        """Accept one request (JSON text); its response is posted when ready."""
        task = asyncio.ensure_future(self._respond(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(self, text: str) -> None:
        self._post(_encode(await self._answer(text)))

    async def call(self, text: str) -> str:
        """Answer one request (JSON text) and return the response as JSON text instead of
        posting it: for the worker, which finishes some requests itself (see worker.js)."""
        return _encode(await self._answer(text))

    async def _answer(self, text: str) -> dict[str, Any]:
        """The response to one request; queued events are posted before it is returned."""
        request_id: Any = None
        try:
            message = json.loads(text, parse_constant=_refuse_constant)
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
            result = await handler(self.durably, decode_request(message))
            self.flush_events()
            return {"id": request_id, "ok": True, "result": result}
        except json.JSONDecodeError as exc:
            error = {"name": "ProtocolError", "message": f"a request must be JSON: {exc}"}
        except Exception as exc:
            error = error_payload(exc)
        self.flush_events()
        return {"id": request_id, "ok": False, "error": error}

    # -- temporary files for the worker's database transfers (see worker.js) -------------
    # In Pyodide's in-memory filesystem, never in OPFS. The bytes cross as a Python
    # bytes object (the worker reads its buffer) and a JS Uint8Array (`to_bytes()`).

    def read_temporary_file(self, path: str) -> bytes:
        """The bytes of a file `exportDatabase` wrote; the file is deleted."""
        try:
            return Path(path).read_bytes()
        finally:
            Path(path).unlink(missing_ok=True)

    def write_temporary_file(self, data: Any) -> str:
        """Write `data` (a JS Uint8Array, or bytes) to a new temporary file for
        `importDatabase`; returns its path."""
        handle, path = tempfile.mkstemp(prefix="durably-import-", suffix=".sqlite3")
        with os.fdopen(handle, "wb") as file:
            file.write(data if isinstance(data, bytes) else data.to_bytes())
        return path

    def remove_temporary_file(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def set_online(self, online: bool) -> None:
        """The worker's network state (``navigator.onLine`` and its online/offline events):
        runs waiting for the network wake when it comes back, and an attempt that fails
        while offline is not counted."""
        try:
            self.durably.set_online(bool(online))
        except Exception as exc:
            self.durably.report_error(exc, "network state")

    async def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the runtime and close the database. Runs still in flight after
        `timeout` seconds are abandoned; the next owner resumes them."""
        await self.durably.close(timeout)
        self._unsubscribe()
        self.flush_events()


def _encode(response: dict[str, Any]) -> str:
    """A response as JSON text; a result JSON cannot hold becomes an error response."""
    try:
        return json.dumps(response, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:  # e.g. NaN in a stored value: report, don't hang
        error = {"name": "ProtocolError", "message": f"the result cannot be sent as JSON: {exc}"}
        return json.dumps({"id": response["id"], "ok": False, "error": error})


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"a request must be JSON: {name} is not a JSON number")


_positive_integer = integer_in(1)


def _runtime_option(name: str, value: Any) -> Any:
    path = f"options.{name}"
    if name == "preserveSteps":
        if not isinstance(value, bool):
            raise invalid(path, "true or false", value)
        return value
    if name == "retainRuns":
        try:
            ms = parse_duration_ms(value)
        except ValueError as exc:
            raise ValidationError(f"field {path!r}: {exc}", [path]) from None
        if ms > MAX_SAFE_INTEGER:
            raise invalid(path, "a duration shorter than 285,000 years", value)
        return value
    return _positive_integer(value, path)  # every other option counts milliseconds or runs


def _limits(value: Any) -> Limits:
    if not isinstance(value, dict):
        raise invalid("options.limits", f"an object with {', '.join(_LIMIT_OPTIONS)}", value)
    unknown = sorted(set(value) - set(_LIMIT_OPTIONS))
    if unknown:
        names = [f"options.limits.{key}" for key in unknown]
        raise ValidationError(
            f"unknown limit(s) {', '.join(unknown)}; limits accepts {', '.join(_LIMIT_OPTIONS)}",
            names,
        )
    return Limits(
        **{
            _LIMIT_OPTIONS[key]: _positive_integer(item, f"options.limits.{key}")
            for key, item in value.items()
            if item is not None
        }
    )


def _runtime_options(options: Any) -> dict[str, Any]:
    """create_durably's keyword arguments; ValidationError names a wrong option."""
    if not isinstance(options, dict):
        raise invalid("options", "an object", options)
    unknown = sorted(set(options) - set(_RUNTIME_OPTIONS) - {"limits"})
    if unknown:
        raise ValidationError(
            f"unknown runtime option(s): {', '.join(unknown)}; "
            f"known: {', '.join([*_RUNTIME_OPTIONS, 'limits'])}",
            [f"options.{name}" for name in unknown],
        )
    kwargs = {
        _RUNTIME_OPTIONS[key]: _runtime_option(key, value)
        for key, value in options.items()
        if key != "limits" and value is not None
    }
    if options.get("limits") is not None:
        kwargs["limits"] = _limits(options["limits"])
    return kwargs


def _create_durably(store: SqliteStore, jobs: Any, owner: Any, kwargs: dict[str, Any]) -> Durably:
    try:
        return create_durably(store, jobs, owner=owner, **kwargs)
    except ValidationError:
        raise
    except ValueError as exc:  # options that are valid alone but not together
        raise ValidationError(f"runtime options: {exc}", ["options"]) from exc


def _synchronous(value: Any) -> Synchronous:
    if value == "FULL":
        return "FULL"
    if value == "NORMAL":
        return "NORMAL"
    raise invalid("synchronous", " or ".join(map(repr, _SYNCHRONOUS)), value)


class PreparedRuntime:
    """What a tab can load before it owns the database: the job modules, imported.

    Made by `prepare_runtime` while the tab waits for the database's Web Lock, so a
    secondary tab is a warm standby: when the owner goes, only `open_bridge` is left.
    """

    def __init__(
        self, jobs: list[JobDefinition[Any, Any]], job_errors: list[dict[str, str]]
    ) -> None:
        self.jobs = jobs
        self.job_errors = job_errors


def _job_module_specs(config: Mapping[str, Any]) -> list[JobModule]:
    return [
        JobModule(source=m["source"], module=m["module"], path=m.get("path"))
        for m in config.get("jobModules", [])
    ]


def prepare_runtime(config_json: str) -> PreparedRuntime:
    """Import the job modules named in `config_json` (``{"jobModules": [...]}``).

    Touches no database, so any tab may call it before it holds the lock; importing this
    module has already imported pydantic and durably.
    """
    jobs, job_errors = load_job_modules(_job_module_specs(json.loads(config_json)))
    return PreparedRuntime(jobs, job_errors)


async def open_bridge(
    config_json: str, post: Post, prepared: PreparedRuntime | None = None
) -> Bridge:
    """Open the database as its sole owner and start the runtime.

    `config_json`: ``{"databasePath", "synchronous", "owner", "options": {...},
    "jobModules": [{"source", "module", "path"}]}``; `jobModules` is loaded here unless
    `prepared` (from `prepare_runtime`) already holds them. Returns the bridge; its
    `info` says which jobs registered and which modules failed.
    """
    config = json.loads(config_json)
    if prepared is None:
        prepared = PreparedRuntime(*load_job_modules(_job_module_specs(config)))
    jobs, job_errors = prepared.jobs, prepared.job_errors
    # Checked before anything is opened: a wrong option fails the boot at once.
    synchronous = _synchronous(config.get("synchronous") or "FULL")
    options = _runtime_options({} if config.get("options") is None else config["options"])
    store = SqliteStore(config["databasePath"], synchronous=synchronous, exclusive=True)
    try:
        durably = _create_durably(store, jobs, config.get("owner"), options)
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
