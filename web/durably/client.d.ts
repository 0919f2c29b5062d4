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
  /** Per-request timeout in ms (default 30000); waits use their own timeout plus this.
   * Relayed calls (in a secondary tab) use it too; a call that finds no owner tab waits up
   * to two minutes for one, then rejects with OwnerChangedError. */
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

/** Events the worker posts itself: start-up phases, and this tab's role changing. */
export type WorkerEventType = "boot" | "secondary" | "owner";

/** Events this tab's client emits itself: its role or its owner tab's responsiveness changed. */
export type TabEventType = "role" | "owner-unresponsive";

/** Runtime events (`DurablyEventType`, relayed to every tab), worker events
 * (`WorkerEventType`) and this tab's own (`TabEventType`). */
export interface DurablyEvent {
  type: DurablyEventType | WorkerEventType | TabEventType | (string & {});
  runId?: string | null;
  jobName?: string | null;
  /** When it happened: an ISO-8601 UTC string with milliseconds
   * ("2026-05-04T03:02:01.123Z"), the form of every record's dates (a run's `startedAt`,
   * `completedAt`, ...), so the two compare and sort alike. The runtime sends it as epoch
   * ms; the client converts it (and `leaseExpiresAt`, `until`) once, as it reads a batch. */
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

/** The names a rejected call's error can carry: the runtime's error classes
 * (src/durably/errors.py), then the page side's own. An unexpected Python failure keeps
 * its class name (e.g. "TypeError"). */
export type DurablyErrorName =
  | "DurablyError" | "NotFoundError" | "ValidationError" | "ConflictError"
  | "RunCancelledError" | "LeaseLostError" | "StalledRunError" | "StepTimeoutError"
  | "StrayCancellationError" | "SerializationError" | "StepNameError" | "RunFailedError"
  | "WaitTimeoutError" | "NotOwnerError" | "StorageError" | "StorageUnavailableError" | "SchemaVersionError"
  | "ProtocolError" | "JobModuleError"
  | "WorkerError" | "TimeoutError" | "UnsupportedError";

/** The Error a call rejects with, rebuilt from the worker's error response. */
export interface DurablyError extends Error {
  name: DurablyErrorName | (string & {});
  /** A ValidationError's offending fields, as dotted paths (e.g. `["options.delayMs"]`). */
  fields?: string[];
}

/** What `storageInfo()` reports: the origin's storage (from `navigator.storage`) and the
 * database's own size (its file plus write-ahead log in OPFS, from the worker). */
export interface StorageInfo {
  /** Whether the browser keeps this origin's storage under storage pressure. */
  persisted: boolean;
  /** Bytes this origin uses (all of its storage, not only the database); null if unknown. */
  usage: number | null;
  /** Bytes this origin may use; null if unknown. */
  quota: number | null;
  /** Bytes of the database file and its WAL; null in a secondary tab. */
  databaseBytes: number | null;
}

/** What `importDatabase` did. */
export interface ImportResult {
  /** Runs in the imported database. */
  runs: number;
  /** Runs that were leased in the imported file and are claimable again here. */
  reclaimedRuns: number;
}

/** This tab's role changed, or (in a secondary) the owner tab it talks to, or whether that
 * tab answers its heartbeats. */
export interface RoleEvent extends DurablyEvent {
  type: "role";
  role: Role;
  /** Always true in the owner; false while the owner tab misses its heartbeats. */
  ownerResponsive: boolean;
  /** The owner tab's id (this tab's own in the owner); null while no owner is known. */
  ownerTabId: string | null;
}

/** A secondary stopped hearing the owner tab's heartbeats (frozen, suspended or busy). */
export interface OwnerUnresponsiveEvent extends DurablyEvent {
  type: "owner-unresponsive";
  message: string;
}

export declare class DurablyClient {
  constructor(options?: DurablyOptions);
  readonly database: string;
  /** "owner": this tab runs the jobs; "secondary": its calls are relayed to the tab that does. */
  role: Role | null;
  /** This tab's id among the app's tabs (relayed requests and responses are addressed by it). */
  readonly tabId: string;
  /** A secondary: false while the owner tab misses its heartbeats. Always true in the owner. */
  ownerResponsive: boolean;
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
  on(type: "role", listener: (event: RoleEvent) => void): () => void;
  on(type: "owner-unresponsive", listener: (event: OwnerUnresponsiveEvent) => void): () => void;
  on(type: "run:wait", listener: (event: RunWaitEvent) => void): () => void;
  on(type: "run:wake", listener: (event: RunWakeEvent) => void): () => void;
  on(type: "step:retry", listener: (event: StepRetryEvent) => void): () => void;
  purgeRuns(options: { olderThan: Date | string | number; limit?: number }): Promise<number>;
  /** Ask the browser to keep this origin's storage (the database) under storage pressure:
   * `navigator.storage.persist()`, from the page. Resolves with whether it is persisted now. */
  requestPersistence(): Promise<boolean>;
  storageInfo(): Promise<StorageInfo>;
  /** The database file plus its WAL in OPFS, in bytes (NotOwnerError in a secondary tab). */
  getDatabaseSize(): Promise<{ databaseBytes: number }>;
  /** A consistent copy of the database file, taken while runs keep going. */
  exportDatabase(): Promise<Blob>;
  /** Replace the whole database with a backup from `exportDatabase`. The file is checked
   * first (SQLite header, integrity check, a durably schema no newer than this runtime):
   * ValidationError changes nothing. Otherwise runs in flight here are stopped (their work
   * since their last step belongs to the replaced database), the file replaces the
   * database in one transaction, and its leased runs resume from their last step. */
  importDatabase(file: Blob | ArrayBuffer | Uint8Array): Promise<ImportResult>;
  on(type: "runs:purge", listener: (event: RunsPurgeEvent) => void): () => void;
  on(type: DurablyEventType | "*" | (string & {}), listener: (event: DurablyEvent) => void): () => void;
  /** One run's events; ends after its terminal event, when the client closes, or when the worker fails. */
  subscribe(runId: string): AsyncIterableIterator<DurablyEvent>;
  /** Stops the runtime, closes the OPFS files, then releases the lock; rejects (after all
   *  three) if stopping the runtime failed. */
  close(): Promise<void>;
}

export declare function createDurably(options?: DurablyOptions): Promise<DurablyClient>;
