// Page side of the OPFS sqlite3 harness: `window.harness` is a small promise API the
// browser tests drive.  A call never stays pending: it rejects when the worker fails,
// is terminated, or does not answer within the timeout.

const DEFAULT_TIMEOUT_MS = 120_000;

let worker = null;
let nextId = 1;
/** @type {Map<number, {resolve: Function, reject: Function, timer: number}>} */
const pending = new Map();

function rejectAll(error) {
  for (const { reject, timer } of pending.values()) {
    clearTimeout(timer);
    reject(error);
  }
  pending.clear();
}

function call(type, payload = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
  if (!worker) return Promise.reject(new Error("no worker: call harness.start() first"));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`${type} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    pending.set(id, { resolve, reject, timer });
    worker.postMessage({ id, type, ...payload });
  });
}

function onMessage({ data }) {
  const entry = pending.get(data?.id);
  if (!entry) return;
  pending.delete(data.id);
  clearTimeout(entry.timer);
  if (data.ok) {
    entry.resolve(data.result);
  } else {
    const error = new Error(data.error.message);
    error.name = data.error.name;
    entry.reject(error);
  }
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

window.harness = {
  /** Start a worker, boot Pyodide and mount OPFS; resolves with the worker's boot report. */
  async start({ directoryName = "durably-test", databaseName = "test.db", mountPoint } = {}) {
    if (worker) throw new Error("already started");
    const url = new URL("./opfs-sqlite-worker.js", import.meta.url);
    worker = new Worker(url, { type: "module" });
    worker.onmessage = onMessage;
    worker.onerror = (event) => rejectAll(new Error(`worker error: ${event.message}`));
    worker.onmessageerror = () => rejectAll(new Error("worker message could not be decoded"));
    setStatus("booting…");
    const report = await call("boot", { directoryName, databaseName, mountPoint });
    setStatus("ready");
    return report;
  },
  /** Run Python in the worker; resolves with the last expression's value (JSON). */
  run: (code, timeoutMs) => call("run", { code }, timeoutMs),
  counters: () => call("counters"),
  /** Flush and close every OPFS handle (close Python's connections first). */
  close: () => call("close"),
  /** Fault every OPFS write: "bogus-count" | "short-count" | "quota" | "io" | null (off). */
  injectWriteFault: (mode) => call("injectWriteFault", { mode }),
  rawWriteFlush: (directoryName = "durably-test", count = 500) =>
    call("rawWriteFlush", { directoryName, count }),
  /** Kill the worker at once, as a crashed or closed tab would. */
  terminate() {
    worker?.terminate();
    worker = null;
    rejectAll(new Error("worker terminated"));
    setStatus("terminated");
  },
  /** List OPFS from the page: [{path, kind, size}]; size is null if the file is locked. */
  async listOpfs() {
    const entries = [];
    async function walk(directory, prefix) {
      for await (const [name, handle] of directory.entries()) {
        const path = prefix + name;
        if (handle.kind === "directory") {
          entries.push({ path, kind: "directory", size: null });
          await walk(handle, `${path}/`);
        } else {
          let size = null;
          try {
            size = (await handle.getFile()).size;
          } catch {
            // Chromium may refuse getFile() while a worker holds a sync access handle.
          }
          entries.push({ path, kind: "file", size });
        }
      }
    }
    await walk(await navigator.storage.getDirectory(), "");
    return entries;
  },
  /** Remove an OPFS directory and everything in it (terminate the worker first). */
  async removeOpfsDirectory(name) {
    const root = await navigator.storage.getDirectory();
    try {
      await root.removeEntry(name, { recursive: true });
    } catch (error) {
      if (error.name !== "NotFoundError") throw error;
    }
  },
};

setStatus("idle");
