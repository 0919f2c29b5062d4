// Types for client.js: the page-side API of the durably browser runtime.

export type RunStatus = "pending" | "leased" | "waiting" | "completed" | "failed" | "cancelled";

/** What a waiting run waits for. `until`: when it becomes claimable again (ISO-8601 UTC), or null. */
export interface WaitingFor {
  kind: "sleep" | "event" | "online" | "retry";
  /** The wait's name (a retry's: its step's). */
  name: string;
  until: string | null;
}
export type Disposition = "created" | "idempotent" | "coalesced";
export type Role = "owner" | "secondary";
export type BootPhase =
  | "waiting-for-lock"
  | "loading-python"
  | "installing-packages"
  | "loading-jobs"
  | "opening-database"
  | "ready";

/** A job module: the same-origin URL of a .py file, or a wheel and the module defining its jobs. */
export type JobModule = string | { wheel: string; module: string };

export interface Limits {
  maxInputBytes?: number;
  maxLabels?: number;
  maxLabelLength?: number;
  maxKeyLength?: number;
}

export interface DurablyOptions {
  /** Database name: OPFS file `<database>.sqlite3`, Web Lock `durably:<database>`. Default "default". */
  database?: string;
  /** Job modules to load; every job they define is registered. */
  jobs?: JobModule[];
  /** `FULL` (default) survives an OS crash; `NORMAL` survives a tab crash and is faster. */
  synchronous?: "FULL" | "NORMAL";
  pollingIntervalMs?: number;
  leaseMs?: number;
  leaseRenewIntervalMs?: number;
  maxConcurrentRuns?: number;
  /** A run whose tab (or worker) stopped this many times in a row before it finished a step is failed. Default 3. */
  maxStalledAttempts?: number;
  preserveSteps?: boolean;
  /** Purge finished runs older than this during idle time: "30d", "12h", "90m". */
  retainRuns?: string;
  limits?: Limits;
  /** Where worker.js is served. Default: next to client.js. */
  workerUrl?: string | URL;
  /** Where the vendored Pyodide and wheels are served. Default: `../vendor` from client.js. */
  vendorUrl?: string | URL;
  /** Per-request timeout in ms (default 30000); waits use their own timeout plus this. */
  requestTimeoutMs?: number;
  /** Timeout for start-up in ms (default 120000). */
  bootTimeoutMs?: number;
  /** Restore Python from a memory snapshot cached after an earlier visit (default true). */
  snapshot?: boolean;
  /** Called as start-up progresses. */
  onBoot?: (phase: BootPhase, event: DurablyEvent) => void;
}

export interface Progress {
  current: number;
  total: number | null;
  message: string | null;
}

export interface Run<I = unknown, O = unknown> {
  id: string;
  jobName: string;
  input: I;
  status: RunStatus;
  idempotencyKey: string | null;
  concurrencyKey: string | null;
  labels: Record<string, string>;
  currentStepIndex: number;
  completedStepCount: number;
  progress: Progress | null;
  output: O | null;
  error: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
  leaseGeneration: number;
  startedAt: string | null;
  completedAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** A waiting run: when it becomes claimable again (null: when its event or the network comes). */
  wakeAt: string | null;
  /** A waiting run: what it waits for; null otherwise. */
  waitingFor: WaitingFor | null;
  /** A delayed run: not started before this time. */
  runAt: string | null;
  /** Set on runs returned by trigger and retrigger. */
  disposition: Disposition | null;
}

export interface StepRecord {
  runId: string;
  name: string;
  index: number;
  status: "completed" | "failed" | "cancelled" | "waiting";
  output: unknown;
  error: string | null;
  startedAt: string;
  completedAt: string | null;
  /** A step, or one of the waits that share its namespace. */
  kind: "step" | "sleep" | "event" | "online";
  /** Attempts made (a step with retries), and the error of the last failed one. */
  attempts: number;
  lastError: string | null;
  /** A wait in progress: its deadline. */
  wakeAt: string | null;
}

export interface LogRecord {
  id: number;
  runId: string;
  stepName: string | null;
  level: "info" | "warn" | "error";
  message: string;
  data: unknown;
  createdAt: string;
}

export interface RunResult<O = unknown> {
  id: string;
  output: O;
  disposition: Disposition;
  labels: Record<string, string>;
}

export interface TriggerOptions {
  idempotencyKey?: string;
  concurrencyKey?: string;
  coalesce?: "skip";
  labels?: Record<string, string>;
  /** Delay the run: pending, but not started before this many milliseconds. */
  delayMs?: number;
  /** Delay the run until this time (not with `delayMs`). */
  runAt?: Date | string | number;
}

export interface RunFilter {
  status?: RunStatus | RunStatus[];
  jobName?: string | string[];
  labels?: Record<string, string>;
  limit?: number;
  offset?: number;
}

/** The runtime's event types. A run's terminal event (`run:complete`, `run:fail`,
 * `run:cancel`, `run:delete`) is the last event of that run; a step in flight when the
 * run stops gets its `step:cancel` before it. */
export type DurablyEventType =
  | "run:trigger" | "run:coalesced" | "run:leased" | "run:lease-renewed" | "run:progress"
  | "run:complete" | "run:fail" | "run:cancel" | "run:delete" | "runs:purge"
  | "run:wait" | "run:wake" | "run:resume"
  | "step:start" | "step:complete" | "step:fail" | "step:cancel" | "step:retry"
  | "log:write" | "worker:error";

/** Runtime events (`DurablyEventType`) and worker events (`boot`, `secondary`, `owner`). */
export interface DurablyEvent {
  type: DurablyEventType | "boot" | "secondary" | "owner" | (string & {});
  runId?: string | null;
  jobName?: string | null;
  timestamp?: string;
  [field: string]: unknown;
}

/** A run suspended on a wait: it holds no lease or worker slot until `until` (or its event,
 * or the network). */
export interface RunWaitEvent extends DurablyEvent {
  type: "run:wait";
  runId: string;
  kind: WaitingFor["kind"];
  name: string;
  until: string | null;
}

/** A waiting run was claimed again; it replays to its wait and goes on. */
export interface RunWakeEvent extends DurablyEvent {
  type: "run:wake";
  runId: string;
  kind: WaitingFor["kind"];
  name: string;
}

/** An attempt of a step with retries failed; the next starts after `nextDelayMs` (or, when
 * `offline`, once the network is back: that attempt was not counted). */
export interface StepRetryEvent extends DurablyEvent {
  type: "step:retry";
  runId: string;
  stepName: string;
  stepIndex: number;
  attempt: number;
  error: string;
  nextDelayMs: number | null;
  offline: boolean;
}

/** Finished runs deleted in bulk by `purgeRuns` or `retainRuns`: one event per purge that
 * deleted any (a purge emits no `run:delete`). */
export interface RunsPurgeEvent extends DurablyEvent {
  type: "runs:purge";
  runId: null;
  jobName: null;
  /** The ids of the deleted runs. */
  runIds: string[];
  count: number;
}

export declare class DurablyClient {
  constructor(options?: DurablyOptions);
  readonly database: string;
  role: Role | null;
  jobs: string[];
  jobErrors: { module: string; message: string }[];
  closed: boolean;
  /** Resolves once the role is known (as owner: runtime up). Calls made earlier wait for it,
   *  or reject with its error. */
  readonly ready: Promise<DurablyClient>;
  trigger<I = unknown>(job: string, input: I, options?: TriggerOptions): Promise<Run<I>>;
  triggerAndWait<I = unknown, O = unknown>(
    job: string,
    input: I,
    options?: TriggerOptions & { timeout?: number },
  ): Promise<RunResult<O>>;
  waitForRun(runId: string, options?: { timeout?: number }): Promise<Run>;
  getRun(runId: string): Promise<Run | null>;
  getRuns(filter?: RunFilter): Promise<Run[]>;
  countRuns(filter?: Omit<RunFilter, "limit" | "offset">): Promise<number>;
  getSteps(runId: string): Promise<StepRecord[]>;
  getLogs(runId: string): Promise<LogRecord[]>;
  getJobs(): Promise<string[]>;
  cancel(runId: string): Promise<Run>;
  retrigger(runId: string): Promise<Run>;
  deleteRun(runId: string): Promise<null>;
  /** Send an event to a run (kept in its mailbox until its `wait_for_event(name)` takes it).
   * NotFoundError for an unknown run, ConflictError for a finished one, ValidationError for non-JSON. */
  sendEvent(runId: string, name: string, payload?: unknown): Promise<null>;
  /** Continue a failed run after its last completed step; ConflictError for a run that did not fail. */
  resume(runId: string): Promise<Run>;
  on(type: "run:wait", listener: (event: RunWaitEvent) => void): () => void;
  on(type: "run:wake", listener: (event: RunWakeEvent) => void): () => void;
  on(type: "step:retry", listener: (event: StepRetryEvent) => void): () => void;
  purgeRuns(options: { olderThan: Date | string | number; limit?: number }): Promise<number>;
  on(type: "runs:purge", listener: (event: RunsPurgeEvent) => void): () => void;
  on(type: DurablyEventType | "*" | (string & {}), listener: (event: DurablyEvent) => void): () => void;
  /** One run's events; ends after its terminal event, when the client closes, or when the worker fails. */
  subscribe(runId: string): AsyncIterableIterator<DurablyEvent>;
  /** Stops the runtime, closes the OPFS files, then releases the lock; rejects (after all
   *  three) if stopping the runtime failed. */
  close(): Promise<void>;
}

export declare function createDurably(options?: DurablyOptions): Promise<DurablyClient>;
