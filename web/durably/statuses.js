// The run statuses for the page side (client and runs UI), from the protocol definition
// generated from RunStatus in src/durably/models.py. A terminal status is final: the run
// will not run again unless it is retriggered (which creates a new run) or, if it failed,
// resumed. "waiting" (a sleep, an event, the network, a retry's delay) is in progress.

import { TERMINAL_STATUSES } from "./protocol-definition.js";

export { RUN_STATUSES, TERMINAL_STATUSES } from "./protocol-definition.js";

/** Whether `status` is final. */
export function isTerminalStatus(status) {
  return TERMINAL_STATUSES.includes(status);
}
