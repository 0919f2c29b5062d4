// The page-side client (client.js) against a worker host in this process: new Worker
// and MessageChannel are the fakes of fakes.js, the boot needs no Pyodide.

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { DurablyClient, createDurably } from "../../web/durably/client.js";
import { fakeRuntime, installFakeWorker, tick } from "./fakes.js";

globalThis.location = { href: "http://127.0.0.1:8000/demo/" };
const OPTIONS = { database: "app", vendorUrl: "/vendor" };

let fake;
beforeEach(() => {
  fake = installFakeWorker();
});

test("createDurably resolves as the owner and calls round-trip", async () => {
  const durably = await createDurably(OPTIONS);
  assert.equal(durably.role, "owner");
  assert.deepEqual(durably.jobs, ["countdown"]);
  assert.deepEqual(await durably.trigger("countdown", { steps: 1 }), { type: "trigger" });
  await durably.close();
  assert.equal(fake.started[0].terminated, true);
});

test("a second client on the same database is secondary and its calls reject with NotOwnerError", async () => {
  const owner = await createDurably(OPTIONS);
  const secondary = await createDurably(OPTIONS);
  assert.equal(secondary.role, "secondary");
  await assert.rejects(secondary.getRuns(), { name: "NotOwnerError" });
  await owner.close();
  await secondary.close();
});

test("an input the port cannot carry rejects with ValidationError", async () => {
  const durably = await createDurably(OPTIONS);
  await assert.rejects(durably.trigger("countdown", { fn: () => 1 }), { name: "ValidationError" });
  await durably.close();
});

test("a worker that stops answering makes the call reject with TimeoutError", async () => {
  const durably = await createDurably({ ...OPTIONS, requestTimeoutMs: 20 });
  const workerPort = durably._port.other;
  const listen = workerPort.onmessage;
  workerPort.onmessage = null; // the worker hears nothing
  await assert.rejects(durably.getRuns(), { name: "TimeoutError" });
  workerPort.onmessage = listen;
  await durably.close();
});

test("a failing worker rejects pending calls with WorkerError", async () => {
  const durably = await createDurably(OPTIONS);
  const workerPort = durably._port.other;
  const listen = workerPort.onmessage;
  workerPort.onmessage = null; // the call stays pending
  const call = durably.getRuns();
  fake.started[0].onerror({ message: "boom" });
  await assert.rejects(call, { name: "WorkerError", message: /boom/ });
  workerPort.onmessage = listen;
  await durably.close();
});

test("on() returns a function that unsubscribes", async () => {
  const durably = new DurablyClient(OPTIONS);
  const seen = [];
  const off = durably.on("boot", (event) => seen.push(event.phase));
  await durably.ready;
  off();
  durably._emit({ type: "boot", phase: "again" });
  assert.deepEqual(seen, ["waiting-for-lock", "ready"]);
  await durably.close();
});

test("a boot that fails rejects ready with the boot's error", async () => {
  fake = installFakeWorker({ runtime: () => fakeRuntime({ failWith: Object.assign(new Error("no wheels"), { name: "BootError" }) }) });
  await assert.rejects(createDurably(OPTIONS), { name: "BootError", message: /no wheels/ });
});


// -- calls before ready ------------------------------------------------------------------

test("calls made before the client is ready wait for it", async () => {
  const durably = new DurablyClient(OPTIONS);
  const [run, runs] = await Promise.all([durably.trigger("countdown", {}), durably.getRuns()]);
  assert.deepEqual(run, { type: "trigger" });
  assert.deepEqual(runs, { type: "getRuns" });
  await durably.close();
});

test("calls made before ready reject with the boot's error when the boot fails", async () => {
  fake = installFakeWorker({ runtime: () => fakeRuntime({ failWith: Object.assign(new Error("no wheels"), { name: "BootError" }) }) });
  const durably = new DurablyClient(OPTIONS);
  const early = durably.getRuns();
  await assert.rejects(durably.ready, { name: "BootError" });
  await assert.rejects(early, { name: "BootError", message: /no wheels/ });
});

// -- subscribe ends -----------------------------------------------------------------------

async function settlesWithin(promise, ms = 500) {
  let timer;
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test("a subscribe iterator waiting for events ends when the client closes", async () => {
  const durably = await createDurably(OPTIONS);
  const events = durably.subscribe("r1");
  const next = events.next();
  await tick();
  await tick();
  await durably.close();
  assert.deepEqual(await settlesWithin(next), { done: true, value: undefined });
});

test("a subscribe iterator ends when the client closes before the run is read", async () => {
  const durably = new DurablyClient(OPTIONS);
  const next = durably.subscribe("r1").next();
  await durably.close();
  assert.deepEqual(await settlesWithin(next), { done: true, value: undefined });
});

test("a subscribe iterator ends when the worker fails", async () => {
  const durably = await createDurably(OPTIONS);
  const events = durably.subscribe("r1");
  const next = events.next();
  await tick();
  await tick();
  fake.started[0].onerror({ message: "out of memory" });
  assert.deepEqual(await settlesWithin(next), { done: true, value: undefined });
  await durably.close();
});

test("events received before close are still delivered, then the iterator ends", async () => {
  const durably = await createDurably(OPTIONS);
  const events = durably.subscribe("r1");
  const first = events.next();
  await tick();
  await tick();
  durably._emit({ type: "run:progress", runId: "r1" });
  assert.equal((await first).value.type, "run:progress");
  await durably.close();
  assert.deepEqual(await settlesWithin(events.next()), { done: true, value: undefined });
});
