// Memory snapshot experiment (ADR 0007): {make: true} boots Pyodide with
// _makeSnapshot, imports the standard-library modules the runtime uses and returns
// makeMemorySnapshot(); {snapshot} restores one with _loadSnapshot. Either way it then
// installs the vendored wheels and imports the runtime, timing each phase.
const STDLIB = [
  "asyncio", "json", "sqlite3", "dataclasses", "datetime", "decimal", "enum", "functools",
  "hashlib", "importlib.util", "inspect", "ipaddress", "pathlib", "re", "traceback",
  "typing", "uuid", "zoneinfo", "email.utils", "collections.abc", "contextlib", "weakref",
];

self.onmessage = async ({ data }) => {
  const t0 = performance.now();
  const phases = {};
  try {
    const base = new URL("../vendor/pyodide/", self.location.href).href;
    const { loadPyodide } = await import(`${base}pyodide.mjs`);
    const options = { indexURL: base, packageBaseUrl: base };
    if (data.make) options._makeSnapshot = true;
    if (data.snapshot) options._loadSnapshot = data.snapshot;
    const pyodide = await loadPyodide(options);
    phases.loadPyodide = performance.now() - t0;
    let snapshot = null;
    if (data.make) {
      let mark = performance.now();
      const failed = pyodide.runPython(`
failed = []
for name in ${JSON.stringify(STDLIB)}:
    try:
        __import__(name)
    except Exception as exc:
        failed.append(f"{name}: {exc}")
del name
"; ".join(failed)`);
      phases.stdlibImports = performance.now() - mark;
      mark = performance.now();
      snapshot = pyodide.makeMemorySnapshot();
      phases.makeSnapshot = performance.now() - mark;
      self.postMessage({ ok: true, phases, failed, bytes: snapshot.byteLength, snapshot }, [snapshot.buffer]);
      return;
    }
    pyodide.runPython("import random; random.seed()"); // the snapshot froze the seed
    const manifest = await (await fetch(new URL("../vendor/manifest.json", self.location.href))).json();
    const wheel = (name) => new URL(`../vendor/wheels/${name}`, self.location.href).href;
    let mark = performance.now();
    await pyodide.loadPackage([wheel(manifest.micropip), ...manifest.wheels.map(wheel)]);
    phases.install = performance.now() - mark;
    mark = performance.now();
    pyodide.runPython("import pydantic\nfrom pydantic import BaseModel\nimport durably.browser.bridge\nimport sqlite3; sqlite3.connect(':memory:').execute('select 1')");
    phases.importRuntime = performance.now() - mark;
    phases.total = performance.now() - t0;
    self.postMessage({ ok: true, phases });
  } catch (error) {
    self.postMessage({ ok: false, error: String(error?.stack ?? error) });
  }
};
