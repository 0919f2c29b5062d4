// The runtime's module worker: takes the database's Web Lock, boots Pyodide from our
// own origin, loads the page's job modules, opens SQLite in OPFS and serves requests.
//
// Ownership: exactly one tab holds the lock `durably:<database>` and opens the
// database. Another tab's worker is secondary: it never opens the database, rejects
// every request with NotOwnerError and waits in line for the lock; when it gets it,
// it boots and becomes the owner. The lock is held until close() or until the page
// goes away, and proves every earlier owner is gone, so leased runs are reclaimed
// at once at start-up.

import { mountOpfs } from "./opfs-fs.js";
import { bootPyodide } from "./pyodide-boot.js";
import {
  CONNECT,
  DATABASE_NAME,
  PROTOCOL_VERSION,
  RUNTIME_REQUESTS,
  WORKER_EVENTS,
  lockName,
} from "./protocol.js";

const JOB_DIR = "/home/pyodide/durably_jobs";

/** @type {MessagePort | null} */
let port = null;
/** @type {"new" | "secondary" | "booting" | "ready" | "closing" | "closed" | "failed"} */
let state = "new";
let config = null;
let failure = null; // the Error that stopped boot, reported to every later request
let pyodide = null;
let bridge = null; // PyProxy of durably.browser.bridge.Bridge
let mount = null;
let releaseLock = () => {};
let ready = null; // Promise resolved when the owner is ready (or rejected if boot fails)

self.onmessage = (event) => {
  const message = event.data;
  if (message?.type !== CONNECT || port !== null || !event.ports[0]) return;
  port = event.ports[0];
  port.onmessage = (e) => onRequest(e.data);
  if (message.protocol !== PROTOCOL_VERSION) {
    post({ type: "event", event: { type: "worker:error", error: `protocol ${message.protocol} is not supported (this worker speaks ${PROTOCOL_VERSION})`, context: "connect" } });
  }
};

function post(message) {
  port?.postMessage(message);
}

function emit(type, fields = {}) {
  post({ type: "event", event: { type, timestamp: new Date().toISOString(), ...fields } });
}

function reply(id, result) {
  post({ id, ok: true, result: result ?? null });
}

function replyError(id, name, message) {
  post({ id, ok: false, error: { name, message } });
}

/** A Python exception as the page should see it: its class name (ValidationError, ...) and
 * its own message, not Pyodide's PythonError with the whole traceback. */
function fromPython(error) {
  if (error?.constructor?.name !== "PythonError" || typeof error.type !== "string") return error;
  const marker = `${error.type}: `;
  const lines = error.message.trimEnd().split("\n");
  const at = lines.findLastIndex((line) => line.startsWith(marker) || line.includes(`.${marker}`));
  if (at < 0) return error;
  const message = lines.slice(at).join("\n").slice(lines[at].indexOf(marker) + marker.length);
  return Object.assign(new Error(message), { name: error.type });
}

function errorName(error) {
  return typeof error?.name === "string" && error.name !== "Error" ? error.name : "DurablyError";
}

// -- requests -------------------------------------------------------------------------

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
        reply(id, { state, protocol: PROTOCOL_VERSION });
        return;
      case "close":
        await close();
        reply(id, null);
        self.close();
        return;
    }
    if (!RUNTIME_REQUESTS.includes(message.type)) {
      replyError(id, "ProtocolError", `unknown request type ${JSON.stringify(message.type)}; known: ${["init", "ping", "close", ...RUNTIME_REQUESTS].join(", ")}`);
      return;
    }
    await whenOwner();
    bridge.handle(encodeRequest(message));
  } catch (error) {
    replyError(id, errorName(error), error?.message ?? String(error));
  }
}

/** JSON text for Python; refuses values JSON would silently change (NaN, BigInt, ...). */
function encodeRequest(message) {
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
    throw Object.assign(new Error(`${message.type}: the request cannot be sent as JSON: ${reason}`), { name: "ValidationError" });
  }
}

async function whenOwner() {
  if (state === "failed") throw failure;
  if (state === "secondary") {
    throw Object.assign(new Error(`another tab owns the job runtime for database "${config.database}"; this tab is secondary until that tab closes`), { name: "NotOwnerError" });
  }
  if (state === "closing" || state === "closed") {
    throw Object.assign(new Error("the runtime is closed"), { name: "DurablyError" });
  }
  if (state !== "ready") await ready;
}

// -- start-up -------------------------------------------------------------------------

function missingCapability() {
  if (!self.isSecureContext) return "a secure context (serve the page from https:// or http://localhost)";
  if (!navigator.locks) return "Web Locks (navigator.locks)";
  if (!navigator.storage?.getDirectory) return "the Origin Private File System (navigator.storage.getDirectory)";
  if (typeof FileSystemSyncAccessHandle === "undefined") return "OPFS sync access handles (FileSystemSyncAccessHandle)";
  return null;
}

async function init(options) {
  if (state !== "new") throw Object.assign(new Error("init was already called"), { name: "ProtocolError" });
  if (typeof options?.database !== "string" || !DATABASE_NAME.test(options.database)) {
    throw Object.assign(new Error(`database must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${JSON.stringify(options?.database)}`), { name: "ValidationError" });
  }
  // Python and the wheels are code, like job modules: only from this page's origin.
  if (options.vendorUrl != null && new URL(String(options.vendorUrl), self.location.href).origin !== self.location.origin) {
    throw Object.assign(new Error(`vendorUrl ${options.vendorUrl} is not on this page's origin; the runtime loads Python only from its own origin`), { name: "ValidationError" });
  }
  config = options;
  const missing = missingCapability();
  if (missing) {
    state = "failed";
    failure = Object.assign(new Error(`this browser context lacks ${missing}, which durably needs to keep the database in OPFS`), { name: "UnsupportedError" });
    throw failure;
  }
  emit(WORKER_EVENTS.BOOT, { phase: "waiting-for-lock" });
  const role = await requestOwnership();
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
    navigator.locks
      .request(lockName(config.database), { ifAvailable: true }, (lock) => {
        if (lock) {
          startBoot();
          resolveRole("owner");
          return held;
        }
        resolveRole("secondary");
        navigator.locks.request(lockName(config.database), () => {
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

function startBoot() {
  state = "booting";
  ready = boot().then(
    (info) => {
      state = "ready";
      emit(WORKER_EVENTS.BOOT, { phase: "ready" });
      return info;
    },
    (raised) => {
      const error = fromPython(raised);
      state = "failed";
      failure = error;
      emit("worker:error", { error: `${errorName(error)}: ${error.message}`, context: "boot" });
      throw error;
    },
  );
  ready.catch(() => {}); // reported through init's reply or the event above
}

async function boot() {
  ({ pyodide } = await bootPyodide({
    vendorUrl: config.vendorUrl,
    onPhase: (phase) => emit(WORKER_EVENTS.BOOT, { phase }),
  }));
  emit(WORKER_EVENTS.BOOT, { phase: "loading-jobs" });
  const { modules, errors: fetchErrors } = await fetchJobModules(config.jobs ?? []);
  emit(WORKER_EVENTS.BOOT, { phase: "opening-database" });
  mount = await mountOpfs(pyodide, { directoryName: "durably", databaseName: `${config.database}.sqlite3` });
  const { open_bridge } = pyodide.pyimport("durably.browser.bridge");
  const runtimeConfig = {
    databasePath: mount.databasePath,
    synchronous: config.synchronous ?? "FULL",
    owner: `tab-${crypto.randomUUID().slice(0, 8)}`,
    options: config.options ?? {},
    jobModules: modules,
  };
  try {
    bridge = await open_bridge(JSON.stringify(runtimeConfig), (text) => port?.postMessage(JSON.parse(text)));
  } catch (error) {
    throw fromPythonError(error);
  } finally {
    open_bridge.destroy?.();
  }
  const info = JSON.parse(bridge.info_json());
  followNetwork();
  for (const error of fetchErrors) emit("worker:error", { error: error.message, context: "loading job modules" });
  return { ...info, jobErrors: [...fetchErrors, ...info.jobErrors] };
}

/**
 * Tell the runtime whether the network is up (navigator.onLine, then the worker's own
 * online/offline events): runs waiting for it wake when it returns, and a step attempt
 * that fails while offline is not counted against its retries.
 */
function followNetwork() {
  const tell = () => bridge?.set_online(self.navigator.onLine);
  tell();
  self.addEventListener("online", tell);
  self.addEventListener("offline", tell);
}

/**
 * A Python exception raised while opening the database (e.g. SchemaVersionError) reaches
 * JS as a PythonError whose message is the whole traceback: name it after the Python
 * class and keep the exception's own message (the traceback's last line).
 */
function fromPythonError(error) {
  if (error?.name !== "PythonError" || typeof error.type !== "string") return error;
  const last = String(error.message).trimEnd().split("\n").at(-1);
  const message = last.slice(last.indexOf(": ") + 2) || last;
  return Object.assign(new Error(message), { name: error.type });
}

/** Fetch the page's job modules (same origin only) into Pyodide: .py files or wheels. */
async function fetchJobModules(jobs) {
  const modules = [];
  const errors = [];
  // Not on sys.path: the loader imports these files as the package durably_jobs, so a
  // job file can never shadow the standard library, pydantic or durably.
  pyodide.FS.mkdirTree(JOB_DIR);
  for (const entry of jobs) {
    const spec = typeof entry === "string" ? { url: entry } : entry;
    const source = String(spec?.url ?? spec?.wheel ?? "");
    try {
      const url = new URL(source, self.location.href);
      if (url.origin !== self.location.origin) {
        throw new Error(`job module ${source} is not on this page's origin; only same-origin job modules are loaded`);
      }
      if (url.pathname.endsWith(".py")) {
        const response = await fetch(url);
        if (!response.ok) throw new Error(`job module ${source} could not be fetched: HTTP ${response.status}`);
        const fileName = url.pathname.split("/").pop();
        const module = fileName.slice(0, -3);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(module)) throw new Error(`job module ${source}: ${fileName} is not a valid Python module name`);
        const path = `${JOB_DIR}/${fileName}`;
        pyodide.FS.writeFile(path, await response.text());
        modules.push({ source, module, path });
      } else if (url.pathname.endsWith(".whl")) {
        if (typeof spec.module !== "string") throw new Error(`job wheel ${source} needs {wheel, module}: the module that defines its jobs`);
        const micropip = pyodide.pyimport("micropip");
        await micropip.install.callKwargs(url.href, { deps: false });
        micropip.destroy();
        modules.push({ source, module: spec.module, path: null });
      } else {
        throw new Error(`job module ${source} must be a .py file or a .whl wheel`);
      }
    } catch (error) {
      errors.push({ module: source, message: error.message });
    }
  }
  return { modules, errors };
}

// -- shutdown -------------------------------------------------------------------------

async function close() {
  if (state === "closed" || state === "closing") return;
  const wasBooting = state === "booting";
  state = "closing";
  try {
    if (wasBooting) await ready.catch(() => {});
    if (bridge) {
      await bridge.close();
      bridge.destroy();
      bridge = null;
    }
    mount?.close();
    mount = null;
  } finally {
    state = "closed";
    releaseLock();
  }
}
