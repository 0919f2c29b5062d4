// Baseline for the boot benchmarks: a bare loadPyodide() from the same vendored runtime,
// reporting how long it took. With {install: "loadPackage" | "micropip"} it then installs
// the vendored wheels that way and imports the runtime, timing each phase, so the two
// ways of installing can be compared in the same page.
self.onmessage = async ({ data }) => {
  const started = performance.now();
  const phases = {};
  try {
    const base = new URL("../vendor/pyodide/", self.location.href).href;
    const { loadPyodide } = await import(`${base}pyodide.mjs`);
    const pyodide = await loadPyodide({ indexURL: base, packageBaseUrl: base });
    pyodide.runPython("1 + 1");
    phases.loadPyodide = performance.now() - started;
    if (data?.install) {
      const manifest = await (await fetch(new URL("../vendor/manifest.json", self.location.href))).json();
      // {wheelsDir}: another directory of the same wheels (e.g. without bytecode), to compare.
      const wheelsDir = data.wheelsDir ?? "../vendor/wheels/";
      const wheel = (name) => new URL(`${wheelsDir}${name}`, self.location.href).href;
      const wheels = manifest.wheels.map(wheel);
      let mark = performance.now();
      if (data.install === "micropip") {
        await pyodide.loadPackage(wheel(manifest.micropip));
        const micropip = pyodide.pyimport("micropip");
        await micropip.install.callKwargs(pyodide.toPy(wheels), { deps: false });
      } else {
        await pyodide.loadPackage([wheel(manifest.micropip), ...wheels]);
      }
      phases.install = performance.now() - mark;
      mark = performance.now();
      pyodide.runPython("import pydantic\nfrom pydantic import BaseModel\nimport durably.browser.bridge");
      phases.importRuntime = performance.now() - mark;
    }
    self.postMessage({ ok: true, ms: performance.now() - started, phases, id: data?.id });
  } catch (error) {
    self.postMessage({ ok: false, error: String(error?.message ?? error), id: data?.id });
  }
};
