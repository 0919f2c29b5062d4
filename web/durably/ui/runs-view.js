// The DOM of <durably-runs>: its fixed shell (boot indicator, banner, notice, toolbar,
// table) and one RunRow per listed run (its row and its details row).
// Invariant: job-supplied text (job names, labels, progress messages, errors) reaches
// the DOM only through dom.js (text or attribute values, never markup), and updates
// compare before writing, so re-rendering an unchanged row touches nothing.

import { isTerminalStatus, RUN_STATUSES } from "../statuses.js";
import { el, setAttr, setText } from "./dom.js";
import { elapsedMs, formatDuration, formatTime, progressText, shortId, STATUS_TEXT, statusText } from "./format.js";
import { DetailsView } from "./run-details-view.js";

let nextRowId = 1;

/** The two table rows of one run, updated in place. */
export class RunRow {
  constructor(run) {
    this.id = run.id;
    const detailsId = `run-details-${nextRowId++}`;
    this.toggle = el("button", { className: "toggle", part: "toggle", attrs: { type: "button", "aria-expanded": "false", "aria-controls": detailsId, "data-action": "toggle", "data-run-id": run.id } });
    this.jobName = el("span");
    this.toggle.append(this.jobName);
    this.runId = el("span", { className: "run-id", text: shortId(run.id), attrs: { title: run.id } });
    this.labels = el("span", { className: "labels" });
    this.badge = el("span", { className: "badge", part: "badge" });
    this.errorText = el("span", { className: "error-text", attrs: { hidden: "" } });
    this.fill = el("div", { className: "fill", part: "progress-fill" });
    this.bar = el("div", { className: "progress", part: "progress", attrs: { role: "progressbar", "aria-valuemin": "0" } },
      el("div", { className: "track" }, this.fill));
    this.progressText = el("span", { className: "progress-text", attrs: { "aria-hidden": "true" } });
    this.started = el("time");
    this.elapsed = el("span");
    this.actions = el("td", { className: "actions" });
    this.row = el("tr", { className: "run", part: "row", attrs: { "data-run-id": run.id } },
      el("td", { className: "job" }, this.toggle, this.runId, this.labels),
      el("td", { className: "status" }, this.badge, this.errorText),
      el("td", { className: "progress-cell" }, this.bar, this.progressText),
      el("td", { className: "time started" }, this.started),
      el("td", { className: "time elapsed" }, this.elapsed),
      this.actions,
    );
    this.detailsCell = el("td", { attrs: { colspan: "6" } });
    this.detailsRow = el("tr", { className: "details-row", attrs: { id: detailsId, hidden: "" } }, this.detailsCell);
    this.actionsKey = null;
    this.labelsKey = null;
    this.detailsView = null;
  }

  /** Bring the row up to date with `run` (cheap when nothing changed). */
  update(run, now) {
    const name = `${run.jobName} run ${shortId(run.id)}`;
    setText(this.jobName, run.jobName);
    setAttr(this.toggle, "aria-label", `${name}: show steps and logs`);
    this.#updateLabels(run.labels ?? {});

    setText(this.badge, statusText(run));
    setAttr(this.badge, "class", `badge ${run.status}`);
    setAttr(this.badge, "part", `badge badge-${run.status}`);
    const error = run.status === "failed" && run.error ? run.error.split("\n")[0] : null;
    setText(this.errorText, error);
    setAttr(this.errorText, "title", error);
    setAttr(this.errorText, "hidden", error ? null : "");

    this.#updateProgress(run, name);
    setAttr(this.started, "datetime", run.startedAt);
    setText(this.started, run.startedAt ? formatTime(run.startedAt) : "–");
    this.updateElapsed(run, now);
    this.#updateActions(run, name);
  }

  updateElapsed(run, now) {
    const elapsed = elapsedMs(run, now);
    setText(this.elapsed, elapsed === null ? "–" : formatDuration(elapsed));
  }

  #updateLabels(labels) {
    const entries = Object.entries(labels);
    const key = JSON.stringify(entries);
    if (key === this.labelsKey) return;
    this.labelsKey = key;
    this.labels.replaceChildren(...entries.map(([k, v]) => el("span", { className: "label", part: "label", text: `${k}=${v}` })));
    this.labels.hidden = entries.length === 0;
  }

  #updateProgress(run, name) {
    const progress = run.progress;
    const bar = this.bar;
    setAttr(bar, "aria-label", `Progress of ${name}`);
    setAttr(bar, "class", `progress ${run.status}${progress?.total == null && run.status === "leased" ? " indeterminate" : ""}`);
    setText(this.progressText, progressText(progress) || (run.status === "pending" ? "waiting" : ""));
    if (progress && progress.total != null && progress.total > 0) {
      const fraction = Math.min(1, Math.max(0, progress.current / progress.total));
      setAttr(bar, "aria-valuemax", progress.total);
      setAttr(bar, "aria-valuenow", progress.current);
      setAttr(bar, "aria-valuetext", `${progress.current} of ${progress.total}${progress.message ? `: ${progress.message}` : ""}`);
      this.fill.style.transform = `scaleX(${fraction})`;
    } else {
      // Without a total the amount done is unknown: ARIA says leave out aria-valuenow.
      setAttr(bar, "aria-valuemax", null);
      setAttr(bar, "aria-valuenow", null);
      const done = run.status === "completed";
      setAttr(bar, "aria-valuetext", progress ? `${progressText(progress)}` : done ? "done" : STATUS_TEXT[run.status]);
      this.fill.style.transform = `scaleX(${done ? 1 : 0})`;
    }
  }

  #updateActions(run, name) {
    const key = `${run.status}|${name}`;
    if (key === this.actionsKey) return;
    this.actionsKey = key;
    const button = (action, label, extra = "") =>
      el("button", {
        className: extra,
        part: `button ${action}-button`,
        text: label,
        attrs: { type: "button", "data-action": action, "data-run-id": run.id, "aria-label": `${label} ${name}` },
      });
    const buttons = isTerminalStatus(run.status)
      ? [button("retrigger", "Retrigger"), button("delete", "Delete", "danger")]
      : [button("cancel", "Cancel")];
    const focused = this.actions.contains(this.actions.getRootNode().activeElement);
    this.actions.replaceChildren(...buttons);
    if (focused) buttons[0].focus(); // keep keyboard users in the row when its actions change
  }

  setExpanded(expanded) {
    setAttr(this.toggle, "aria-expanded", expanded ? "true" : "false");
    this.row.classList.toggle("expanded", expanded);
    this.detailsRow.hidden = !expanded;
    if (!expanded) {
      this.detailsView = null;
      this.detailsCell.replaceChildren();
    }
  }

  /** Render the expanded details: steps, logs, error, output and input. */
  renderDetails(run, details, now) {
    if (!this.detailsView) {
      this.detailsView = new DetailsView();
      this.detailsCell.replaceChildren(this.detailsView.root);
    }
    this.detailsView.update(run, details, now);
  }
}

/** The element's fixed parts: boot indicator, banner, notice, toolbar and the table. */
export function buildShell(root, css) {
  const style = el("style", { text: css });
  const bootText = el("span");
  const bootProgress = el("progress", { attrs: { "aria-label": "Start-up progress" } });
  const boot = el("div", { className: "boot", part: "boot", attrs: { role: "status", hidden: "" } },
    el("span", { className: "spinner", attrs: { "aria-hidden": "true" } }), bootText, bootProgress);
  const bannerText = el("span");
  const banner = el("div", { className: "banner", part: "banner", attrs: { role: "alert", hidden: "" } },
    el("strong", { text: "Jobs run in another tab of this app." }), bannerText);
  const noticeText = el("span");
  const dismiss = el("button", { text: "Dismiss", part: "button", attrs: { type: "button", "data-action": "dismiss" } });
  const notice = el("div", { className: "message", part: "message", attrs: { role: "alert", hidden: "" } }, noticeText, dismiss);

  const status = el("select", { attrs: { "data-filter": "status" } },
    el("option", { text: "All statuses", attrs: { value: "" } }),
    ...RUN_STATUSES.map((value) => el("option", { text: STATUS_TEXT[value] ?? value, attrs: { value } })));
  const job = el("select", { attrs: { "data-filter": "jobName" } }, el("option", { text: "All jobs", attrs: { value: "" } }));
  const previous = el("button", { text: "‹ Previous", part: "button", attrs: { type: "button", "data-action": "previous", "aria-label": "Previous page" } });
  const next = el("button", { text: "Next ›", part: "button", attrs: { type: "button", "data-action": "next", "aria-label": "Next page" } });
  const range = el("span", { attrs: { "aria-live": "polite" } });
  const toolbar = el("div", { className: "toolbar", part: "toolbar", attrs: { hidden: "" } },
    el("label", { text: "Status" }, status),
    el("label", { text: "Job" }, job),
    el("div", { className: "pager", part: "pager" }, previous, range, next));

  const emptyCell = el("td", { className: "empty", attrs: { colspan: "6" } });
  const emptyRow = el("tr", {}, emptyCell);
  const tbody = el("tbody");
  const header = (text, className) => el("th", { text, className, attrs: { scope: "col" } });
  const table = el("table", { part: "table", attrs: { "aria-label": "Runs", hidden: "" } },
    el("thead", {}, el("tr", {}, header("Job"), header("Status"), header("Progress"), header("Started", "time"), header("Elapsed", "time"),
      el("th", { attrs: { scope: "col" } }, el("span", { className: "visually-hidden", text: "Actions" })))),
    tbody);
  root.append(style, boot, banner, notice, toolbar, table);

  return { boot, bootText, bootProgress, banner, bannerText, notice, noticeText, toolbar, status, job, previous, next, range, table, tbody, emptyRow, emptyCell };
}
