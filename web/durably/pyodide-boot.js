// Boots the runtime inside a module worker from our own origin only, in two halves:
// prepareRuntime (Pyodide, the vendored wheels, the page's job modules imported) needs
// no lock and runs in every tab while it waits for the database's Web Lock;
// openRuntime (the OPFS database and the Python bridge) runs once the tab owns it.
//
// Everything comes from `web/vendor/` (laid out by scripts/setup_web.py): the runtime
// files, micropip's wheel and the wheels listed in manifest.json, loaded by URL so
// neither Pyodide's lock file nor any package index is ever consulted.
// Nothing is fetched from a CDN: `packageBaseUrl` points at the vendored runtime too.
//
// It also routes fdatasync() to the filesystem's fsync: SQLite syncs with fdatasync(),
// which Emscripten implements as a no-op that never reaches the filesystem, so without
// this `PRAGMA synchronous=FULL` would never flush OPFS (see routeFdatasyncToFsync).

import { mountOpfs } from "./opfs-fs.js";

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
 * @param {(phase: BootPhase, fields: {snapshot?: boolean}) => void} [options.onPhase]  Told
 *   when each phase starts; "installing-packages" says whether a snapshot was restored.
 * @param {boolean} [options.snapshot=false]  Restore Python from this version's memory
 *   snapshot if one is cached, and make one after a boot without it (ADR 0007).
 * @param {(line: string) => void} [options.stdout]  Python's stdout (default: console).
 * @param {(line: string) => void} [options.stderr]  Python's stderr (default: console).
 * @returns {Promise<{pyodide: any, manifest: VendorManifest, restored: boolean}>}
 * @throws {Error} when the manifest or a vendored file cannot be loaded; the message
 *   names the URL and, where it helps, the command that fixes it.
 */
export async function bootPyodide({ vendorUrl, onPhase = () => {}, stdout, stderr, snapshot: useSnapshot = false } = {}) {
  const base = vendorBase(vendorUrl);
  const runtimeUrl = `${base}/pyodide/`;
  // The manifest and the runtime's modules in parallel: neither needs the other to load.
  // Loaded at run time from the vendor directory, never bundled (hence @vite-ignore).
  const loader = import(/* @vite-ignore */ `${runtimeUrl}pyodide.mjs`);
  const factory = import(/* @vite-ignore */ `${runtimeUrl}pyodide.asm.mjs`);
  loader.catch(() => {});
  factory.catch(() => {});
  const manifest = await fetchManifest(`${base}/manifest.json`);
  const snapshotKey = useSnapshot && manifest.pyodideVersion === SNAPSHOT_PYODIDE ? `${base}/pyodide-snapshot/${manifest.version}` : null;
  const snapshot = snapshotKey ? await cachedSnapshot(snapshotKey) : null;

  onPhase("loading-python");
  const { loadPyodide, version } = await loader;
  const { default: createPyodideModule } = await factory;
  if (version !== manifest.pyodideVersion) {
    throw new Error(
      `vendored pyodide.mjs is ${version} but manifest.json says ${manifest.pyodideVersion}: ` +
        "run `make setup`",
    );
  }
  const options = () => ({
    indexURL: runtimeUrl,
    // Without this a package looked up by name could resolve against the default CDN.
    packageBaseUrl: runtimeUrl,
    createPyodideModule: routeFdatasyncToFsync(createPyodideModule),
    ...(stdout ? { stdout } : {}),
    ...(stderr ? { stderr } : {}),
  });
  let pyodide = null;
  if (snapshot) {
    try {
      pyodide = await loadPyodide({ ...options(), _loadSnapshot: snapshot });
      // The snapshot froze random's state: every restored tab would draw the same numbers.
      pyodide.runPython("import random\nrandom.seed()");
    } catch (error) {
      // Another build's snapshot, a damaged one, one too large for the heap: boot plainly.
      console.warn(`durably: the cached Python snapshot could not be restored (${error?.message ?? error}); booting without it`);
      pyodide = null;
      await dropSnapshots();
    }
  }
  const restored = pyodide !== null;
  pyodide ??= await loadPyodide(options());

  onPhase("installing-packages", snapshotKey ? { snapshot: restored } : {});
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
  if (snapshotKey && !restored) makeSnapshotLater(runtimeUrl, snapshotKey);
  return { pyodide, manifest, restored };
}

// -- the memory snapshot (ADR 0007) ----------------------------------------------------

// The snapshot options are private Pyodide API: used only with the version they were tested with.
const SNAPSHOT_PYODIDE = "314.0.7";
const SNAPSHOT_CACHE = "durably-pyodide-snapshot";
// Made after the boot, so it never competes with the start-up it speeds up next time.
const SNAPSHOT_DELAY_MS = 2000;

/** The cached snapshot for this vendor version (the key), or null. */
async function cachedSnapshot(key) {
  try {
    const response = await (await caches.open(SNAPSHOT_CACHE)).match(key);
    return response ? new Uint8Array(await response.arrayBuffer()) : null;
  } catch {
    return null; // no Cache Storage here: boot without a snapshot
  }
}

async function dropSnapshots() {
  try {
    await caches.delete(SNAPSHOT_CACHE); // also any other version's
  } catch {
    // nothing cached, nothing to drop
  }
}

/** Make this version's snapshot in a worker of its own, once, a little after the boot. */
function makeSnapshotLater(runtimeUrl, key) {
  setTimeout(() => {
    let maker;
    try {
      maker = new Worker(new URL("./snapshot-maker.js", import.meta.url), { type: "module" });
    } catch {
      return; // no nested workers: every boot stays plain
    }
    maker.onmessage = ({ data }) => {
      if (!data.ok) console.warn(`durably: making the Python snapshot failed: ${data.error}`);
      maker.terminate();
    };
    maker.onerror = () => maker.terminate();
    // Older versions' snapshots go first: one snapshot (about 31 MB) per origin.
    dropSnapshots().then(() => maker.postMessage({ runtimeUrl, cacheName: SNAPSHOT_CACHE, key }));
  }, SNAPSHOT_DELAY_MS);
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

// -- the runtime: job modules, the OPFS database, the Python bridge ---------------------

const JOB_DIR = "/home/pyodide/durably_jobs";

/**
 * @typedef {object} PreparedRuntime  What a tab loads before it owns the database.
 * @property {any} pyodide
 * @property {any} prepared  durably.browser.bridge.PreparedRuntime (its job modules, imported).
 * @property {{module: string, message: string}[]} fetchErrors  Job modules that could not be fetched.
 */

/**
 * The lock-free half of the boot: Pyodide, the wheels, the page's job modules fetched
 * (in parallel with loadPyodide) and imported, with pydantic and durably. Opens
 * nothing in OPFS, so every tab runs it while it waits for the database's lock; a
 * secondary that has run it takes over with `openRuntime` alone.
 *
 * @param {object} config  The page's init config ({database, jobs, vendorUrl, ...}).
 * @param {{emit: (type: string, fields?: object) => void}} io
 * @returns {Promise<PreparedRuntime>}
 */
export async function prepareRuntime(config, { emit }) {
  const sources = fetchJobSources(config.jobs ?? []);
  const { pyodide } = await bootPyodide({
    vendorUrl: config.vendorUrl,
    onPhase: (phase, fields) => emit("boot", { phase, ...fields }),
    snapshot: config.snapshot !== false,
  });
  emit("boot", { phase: "loading-jobs" });
  const { modules, errors: fetchErrors } = await installJobModules(pyodide, await sources);
  const bridgeModule = pyodide.pyimport("durably.browser.bridge");
  try {
    const prepared = bridgeModule.prepare_runtime(JSON.stringify({ jobModules: modules }));
    return { pyodide, prepared, fetchErrors };
  } catch (error) {
    throw fromPython(error);
  } finally {
    bridgeModule.destroy();
  }
}

/**
 * The owner's half: mount the OPFS database and open the Python bridge on the prepared
 * runtime. Each resource is stored in `runtime` the moment it is held, so the caller
 * can release exactly what exists if this fails half-way.
 *
 * @param {object} config  The page's init config ({database, synchronous, options, ...}).
 * @param {import("./worker.js").Runtime} runtime  Filled in as resources are acquired.
 * @param {{emit: Function, post: (message: object | string) => void}} io
 * @param {PreparedRuntime} prepared  From prepareRuntime.
 * @returns {Promise<{jobs: string[], jobErrors: {module: string, message: string}[]}>}
 */
export async function openRuntime(config, runtime, { emit, post }, { pyodide, prepared, fetchErrors }) {
  emit("boot", { phase: "opening-database" });
  runtime.mount = await mountOpfs(pyodide, { directoryName: "durably", databaseName: `${config.database}.sqlite3` });
  const { open_bridge } = pyodide.pyimport("durably.browser.bridge");
  const runtimeConfig = {
    databasePath: runtime.mount.databasePath,
    synchronous: config.synchronous ?? "FULL",
    owner: `tab-${crypto.randomUUID().slice(0, 8)}`,
    options: config.options ?? {},
  };
  try {
    // The bridge's messages go on as the JSON text it wrote: the page parses them, once.
    runtime.bridge = await open_bridge(JSON.stringify(runtimeConfig), (text) => post(text), prepared);
  } catch (error) {
    throw fromPython(error);
  } finally {
    open_bridge.destroy?.();
  }
  const info = JSON.parse(runtime.bridge.info_json());
  followNetwork(runtime.bridge);
  for (const error of fetchErrors) emit("worker:error", { error: error.message, context: "loading job modules" });
  return { ...info, jobErrors: [...fetchErrors, ...info.jobErrors] };
}

/** Both halves at once, for a caller that already holds the lock. */
export async function bootRuntime(config, runtime, io) {
  return openRuntime(config, runtime, io, await prepareRuntime(config, io));
}

/**
 * A Python exception raised while opening the database (a ValidationError for a bad
 * option, a SchemaVersionError, ...) reaches JS as a PythonError whose message is the
 * whole traceback: name it after the Python class and keep its own message.
 */
function fromPython(error) {
  if (error?.name !== "PythonError" || typeof error.type !== "string") return error;
  const marker = `${error.type}: `;
  const lines = String(error.message).trimEnd().split("\n");
  const at = lines.findLastIndex((line) => line.startsWith(marker) || line.includes(`.${marker}`));
  if (at < 0) return error;
  const message = lines.slice(at).join("\n").slice(lines[at].indexOf(marker) + marker.length);
  return Object.assign(new Error(message), { name: error.type });
}

/**
 * Tell the runtime whether the network is up (navigator.onLine, then the worker's own
 * online/offline events): runs waiting for it wake when it returns, and a step attempt
 * that fails while offline is not counted against its retries.
 */
function followNetwork(bridge) {
  const tell = () => bridge.set_online(self.navigator.onLine);
  tell();
  self.addEventListener("online", tell);
  self.addEventListener("offline", tell);
}

/**
 * Fetch the page's .py job modules (same origin only) without Pyodide, so it runs in
 * parallel with loadPyodide. Resolves to one entry per job: {source, spec, url, text}
 * or {source, error}; never rejects.
 */
function fetchJobSources(jobs) {
  return Promise.all(
    jobs.map(async (entry) => {
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
          return { source, spec, url, text: await response.text() };
        }
        if (url.pathname.endsWith(".whl")) {
          if (typeof spec.module !== "string") throw new Error(`job wheel ${source} needs {wheel, module}: the module that defines its jobs`);
          return { source, spec, url, text: null };
        }
        throw new Error(`job module ${source} must be a .py file or a .whl wheel`);
      } catch (error) {
        return { source, error };
      }
    }),
  );
}

/** Write the fetched job files into Pyodide's filesystem and install job wheels, in order. */
async function installJobModules(pyodide, fetched) {
  const modules = [];
  const errors = [];
  // Not on sys.path: the loader imports these files as the package durably_jobs, so a
  // job file can never shadow the standard library, pydantic or durably.
  pyodide.FS.mkdirTree(JOB_DIR);
  for (const { source, spec, url, text, error: fetchError } of fetched) {
    try {
      if (fetchError) throw fetchError;
      if (text !== null) {
        const fileName = url.pathname.split("/").pop();
        const module = fileName.slice(0, -3);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(module)) throw new Error(`job module ${source}: ${fileName} is not a valid Python module name`);
        const path = `${JOB_DIR}/${fileName}`;
        pyodide.FS.writeFile(path, text);
        modules.push({ source, module, path });
      } else {
        const micropip = pyodide.pyimport("micropip");
        await micropip.install.callKwargs(url.href, { deps: false });
        micropip.destroy();
        modules.push({ source, module: spec.module, path: null });
      }
    } catch (error) {
      errors.push({ module: source, message: error.message });
    }
  }
  return { modules, errors };
}
