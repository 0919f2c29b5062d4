// The page-side client (client.js) against a worker host in this process: new Worker
// and MessageChannel are the fakes of fakes.js, the boot needs no Pyodide.

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { DurablyClient, createDurably } from "../../web/durably/client.js";
import { FakeBroadcastChannel, fakeRuntime, installFakeWorker, tick } from "./fakes.js";

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

test("a second client on the same database is secondary and relays its calls to the owner", async () => {
  const owner = await createDurably(OPTIONS);
  const secondary = await createDurably(OPTIONS);
  assert.equal(secondary.role, "secondary");
  assert.deepEqual(await secondary.getRuns(), { type: "getRuns" });
  // The secondary's worker prepared Python while waiting for the lock, but never booted
  // the runtime: it opened no database.
  assert.deepEqual(fake.started[1].runtime.log, ["prepare", "prepared"]);
  assert.ok(fake.started[0].runtime.log.includes("handle getRuns"));
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

// -- tabs ---------------------------------------------------------------------------------

test("a secondary receives the owner's runtime events, not its worker's own events", async () => {
  const owner = await createDurably(OPTIONS);
  const secondary = await createDurably(OPTIONS);
  await tick();
  const seen = [];
  secondary.on("*", (event) => event.type !== "role" && seen.push(event));
  fake.started[0].runtime.bridge.postEvents([{ type: "run:progress", runId: "r1", jobName: "countdown", timestamp: 0 }]);
  owner._emit({ type: "boot", phase: "ready" }); // this tab's own: not relayed
  for (let i = 0; i < 6; i++) await tick();
  assert.deepEqual(seen, [{ type: "run:progress", runId: "r1", jobName: "countdown", timestamp: "1970-01-01T00:00:00.000Z" }]);
  // The batch crossed to the other tabs as the worker's text, not as cloned objects.
  const relayed = FakeBroadcastChannel.log.filter((message) => message.kind === "events");
  assert.equal(relayed.length, 1);
  assert.equal(typeof relayed[0].text, "string");
  await owner.close();
  await secondary.close();
});

test("runtime events arrive with ISO-8601 dates, like run records", async () => {
  const durably = await createDurably(OPTIONS);
  const seen = [];
  durably.on("*", (event) => seen.push(event));
  const at = Date.parse("2026-05-04T03:02:01.123Z");
  fake.started[0].runtime.bridge.postEvents([
    { type: "step:start", runId: "r1", jobName: "countdown", timestamp: at, stepName: "a", stepIndex: 0 },
    { type: "run:leased", runId: "r1", jobName: "countdown", timestamp: at, leaseOwner: "tab", leaseExpiresAt: at + 30_000, leaseGeneration: 1 },
    { type: "run:wait", runId: "r1", jobName: "countdown", timestamp: at, kind: "event", name: "go", until: null },
  ]);
  for (let i = 0; i < 4; i++) await tick();
  assert.deepEqual(seen.map((event) => event.timestamp), Array(3).fill("2026-05-04T03:02:01.123Z"));
  assert.equal(seen[1].leaseExpiresAt, "2026-05-04T03:02:31.123Z");
  assert.equal(seen[2].until, null);
  assert.deepEqual(seen[0], { type: "step:start", runId: "r1", jobName: "countdown", timestamp: "2026-05-04T03:02:01.123Z", stepName: "a", stepIndex: 0 });
  await durably.close();
});

test("when the owner closes, the next tab takes over, emits role, and a call in flight is answered by it", async () => {
  const owner = await createDurably(OPTIONS);
  const next = await createDurably(OPTIONS);
  const third = await createDurably(OPTIONS);
  await tick();
  const roles = [];
  next.on("role", (event) => roles.push(event.role));
  const listen = owner._port.onmessage;
  owner._port.onmessage = null; // the owner's worker answers go nowhere: the call stays in flight
  const call = third.getRuns();
  for (let i = 0; i < 6; i++) await tick();
  assert.ok(fake.started[0].runtime.log.includes("handle getRuns")); // the first owner had it
  owner._port.onmessage = listen;
  await owner.close();
  assert.deepEqual(await settlesWithin(call, 2000), { type: "getRuns" });
  assert.equal(next.role, "owner");
  assert.equal(roles.at(-1), "owner"); // after "secondary" ones while no owner was known
  assert.equal(third.role, "secondary");
  assert.ok(fake.started[1].runtime.log.includes("handle getRuns")); // served by the new owner
  await next.close();
  await third.close();
});
