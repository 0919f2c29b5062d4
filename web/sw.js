// The demo's service worker: precaches every file the demo app and the durably runtime
// load, and serves them from that cache, so the app boots, runs jobs and resumes
// interrupted runs with the network off after one online visit.
//
// Scope: it lives at the web root because it must control both the page (/demo/) and
// the runtime's module worker (/durably/worker.js): a dedicated worker is controlled by
// the registration whose scope contains the worker script's own URL, and every fetch of
// Pyodide, the wheels and the job modules comes from that worker.
//
// Versions: each version has one cache, `durably-demo-<vendor version>-<app hash>`,
// where the vendor version is web/vendor/manifest.json's content hash and the app hash
// covers APP_FILES. Install fills a new cache completely before the version can be
// used. To pick up changed files, the page asks ("check-version") and registers
// `sw.js?v=<latest>`, which installs the next version next to the running one.
//
// One tab, one version: a page is pinned to the version that was active when it was
// navigated to, and the workers it starts (the runtime's worker.js) inherit its pin, so
// a tab loads its worker, Pyodide, the wheels and the job modules from one cache even
// after a newer version activates. A cache is deleted only when it is not the active
// one, no open page or worker is pinned to it, and no install is filling it.

const CACHE_PREFIX = "durably-demo-";
/** Which version's cache is active, and which one is installed and waiting. */
const STATE_CACHE = "durably-sw-state";

/** The app's own files, relative to this script. Add yours here. */
const APP_FILES = [
  "demo/",
  "demo/app.js",
  "demo/offline.js",
  "demo/demo.css",
  "demo/jobs.py",
  "durably/client.js",
  "durably/protocol.js",
  "durably/protocol-definition.js",
  "durably/relay.js",
  "durably/snapshot-maker.js",
  "durably/worker.js",
  "durably/pyodide-boot.js",
  "durably/opfs-fs.js",
  "durably/statuses.js",
  "durably/ui/runs-element.js",
  "durably/ui/runs-model.js",
  "durably/ui/runs-renderer.js",
  "durably/ui/runs-view.js",
  "durably/ui/runs-style.js",
  "durably/ui/run-details.js",
  "durably/ui/run-details-view.js",
  "durably/ui/run-actions.js",
  "durably/ui/format.js",
  "durably/ui/dom.js",
  "durably/ui/storage-bar.js",
];
/** The runtime: manifest.json lists the Pyodide files and the wheels it loads. */
const VENDOR = "vendor/";

const url = (path) => new URL(path, self.location.href).href;
const APP_URLS = new Set(APP_FILES.map(url));
const VENDOR_URL = url(VENDOR);

const STATE = url("__durably-sw__/");
const ACTIVE_KEY = `${STATE}active`;
/** Which cache this script's install filled (per script URL: `sw.js?v=` differ). */
const INSTALLED_KEY = `${STATE}installed?script=${encodeURIComponent(self.location.href)}`;
/** `${FILLING}<cache name>` exists while an install fills that cache; its value is when it began. */
const FILLING = `${STATE}filling/`;
/** `${PINNED}<client id>` names the cache that page or worker loads from. */
const PINNED = `${STATE}pinned/`;
/** An install that has not finished after this long was stopped (say, the browser closed). */
const ABANDONED_INSTALL_MS = 60 * 60 * 1000;

async function readState(key) {
  const entry = await (await caches.open(STATE_CACHE)).match(key);
  return entry ? entry.text() : null;
}

async function writeState(key, value) {
  await (await caches.open(STATE_CACHE)).put(key, new Response(value));
}

async function deleteState(key) {
  await (await caches.open(STATE_CACHE)).delete(key);
}

/** Every state entry whose key starts with `prefix`: [rest of the key, value]. */
async function listState(prefix) {
  const state = await caches.open(STATE_CACHE);
  const entries = [];
  for (const request of await state.keys()) {
    if (!request.url.startsWith(prefix)) continue;
    const response = await state.match(request);
    entries.push([decodeURIComponent(request.url.slice(prefix.length)), await response.text()]);
  }
  return entries;
}

/** The active version's cache name (memoised: it changes only when a worker activates). */
let activeCache = null;

async function activeCacheName() {
  activeCache ??= await readState(ACTIVE_KEY);
  return activeCache;
}

/** Client id -> pinned cache name, as far as this service worker instance has seen. */
const pins = new Map();

async function pinnedCache(clientId) {
  if (!clientId) return null;
  if (!pins.has(clientId)) pins.set(clientId, await readState(`${PINNED}${encodeURIComponent(clientId)}`));
  return pins.get(clientId);
}

async function pin(clientId, name) {
  if (!clientId || !name) return;
  pins.set(clientId, name);
  await writeState(`${PINNED}${encodeURIComponent(clientId)}`, name);
}

/**
 * The cache a request is answered from: a navigation pins the new page to the active
 * version; a worker script pins the new worker to its page's version; anything else
 * uses its client's pin (a client without one, e.g. a page claimed on the first visit,
 * is pinned to the active version now).
 */
async function cacheFor(event) {
  const request = event.request;
  if (request.mode === "navigate") {
    const name = await activeCacheName();
    await pin(event.resultingClientId, name);
    return name;
  }
  let name = await pinnedCache(event.clientId);
  if (!name) {
    name = await activeCacheName();
    await pin(event.clientId, name);
  }
  if (request.destination === "worker" || request.destination === "sharedworker") {
    await pin(event.resultingClientId, name);
  }
  return name;
}

/** Delete the caches nothing uses any more, and the pins of clients that are gone. */
async function deleteUnusedCaches() {
  const live = new Set((await self.clients.matchAll({ includeUncontrolled: true, type: "all" })).map((client) => client.id));
  const keep = new Set([await activeCacheName()]);
  for (const [clientId, name] of await listState(PINNED)) {
    if (live.has(clientId)) keep.add(name);
    else {
      pins.delete(clientId);
      await deleteState(`${PINNED}${encodeURIComponent(clientId)}`);
    }
  }
  for (const [name, began] of await listState(FILLING)) {
    if (Date.now() - Number(began) < ABANDONED_INSTALL_MS) keep.add(name);
    else await deleteState(`${FILLING}${encodeURIComponent(name)}`);
  }
  // A worker's client may be missing from matchAll in some browsers; its page is not,
  // and a worker is always pinned to its page's version, so that cache is kept anyway.
  for (const name of await caches.keys()) {
    if (name.startsWith(CACHE_PREFIX) && !keep.has(name)) await caches.delete(name);
  }
}

/** The latest files from the network and the version they make up. */
async function fetchLatest() {
  const manifestResponse = await fetchOk(url(`${VENDOR}manifest.json`));
  const manifest = await manifestResponse.clone().json();
  if (typeof manifest.version !== "string" || !Array.isArray(manifest.wheels)) {
    throw new Error(`${VENDOR}manifest.json has no version or wheels: run \`make setup\``);
  }
  const app = await Promise.all(
    APP_FILES.map(async (path) => {
      const response = await fetchOk(url(path));
      return { url: url(path), response, bytes: new Uint8Array(await response.clone().arrayBuffer()) };
    }),
  );
  const encoder = new TextEncoder();
  const parts = app.flatMap(({ url, bytes }) => [encoder.encode(`${url}\n${bytes.length}\n`), bytes]);
  const digest = await crypto.subtle.digest("SHA-256", await new Blob(parts).arrayBuffer());
  const hash = [...new Uint8Array(digest).slice(0, 6)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  return { version: `${manifest.version}-${hash}`, manifest, manifestResponse, app };
}

async function fetchOk(href) {
  // Revalidate with the server (cheap when unchanged) instead of trusting the HTTP cache.
  const response = await fetch(href, { cache: "no-cache" });
  if (!response.ok) throw new Error(`${href}: HTTP ${response.status}`);
  // A redirected response cannot answer a navigation: store a plain copy.
  return response.redirected ? new Response(await response.blob(), { headers: response.headers }) : response;
}

function vendorUrls(manifest) {
  const files = [
    ...manifest.pyodideFiles.map((name) => `pyodide/${name}`),
    ...[manifest.micropip, ...manifest.wheels].filter(Boolean).map((name) => `wheels/${name}`),
  ];
  return files.map((file) => url(`${VENDOR}${file}`));
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const latest = await fetchLatest();
      const name = `${CACHE_PREFIX}${latest.version}`;
      // Marked before the first write, so another worker's activate leaves it alone.
      const filling = `${FILLING}${encodeURIComponent(name)}`;
      await writeState(filling, String(Date.now()));
      try {
        const cache = await caches.open(name);
        await cache.addAll(vendorUrls(latest.manifest).map((href) => new Request(href, { cache: "no-cache" })));
        await cache.put(url(`${VENDOR}manifest.json`), latest.manifestResponse);
        await Promise.all(latest.app.map(({ url, response }) => cache.put(url, response)));
        // Recorded last: a cache that is not complete is never used.
        await writeState(INSTALLED_KEY, name);
      } finally {
        await deleteState(filling); // a failed install's partial cache goes at the next clean-up
      }
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const own = await readState(INSTALLED_KEY);
      await writeState(ACTIVE_KEY, own);
      activeCache = own;
      // Tabs already open keep their pinned version (see cacheFor): claiming them only
      // lets the first visit's page, which has no version yet, work offline without a reload.
      await self.clients.claim();
      await deleteUnusedCaches();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const target = new URL(request.url);
  // A navigation's query (say, ?db=) does not change the page.
  const key = request.mode === "navigate" ? `${target.origin}${target.pathname}` : target.href;
  if (!APP_URLS.has(key) && !key.startsWith(VENDOR_URL)) return; // not ours: the network
  const answer = (async () => {
    const name = await cacheFor(event);
    const cached = name ? await (await caches.open(name)).match(key) : undefined;
    return cached ?? fetch(request);
  })();
  event.respondWith(answer);
  // A page that goes away may have been the last one on an old version.
  if (request.mode === "navigate") event.waitUntil(answer.then(deleteUnusedCaches, () => {}));
});

self.addEventListener("message", (event) => {
  const { type } = event.data ?? {};
  if (type === "skip-waiting") {
    self.skipWaiting();
  } else if (type === "check-version") {
    const port = event.ports[0];
    event.waitUntil(
      (async () => {
        // A page asks once it has loaded, when the page it replaced is surely gone: the
        // clean-up at that navigation may still have seen the old page and kept its cache.
        await deleteUnusedCaches();
        const active = await activeCacheName();
        const current = active ? active.slice(CACHE_PREFIX.length) : null;
        try {
          const { version } = await fetchLatest();
          port?.postMessage({ current, latest: version });
        } catch (error) {
          port?.postMessage({ current, error: `cannot check for updates: ${error.message}` });
        }
      })(),
    );
  }
});
