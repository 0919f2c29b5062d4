// The demo page: starts the runtime with the demo's jobs, shows its runs with
// <durably-runs>, triggers jobs from two small forms and makes the app work offline.
//
// `?db=<name>` picks the database (default "demo"), so several independent demos can
// live side by side in one browser profile.

import { createDurably } from "../durably/client.js";
import "../durably/ui/runs-element.js";
import { registerServiceWorker } from "./offline.js";

const database = new URLSearchParams(location.search).get("db") || "demo";
const runs = document.querySelector("durably-runs");
const formStatus = document.querySelector("#form-status");
const offlineStatus = document.querySelector("#offline-status");
const forms = document.querySelectorAll("form");

/** Resolves with the DurablyClient once this tab is the owner or knows it is secondary
 * (its calls then go to the owner tab, so the page works the same). */
window.durablyReady = createDurably({ database, jobs: ["./jobs.py"], onBoot: runs.onBoot });
runs.connect(window.durablyReady);

function enableForms(enabled) {
  for (const button of document.querySelectorAll("form button")) button.disabled = !enabled;
}

function inputOf(form) {
  const data = new FormData(form);
  if (form.id === "countdown-form") {
    return ["countdown", { steps: Number(data.get("steps")), step_ms: Number(data.get("step_ms")) }];
  }
  return ["import-csv", { csv: String(data.get("csv")), chunk_rows: Number(data.get("chunk_rows")) }];
}

window.durablyReady.then(
  (durably) => {
    enableForms(true); // a secondary tab's calls are relayed to the tab running jobs
    for (const form of forms) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const [job, input] = inputOf(form);
        try {
          const run = await durably.trigger(job, input);
          formStatus.textContent = `Started ${job} (run ${run.id.slice(0, 8)}).`;
        } catch (error) {
          formStatus.textContent = `Could not start ${job}: ${error.name}: ${error.message}`;
        }
      });
    }
  },
  () => enableForms(false), // <durably-runs> shows why
);

// Offline support is set up once the runtime has started, so the first visit does not
// download the runtime twice at the same time.
window.durablyReady.catch(() => {}).then(() =>
  registerServiceWorker({
    onStatus: (text) => (offlineStatus.textContent = text),
    onUpdateReady: (apply) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Reload to update";
      button.addEventListener("click", apply);
      offlineStatus.replaceChildren("A new version is ready. ", button);
    },
  }).catch((error) => (offlineStatus.textContent = `Offline use is unavailable: ${error.message}`)),
);
