// Types for statuses.js: the run statuses shared by the client and the runs UI.

import type { RunStatus } from "./client";

/** Every run status, in the order a run moves through them. */
export declare const RUN_STATUSES: readonly RunStatus[];
/** Statuses a run never leaves: completed, failed, cancelled. */
export declare const TERMINAL_STATUSES: readonly RunStatus[];
/** Whether `status` is final. */
export declare function isTerminalStatus(status: string): boolean;
