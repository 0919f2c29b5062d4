// Types for client.js: the page-side API of the durably browser runtime.

export type RunStatus = "pending" | "leased" | "completed" | "failed" | "cancelled";
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
  /** Set on runs returned by trigger and retrigger. */
  disposition: Disposition | null;
}

export interface StepRecord {
  runId: string;
  name: string;
  index: number;
  status: "completed" | "failed" | "cancelled";
  output: unknown;
  error: string | null;
  startedAt: string;
  completedAt: string | null;
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
}

export interface RunFilter {
  status?: RunStatus | RunStatus[];
  jobName?: string | string[];
  labels?: Record<string, string>;
  limit?: number;
  offset?: number;
}

/** Runtime events (`run:*`, `step:*`, `log:write`, `worker:error`) and worker events (`boot`, `secondary`, `owner`). */
export interface DurablyEvent {
  type: string;
  runId?: string | null;
  jobName?: string | null;
  timestamp?: string;
  [field: string]: unknown;
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
  purgeRuns(options: { olderThan: Date | string | number; limit?: number }): Promise<number>;
  on(type: string, listener: (event: DurablyEvent) => void): () => void;
  /** One run's events; ends after its terminal event, when the client closes, or when the worker fails. */
  subscribe(runId: string): AsyncIterableIterator<DurablyEvent>;
  /** Stops the runtime, closes the OPFS files, then releases the lock; rejects (after all
   *  three) if stopping the runtime failed. */
  close(): Promise<void>;
}

export declare function createDurably(options?: DurablyOptions): Promise<DurablyClient>;
