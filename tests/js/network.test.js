// The page's network state reaches the runtime: the client relays its window's
// online/offline events to the worker, which hands them to the bridge once it is ready.

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { createDurably } from "../../web/durably/client.js";
import { fakeRuntime, installFakeWorker, startHost } from "./fakes.js";

globalThis.location = { href: "http://127.0.0.1:8000/demo/" };

test("the worker passes the page's network state to a ready runtime", async () => {
  const { page, runtime } = startHost();
  await page.init();
  assert.deepEqual(await page.send("network", { online: false }), { id: 2, ok: true, result: null });
  await page.send("network", { online: true });
  assert.deepEqual(runtime.log.filter((line) => line.startsWith("online")), ["online false", "online true"]);
});

test("a network state sent before the runtime is ready is applied when it is", async () => {
  let open;
  const runtime = fakeRuntime({ gate: new Promise((resolve) => (open = resolve)) });
  const { page } = startHost({ runtime });
  await page.send("network", { online: true });
  const init = page.init();
  await page.send("network", { online: false });
  assert.deepEqual(runtime.log, ["prepare", "prepared", "boot"]); // still booting: nothing to tell yet
  open();
  await init;
  assert.deepEqual(runtime.log.filter((line) => line.startsWith("online")), ["online false"]);
});

test("a network request without a boolean is refused with ValidationError", async () => {
  const { page } = startHost();
  const reply = await page.send("network", { online: "yes" });
  assert.equal(reply.ok, false);
  assert.equal(reply.error.name, "ValidationError");
});

/** A window whose navigator.onLine and online/offline listeners the test controls. */
function fakeWindow() {
  const listeners = new Set();
  globalThis.navigator = { onLine: true };
  globalThis.addEventListener = (type, listener, { signal } = {}) => {
    const entry = { type, listener };
    listeners.add(entry);
    signal?.addEventListener("abort", () => listeners.delete(entry));
  };
  return {
    listeners,
    setOnline(online) {
      globalThis.navigator.onLine = online;
      for (const { type, listener } of listeners) if (type === (online ? "online" : "offline")) listener();
    },
  };
}

afterEach(() => {
  delete globalThis.addEventListener;
  delete globalThis.navigator;
});

test("the client relays the page's online/offline events until it closes", async () => {
  const { listeners, setOnline } = fakeWindow();
  const fake = installFakeWorker();
  const durably = await createDurably({ database: "net", vendorUrl: "/vendor" });
  const { log } = fake.started[0].runtime;
  setOnline(false);
  await durably.getRuns(); // a round trip: the relayed state has arrived before its answer
  setOnline(true);
  await durably.getRuns();
  assert.deepEqual(log.filter((line) => line.startsWith("online")), ["online true", "online false", "online true"]);
  const networkListeners = () => [...listeners].filter(({ type }) => type === "online" || type === "offline");
  assert.equal(networkListeners().length, 2);
  await durably.close();
  assert.equal(listeners.size, 0); // a closed client no longer listens
});
