// Precaching for an app's own service worker (a classic script, for importScripts).
// `durably-precache.json` (written by `python -m durably bundle` or the Vite plugin
// `durably-pyodide/vite`) lists every file the app and the runtime load, with hashes;
// this helper caches them all at install and answers from that cache, so the app boots
// offline after one visit without a hand-maintained file list.
//
// Invariant: a version's cache is used only once every listed file is in it (install
// fails otherwise); older versions' caches are deleted when a new version activates.
//
//   importScripts("durably/sw-precache.js");
//   durablyPrecache({ manifest: "durably-precache.json" });

/**
 * Install the precache handlers on this service worker.
 * @param {{manifest?: string, cachePrefix?: string}} [options] `manifest` is relative to
 *   this service worker's script; the files it lists are relative to the manifest.
 */
self.durablyPrecache = function durablyPrecache({ manifest = "durably-precache.json", cachePrefix = "durably-precache-" } = {}) {
  const manifestUrl = new URL(manifest, self.location.href).href;
  /** URL (a directory's URL maps to its index.html) -> true, for every listed file. */
  let listed = null;
  let cacheName = null;

  async function fetchManifest() {
    const response = await fetch(manifestUrl, { cache: "no-cache" });
    if (!response.ok) throw new Error(`${manifestUrl}: HTTP ${response.status}`);
    const body = await response.json();
    if (typeof body.version !== "string" || !Array.isArray(body.files)) throw new Error(`${manifestUrl} has no version or files`);
    return body;
  }

  /** The active version's cache and its file list, read back after a service worker restart. */
  async function active() {
    if (listed) return true;
    const state = await caches.match(`${manifestUrl}?durably-state=active`);
    if (!state) return false;
    const body = await state.json();
    cacheName = `${cachePrefix}${body.version}`;
    listed = new Set(body.files.map((file) => new URL(file.url, manifestUrl).href));
    return true;
  }

  self.addEventListener("install", (event) => {
    event.waitUntil((async () => {
      const body = await fetchManifest();
      const cache = await caches.open(`${cachePrefix}${body.version}`);
      // Fetched fresh; cache.addAll stores nothing unless every request succeeded.
      await cache.addAll(body.files.map((file) => new Request(new URL(file.url, manifestUrl).href, { cache: "no-cache" })));
      await cache.put(`${manifestUrl}?durably-state=installed`, new Response(JSON.stringify(body)));
    })());
  });

  self.addEventListener("activate", (event) => {
    event.waitUntil((async () => {
      const body = await fetchManifest().catch(() => null);
      const names = await caches.keys();
      // The newest complete cache wins: the one this install filled.
      let chosen = null;
      for (const name of names.filter((n) => n.startsWith(cachePrefix))) {
        const installed = await (await caches.open(name)).match(`${manifestUrl}?durably-state=installed`);
        if (installed && (!body || name === `${cachePrefix}${body.version}` || !chosen)) chosen = { name, installed };
      }
      if (chosen) {
        const text = await chosen.installed.text();
        await (await caches.open(chosen.name)).put(`${manifestUrl}?durably-state=active`, new Response(text));
        for (const name of names) if (name.startsWith(cachePrefix) && name !== chosen.name) await caches.delete(name);
        listed = null;
      }
      await self.clients.claim();
    })());
  });

  self.addEventListener("fetch", (event) => {
    const request = event.request;
    if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
    const target = new URL(request.url);
    target.hash = "";
    if (request.mode === "navigate") {
      target.search = "";
      if (target.pathname.endsWith("/")) target.pathname += "index.html";
    }
    event.respondWith((async () => {
      if (await active() && listed.has(target.href)) {
        const cached = await (await caches.open(cacheName)).match(target.href);
        if (cached) return cached;
      }
      return fetch(request);
    })());
  });
};
