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
// used; activate makes it the active cache and deletes every other version's cache.
// Precached files are served only from the active cache, so a page never mixes files of
// two versions. To pick up changed files, the page asks ("check-version") and registers
// `sw.js?v=<latest>`, which installs the next version next to the running one.

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
  "durably/worker.js",
  "durably/pyodide-boot.js",
  "durably/opfs-fs.js",
  "durably/runs-element.js",
  "durably/runs-view.js",
  "durably/runs-style.js",
];
/** The runtime: manifest.json lists the Pyodide files and the wheels it loads. */
const VENDOR = "vendor/";

const url = (path) => new URL(path, self.location.href).href;
const APP_URLS = new Set(APP_FILES.map(url));
const VENDOR_URL = url(VENDOR);

const ACTIVE_KEY = url("__durably-sw__/active");
const INSTALLED_KEY = url("__durably-sw__/installed");

async function readState(key) {
  const entry = await (await caches.open(STATE_CACHE)).match(key);
  return entry ? entry.text() : null;
}

async function writeState(key, name) {
  await (await caches.open(STATE_CACHE)).put(key, new Response(name));
}

/** The active version's cache name (memoised: it changes only when a worker activates). */
let activeCache = null;

async function activeCacheName() {
  activeCache ??= await readState(ACTIVE_KEY);
  return activeCache;
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
      const cache = await caches.open(name);
      await cache.addAll(vendorUrls(latest.manifest).map((href) => new Request(href, { cache: "no-cache" })));
      await cache.put(url(`${VENDOR}manifest.json`), latest.manifestResponse);
      await Promise.all(latest.app.map(({ url, response }) => cache.put(url, response)));
      // Recorded last: a cache that is not complete is never used. A newer install
      // overwrites this, and then this worker never activates.
      await writeState(INSTALLED_KEY, name);
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const own = await readState(INSTALLED_KEY);
      await writeState(ACTIVE_KEY, own);
      activeCache = own;
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== own) await caches.delete(name);
      }
      await self.clients.claim(); // the first visit's page works offline without a reload
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
  event.respondWith(
    (async () => {
      const name = await activeCacheName();
      const cached = name ? await (await caches.open(name)).match(key) : undefined;
      return cached ?? fetch(request);
    })(),
  );
});

self.addEventListener("message", (event) => {
  const { type } = event.data ?? {};
  if (type === "skip-waiting") {
    self.skipWaiting();
  } else if (type === "check-version") {
    const port = event.ports[0];
    event.waitUntil(
      (async () => {
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
