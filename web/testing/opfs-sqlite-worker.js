// Test worker: boots Pyodide, mounts OPFS and runs Python (sqlite3) code sent by the
// harness page (opfs-sqlite.html).  Every request {id, type, ...} gets exactly one reply
// {id, ok, result | error: {name, message}}; results cross as JSON text.

import { bootPyodide } from "../durably/pyodide-boot.js";
import { mountOpfs } from "../durably/opfs-fs.js";

// Python helpers the tests build on.  `open_db` applies the pragmas in the only order
// that works on OPFS: locking_mode=EXCLUSIVE first, so SQLite keeps the WAL index in
// heap memory and never asks for a -shm file or mmap.  It closes the connection it
// opened before: an exclusive connection keeps its lock until closed.
const PRELUDE = `
import json, sqlite3, time

_connections = []

def open_db(path, synchronous="NORMAL"):
    while _connections:
        _connections.pop().close()
    db = sqlite3.connect(path, isolation_level=None)
    _connections.append(db)
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"journal_mode is {mode}, expected wal")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db
`;

let pyodide = null;
let mount = null;
let namespace = null;
let originalWrite = null;
const phases = [];

const handlers = {
  async boot({ directoryName, databaseName, mountPoint }) {
    const started = performance.now();
    const booted = await bootPyodide({ onPhase: (phase) => phases.push(phase) });
    pyodide = booted.pyodide;
    const bootMs = performance.now() - started;
    mount = await mountOpfs(pyodide, { directoryName, databaseName, mountPoint });
    namespace = pyodide.toPy({});
    await pyodide.runPythonAsync(PRELUDE, { globals: namespace });
    return {
      phases,
      bootMs,
      manifestVersion: booted.manifest.version,
      databasePath: mount.databasePath,
      paths: mount.paths,
      syncFlushes: mount.syncFlushes,
      openRetries: mount.openRetries,
    };
  },

  // Run Python; the value of the last expression is returned via json.dumps.
  async run({ code }) {
    requireBooted();
    namespace.set("_code", code);
    const text = await pyodide.runPythonAsync(
      "from pyodide.code import eval_code_async as _eval\n" +
        "json.dumps(await _eval(_code, globals()))",
      { globals: namespace },
    );
    return JSON.parse(text);
  },

  counters() {
    requireBooted();
    return { ...mount.counters, lastError: mount.lastError() };
  },

  close() {
    mount?.close();
    mount = null;
    return true;
  },

  // Make every sync access handle write misbehave the way browsers do at quota or on
  // I/O failure (mode null restores it): the filesystem must turn each into an errno.
  injectWriteFault({ mode }) {
    const prototype = FileSystemSyncAccessHandle.prototype;
    originalWrite ??= prototype.write;
    const faults = {
      "bogus-count": () => 4294967288, // Chromium's FILE_ERROR_NO_SPACE read as unsigned
      "short-count": (buffer) => Math.max(0, buffer.byteLength - 1),
      quota: () => {
        throw new DOMException("quota exceeded", "QuotaExceededError");
      },
      io: () => {
        throw new DOMException("the handle is unusable", "InvalidStateError");
      },
    };
    if (mode !== null && !Object.hasOwn(faults, mode)) throw new TypeError(`unknown fault ${mode}`);
    prototype.write = mode === null ? originalWrite : faults[mode];
    return true;
  },

  // Baseline for the benchmarks: `count` × (write 4 KiB + flush) on a bare handle.
  async rawWriteFlush({ directoryName, count = 500 }) {
    const root = await navigator.storage.getDirectory();
    const directory = await root.getDirectoryHandle(directoryName, { create: true });
    const file = await directory.getFileHandle("raw-write-flush.bin", { create: true });
    const handle = await file.createSyncAccessHandle();
    const block = new Uint8Array(4096).fill(7);
    try {
      const started = performance.now();
      for (let i = 0; i < count; i++) {
        handle.write(block, { at: i * block.length });
        handle.flush();
      }
      return { count, usPerWriteFlush: ((performance.now() - started) * 1000) / count };
    } finally {
      handle.close();
      await directory.removeEntry("raw-write-flush.bin");
    }
  },
};

function requireBooted() {
  if (!pyodide || !mount) throw new Error("not booted (or closed): send boot first");
}

self.onmessage = async ({ data }) => {
  const { id, type } = data ?? {};
  const handler = Object.hasOwn(handlers, type) ? handlers[type] : null;
  try {
    if (!handler) throw new TypeError(`unknown request type ${JSON.stringify(type)}`);
    self.postMessage({ id, ok: true, result: await handler(data) });
  } catch (error) {
    self.postMessage({
      id,
      ok: false,
      error: { name: error?.name ?? "Error", message: String(error?.message ?? error) },
    });
  }
};
