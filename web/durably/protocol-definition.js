// The message protocol's definition, shared by the page (client.js, protocol.js) and the
// worker. GENERATED from the Python side (src/durably/browser/protocol.py, events.py,
// errors.py, models.py) by `python scripts/gen_protocol.py` (run by `make setup`): do
// not edit; change the Python side and regenerate. A unit test fails when it is stale.
//
// A request's fields: {name: {type, required, fields?}}, where type is one of string,
// integer, number, boolean, date (ISO-8601 or epoch ms), string-or-strings, string-map,
// object (with `fields` when they are known) or json (any JSON value: user data).

/** Freeze a value and everything in it. */
function deepFreeze(value) {
  if (value && typeof value === "object") {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

/** The version a page and a worker must share. */
export const PROTOCOL_VERSION = 2;

/** Requests the Python runtime answers (bridge.py HANDLERS), with their fields. */
export const RUNTIME_REQUESTS = deepFreeze({
  trigger: {
    job: { type: "string", required: true },
    input: { type: "json", required: false },
    options: {
      type: "object",
      required: false,
      fields: {
        idempotencyKey: { type: "string", required: false },
        concurrencyKey: { type: "string", required: false },
        coalesce: { type: "string", required: false },
        labels: { type: "string-map", required: false },
        delayMs: { type: "integer", required: false },
        runAt: { type: "date", required: false },
      },
    },
  },
  triggerAndWait: {
    job: { type: "string", required: true },
    input: { type: "json", required: false },
    options: {
      type: "object",
      required: false,
      fields: {
        idempotencyKey: { type: "string", required: false },
        concurrencyKey: { type: "string", required: false },
        coalesce: { type: "string", required: false },
        labels: { type: "string-map", required: false },
        delayMs: { type: "integer", required: false },
        runAt: { type: "date", required: false },
      },
    },
    timeout: { type: "number", required: false },
  },
  waitForRun: {
    runId: { type: "string", required: true },
    timeout: { type: "number", required: false },
  },
  getRun: { runId: { type: "string", required: true } },
  getRuns: {
    status: { type: "string-or-strings", required: false },
    jobName: { type: "string-or-strings", required: false },
    labels: { type: "string-map", required: false },
    limit: { type: "integer", required: false },
    offset: { type: "integer", required: false },
  },
  countRuns: {
    status: { type: "string-or-strings", required: false },
    jobName: { type: "string-or-strings", required: false },
    labels: { type: "string-map", required: false },
  },
  getSteps: { runId: { type: "string", required: true } },
  getLogs: { runId: { type: "string", required: true } },
  cancel: { runId: { type: "string", required: true } },
  retrigger: { runId: { type: "string", required: true } },
  deleteRun: { runId: { type: "string", required: true } },
  sendEvent: {
    runId: { type: "string", required: true },
    name: { type: "string", required: true },
    payload: { type: "json", required: false },
  },
  resume: { runId: { type: "string", required: true } },
  purgeRuns: {
    olderThan: { type: "date", required: true },
    limit: { type: "integer", required: false },
  },
  getJobs: {},
  exportDatabase: {},
  importDatabase: { file: { type: "string", required: true } },
  getDatabaseSize: {},
});

/** Requests the worker answers itself (worker.js), with their fields. */
export const WORKER_REQUESTS = deepFreeze({
  init: { config: { type: "object", required: true } },
  ping: {},
  close: {},
  network: { online: { type: "boolean", required: true } },
});

/** The runtime's noun:verb event types (events.py). */
export const EVENT_TYPES = deepFreeze([
  "run:trigger",
  "run:coalesced",
  "run:leased",
  "run:lease-renewed",
  "run:progress",
  "run:complete",
  "run:fail",
  "run:cancel",
  "run:delete",
  "run:wait",
  "run:wake",
  "run:resume",
  "runs:purge",
  "step:start",
  "step:complete",
  "step:fail",
  "step:cancel",
  "step:retry",
  "log:write",
  "worker:error",
]);

/** Event keys the runtime sends as epoch ms; the page's events hold ISO-8601 strings. */
export const EVENT_DATE_FIELDS = deepFreeze(["timestamp", "leaseExpiresAt", "until"]);

/** Events the worker posts itself: boot {phase}, secondary {message}, owner {jobs}. */
export const WORKER_EVENT_TYPES = deepFreeze(["boot", "secondary", "owner"]);

/** Run events after which a run emits nothing more. */
export const TERMINAL_RUN_EVENTS = deepFreeze(["run:complete", "run:fail", "run:cancel", "run:delete"]);

/** Names of the errors a call can reject with (errors.py, then the page's own). */
export const ERROR_NAMES = deepFreeze([
  "DurablyError",
  "NotFoundError",
  "ValidationError",
  "ConflictError",
  "RunCancelledError",
  "LeaseLostError",
  "StalledRunError",
  "StepTimeoutError",
  "StrayCancellationError",
  "SerializationError",
  "StepNameError",
  "RunFailedError",
  "WaitTimeoutError",
  "NotOwnerError",
  "StorageError",
  "StorageUnavailableError",
  "SchemaVersionError",
  "ProtocolError",
  "JobModuleError",
  "WorkerError",
  "TimeoutError",
  "UnsupportedError",
]);

/** Every run status, in the order a run moves through them. */
export const RUN_STATUSES = deepFreeze(["pending", "leased", "waiting", "completed", "failed", "cancelled"]);

/** Statuses a run never leaves. */
export const TERMINAL_STATUSES = deepFreeze(["completed", "failed", "cancelled"]);
