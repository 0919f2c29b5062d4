// How the runs UI words values for people: statuses, ids, times, durations, progress,
// JSON and errors. Pure functions of their arguments (and the clock or locale where
// named), returning plain strings that the views set as text.

const MAX_JSON_CHARS = 4000;

/** How each status is shown: "leased" reads as "running" to people. */
export const STATUS_TEXT = {
  pending: "pending", leased: "running", waiting: "waiting", completed: "completed", failed: "failed", cancelled: "cancelled",
};

/** Hours and minutes of an ISO time ("10:42"), with the date when it is not today. */
function clockTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

/**
 * A run's status for people. A waiting run says what it waits for: "waiting until 10:42",
 * "waiting for approval", "waiting for the network", "retrying upload at 10:42"; a delayed
 * pending run "due at 10:42".
 */
export function statusText(run) {
  const wait = run.status === "waiting" ? run.waitingFor : null;
  if (wait) {
    const at = wait.until ? clockTime(wait.until) : "";
    if (wait.kind === "sleep") return at ? `waiting until ${at}` : "waiting";
    if (wait.kind === "event") return `waiting for ${wait.name}${at ? ` (until ${at})` : ""}`;
    if (wait.kind === "online") return "waiting for the network";
    if (wait.kind === "retry") return at ? `retrying ${wait.name} at ${at}` : `retrying ${wait.name}`;
  }
  if (run.status === "pending" && run.runAt && Date.parse(run.runAt) > Date.now()) {
    return `due at ${clockTime(run.runAt)}`;
  }
  return STATUS_TEXT[run.status] ?? run.status;
}

/** The first 8 characters of a run id: enough to tell runs apart on screen. */
export function shortId(id) {
  return String(id).slice(0, 8);
}

/** "Name: message" of an error ("message" for a plain Error). */
export function describeError(error) {
  if (!error) return "unknown error";
  const name = error.name && error.name !== "Error" ? `${error.name}: ` : "";
  return `${name}${error.message ?? String(error)}`;
}

/** "420 ms", "4.2 s", "3 m 05 s", "2 h 07 m". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} m`;
}

/** Local time of day, with the date when it is not today. */
export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

/** Milliseconds since the epoch of an ISO-8601 time; null when missing or invalid. */
export function timeMs(iso) {
  const value = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(value) ? null : value;
}

/** Milliseconds a run has been running (leased) or ran (finished); null before it started. */
export function elapsedMs(run, now) {
  const start = timeMs(run.startedAt);
  if (start === null) return null;
  const end = run.status === "leased" ? now : timeMs(run.completedAt) ?? timeMs(run.updatedAt);
  return end === null ? null : Math.max(0, end - start);
}

/** JSON for display: on one line when short, indented when not, cut to a readable size. */
export function formatJson(value) {
  let text;
  try {
    text = typeof value === "string" ? value : JSON.stringify(value);
    if (text && text.length > 80 && typeof value !== "string") text = JSON.stringify(value, null, 2);
  } catch {
    text = String(value);
  }
  text ??= String(value);
  return text.length > MAX_JSON_CHARS ? `${text.slice(0, MAX_JSON_CHARS)}… (${text.length} characters)` : text;
}

/** "3/10 · message", "3" without a total, "" without progress. */
export function progressText(progress) {
  if (!progress) return "";
  const count = progress.total == null ? `${progress.current}` : `${progress.current}/${progress.total}`;
  return progress.message ? `${count} · ${progress.message}` : count;
}
