// Page side of offline support: registers the service worker (../sw.js, scope "/"),
// and on later online visits asks it whether the precached files are still current.
// When they are not, it registers `sw.js?v=<new version>`: the browser installs that
// version next to the running one (a complete new cache), and it takes over when every
// tab of the old version is gone, or at once when the page calls the `apply` function
// handed to onUpdateReady (which reloads this tab). Other open tabs stay on the version
// they loaded with until they reload (see sw.js).

const SW_URL = new URL("../sw.js", import.meta.url);
const SCOPE = new URL("../", import.meta.url);
const CHECK_TIMEOUT_MS = 15_000;

/**
 * @param {object} [options]
 * @param {(text: string) => void} [options.onStatus]  Told when offline use becomes possible.
 * @param {(apply: () => void) => void} [options.onUpdateReady]  Told when a new version is
 *   installed and waiting; `apply()` switches to it and reloads the page.
 * @returns {Promise<ServiceWorkerRegistration | null>} null where service workers are unavailable.
 */
export async function registerServiceWorker({ onStatus = () => {}, onUpdateReady = () => {} } = {}) {
  const container = navigator.serviceWorker;
  if (!container) return null; // not a secure context, or a browser without service workers
  const existing = await container.getRegistration(SCOPE.href);
  const registration = existing ?? (await container.register(SW_URL.href, { scope: SCOPE.href, updateViaCache: "none" }));
  watchForUpdates(registration, onUpdateReady);
  container.ready.then(() => onStatus("Ready for offline use: everything this page needs is cached."));
  if (existing && navigator.onLine) await checkForUpdate(registration).catch(() => {});
  return registration;
}

/** Ask the active service worker whether the server has newer files; install them if so. */
async function checkForUpdate(registration) {
  await registration.update(); // an edited sw.js installs itself, with the latest files
  if (registration.installing || registration.waiting || !registration.active) return;
  const { current, latest } = await ask(registration.active, { type: "check-version" });
  if (latest && latest !== current) {
    const url = new URL(SW_URL);
    url.searchParams.set("v", latest);
    await navigator.serviceWorker.register(url.href, { scope: SCOPE.href, updateViaCache: "none" });
  }
}

function ask(worker, message) {
  return new Promise((resolve, reject) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => reject(new Error("the service worker did not answer")), CHECK_TIMEOUT_MS);
    channel.port1.onmessage = ({ data }) => {
      clearTimeout(timer);
      if (data?.error) reject(new Error(data.error));
      else resolve(data);
    };
    worker.postMessage(message, [channel.port2]);
  });
}

function watchForUpdates(registration, onUpdateReady) {
  const container = navigator.serviceWorker;
  const offer = (worker) => {
    if (!container.controller) return; // the first install: nothing to replace
    onUpdateReady(() => {
      container.addEventListener("controllerchange", () => location.reload(), { once: true });
      worker.postMessage({ type: "skip-waiting" });
    });
  };
  if (registration.waiting) offer(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const worker = registration.installing;
    worker?.addEventListener("statechange", () => {
      if (worker.state === "installed") offer(worker);
    });
  });
}
