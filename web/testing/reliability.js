// The reliability tests' page: starts the runtime like an application page would and
// exposes the client promise as `window.durablyReady`.
//
// `?config=<JSON>` is merged over the defaults below and passed to the client, so a test
// can pick the database, job modules, limits, a wrapper worker (`workerUrl`) and so on;
// `?db=<name>` is a shortcut for the database alone. `?hold` waits to start until some
// page calls `window.go()`, which starts every held page of the origin at the same
// moment (a BroadcastChannel message). Messages the worker posts on its own global
// (test instrumentation, see count-sync-handles.js) are collected in
// `window.workerReports`.

import { DurablyClient } from "../durably/client.js";

const params = new URLSearchParams(location.search);
const defaults = {
  database: params.get("db") || "reliability",
  jobs: ["./torture_jobs.py"],
  preserveSteps: true,
  maxConcurrentRuns: 2,
};
const config = { ...defaults, ...JSON.parse(params.get("config") || "{}") };
if (config.workerUrl) config.workerUrl = new URL(config.workerUrl, location.href);
window.durablyConfig = config;
window.workerReports = [];

if (params.has("hold")) {
  await new Promise((resolve) => {
    const channel = new BroadcastChannel("durably-test:go");
    channel.onmessage = resolve;
    window.go = () => {
      channel.postMessage("go");
      resolve();
    };
  });
}

const client = new DurablyClient(config);
client._worker.addEventListener("message", (event) => window.workerReports.push(event.data));
window.durablyReady = client.ready;
window.durablyReady.catch(() => {}); // tests read the rejection through the promise
