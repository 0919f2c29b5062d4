// Page side of the benchmarks: `window.bench` is a small promise API that bench/browser.py
// drives. It starts the runtime through the public client (with the instrumented worker,
// bench-worker.js), records the receipt time of every event, and times workloads.
//
// `?config=<JSON>` starts the runtime at page load (the resume benchmark reloads such a
// page); times are performance.now(), i.e. ms since this document's navigation started.

import { DurablyClient } from "../durably/client.js";

const TERMINAL = new Set(["run:complete", "run:fail", "run:cancel", "run:delete"]);

let client = null;
let boot = null; // {started, phases: {phase: ms}, readyMs}
/** Every event received: {t, type, runId, stepIndex}. */
const events = [];
/** runId -> {t, type} of its terminal event. */
const finished = new Map();
let onFinished = () => {};
let nextBenchId = 1;
const benchReplies = new Map();

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function record(event) {
  const t = performance.now();
  events.push({ t, epoch: performance.timeOrigin + t, type: event.type, runId: event.runId, stepIndex: event.stepIndex, ts: event.timestamp });
  if (TERMINAL.has(event.type)) {
    finished.set(event.runId, { t, type: event.type });
    onFinished();
  }
}

/** Resolve when every id in `ids` has had its terminal event. */
function whenFinished(ids) {
  return new Promise((resolve) => {
    const check = () => {
      if (ids.every((id) => finished.has(id))) {
        onFinished = () => {};
        resolve();
      }
    };
    onFinished = check;
    check();
  });
}

/** A direct message to the instrumented worker (see bench-instrument.js). */
function workerCall(type, fields = {}) {
  const id = nextBenchId++;
  return new Promise((resolve, reject) => {
    benchReplies.set(id, { resolve, reject });
    client._worker.postMessage({ ...fields, type, id });
  });
}

function onWorkerMessage({ data }) {
  const entry = benchReplies.get(data?.benchReply);
  if (!entry) return;
  benchReplies.delete(data.benchReply);
  if (data.ok) entry.resolve(data.result);
  else entry.reject(new Error(data.error));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function start(config) {
  if (client) throw new Error("already started");
  const started = performance.now();
  boot = { started, phases: {}, readyMs: null };
  client = new DurablyClient({
    jobs: ["/demo/jobs.py", "/testing/bench_jobs.py"],
    workerUrl: new URL("./bench-worker.js", import.meta.url),
    onBoot: (phase, event) => {
      boot.phases[phase] = performance.now() - started;
      if (phase === "ready") boot.worker = event.timings ?? null; // ms since the worker's init
    },
    ...config,
  });
  client.on("*", record);
  client._worker.addEventListener("message", onWorkerMessage);
  setStatus("booting…");
  await client.ready;
  boot.readyMs = performance.now() - started;
  if (client.role === "owner") {
    const asked = performance.now();
    await client.countRuns({});
    boot.firstRequestMs = performance.now() - asked;
  }
  setStatus(`ready (${client.role})`);
  return { ...boot, role: client.role, jobs: client.jobs, jobErrors: client.jobErrors };
}

async function bareBoot(options = {}) {
  const started = performance.now();
  const worker = new Worker(new URL("./bare-boot-worker.js", import.meta.url), { type: "module" });
  try {
    const reply = await new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => resolve(data);
      worker.onerror = (event) => reject(new Error(event.message));
      worker.postMessage({ id: 1, ...options });
    });
    if (!reply.ok) throw new Error(reply.error);
    return { ms: performance.now() - started, insideWorkerMs: reply.ms, phases: reply.phases };
  } finally {
    worker.terminate();
  }
}

/** One snapshot-worker.js run ({make} or {snapshot} or plain): its phases. */
function snapshotRun(message, transfer = []) {
  const worker = new Worker(new URL("./snapshot-worker.js", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.ok ? resolve(data) : reject(new Error(data.error)));
    worker.onerror = (event) => reject(new Error(event.message));
    worker.postMessage(message, transfer);
  }).finally(() => worker.terminate());
}

/** The memory snapshot experiment (ADR 0007): make one, then alternate a plain
 * boot and a restored one, each installing the wheels and importing the runtime. */
async function snapshotExperiment({ reps }) {
  const made = await snapshotRun({ make: true });
  const out = { make: made.phases, bytes: made.bytes, failedImports: made.failed, plain: [], restored: [] };
  for (let i = 0; i < reps; i++) {
    out.plain.push((await snapshotRun({})).phases);
    const copy = made.snapshot.slice();
    out.restored.push((await snapshotRun({ snapshot: copy }, [copy.buffer])).phases);
  }
  return out;
}

/** Our filesystem against mountNativeFS + syncfs, in a worker of its own. */
async function compareStorage(options) {
  const worker = new Worker(new URL("./bench-nativefs-worker.js", import.meta.url), { type: "module" });
  try {
    const reply = await new Promise((resolve, reject) => {
      worker.onmessage = ({ data }) => resolve(data);
      worker.onerror = (event) => reject(new Error(event.message));
      worker.postMessage(options);
    });
    if (!reply.ok) throw new Error(reply.error);
    return reply.result;
  } finally {
    worker.terminate();
  }
}

/** Trigger `count` runs at once (or triggerAndWait each, at once or with `wait:
 * "sequential"` one after another); resolve when all finished. */
async function runBatch({ job, input, count, wait = false }) {
  const before = await workerCall("bench:counters");
  const started = performance.now();
  let ids;
  if (wait === "sequential") {
    // One after another, each awaited: the latency of a whole run, end to end.
    ids = [];
    for (let i = 0; i < count; i++) ids.push((await client.triggerAndWait(job, input)).id);
  } else if (wait) {
    const results = await Promise.all(Array.from({ length: count }, () => client.triggerAndWait(job, input)));
    ids = results.map((r) => r.id);
  } else {
    const runs = await Promise.all(Array.from({ length: count }, () => client.trigger(job, input)));
    ids = runs.map((r) => r.id);
  }
  const triggeredMs = performance.now() - started;
  await whenFinished(ids);
  const ms = performance.now() - started;
  const after = await workerCall("bench:counters");
  const failed = ids.filter((id) => finished.get(id).type !== "run:complete").length;
  return { count, ms, triggeredMs, runsPerS: (count * 1000) / ms, failed, io: diff(after, before, count) };
}

function diff(after, before, per) {
  const out = {};
  for (const key of Object.keys(after)) out[key] = (after[key] - before[key]) / per;
  return out;
}

/** One countdown run with step_ms 0: ms per step, and OPFS calls per step. */
function countdown({ steps }) {
  return stepsRun("countdown", { steps, step_ms: 0 }, steps);
}

/** One run of a bench_jobs.py step job (`anchor`, `chatty`): ms and OPFS calls per step. */
async function stepJob({ job, steps }) {
  const result = await stepsRun(job, { steps }, steps);
  // Steps that never yield reach the page in a few batched messages: time them by the
  // worker's own event timestamps (ms resolution, over the whole run's steps).
  return { ...result, msPerStep: result.workerMsPerStep };
}

async function stepsRun(job, input, steps) {
  const before = await workerCall("bench:counters");
  const started = performance.now();
  const run = await client.trigger(job, input);
  await whenFinished([run.id]);
  const ms = performance.now() - started;
  const after = await workerCall("bench:counters");
  const mine = events.filter((e) => e.runId === run.id);
  const starts = mine.filter((e) => e.type === "step:start");
  const completes = mine.filter((e) => e.type === "step:complete");
  // Between the first step's start and the last step's completion, as seen by the page.
  const stepsMs = completes.at(-1).t - starts[0].t;
  const workerStepsMs = new Date(completes.at(-1).ts).getTime() - new Date(starts[0].ts).getTime();
  return {
    steps,
    runMs: ms,
    msPerStep: stepsMs / steps,
    workerMsPerStep: workerStepsMs / steps,
    io: diff(after, before, steps),
    status: finished.get(run.id).type,
  };
}

/** A job emitting `count` progress events in a tight loop: events/s received by the page. */
async function progressBurst({ count }) {
  const started = performance.now();
  const run = await client.trigger("bench-progress", { count });
  await whenFinished([run.id]);
  const received = events.filter((e) => e.runId === run.id && e.type === "run:progress");
  // From the trigger to the last event received (the trigger and claim are a few ms).
  const ms = received.at(-1).t - started;
  const messages = new Set(received.map((e) => e.t)).size; // events received together
  return { count, received: received.length, ms, eventsPerS: (received.length * 1000) / ms, messages };
}

async function probe(action, fields = {}) {
  const result = await client.triggerAndWait("bench-probe", { action, ...fields });
  return result.output;
}

/** SQL statements and OPFS calls over `seconds`, between two probe runs. */
async function traced(seconds) {
  await probe("trace-start");
  const before = await workerCall("bench:counters");
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = await workerCall("bench:counters");
  const trace = await probe("trace-read");
  return { trace, writes: after.writes - before.writes, flushes: after.flushes - before.flushes, reads: after.reads - before.reads };
}

/**
 * What the runtime does while nothing is pending. The probe runs that bracket the wait
 * run statements of their own, so the same bracket around no wait is subtracted.
 */
async function idle({ seconds }) {
  await new Promise((resolve) => setTimeout(resolve, 300));
  const bracket = await traced(0);
  const long = await traced(seconds);
  const statements = {};
  for (const [kind, count] of Object.entries(long.trace.kinds)) {
    const extra = count - (bracket.trace.kinds[kind] ?? 0);
    if (extra) statements[kind] = extra;
  }
  return {
    seconds,
    statementsPerS: (long.trace.count - bracket.trace.count) / seconds,
    writeStatements: long.trace.writes - bracket.trace.writes,
    statements,
    opfsWrites: long.writes,
    opfsFlushes: long.flushes,
    opfsReadsPerS: long.reads / seconds,
  };
}

async function timed(fn, reps) {
  const times = [];
  let result;
  for (let i = 0; i < reps; i++) {
    const started = performance.now();
    result = await fn();
    times.push(performance.now() - started);
  }
  return { ms: median(times), result };
}

window.bench = {
  start,
  bareBoot,
  snapshotExperiment,
  compareStorage,
  runBatch,
  countdown,
  stepJob,
  progressBurst,
  probe,
  idle,
  timed: (name, filter, reps = 5) => timed(() => client[name](filter), reps),
  async purge({ limit }) {
    const started = performance.now();
    const purged = await client.purgeRuns({ olderThan: new Date(Date.now() + 1000), limit });
    const ms = performance.now() - started;
    return { purged, ms, runsPerS: (purged * 1000) / ms };
  },
  raw: (count, flush = true) => workerCall("bench:raw-write-flush", { count, flush }),
  counters: () => workerCall("bench:counters"),
  boot: () => boot,
  /** The worker's state; `prepared` says a secondary is a warm standby. */
  ping: () => client._request("ping", {}),
  epoch: () => performance.timeOrigin + performance.now(),
  /** Whether the runtime has cached its Python memory snapshot (ADR 0007). */
  snapshotCached: async () => (await (await caches.open("durably-pyodide-snapshot")).keys()).length > 0,
  events: (runId) => events.filter((e) => e.runId === runId),
  trigger: (job, input) => client.trigger(job, input),
  getLogs: (runId) => client.getLogs(runId),
  getRuns: (filter) => client.getRuns(filter),
  whenFinished,
  async close() {
    await client?.close();
    client = null;
  },
};

const config = new URLSearchParams(location.search).get("config");
window.benchReady = config ? start(JSON.parse(config)) : Promise.resolve(null);
window.benchReady.catch((error) => setStatus(`failed: ${error.name}: ${error.message}`));
if (!config) setStatus("idle");
