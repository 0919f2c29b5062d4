// The page-side client: starts the runtime's module worker and talks to it over a
// MessageChannel (see protocol.js). Every call returns a promise that settles exactly
// once: with the response, or with an error when the worker fails, is closed, or does
// not answer within the request timeout. Runtime calls made before the client is ready
// are sent once it is (or reject with the boot's error): `new DurablyClient(...)` can be
// used at once.
//
// Every tab can use the whole API: a secondary tab (another tab holds the database's
// lock) relays runtime calls to the owner tab and receives its runtime events (see
// relay.js). `role` says which this tab is; a `role` event reports every change.

import {
  CONNECT,
  PROTOCOL_VERSION,
  TERMINAL_RUN_EVENTS,
  WORKER_EVENTS,
  parseRuntimeMessage,
  toError,
} from "./protocol.js";
import { Relay, relayChannelName } from "./relay.js";
import { TERMINAL_STATUSES } from "./statuses.js";

const CLIENT_OPTIONS = ["database", "jobs", "workerUrl", "vendorUrl", "synchronous", "requestTimeoutMs", "bootTimeoutMs", "onBoot", "relay", "BroadcastChannel", "snapshot"];

function namedError(name, message) {
  return Object.assign(new Error(message), { name });
}

/**
 * Start the runtime for `database` and resolve once it is usable: as the owner when
 * this tab got the database's lock (Python booted, jobs registered, database open),
 * or as a secondary when another tab owns it.
 * @param {import("./client").DurablyOptions} options
 * @returns {Promise<DurablyClient>}
 */
export async function createDurably(options) {
  const client = new DurablyClient(options);
  await client.ready;
  return client;
}

export class DurablyClient {
  /** @param {import("./client").DurablyOptions} options */
  constructor(options = {}) {
    const { database = "default", jobs = [], synchronous = "FULL", onBoot } = options;
    this.database = database;
    /** "owner" | "secondary" | null until ready */
    this.role = null;
    /** Names of the registered jobs (owner only). */
    this.jobs = [];
    /** Job modules that failed to load: [{module, message}]. */
    this.jobErrors = [];
    this.closed = false;
    this._requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this._nextId = 1;
    this._pending = new Map();
    this._listeners = new Map();
    /** The error that ended the worker (set by _fail); every subscription ends on it. */
    this._failure = null;
    /** Wakes each subscribe() iterator waiting for events, so it can see the client end. */
    this._subscriptionWakers = new Set();
    const runtimeOptions = Object.fromEntries(
      Object.entries(options).filter(([key]) => !CLIENT_OPTIONS.includes(key)),
    );
    /** This tab's id among the tabs of the app (relayed requests name their sender by it). */
    this.tabId = globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    /** A secondary: false while the owner tab misses its heartbeats (frozen or busy). */
    this.ownerResponsive = true;
    this._relay = this._createRelay(options);
    // An owner page that unloads tells the other tabs at once, so they wait for the next
    // owner instead of reporting it as not responding.
    /** Aborted when the client ends: removes every listener it added to the page. */
    this._pageListeners = new AbortController();
    globalThis.addEventListener?.(
      "pagehide",
      (event) => !event.persisted && this._relay?.announceGone(),
      { signal: this._pageListeners.signal },
    );
    if (onBoot) this.on(WORKER_EVENTS.BOOT, (event) => onBoot(event.phase, event));
    this.on(WORKER_EVENTS.OWNER, (event) => {
      this.jobs = event.jobs ?? [];
      this.jobErrors = event.jobErrors ?? [];
      this._setRole("owner");
    });
    this.on(WORKER_EVENTS.SECONDARY, () => this._setRole("secondary"));

    // The default is spelled `new Worker(new URL("./worker.js", import.meta.url), ...)` so
    // that bundlers (Vite, webpack, Parcel) find the worker and emit it with its imports.
    this._worker = options.workerUrl
      ? new Worker(options.workerUrl, { type: "module", name: `durably:${database}` })
      : new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: `durably:${database}` });
    this._worker.onerror = (event) => {
      event.preventDefault?.();
      this._fail(namedError("WorkerError", `the durably worker failed: ${event.message || "it could not be loaded"}`));
    };
    this._worker.onmessageerror = () => this._emit({ type: "worker:error", error: "a message from the worker could not be read", context: "messageerror" });
    const channel = new MessageChannel();
    this._port = channel.port1;
    this._port.onmessage = (event) => this._onMessage(event.data);
    this._worker.postMessage({ type: CONNECT, protocol: PROTOCOL_VERSION }, [channel.port2]);
    this._relayNetwork();

    const base = globalThis.document?.baseURI ?? globalThis.location?.href;
    const config = {
      database,
      synchronous,
      jobs: jobs.map((job) => (typeof job === "string" ? new URL(job, base).href : { ...job, wheel: new URL(job.wheel, base).href })),
      vendorUrl: new URL(options.vendorUrl ?? "../vendor", options.vendorUrl ? base : import.meta.url).href.replace(/\/$/, ""),
      options: runtimeOptions,
      snapshot: options.snapshot !== false,
    };
    /** Resolves with this client once the role is known (and, as owner, the runtime is up). */
    this.ready = this._request("init", { config }, options.bootTimeoutMs ?? 120_000).then((info) => {
      if (info.role === "owner") {
        this.jobs = info.jobs ?? [];
        this.jobErrors = info.jobErrors ?? [];
      }
      this._setRole(info.role);
      return this;
    });
    this.ready.catch(() => this._terminate());
  }

  // -- runs ---------------------------------------------------------------------------

  /**
   * Queue a run of `job`; resolves with the run (its `disposition` says how it was obtained).
   * `options.delayMs` or `options.runAt` (a Date or ISO string) delays it.
   */
  trigger(job, input, options = {}) {
    return this._call("trigger", { job, input, options });
  }

  /** Trigger and wait for the output; rejects with RunFailedError, CancelledError or WaitTimeoutError. */
  triggerAndWait(job, input, { timeout, ...options } = {}) {
    return this._call("triggerAndWait", { job, input, options, timeout }, this._waitBudget(timeout));
  }

  /** Wait for a run to finish; resolves with the run. */
  waitForRun(runId, { timeout } = {}) {
    return this._call("waitForRun", { runId, timeout }, this._waitBudget(timeout));
  }

  getRun(runId) {
    return this._call("getRun", { runId });
  }

  /** Runs matching every filter, newest first: {status, jobName, labels, limit, offset}. */
  getRuns(filter = {}) {
    return this._call("getRuns", filter);
  }

  countRuns(filter = {}) {
    return this._call("countRuns", filter);
  }

  getSteps(runId) {
    return this._call("getSteps", { runId });
  }

  getLogs(runId) {
    return this._call("getLogs", { runId });
  }

  getJobs() {
    return this._call("getJobs", {});
  }

  cancel(runId) {
    return this._call("cancel", { runId });
  }

  retrigger(runId) {
    return this._call("retrigger", { runId });
  }

  deleteRun(runId) {
    return this._call("deleteRun", { runId });
  }

  /** Send the event `name` with a JSON `payload` to a run; its `waitForEvent(name)` takes it. */
  sendEvent(runId, name, payload = null) {
    return this._call("sendEvent", { runId, name, payload });
  }

  /** Continue a failed run after its last completed step; resolves with the run (pending again). */
  resume(runId) {
    return this._call("resume", { runId });
  }

  /** Delete up to `limit` finished runs completed before `olderThan` (Date, ISO string or ms). */
  purgeRuns({ olderThan, limit } = {}) {
    const when = olderThan instanceof Date ? olderThan.toISOString() : olderThan;
    return this._call("purgeRuns", { olderThan: when, limit });
  }

  // -- the database: storage and backups ----------------------------------------------

  /** Ask the browser to keep this origin's storage (the database) under storage pressure.
   * navigator.storage.persist() must be called from the page, not the worker. Resolves
   * with whether the storage is persisted now (the browser may decline). */
  async requestPersistence() {
    const storage = globalThis.navigator?.storage;
    if (typeof storage?.persist !== "function") return false;
    return (await storage.persist()) === true || (await storage.persisted?.()) === true;
  }

  /** {persisted, usage, quota} of this origin (navigator.storage) and the database's
   * databaseBytes (its file plus WAL in OPFS, reported by the worker; null in a secondary tab). */
  async storageInfo() {
    const storage = globalThis.navigator?.storage;
    const databaseBytes = this.getDatabaseSize().then(
      (size) => size.databaseBytes,
      (error) => {
        if (error.name === "NotOwnerError") return null;
        throw error;
      },
    );
    const [persisted, estimate, bytes] = await Promise.all([
      storage?.persisted?.() ?? false,
      storage?.estimate?.() ?? {},
      databaseBytes,
    ]);
    return { persisted: persisted === true, usage: estimate.usage ?? null, quota: estimate.quota ?? null, databaseBytes: bytes };
  }

  /** {databaseBytes}: the database file plus its WAL in OPFS (owner only). */
  getDatabaseSize() {
    return this._call("getDatabaseSize", {});
  }

  /** A consistent copy of the database file (SQLite's online backup, taken while runs
   * keep going), as a Blob. */
  async exportDatabase() {
    const buffer = await this._call("exportDatabase", {}, this._transferBudget());
    return new Blob([buffer], { type: "application/vnd.sqlite3" });
  }

  /** Replace the whole database with a backup (a Blob, File, ArrayBuffer or Uint8Array).
   * Rejects with ValidationError, changing nothing, unless it is an intact durably
   * database no newer than this runtime. Runs in flight here are stopped first; the
   * imported database's leased runs resume from their last completed step. */
  async importDatabase(file) {
    const data = file instanceof ArrayBuffer || ArrayBuffer.isView(file) ? file : await file?.arrayBuffer?.();
    if (data === undefined) throw namedError("ValidationError", "importDatabase needs the database file: a Blob, File, ArrayBuffer or Uint8Array");
    return this._call("importDatabase", { data }, this._transferBudget());
  }

  _transferBudget() {
    // A large database takes a while to copy and check: more than an ordinary request.
    return Math.max(this._requestTimeoutMs, 300_000);
  }

  // -- events -------------------------------------------------------------------------

  /** Listen to one event type, or "*" for every event; returns a function that unsubscribes. */
  on(type, listener) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(listener);
    return () => this._listeners.get(type)?.delete(listener);
  }

  /** Iterate over one run's events; ends after its terminal event (at once if it is
   * finished), and when the client closes or its worker fails. */
  async *subscribe(runId) {
    const queue = [];
    let wake = null;
    const wakeUp = () => wake?.();
    const off = this.on("*", (event) => {
      if (event.runId !== runId) return;
      queue.push(event);
      wakeUp();
    });
    this._subscriptionWakers.add(wakeUp);
    try {
      let run;
      try {
        run = await this.getRun(runId);
      } catch (error) {
        if (this._ended()) return; // closed or failed while asking: the stream just ends
        throw error;
      }
      if (!run) throw namedError("NotFoundError", `run ${runId} not found`);
      const finished = TERMINAL_STATUSES.includes(run.status);
      while (true) {
        while (queue.length) {
          const event = queue.shift();
          yield event;
          if (TERMINAL_RUN_EVENTS.includes(event.type)) return;
        }
        if (finished || this._ended()) return;
        await new Promise((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      off();
      this._subscriptionWakers.delete(wakeUp);
    }
  }

  // -- lifecycle ----------------------------------------------------------------------

  /** Stop the runtime, release the database and the lock, and end the worker. */
  async close() {
    if (this.closed) return;
    this._relay?.close(); // as the owner: tells the other tabs at once
    try {
      // A failed worker answers nothing more: terminating it is all that is left.
      if (!this._failure) await this._request("close", {}, 10_000);
    } finally {
      this._terminate();
    }
  }

  // -- plumbing -----------------------------------------------------------------------

  _waitBudget(timeout) {
    // The runtime enforces `timeout`; the extra margin only catches a worker that went silent.
    return timeout == null ? 0 : Number(timeout) + this._requestTimeoutMs;
  }

  /** A runtime call: sent once the client is ready (to this tab's worker as the owner,
   * relayed to the owner tab otherwise), rejected with the boot's error if it failed. */
  _call(type, fields, timeoutMs = this._requestTimeoutMs) {
    return this.ready.then(() => (this._relay ? this._relay.request(type, fields, timeoutMs) : this._request(type, fields, timeoutMs)));
  }

  /** The relay to the other tabs of this database, or null where BroadcastChannel is missing. */
  _createRelay(options) {
    const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel;
    if (typeof Channel !== "function") return null;
    return new Relay({
      database: this.database,
      tabId: this.tabId,
      channel: new Channel(relayChannelName(this.database)),
      local: (type, fields, timeoutMs) => this._request(type, fields, timeoutMs),
      deliver: (event) => this._emit(event),
      onOwnerState: ({ responsive, jobs }) => {
        if (this.role !== "secondary") return;
        if (jobs) this.jobs = jobs;
        const wasResponsive = this.ownerResponsive;
        this.ownerResponsive = responsive;
        if (wasResponsive && !responsive) this._emit({ type: "owner-unresponsive", message: "the tab running jobs is not responding" });
        this._emitRole();
      },
      ...options.relay,
    });
  }

  /** Record this tab's role, tell the relay, and emit `role` when it changed. */
  _setRole(role) {
    if (this.closed) return;
    const changed = role !== this.role;
    this.role = role;
    if (role === "owner") {
      this.ownerResponsive = true;
      if (this._relay) this._relay.jobs = this.jobs;
    }
    this._relay?.setRole(role);
    if (changed) this._emitRole();
  }

  _emitRole() {
    this._emit({ type: "role", role: this.role, ownerResponsive: this.role === "owner" || this.ownerResponsive, ownerTabId: this._relay?.ownerTabId ?? null });
  }

  /** Whether no more events will come: closed, or the worker failed. */
  _ended() {
    return this.closed || this._failure !== null;
  }

  _endSubscriptions() {
    for (const wake of this._subscriptionWakers) wake();
  }

  _request(type, fields, timeoutMs = this._requestTimeoutMs) {
    if (this.closed) return Promise.reject(namedError("DurablyError", "the client is closed"));
    if (this._failure) return Promise.reject(this._failure); // a failed worker answers nothing more
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this._pending.delete(id);
              reject(namedError("TimeoutError", `${type}: no answer from the durably worker within ${timeoutMs} ms`));
            }, timeoutMs)
          : null;
      this._pending.set(id, { resolve, reject, timer });
      try {
        this._port.postMessage({ ...fields, id, type });
      } catch (error) {
        this._pending.delete(id);
        clearTimeout(timer);
        reject(namedError("ValidationError", `${type}: the request cannot be sent to the worker: ${error.message}`));
      }
    });
  }

  /**
   * Tell the worker the page's network state now and on each online/offline event of the
   * page's window: a dedicated worker's own navigator.onLine and events do not follow it
   * everywhere (not in Playwright's offline mode), and runs waiting for the network
   * wake only when the runtime learns that it is back.
   */
  _relayNetwork() {
    const page = globalThis;
    if (typeof page.addEventListener !== "function" || typeof page.navigator?.onLine !== "boolean") return;
    const tell = () => this._request("network", { online: page.navigator.onLine }).catch(() => {});
    tell();
    page.addEventListener("online", tell, { signal: this._pageListeners.signal });
    page.addEventListener("offline", tell, { signal: this._pageListeners.signal });
  }

  _onMessage(data) {
    // The runtime's messages are JSON text (parsed here, once); the worker's own, objects.
    const message = typeof data === "string" ? parseRuntimeMessage(data) : data;
    if (message?.type === "events" && Array.isArray(message.events)) {
      // The owner passes its runtime's events on to the other tabs, as the same text.
      if (typeof data === "string" && this.role === "owner") this._relay?.publish(data);
      // One message per turn of the worker's event loop; listeners still get one call
      // per event, in order.
      for (const event of message.events) this._emit(event);
      return;
    }
    const pending = this._pending.get(message?.id);
    if (!pending) {
      if (message?.ok === false) this._emit({ type: "worker:error", error: `${message.error?.name}: ${message.error?.message}`, context: "unmatched response" });
      return;
    }
    this._pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(toError(message.error));
  }

  _emit(event) {
    for (const key of [event.type, "*"]) {
      for (const listener of this._listeners.get(key) ?? []) {
        try {
          listener(event);
        } catch (error) {
          console.error(`durably: a listener for ${event.type} threw`, error);
        }
      }
    }
  }

  _fail(error) {
    this._failure = error;
    this._emit({ type: "worker:error", error: `${error.name}: ${error.message}`, context: "worker" });
    this._rejectAll(error);
    this._endSubscriptions();
  }

  _rejectAll(error) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this._pending.clear();
  }

  _terminate() {
    if (this.closed) return;
    this.closed = true;
    this._pageListeners.abort();
    this._relay?.close();
    this._rejectAll(namedError("DurablyError", "the client is closed"));
    this._worker.terminate();
    this._port.close();
    this._endSubscriptions();
  }
}
