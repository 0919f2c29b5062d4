// Benchmark instrumentation, loaded by bench-worker.js before the runtime's worker:
// counts (and times) every FileSystemSyncAccessHandle call the worker makes, and
// answers the bench page's direct messages ({type: "bench:*"}) with a raw OPFS
// write+flush baseline measured in this same worker.

const counters = { reads: 0, writes: 0, flushes: 0, truncates: 0, getSizes: 0, writeMs: 0, flushMs: 0 };
const proto = globalThis.FileSystemSyncAccessHandle?.prototype;

function wrap(method, counter, timer) {
  const original = proto[method];
  proto[method] = function (...args) {
    counters[counter]++;
    if (!timer) return original.apply(this, args);
    const started = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      counters[timer] += performance.now() - started;
    }
  };
}

if (proto) {
  wrap("read", "reads");
  wrap("write", "writes", "writeMs");
  wrap("flush", "flushes", "flushMs");
  wrap("truncate", "truncates");
  wrap("getSize", "getSizes");
}

/** `count` × (write 4 KiB at the next offset + flush) on a bare handle of its own. */
async function rawWriteFlush({ count = 300, flush = true }) {
  const root = await navigator.storage.getDirectory();
  const directory = await root.getDirectoryHandle("durably-bench-raw", { create: true });
  const file = await directory.getFileHandle("raw-write-flush.bin", { create: true });
  const handle = await file.createSyncAccessHandle();
  const block = new Uint8Array(4096).fill(7);
  try {
    // Warm up the handle (first writes allocate).
    for (let i = 0; i < 10; i++) handle.write(block, { at: i * block.length });
    handle.flush();
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      handle.write(block, { at: (i % 256) * block.length });
      if (flush) handle.flush();
    }
    return { count, us: ((performance.now() - started) * 1000) / count };
  } finally {
    handle.close();
    await root.removeEntry("durably-bench-raw", { recursive: true });
  }
}

self.addEventListener("message", async (event) => {
  const { type, id } = event.data ?? {};
  if (typeof type !== "string" || !type.startsWith("bench:")) return;
  try {
    let result;
    if (type === "bench:counters") result = { ...counters };
    else if (type === "bench:raw-write-flush") result = await rawWriteFlush(event.data);
    else throw new Error(`unknown ${type}`);
    self.postMessage({ benchReply: id, ok: true, result });
  } catch (error) {
    self.postMessage({ benchReply: id, ok: false, error: String(error?.message ?? error) });
  }
});
