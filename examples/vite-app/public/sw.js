// The app's service worker: precaches everything the build wrote (the app, the durably
// runtime, Pyodide and the wheels), listed with hashes by the durably-pyodide/vite plugin.
importScripts("durably-runtime/sw-precache.js");
durablyPrecache({ manifest: "durably-precache.json" });
