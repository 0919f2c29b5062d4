// Makes the memory snapshot a later boot restores instead of running loadPyodide()'s
// start-up (ADR 0007), in a worker of its own so the runtime keeps serving:
// Pyodide started with the private `_makeSnapshot` option imports the standard-library
// modules the runtime uses, then makeMemorySnapshot() is stored in Cache Storage under
// the key the runtime worker gave. Nothing else is imported: no shared library (pydantic_core
// cannot be in a snapshot) and no JS object is held by Python when it is taken.

const STDLIB = [
  "asyncio", "json", "sqlite3", "dataclasses", "datetime", "decimal", "enum", "functools",
  "hashlib", "importlib.util", "inspect", "ipaddress", "pathlib", "re", "traceback",
  "typing", "uuid", "zoneinfo", "email.utils", "collections.abc", "contextlib", "weakref",
];

self.onmessage = async ({ data: { runtimeUrl, cacheName, key } }) => {
  try {
    const { loadPyodide } = await import(/* @vite-ignore */ `${runtimeUrl}pyodide.mjs`);
    const pyodide = await loadPyodide({ indexURL: runtimeUrl, packageBaseUrl: runtimeUrl, _makeSnapshot: true });
    pyodide.runPython(`for name in ${JSON.stringify(STDLIB)}: __import__(name)\ndel name`);
    const snapshot = pyodide.makeMemorySnapshot();
    const cache = await caches.open(cacheName);
    await cache.put(key, new Response(snapshot, { headers: { "content-type": "application/octet-stream" } }));
    self.postMessage({ ok: true, bytes: snapshot.byteLength });
  } catch (error) {
    self.postMessage({ ok: false, error: String(error?.message ?? error) });
  }
};
