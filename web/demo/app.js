// The demo page: starts the runtime with the demo's jobs and lists runs live.
import { createDurably } from "../durably/client.js";

const status = document.querySelector("#status");
const tbody = document.querySelector("#runs tbody");

window.durablyReady = createDurably({
  database: "demo",
  jobs: ["/demo/jobs.py"],
  onBoot: (phase) => (status.textContent = `Starting: ${phase}…`),
});

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text; // job text is always shown as text, never as HTML
  return td;
}

async function render(durably) {
  const runs = await durably.getRuns({ limit: 50 });
  tbody.replaceChildren(
    ...runs.map((run) => {
      const row = document.createElement("tr");
      const progress = run.progress ? `${run.progress.current}/${run.progress.total ?? "?"}` : "";
      row.append(cell(run.jobName), cell(run.status), cell(progress), cell(new Date(run.createdAt).toLocaleTimeString()));
      const actions = document.createElement("td");
      const action = (label, fn) => {
        const button = document.createElement("button");
        button.textContent = label;
        button.onclick = () => fn(run.id).catch((error) => alert(`${error.name}: ${error.message}`));
        actions.append(button);
      };
      if (run.status === "pending" || run.status === "leased") action("Cancel", (id) => durably.cancel(id));
      else {
        action("Retrigger", (id) => durably.retrigger(id));
        action("Delete", (id) => durably.deleteRun(id));
      }
      row.append(actions);
      return row;
    }),
  );
}

window.durablyReady.then(
  (durably) => {
    const showRole = () => {
      status.dataset.role = durably.role;
      status.textContent =
        durably.role === "owner"
          ? `Ready: jobs ${durably.jobs.join(", ")}`
          : "Another tab owns the job runtime for this database; this tab shows its warning until that tab closes.";
    };
    showRole();
    durably.on("owner", showRole);
    let queued = false;
    durably.on("*", (event) => {
      if (queued || !event.runId) return;
      queued = true; // at most one refresh per frame, however many events arrive
      requestAnimationFrame(() => {
        queued = false;
        render(durably).catch(() => {});
      });
    });
    if (durably.role === "owner") render(durably);
    document.querySelector("#countdown-form").onsubmit = (e) => {
      e.preventDefault();
      const form = new FormData(e.target);
      durably.trigger("countdown", { steps: Number(form.get("steps")), step_ms: Number(form.get("step_ms")) })
        .catch((error) => alert(`${error.name}: ${error.message}`));
    };
    document.querySelector("#csv-form").onsubmit = (e) => {
      e.preventDefault();
      durably.trigger("import-csv", { csv: new FormData(e.target).get("csv") })
        .catch((error) => alert(`${error.name}: ${error.message}`));
    };
  },
  (error) => {
    status.textContent = `Could not start: ${error.name}: ${error.message}`;
  },
);
