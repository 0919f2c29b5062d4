// The worker's request handling, ownership and shutdown (worker.js createWorkerHost),
// driven over a fake port with fake Web Locks and a boot that needs no Pyodide.

import assert from "node:assert/strict";
import { test } from "node:test";

import { FakeLocks, fakeRuntime, startHost, tick } from "./fakes.js";

test("the first tab becomes the owner and its requests reach the bridge", async () => {
  const { page, runtime } = startHost();
  const init = await page.init();
  assert.deepEqual(init.result, { role: "owner", jobs: ["countdown"], jobErrors: [] });
  const response = await page.send("trigger", { job: "countdown", input: {} });
  assert.deepEqual(response.result, { type: "trigger" });
  assert.deepEqual(runtime.log, ["boot", "handle trigger"]);
  assert.deepEqual(page.events.map((e) => e.phase).filter(Boolean), ["waiting-for-lock", "ready"]);
});

test("a malformed request gets a ProtocolError response, not a crash", async () => {
  const { page } = startHost();
  const answered = new Promise((resolve) => page.pending.set(null, resolve));
  page.port.postMessage({ type: "trigger" });
  const response = await answered;
  assert.equal(response.ok, false);
  assert.equal(response.error.name, "ProtocolError");
  const unknown = await page.send("dance");
  assert.equal(unknown.error.name, "ProtocolError");
  assert.match(unknown.error.message, /unknown request type "dance"/);
});

test("init refuses a database name that is not a plain file name", async () => {
  const { page } = startHost();
  const response = await page.init("../etc");
  assert.equal(response.error.name, "ValidationError");
});

test("init refuses Python from another origin", async () => {
  const { page } = startHost();
  const response = await page.init("app", { vendorUrl: "https://cdn.example/vendor" });
  assert.equal(response.error.name, "ValidationError");
  assert.match(response.error.message, /not on this page's origin/);
});

test("a context without a capability fails with UnsupportedError naming it", async () => {
  const { page } = startHost({ missing: "Web Locks (navigator.locks)" });
  const response = await page.init();
  assert.equal(response.error.name, "UnsupportedError");
  assert.match(response.error.message, /Web Locks/);
});

test("values JSON would change are refused with ValidationError", async () => {
  const { page } = startHost();
  await page.init();
  const response = await page.send("trigger", { job: "countdown", input: { n: NaN } });
  assert.equal(response.error.name, "ValidationError");
  assert.match(response.error.message, /NaN/);
});

test("a second tab is secondary, refuses requests, and takes over when the owner closes", async () => {
  const locks = new FakeLocks();
  const first = startHost({ locks });
  const second = startHost({ locks });
  assert.equal((await first.page.init()).result.role, "owner");
  assert.equal((await second.page.init()).result.role, "secondary");
  assert.ok(second.page.eventTypes().includes("secondary"));
  const refused = await second.page.send("getRuns");
  assert.equal(refused.error.name, "NotOwnerError");

  assert.equal((await first.page.send("close")).ok, true);
  assert.equal(first.worker.ended, true);
  while (!second.page.eventTypes().includes("owner")) await tick();
  assert.deepEqual((await second.page.send("getRuns")).result, { type: "getRuns" });
});

test("close stops the bridge, closes the OPFS mount and releases the lock, in that order", async () => {
  const locks = new FakeLocks();
  const runtime = fakeRuntime({ log: locks.log });
  const { page, worker } = startHost({ locks, runtime });
  await page.init();
  const response = await page.send("close");
  assert.equal(response.ok, true);
  assert.deepEqual(locks.log, ["boot", "bridge:close", "bridge:destroy", "mount:close", "lock:release durably:app"]);
  assert.equal(worker.ended, true);
  assert.equal((await page.send("getRuns")).error.name, "DurablyError");
});
