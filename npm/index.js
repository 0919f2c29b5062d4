// Entry point of the durably-pyodide npm package: the client of web/durably/client.js,
// whose runtime files (Pyodide, wheels) default to where the Vite plugin
// (durably-pyodide/vite) serves and emits them: `<base>durably-runtime/vendor`.

import { DurablyClient as BaseClient } from "./durably/client.js";

export * from "./durably/client.js";

/** Where durably-pyodide/vite puts the vendor directory, under the app's base URL. */
export const RUNTIME_DIR = "durably-runtime";

function defaultVendorUrl() {
  const base = import.meta.env?.BASE_URL ?? "/";
  return `${base.endsWith("/") ? base : `${base}/`}${RUNTIME_DIR}/vendor`;
}

export class DurablyClient extends BaseClient {
  /** @param {import("./durably/client.js").DurablyOptions} [options] */
  constructor(options = {}) {
    super({ vendorUrl: defaultVendorUrl(), ...options });
  }
}

/**
 * Start the runtime and resolve once it is usable (see web/durably/client.js).
 * @param {import("./durably/client.js").DurablyOptions} [options]
 */
export async function createDurably(options) {
  const client = new DurablyClient(options);
  await client.ready;
  return client;
}
