// Boots Pyodide inside a module worker from our own origin only.
//
// Everything comes from `web/vendor/` (laid out by scripts/setup_web.py): the runtime
// files, micropip's wheel and the wheels listed in manifest.json, loaded by URL so
// neither Pyodide's lock file nor any package index is ever consulted.
// Nothing is fetched from a CDN: `packageBaseUrl` points at the vendored runtime too.
//
// It also routes fdatasync() to the filesystem's fsync: SQLite syncs with fdatasync(),
// which Emscripten implements as a no-op that never reaches the filesystem, so without
// this `PRAGMA synchronous=FULL` would never flush OPFS (see routeFdatasyncToFsync).

/**
 * @typedef {object} VendorManifest
 * @property {string} pyodideVersion  Version of the vendored Pyodide runtime.
 * @property {string[]} pyodideFiles  The runtime files in `pyodide/` (what a cache must hold).
 * @property {string} micropip        File name of micropip's wheel in `wheels/`.
 * @property {string[]} wheels        Wheel file names in install order, durably's last.
 * @property {string} version         Content hash of the vendor files (for cache names).
 */

/** @typedef {"loading-python" | "installing-packages"} BootPhase */

/**
 * Load Pyodide and install the vendored wheels.
 *
 * @param {object} [options]
 * @param {string | URL} [options.vendorUrl]  Base URL of `web/vendor` (no trailing slash
 *   needed); relative URLs resolve against the worker's location.  Default: `../vendor`
 *   next to this module.
 * @param {(phase: BootPhase) => void} [options.onPhase]  Told when each phase starts.
 * @param {(line: string) => void} [options.stdout]  Python's stdout (default: console).
 * @param {(line: string) => void} [options.stderr]  Python's stderr (default: console).
 * @returns {Promise<{pyodide: any, manifest: VendorManifest}>}
 * @throws {Error} when the manifest or a vendored file cannot be loaded; the message
 *   names the URL and, where it helps, the command that fixes it.
 */
export async function bootPyodide({ vendorUrl, onPhase = () => {}, stdout, stderr } = {}) {
  const base = vendorBase(vendorUrl);
  const manifest = await fetchManifest(`${base}/manifest.json`);

  onPhase("loading-python");
  const runtimeUrl = `${base}/pyodide/`;
  // Loaded at run time from the vendor directory, never bundled (hence @vite-ignore).
  const { loadPyodide, version } = await import(/* @vite-ignore */ `${runtimeUrl}pyodide.mjs`);
  const { default: createPyodideModule } = await import(/* @vite-ignore */ `${runtimeUrl}pyodide.asm.mjs`);
  if (version !== manifest.pyodideVersion) {
    throw new Error(
      `vendored pyodide.mjs is ${version} but manifest.json says ${manifest.pyodideVersion}: ` +
        "run `make setup`",
    );
  }
  const pyodide = await loadPyodide({
    indexURL: runtimeUrl,
    // Without this a package looked up by name could resolve against the default CDN.
    packageBaseUrl: runtimeUrl,
    createPyodideModule: routeFdatasyncToFsync(createPyodideModule),
    ...(stdout ? { stdout } : {}),
    ...(stderr ? { stderr } : {}),
  });

  onPhase("installing-packages");
  // One loadPackage call for every vendored wheel: fetched in parallel and unpacked
  // without importing micropip (which costs more than the unpacking itself). URLs, not
  // names, so the lock file and its CDN are never consulted; the wheels were checked
  // against their pinned hashes when web/vendor was laid out. micropip is installed
  // too, so a job wheel can still be installed with it later.
  const urls = [manifest.micropip, ...manifest.wheels].map((name) => `${base}/wheels/${name}`);
  const errors = [];
  await pyodide.loadPackage(urls, {
    messageCallback: () => {},
    errorCallback: (message) => errors.push(message),
  });
  if (errors.length) {
    throw new Error(`installing the vendored wheels failed: ${errors.join("; ")}`);
  }
  return { pyodide, manifest };
}

/**
 * Wrap Emscripten's module factory so the wasm import `__syscall_fdatasync` calls the
 * stream's `fsync` (as fsync() does) instead of returning 0 without flushing anything.
 * The FS object is marked `fdatasyncReachesFsync = true` so a filesystem can tell.
 */
function routeFdatasyncToFsync(createModule) {
  return async (settings) => {
    const instantiate = settings.instantiateWasm;
    if (typeof instantiate === "function") {
      settings.instantiateWasm = (imports, receive) => {
        imports.env.__syscall_fdatasync = (fd) => {
          // `settings` is the Emscripten Module; FS exists by the time SQLite syncs.
          const { FS } = settings;
          try {
            const stream = FS.getStreamChecked(fd);
            return stream.stream_ops.fsync?.(stream) ?? 0;
          } catch (error) {
            if (error?.name === "ErrnoError") return -error.errno;  // syscall convention
            throw error;
          }
        };
        return instantiate(imports, receive);
      };
    }
    const module = await createModule(settings);
    module.FS.fdatasyncReachesFsync = typeof instantiate === "function";
    return module;
  };
}

/** Resolve the vendor base URL without a trailing slash. */
function vendorBase(vendorUrl) {
  const url = vendorUrl
    ? new URL(String(vendorUrl), self.location.href)
    : new URL("../vendor", import.meta.url);
  return url.href.replace(/\/+$/, "");
}

/** @returns {Promise<VendorManifest>} */
async function fetchManifest(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-cache" });
  } catch (error) {
    throw new Error(`cannot fetch ${url}: ${error.message}`, { cause: error });
  }
  if (!response.ok) {
    throw new Error(`cannot fetch ${url}: HTTP ${response.status} (run \`make setup\`)`);
  }
  const manifest = await response.json();
  for (const key of ["pyodideVersion", "micropip", "version"]) {
    if (typeof manifest[key] !== "string") throw new Error(`${url}: "${key}" is missing`);
  }
  if (!Array.isArray(manifest.wheels) || manifest.wheels.length === 0) {
    throw new Error(`${url}: "wheels" must list at least one wheel`);
  }
  return manifest;
}
