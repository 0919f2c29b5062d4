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
  assert.deepEqual(runtime.log, ["prepare", "prepared", "boot", "handle trigger"]);
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
  assert.deepEqual(locks.log, ["prepare", "prepared", "boot", "bridge:close", "bridge:destroy", "mount:close", "lock:release durably:app"]);
  assert.equal(worker.ended, true);
  assert.equal((await page.send("getRuns")).error.name, "DurablyError");
});

// -- requests before ready, a second init ------------------------------------------------

test("a runtime request sent right after init waits for the boot instead of failing", async () => {
  let open;
  const runtime = fakeRuntime({ gate: new Promise((resolve) => (open = resolve)) });
  const { page } = startHost({ runtime });
  const init = page.init();
  const early = page.send("getRuns"); // while the worker still waits for the lock
  await tick();
  open();
  assert.equal((await init).result.role, "owner");
  assert.deepEqual(await early, { id: 2, ok: true, result: { type: "getRuns" } });
});

test("a runtime request before init is refused with ProtocolError", async () => {
  const { page } = startHost();
  const response = await page.send("getRuns");
  assert.equal(response.error.name, "ProtocolError");
  assert.match(response.error.message, /init/);
});

test("a second init is refused and changes nothing: the tab stays owner and close releases its lock", async () => {
  const locks = new FakeLocks();
  const { page } = startHost({ locks });
  const [first, second] = await Promise.all([page.init(), page.init("other")]);
  assert.equal(first.result.role, "owner");
  assert.equal(second.error.name, "ProtocolError");
  assert.match(second.error.message, /already/);
  assert.ok(!page.eventTypes().includes("secondary"));
  assert.equal((await page.send("ping")).result.state, "ready");
  assert.equal((await page.send("close")).ok, true);
  assert.equal(locks.held("durably:app"), false);
  assert.equal(locks.held("durably:other"), false);
});

// -- close -----------------------------------------------------------------------------

test("a failing bridge close still closes the OPFS handles before the lock, and is reported", async () => {
  const locks = new FakeLocks();
  const runtime = fakeRuntime({ log: locks.log, bridgeCloseError: new Error("database is locked") });
  const { page, worker } = startHost({ locks, runtime });
  await page.init();
  const response = await page.send("close");
  assert.equal(response.ok, false);
  assert.equal(response.error.name, "DurablyError");
  assert.match(response.error.message, /database is locked/);
  assert.match(response.error.message, /released/);
  assert.deepEqual(locks.log, ["prepare", "prepared", "boot", "bridge:close", "bridge:destroy", "mount:close", "lock:release durably:app"]);
  assert.equal(worker.ended, true);
});

test("close while booting waits for the boot and releases what it opened before the lock", async () => {
  let open;
  const locks = new FakeLocks();
  const runtime = fakeRuntime({ log: locks.log, gate: new Promise((resolve) => (open = resolve)) });
  const { page } = startHost({ locks, runtime });
  const init = page.init();
  await tick();
  await tick();
  const closed = page.send("close");
  await tick();
  open();
  assert.equal((await closed).ok, true);
  await init;
  assert.deepEqual(locks.log.slice(-2), ["mount:close", "lock:release durably:app"]);
});

// -- a failed owner ----------------------------------------------------------------------

test("an owner whose boot fails closes what it opened, releases the lock, and says so", async () => {
  const locks = new FakeLocks();
  const runtime = fakeRuntime({ log: locks.log, failWith: Object.assign(new Error("cannot open durably/app.sqlite3 in OPFS"), { name: "NoModificationAllowedError" }) });
  const { page } = startHost({ locks, runtime });
  const response = await page.init();
  assert.equal(response.error.name, "NoModificationAllowedError");
  assert.match(response.error.message, /cannot open durably\/app\.sqlite3.*; this tab released the database lock so another tab can take over/);
  assert.deepEqual(locks.log, ["prepare", "prepared", "boot", "mount:close", "lock:release durably:app"]);
  assert.equal(locks.held("durably:app"), false);
  const later = await page.send("getRuns");
  assert.equal(later.error.name, "NoModificationAllowedError");
});

test("when a secondary's boot fails after taking over, the next tab in line becomes the owner", async () => {
  const locks = new FakeLocks();
  const first = startHost({ locks });
  const failing = startHost({ locks, runtime: fakeRuntime({ failWith: new Error("job module config is broken") }) });
  const third = startHost({ locks });
  assert.equal((await first.page.init()).result.role, "owner");
  assert.equal((await failing.page.init()).result.role, "secondary");
  assert.equal((await third.page.init()).result.role, "secondary");
  await first.page.send("close");
  while (!third.page.eventTypes().includes("owner")) await tick();
  const failure = failing.page.events.find((event) => event.type === "worker:error");
  assert.match(failure.error, /job module config is broken; this tab released the database lock/);
  assert.deepEqual((await third.page.send("getRuns")).result, { type: "getRuns" });
});

// -- the lock-free part: a warm standby ----------------------------------------------------

test("a secondary prepares while it waits for the lock but opens the database only once it owns it", async () => {
  const locks = new FakeLocks();
  const first = startHost({ locks });
  const second = startHost({ locks, runtime: fakeRuntime() });
  assert.equal((await first.page.init()).result.role, "owner");
  assert.equal((await second.page.init()).result.role, "secondary");
  while (!second.runtime.log.includes("prepared")) await tick();
  for (let i = 0; i < 5; i++) await tick();
  assert.deepEqual(second.runtime.log, ["prepare", "prepared"]); // warm, and no database opened
  await first.page.send("close");
  while (!second.page.eventTypes().includes("owner")) await tick();
  assert.deepEqual(second.runtime.log, ["prepare", "prepared", "boot"]);
});

test("a tab prepares before it is granted the lock, in parallel with the wait", async () => {
  const locks = new FakeLocks();
  let granted = false;
  const request = locks.request.bind(locks);
  locks.request = (name, options, callback) => {
    if (typeof options === "function") [callback, options] = [options, {}];
    return request(name, options, (lock) => {
      granted ||= lock !== null;
      return callback(lock);
    });
  };
  let open;
  const runtime = fakeRuntime({ prepareGate: new Promise((resolve) => (open = resolve)) });
  const { page } = startHost({ locks, runtime });
  const init = page.init();
  while (!runtime.log.includes("prepare")) await tick();
  assert.equal(granted, false, "prepare started before the lock was granted");
  open();
  assert.equal((await init).result.role, "owner");
});

test("an owner whose preparation fails releases the lock without opening anything", async () => {
  const locks = new FakeLocks();
  const runtime = fakeRuntime({ log: locks.log, prepareFailWith: new Error("pydantic failed to import") });
  const { page } = startHost({ locks, runtime });
  const response = await page.init();
  assert.match(response.error.message, /pydantic failed to import; this tab released the database lock/);
  assert.deepEqual(locks.log, ["prepare", "lock:release durably:app"]);
  assert.equal(locks.held("durably:app"), false);
});

test("a secondary closed while it prepares gives up its place in line and opens nothing", async () => {
  const locks = new FakeLocks();
  const first = startHost({ locks });
  let open;
  const second = startHost({ locks, runtime: fakeRuntime({ prepareGate: new Promise((resolve) => (open = resolve)) }) });
  const third = startHost({ locks });
  await first.page.init();
  assert.equal((await second.page.init()).result.role, "secondary");
  assert.equal((await third.page.init()).result.role, "secondary");
  assert.equal((await second.page.send("close")).ok, true);
  await first.page.send("close");
  while (!third.page.eventTypes().includes("owner")) await tick();
  open();
  await tick();
  assert.ok(!second.runtime.log.includes("boot"));
});

test("a secondary's preparation is silent: its page sees it secondary, not booting, until it takes over", async () => {
  const locks = new FakeLocks();
  const emitting = fakeRuntime();
  const prepare = emitting.prepare;
  emitting.prepare = async (config, io) => {
    io.emit("boot", { phase: "loading-python" });
    return prepare(config, io);
  };
  const first = startHost({ locks });
  const second = startHost({ locks, runtime: emitting });
  await first.page.init();
  assert.equal((await second.page.init()).result.role, "secondary");
  while (!(await second.page.send("ping")).result.prepared) await tick();
  assert.deepEqual(second.page.events.map((e) => e.phase).filter(Boolean), ["waiting-for-lock"]);
  await first.page.send("close");
  while (!second.page.eventTypes().includes("owner")) await tick();
  const ready = second.page.events.find((e) => e.phase === "ready");
  assert.ok(ready.timings.lockAcquiredMs >= ready.timings.preparedMs, "the standby was prepared before it got the lock");
});
