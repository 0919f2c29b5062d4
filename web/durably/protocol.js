// The message protocol between a page (client.js) and the runtime's worker (worker.js).
//
// The page creates the worker and a MessageChannel, and sends one port with
// {type: CONNECT, protocol}. Everything else travels over that port:
//   request   page → worker  {id, type, ...fields}
//   response  worker → page  {id, ok: true, result} | {id, ok: false, error: {name, message}}
//   event     worker → page  {type: "event", event: {type, ...}}
//   events    worker → page  {type: "events", events: [{type, ...}, ...]}  (several, in order)
// Every request gets exactly one response. A message that is not a valid request
// gets an error response (with id null when it had no usable id).

export const PROTOCOL_VERSION = 1;

/** The first message, on the worker itself, carrying the port. */
export const CONNECT = "durably:connect";

/** Requests the worker answers itself. */
export const WORKER_REQUESTS = Object.freeze(["init", "close", "ping"]);

/** Requests the Python runtime answers (see src/durably/browser/bridge.py). */
export const RUNTIME_REQUESTS = Object.freeze([
  "trigger",
  "triggerAndWait",
  "waitForRun",
  "getRun",
  "getRuns",
  "countRuns",
  "getSteps",
  "getLogs",
  "cancel",
  "retrigger",
  "deleteRun",
  "sendEvent",
  "resume",
  "purgeRuns",
  "getJobs",
]);

/** Requests that only read; everything else writes. */
export const READ_REQUESTS = Object.freeze([
  "waitForRun",
  "getRun",
  "getRuns",
  "countRuns",
  "getSteps",
  "getLogs",
  "getJobs",
]);

/** Events the worker itself emits, besides the runtime's noun:verb events. */
export const WORKER_EVENTS = Object.freeze({
  BOOT: "boot", // {phase: "waiting-for-lock" | "loading-python" | "installing-packages" | "loading-jobs" | "opening-database" | "ready"}
  SECONDARY: "secondary", // {message}: another tab owns the database
  OWNER: "owner", // this tab became the owner (after having been secondary)
});

/** Run events after which a run emits nothing more. */
export const TERMINAL_RUN_EVENTS = Object.freeze([
  "run:complete",
  "run:fail",
  "run:cancel",
  "run:delete",
]);

/** Database names double as OPFS file names and lock names. */
export const DATABASE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The Web Lock held by the tab that owns `database`. */
export function lockName(database) {
  return `durably:${database}`;
}

/** Turn a protocol error payload back into an Error whose name is the runtime's class. */
export function toError(payload) {
  const error = new Error(payload?.message ?? "unknown error");
  error.name = payload?.name ?? "Error";
  return error;
}
