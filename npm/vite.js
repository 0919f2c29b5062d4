// Vite plugin of durably-pyodide: puts the runtime's files where the client looks for
// them (`<base>durably-runtime/`), in dev (served from node_modules) and in builds
// (emitted as assets), and writes `durably-precache.json`: every file of the build
// output with its sha256, for the app's service worker (see sw-precache.js).
//
// Invariant: the Pyodide files come from the `pyodide` package this package pins, and
// its version must equal the one the wheels were laid out for (vendor/manifest.json).

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_DIR = path.dirname(fileURLToPath(import.meta.url));
const RUNTIME_DIR = "durably-runtime";
const MIME = { ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".zip": "application/zip", ".whl": "application/zip" };

/** Map of path under durably-runtime/ -> absolute source file. */
function runtimeFiles() {
  const manifestPath = path.join(PACKAGE_DIR, "vendor", "manifest.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const require = createRequire(path.join(PACKAGE_DIR, "package.json"));
  const pyodideDir = path.dirname(require.resolve("pyodide/package.json"));
  const { version } = JSON.parse(readFileSync(path.join(pyodideDir, "package.json"), "utf8"));
  if (version !== manifest.pyodideVersion) {
    throw new Error(`durably-pyodide needs pyodide ${manifest.pyodideVersion}, found ${version} in ${pyodideDir}: reinstall durably-pyodide`);
  }
  const files = new Map([
    ["vendor/manifest.json", manifestPath],
    ["sw-precache.js", path.join(PACKAGE_DIR, "durably", "sw-precache.js")],
  ]);
  for (const name of manifest.pyodideFiles) files.set(`vendor/pyodide/${name}`, path.join(pyodideDir, name));
  for (const name of [manifest.micropip, ...manifest.wheels]) files.set(`vendor/wheels/${name}`, path.join(PACKAGE_DIR, "vendor", "wheels", name));
  for (const [name, file] of files) if (!existsSync(file)) throw new Error(`durably-pyodide: ${file} is missing (for ${name})`);
  return files;
}

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else yield full;
  }
}

function sha256(data) {
  return createHash("sha256").update(data).digest("hex");
}

/** @param {{precache?: string}} [options] */
export function durably({ precache = "durably-precache.json" } = {}) {
  let config;
  return {
    name: "durably-pyodide",
    config() {
      return {
        // Pre-bundling would move client.js away from worker.js and break its
        // `new URL("./worker.js", import.meta.url)`; the worker needs ES output
        // (it is a module worker that imports the runtime's other modules).
        optimizeDeps: { exclude: ["durably-pyodide"] },
        worker: { format: "es" },
      };
    },
    configResolved(resolved) {
      config = resolved;
    },
    configureServer(server) {
      const files = runtimeFiles();
      const prefix = `${server.config.base.replace(/\/?$/, "/")}${RUNTIME_DIR}/`;
      server.middlewares.use((request, response, next) => {
        const pathname = decodeURIComponent((request.url ?? "").split("?")[0]);
        const file = pathname.startsWith(prefix) ? files.get(pathname.slice(prefix.length)) : undefined;
        if (!file) return next();
        response.setHeader("Content-Type", MIME[path.extname(file)] ?? "application/octet-stream");
        response.setHeader("Cache-Control", "no-cache");
        response.end(readFileSync(file));
      });
    },
    generateBundle() {
      for (const [name, file] of runtimeFiles()) {
        this.emitFile({ type: "asset", fileName: `${RUNTIME_DIR}/${name}`, source: readFileSync(file) });
      }
    },
    writeBundle: {
      order: "post",
      sequential: true,
      handler(output) {
        const outDir = output.dir ?? config.build.outDir;
        const files = [];
        const digest = createHash("sha256");
        for (const full of [...walk(outDir)].sort()) {
          const url = path.relative(outDir, full).split(path.sep).join("/");
          if (url === precache || url.endsWith(".map")) continue;
          const data = readFileSync(full);
          const hash = sha256(data);
          files.push({ url, sha256: hash, bytes: statSync(full).size });
          digest.update(`${url}\0${hash}\n`);
        }
        const version = digest.digest("hex").slice(0, 16);
        writeFileSync(path.join(outDir, precache), `${JSON.stringify({ version, files }, null, 1)}\n`);
      },
    },
  };
}

export default durably;
