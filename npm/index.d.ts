export * from "./durably/client.js";
/** Where durably-pyodide/vite puts the runtime files, under the app's base URL. */
export declare const RUNTIME_DIR: "durably-runtime";
