import type { Plugin } from "vite";

export interface DurablyPluginOptions {
  /** File name of the precache list written into the build output. Default "durably-precache.json". */
  precache?: string;
}

/**
 * Serves (dev) and emits (build) the runtime's files under `<base>durably-runtime/`:
 * Pyodide's runtime files from the pinned `pyodide` package, the hash-checked wheels, and
 * `sw-precache.js`; after a build, writes the precache list of every output file.
 */
export default function durably(options?: DurablyPluginOptions): Plugin;
export { durably };
