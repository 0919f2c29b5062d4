// The runtime's module worker: takes the database's Web Lock, boots Pyodide from our
// own origin, loads the page's job modules, opens SQLite in OPFS and serves requests.
//
// Ownership: exactly one tab holds the lock `durably:<database>` and opens the
// database. Every tab prepares what needs no lock (Python, the wheels, its job modules
// imported) while it asks for the lock; only the database waits for ownership. Another
// tab's worker is secondary: a warm standby that never opens the database, rejects
// every request with NotOwnerError and waits in line for the lock; when it gets it,
// it opens the database and becomes the owner. The lock is held until close() or until the page
// goes away, and proves every earlier owner is gone, so leased runs are reclaimed
// at once at start-up. An owner whose boot fails closes what it opened and releases
// the lock at once, so the next tab in line takes over instead of waiting on a dead owner.
// The OPFS handles are always closed before the lock is released (also when closing
// the runtime fails): the next owner must find the files free.
//
// createWorkerHost holds the request handling, ownership and shutdown and receives
// every browser API it uses (locks, boot, ...), so tests drive it without a worker
// (tests/js). The lines at the bottom wire it to this worker when loaded as one.

import { openRuntime, prepareRuntime } from "./pyodide-boot.js";
import {
  CONNECT,
  DATABASE_NAME,
  PROTOCOL_VERSION,
  RUNTIME_REQUESTS,
  WORKER_EVENTS,
  WORKER_REQUESTS,
  lockName,
} from "./protocol.js";

/**
 * What an owner has opened. Each field is set the moment the resource is held and
 * cleared when it is released, so a failed boot or a close releases exactly what exists.
 * @typedef {object} Runtime
 * @property {{handle(text: string): void, close(): Promise<void>, destroy?(): void, info_json(): string} | null} bridge
 *   The PyProxy of durably.browser.bridge.Bridge.
 * @property {{close(): void} | null} mount  The OPFS mount (its sync access handles).
 */

/**
 * @typedef {object} HostServices
 * @property {{request: Function}} locks  navigator.locks.
 * @property {string} location  The worker's URL: same-origin checks resolve against it.
 * @property {() => string | null} missingCapability  Names what the context lacks, or null.
 * @property {(config: object, io: {emit: Function, post: Function}) => Promise<any>} [prepare]
 *   The lock-free part of the boot, started at init in every tab (default: nothing).
 * @property {(config: object, runtime: Runtime, io: {emit: Function, post: Function}, prepared: any) => Promise<{jobs: string[], jobErrors: object[]}>} boot
 *   The owner's part: opens the database, given what `prepare` resolved to.
 * @property {() => void} endWorker  Ends this worker (self.close()).
 */

const RELEASED = "this tab released the database lock so another tab can take over";

/** @param {string} name @param {string} message */
function namedError(name, message) {
  return Object.assign(new Error(message), { name });
}

function errorName(error) {
  return typeof error?.name === "string" && error.name !== "Error" ? error.name : "DurablyError";
}

function describe(error) {
  return error?.message ?? String(error);
}

/**
 * One worker's side of the protocol for one page.
 * @param {HostServices} services
 */
export function createWorkerHost({ locks, location, missingCapability, prepare = async () => null, boot, endWorker }) {
  const origin = new URL(location).origin;
  /** @type {MessagePort | null} */
  let port = null;
  // new → waiting-for-lock (init accepted) → secondary | booting → ready | failed;
  // any of them → closing → closed. Only "new" accepts init.
  /** @type {"new" | "waiting-for-lock" | "secondary" | "booting" | "ready" | "closing" | "closed" | "failed"} */
  let state = "new";
  let config = null;
  let failure = null; // the Error that stopped boot, reported to every later request
  /** @type {Runtime} */
  const runtime = { bridge: null, mount: null };
  let releaseLock = () => {}; // set once, by the one accepted init
  /** Settles once the role is known (or init failed): never rejects. */
  let roleKnown = null;
  let prepared = null; // Promise of the lock-free part's result, started by init in every tab
  // ms from init to each boot phase, the lock granted and the lock-free part done,
  // reported with "ready" (the benchmarks read it).
  const timings = { initAt: 0, lockAcquiredMs: null, preparedMs: null, phases: {}, details: {} };
  let ready = null; // Promise resolved when the owner is ready (or rejected if boot fails)
  let closing = null; // the one close in progress or done
  // The page's latest network state (a "network" request), or null if it sent none; the
  // runtime gets it as soon as it is ready, after the worker's own navigator.onLine.
  let pageOnline = null;

  function post(message, transfer = []) {
    port?.postMessage(message, transfer);
  }

  function emit(type, fields = {}) {
    post({ type: "events", events: [{ type, timestamp: new Date().toISOString(), ...fields }] });
  }

  function reply(id, result) {
    post({ id, ok: true, result: result ?? null });
  }

  function replyError(id, name, message) {
    post({ id, ok: false, error: { name, message } });
  }

  /** The worker's first message carries the port; later ones are ignored. */
  function connect(message, messagePort) {
    if (message?.type !== CONNECT || port !== null || !messagePort) return;
    port = messagePort;
    port.onmessage = (e) => onRequest(e.data);
    if (message.protocol !== PROTOCOL_VERSION) {
      emit("worker:error", { error: `protocol ${message.protocol} is not supported (this worker speaks ${PROTOCOL_VERSION})`, context: "connect" });
    }
  }

  // -- requests -----------------------------------------------------------------------

  async function onRequest(message) {
    const id = typeof message?.id === "string" || Number.isInteger(message?.id) ? message.id : null;
    if (id === null || typeof message !== "object" || typeof message.type !== "string") {
      replyError(id, "ProtocolError", "a request must be an object with an id (string or integer) and a string type");
      return;
    }
    try {
      switch (message.type) {
        case "init":
          reply(id, await init(message.config));
          return;
        case "ping":
          reply(id, { state, protocol: PROTOCOL_VERSION, prepared: timings.preparedMs !== null });
          return;
        case "close":
          try {
            await close();
            reply(id, null);
          } finally {
            endWorker();
          }
          return;
        case "network":
          reply(id, followPageNetwork(message.online));
          return;
      }
      if (DATABASE_TRANSFERS.includes(message.type)) {
        const { response, transfer } = await transferDatabase(await whenOwner(), message);
        post(response, transfer);
        return;
      }
      if (!Object.hasOwn(RUNTIME_REQUESTS, message.type)) {
        const known = [...Object.keys(WORKER_REQUESTS), ...Object.keys(RUNTIME_REQUESTS)];
        replyError(id, "ProtocolError", `unknown request type ${JSON.stringify(message.type)}; known: ${known.join(", ")}`);
        return;
      }
      const bridge = await whenOwner();
      bridge.handle(encodeRequest(message));
    } catch (error) {
      replyError(id, errorName(error), error?.message ?? String(error));
    }
  }

  /** The bridge, once this tab owns the database and is ready; a request sent while
   * the worker waits for the lock or boots waits here rather than failing. */
  async function whenOwner() {
    if (state === "new") throw namedError("ProtocolError", "send init before any other request");
    await roleKnown;
    if (state === "booting") await ready; // rejects with the boot's failure
    if (state === "failed") throw failure;
    if (state === "secondary") {
      throw namedError("NotOwnerError", `another tab owns the job runtime for database "${config.database}"; this tab is secondary until that tab closes`);
    }
    if (state !== "ready") throw namedError("DurablyError", "the runtime is closed");
    return runtime.bridge;
  }

  /** The page's network state: a dedicated worker's own navigator.onLine and
   * online/offline events do not always follow the page's (Playwright's offline mode). */
  function followPageNetwork(online) {
    if (typeof online !== "boolean") throw namedError("ValidationError", `network: field 'online' must be true or false, not ${JSON.stringify(online)}`);
    pageOnline = online;
    if (state === "ready") runtime.bridge?.set_online?.(online);
    return null;
  }

  // -- start-up -----------------------------------------------------------------------

  async function init(options) {
    if (state !== "new") {
      throw namedError("ProtocolError", `init was already accepted (this worker is ${state}); a worker serves one database for its lifetime: create another client for another database`);
    }
    if (typeof options?.database !== "string" || !DATABASE_NAME.test(options.database)) {
      throw namedError("ValidationError", `database must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${JSON.stringify(options?.database)}`);
    }
    // Python and the wheels are code, like job modules: only from this page's origin.
    if (options.vendorUrl != null && new URL(String(options.vendorUrl), location).origin !== origin) {
      throw namedError("ValidationError", `vendorUrl ${options.vendorUrl} is not on this page's origin; the runtime loads Python only from its own origin`);
    }
    config = options;
    const missing = missingCapability();
    if (missing) {
      state = "failed";
      failure = namedError("UnsupportedError", `this browser context lacks ${missing}, which durably needs to keep the database in OPFS`);
      roleKnown = Promise.resolve(null);
      throw failure;
    }
    // Leave "new" before the first await, so a second init is refused however fast it comes.
    state = "waiting-for-lock";
    emit(WORKER_EVENTS.BOOT, { phase: "waiting-for-lock" });
    // Started before the lock is asked for: it opens nothing, so it overlaps the wait
    // (and, in a secondary, makes it a warm standby). Its failure fails the boot that uses it.
    timings.initAt = performance.now();
    prepared = Promise.resolve().then(() => prepare(config, { emit: emitOnceBooting, post }));
    prepared.then(() => (timings.preparedMs = performance.now() - timings.initAt), () => {});
    roleKnown = requestOwnership().catch((error) => {
      if (state === "waiting-for-lock") state = "failed";
      failure = error;
      return null;
    });
    const role = await roleKnown;
    if (role === null) throw failure;
    if (role === "secondary") {
      state = "secondary";
      const message = `another tab owns the job runtime for database "${config.database}"; this tab will take over when it closes`;
      console.warn(`durably: ${message}`);
      emit(WORKER_EVENTS.SECONDARY, { message });
      return { role, jobs: [], jobErrors: [] };
    }
    return { role, ...(await ready) };
  }

  /** Resolve "owner" or "secondary"; a secondary keeps waiting in line and boots when it gets the lock. */
  function requestOwnership() {
    const held = new Promise((resolve) => (releaseLock = resolve));
    return new Promise((resolveRole, reject) => {
      locks
        .request(lockName(config.database), { ifAvailable: true }, (lock) => {
          if (lock && state !== "waiting-for-lock") {
            // Closed while waiting: give the lock back at once.
            reject(namedError("DurablyError", "the runtime was closed before it got the database lock"));
            return null;
          }
          if (lock) {
            startBoot();
            resolveRole("owner");
            return held;
          }
          resolveRole("secondary");
          locks.request(lockName(config.database), () => {
            if (state === "closing" || state === "closed") return null;
            startBoot();
            ready.then((info) => emit(WORKER_EVENTS.OWNER, { message: "this tab now owns the job runtime", jobs: info.jobs, jobErrors: info.jobErrors }), () => {});
            return held;
          });
          return null;
        })
        .catch(reject);
    });
  }

  // A tab prepares silently until it owns the lock: a secondary's page shows it as
  // secondary, not as booting. The latest phase held back is told when it boots.
  let heldBackPhase = null;
  function emitOnceBooting(type, fields) {
    if (type === WORKER_EVENTS.BOOT) {
      const { phase, ...details } = fields; // e.g. whether a Python snapshot was restored
      timings.phases[phase] = performance.now() - timings.initAt;
      Object.assign(timings.details, details);
    }
    if (state === "booting") emit(type, fields);
    else if (type === WORKER_EVENTS.BOOT) heldBackPhase = fields;
    else emit(type, fields);
  }

  function startBoot() {
    state = "booting";
    timings.lockAcquiredMs = performance.now() - timings.initAt;
    if (heldBackPhase && timings.preparedMs === null) emit(WORKER_EVENTS.BOOT, heldBackPhase);
    ready = prepared.then((result) => boot(config, runtime, { emit: emitOnceBooting, post }, result)).then(
      (info) => {
        state = "ready";
        if (pageOnline !== null) runtime.bridge?.set_online?.(pageOnline);
        const { lockAcquiredMs, preparedMs, phases, details } = timings;
        const readyMs = performance.now() - timings.initAt;
        emit(WORKER_EVENTS.BOOT, { phase: "ready", timings: { ...phases, ...details, lockAcquiredMs, preparedMs, readyMs } });
        return info;
      },
      async (error) => {
        failure = await releaseAfterFailedBoot(error);
        if (state === "booting") state = "failed";
        emit("worker:error", { error: `${failure.name}: ${failure.message}`, context: "boot" });
        throw failure;
      },
    );
    ready.catch(() => {}); // reported through init's reply or the event above
  }

  /** Close what the boot opened, then give up the lock: a dead owner must not keep
   * every other tab secondary. Returns the error to report, saying so. */
  async function releaseAfterFailedBoot(error) {
    let note = RELEASED;
    try {
      await releaseRuntime();
    } catch (cleanup) {
      note += ` (closing what it had opened failed too: ${describe(cleanup)})`;
    } finally {
      releaseLock();
    }
    return namedError(errorName(error), `${describe(error)}; ${note}`);
  }

  // -- shutdown -----------------------------------------------------------------------

  /** Stop the runtime, close the OPFS handles, then release the lock — each step runs
   * even when an earlier one fails, and a failure is reported once all have run. */
  function close() {
    closing ??= (async () => {
      const wasBooting = state === "booting";
      state = "closing";
      try {
        if (wasBooting) await ready.catch(() => {}); // a failed boot released everything itself
        await releaseRuntime();
      } catch (error) {
        throw namedError("DurablyError", `closing the runtime failed: ${describe(error)}; the OPFS files were closed and the database lock released anyway`);
      } finally {
        state = "closed";
        releaseLock();
      }
    })();
    return closing;
  }

  /** Close the bridge (the database) and then the OPFS mount, whatever fails. */
  async function releaseRuntime() {
    const { bridge, mount } = runtime;
    runtime.bridge = null;
    runtime.mount = null;
    const failures = [];
    if (bridge) {
      try {
        await bridge.close();
      } catch (error) {
        failures.push(`the runtime: ${describe(error)}`);
      }
      try {
        bridge.destroy?.();
      } catch (error) {
        failures.push(`the bridge proxy: ${describe(error)}`);
      }
    }
    if (mount) {
      try {
        mount.close();
      } catch (error) {
        failures.push(`the OPFS files: ${describe(error)}`);
      }
    }
    if (failures.length) throw new Error(failures.join("; "));
  }

  return { connect, onRequest, close };
}

// -- the whole database, as bytes ------------------------------------------------------

/** Requests whose bytes the worker carries itself: the page sends and receives the
 * database file, the Python runtime reads and writes a temporary file in Pyodide's
 * in-memory filesystem (never OPFS), named in its own request of the same type. */
export const DATABASE_TRANSFERS = Object.freeze(["exportDatabase", "importDatabase"]);

/**
 * Answer exportDatabase (result: the file's ArrayBuffer, transferred, not copied) or
 * importDatabase {data: ArrayBuffer | Uint8Array} (result: {runs, reclaimedRuns}).
 * Returns the response and what to transfer with it; the temporary file is always gone.
 * @param {{call(text: string): Promise<string>, read_temporary_file(path: string): any,
 *   write_temporary_file(data: Uint8Array): string, remove_temporary_file(path: string): void}} bridge
 * @param {{id: string | number, type: string, data?: unknown}} message
 * @returns {Promise<{response: object, transfer: ArrayBuffer[]}>}
 */
export async function transferDatabase(bridge, message) {
  const { id, type } = message;
  const unknown = Object.keys(message).filter((key) => !["id", "type", ...(type === "importDatabase" ? ["data"] : [])].includes(key));
  if (unknown.length) {
    return { response: { id, ok: false, error: { name: "ValidationError", message: `${type}: unknown field(s) ${unknown.join(", ")}`, fields: unknown } }, transfer: [] };
  }
  if (type === "exportDatabase") {
    const answer = JSON.parse(await bridge.call(encodeRequest({ id, type })));
    if (!answer.ok) return { response: answer, transfer: [] };
    const bytes = takeBytes(bridge.read_temporary_file(answer.result.file));
    return { response: { id, ok: true, result: bytes.buffer }, transfer: [bytes.buffer] };
  }
  const { data } = message;
  if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
    return { response: { id, ok: false, error: { name: "ValidationError", message: "importDatabase: field 'data' must be the database file's bytes (an ArrayBuffer or a Uint8Array)", fields: ["data"] } }, transfer: [] };
  }
  const view = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const file = bridge.write_temporary_file(view);
  try {
    return { response: JSON.parse(await bridge.call(encodeRequest({ id, type, file }))), transfer: [] };
  } finally {
    bridge.remove_temporary_file(file);
  }
}

/** The bytes of a Python bytes object (a PyProxy) in a fresh ArrayBuffer; frees the proxy. */
function takeBytes(proxy) {
  if (proxy instanceof Uint8Array) return proxy.slice(); // a test's stand-in
  try {
    const buffer = proxy.getBuffer("u8");
    try {
      return buffer.data.slice();
    } finally {
      buffer.release();
    }
  } finally {
    proxy.destroy();
  }
}

/** JSON text for Python; refuses values JSON would silently change (NaN, BigInt, ...). */
export function encodeRequest(message) {
  try {
    return JSON.stringify(message, (key, value) => {
      if (typeof value === "number" && !Number.isFinite(value)) {
        throw new TypeError(`${key || "a value"} is ${value}, which JSON cannot represent`);
      }
      if (typeof value === "bigint") {
        throw new TypeError(`${key || "a value"} is a BigInt, which JSON cannot represent; send a number or a string`);
      }
      if (value === undefined && key !== "") return null;
      return value;
    });
  } catch (error) {
    const reason = error instanceof RangeError ? "it is too deeply nested or circular" : error.message;
    throw namedError("ValidationError", `${message.type}: the request cannot be sent as JSON: ${reason}`);
  }
}

/** What this browser context lacks for durably, or null. */
function missingCapability() {
  if (!self.isSecureContext) return "a secure context (serve the page from https:// or http://localhost)";
  if (!navigator.locks) return "Web Locks (navigator.locks)";
  if (!navigator.storage?.getDirectory) return "the Origin Private File System (navigator.storage.getDirectory)";
  if (typeof FileSystemSyncAccessHandle === "undefined") return "OPFS sync access handles (FileSystemSyncAccessHandle)";
  return null;
}

// Loaded as a worker (not imported by a test): serve the page that started us.
if (typeof WorkerGlobalScope !== "undefined" && globalThis instanceof WorkerGlobalScope) {
  const host = createWorkerHost({
    locks: navigator.locks,
    location: self.location.href,
    missingCapability,
    prepare: prepareRuntime,
    boot: openRuntime,
    endWorker: () => self.close(),
  });
  self.onmessage = (event) => host.connect(event.data, event.ports[0]);
}
