// The run statuses, defined once for the page side (client and runs UI); they mirror
// RunStatus in src/durably/models.py. A terminal status is final: the run will not run
// again unless it is retriggered (which creates a new run) or, if it failed, resumed.
// "waiting" (a sleep, an event, the network, a retry's delay) is in progress, not final.

/** Every run status, in the order a run moves through them. */
export const RUN_STATUSES = Object.freeze(["pending", "leased", "waiting", "completed", "failed", "cancelled"]);

/** Statuses a run never leaves. */
export const TERMINAL_STATUSES = Object.freeze(["completed", "failed", "cancelled"]);

/** Whether `status` is final. */
export function isTerminalStatus(status) {
  return TERMINAL_STATUSES.includes(status);
}
