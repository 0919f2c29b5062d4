// The DOM of <durably-runs>: its fixed shell (boot indicator, banner, toolbar, table),
// one RunRow per listed run (its row and its details row), and the formatting of
// times, durations and progress.
//
// Invariant: job-supplied text (job names, labels, progress messages, errors, log
// messages and data, inputs, outputs) only ever reaches the DOM through textContent or
// attribute values, never as markup, so a log line "<img src=x onerror=…>" shows as
// exactly those characters. Updates compare before writing, so re-rendering an
// unchanged row touches nothing.

import { isTerminalStatus, RUN_STATUSES } from "../statuses.js";

const MAX_JSON_CHARS = 4000;
/** Logs shown per run; older lines are summarised in one line. */
export const MAX_LOGS = 500;

/** Create an element; `text` becomes its textContent, `attrs` its attributes. */
export function el(tag, { className, part, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (part) node.setAttribute("part", part);
  if (text != null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value != null) node.setAttribute(name, String(value));
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

function setText(node, text) {
  const value = text == null ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

function setAttr(node, name, value) {
  if (value == null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}

export function shortId(id) {
  return String(id).slice(0, 8);
}

/** "420 ms", "4.2 s", "3 m 05 s", "2 h 07 m". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} m`;
}

/** Local time of day, with the date when it is not today. */
export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

function ms(iso) {
  const value = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(value) ? null : value;
}

/** Milliseconds a run has been running (leased) or ran (finished); null before it started. */
export function elapsedMs(run, now) {
  const start = ms(run.startedAt);
  if (start === null) return null;
  const end = run.status === "leased" ? now : ms(run.completedAt) ?? ms(run.updatedAt);
  return end === null ? null : Math.max(0, end - start);
}

/** JSON for display: on one line when short, indented when not, cut to a readable size. */
export function formatJson(value) {
  let text;
  try {
    text = typeof value === "string" ? value : JSON.stringify(value);
    if (text && text.length > 80 && typeof value !== "string") text = JSON.stringify(value, null, 2);
  } catch {
    text = String(value);
  }
  text ??= String(value);
  return text.length > MAX_JSON_CHARS ? `${text.slice(0, MAX_JSON_CHARS)}… (${text.length} characters)` : text;
}

function progressText(progress) {
  if (!progress) return "";
  const count = progress.total == null ? `${progress.current}` : `${progress.current}/${progress.total}`;
  return progress.message ? `${count} · ${progress.message}` : count;
}

/** How each status is shown: "leased" reads as "running" to people. */
export const STATUS_TEXT = { pending: "pending", leased: "running", completed: "completed", failed: "failed", cancelled: "cancelled" };

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

    setText(this.badge, STATUS_TEXT[run.status] ?? run.status);
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

/** Steps, logs and the run's data, for one expanded run. */
class DetailsView {
  constructor() {
    this.stepsBody = el("tbody");
    this.steps = el("table", { part: "steps" },
      el("thead", {}, el("tr", {}, el("th", { text: "#" }), el("th", { text: "Step" }), el("th", { text: "Status" }), el("th", { text: "Duration" }))),
      this.stepsBody);
    this.noSteps = el("p", { className: "none", text: "No steps yet." });
    this.logs = el("ol", { className: "logs", part: "logs", attrs: { "aria-label": "Logs" } });
    this.noLogs = el("p", { className: "none", text: "No logs yet." });
    this.loading = el("p", { className: "none", text: "Loading…" });
    this.error = el("pre", { className: "error" });
    this.output = el("pre");
    this.input = el("pre");
    this.errorSection = el("section", { className: "wide" }, el("h3", { text: "Error" }), this.error);
    this.outputSection = el("section", { className: "wide" }, el("h3", { text: "Output" }), this.output);
    this.inputSection = el("section", { className: "wide" }, el("h3", { text: "Input" }), this.input);
    this.root = el("div", { className: "details", part: "details" },
      el("section", {}, el("h3", { text: "Steps" }), this.loading, this.noSteps, el("div", { className: "scroll" }, this.steps)),
      el("section", {}, el("h3", { text: "Logs" }), this.noLogs, this.logs),
      this.errorSection, this.outputSection, this.inputSection);
    this.renderedLogs = 0;
    this.logsVersion = -1;
    this.stepsKey = null;
  }

  update(run, details, now) {
    this.loading.hidden = !details.loading;
    this.#updateSteps(details, now);
    this.#updateLogs(details);
    this.noSteps.hidden = details.loading || details.steps.length > 0;
    this.steps.hidden = details.steps.length === 0;
    this.noLogs.hidden = details.loading || details.logs.length > 0;
    this.logs.hidden = details.logs.length === 0;

    this.errorSection.hidden = !run.error;
    setText(this.error, run.error);
    const hasOutput = run.status === "completed" && run.output != null;
    this.outputSection.hidden = !hasOutput;
    setText(this.output, hasOutput ? formatJson(run.output) : "");
    this.inputSection.hidden = run.input === undefined;
    setText(this.input, run.input === undefined ? "" : formatJson(run.input));
  }

  #updateSteps(details, now) {
    const running = details.steps.some((step) => step.status === "running");
    const key = details.stepsVersion;
    if (key === this.stepsKey && !running) return;
    this.stepsKey = key;
    this.stepsBody.replaceChildren(
      ...details.steps.map((step) => {
        const started = ms(step.startedAt);
        const ended = ms(step.completedAt);
        const duration = step.durationMs ?? (started !== null ? (ended ?? now) - started : null);
        return el("tr", { part: "step" },
          el("td", { text: step.index }),
          el("td", { text: step.name }),
          el("td", {}, el("span", { className: `badge ${step.status}`, part: `badge badge-${step.status}`, text: step.status, attrs: { title: step.error } })),
          el("td", { className: "time", text: duration === null ? "–" : formatDuration(duration) }));
      }),
    );
  }

  #updateLogs(details) {
    if (details.logsVersion !== this.logsVersion) {
      this.logsVersion = details.logsVersion;
      this.logs.replaceChildren();
      this.renderedLogs = 0;
    }
    const logs = details.logs;
    if (this.renderedLogs === logs.length) return;
    const stick = this.logs.scrollTop + this.logs.clientHeight >= this.logs.scrollHeight - 4;
    const first = Math.max(this.renderedLogs, logs.length - MAX_LOGS);
    if (first > this.renderedLogs) {
      this.logs.replaceChildren(el("li", { className: "none", text: `${first} earlier lines not shown` }));
    }
    for (let i = first; i < logs.length; i++) this.logs.append(logLine(logs[i]));
    this.renderedLogs = logs.length;
    while (this.logs.children.length > MAX_LOGS + 1) this.logs.children[1].remove();
    if (stick) this.logs.scrollTop = this.logs.scrollHeight;
  }
}

function logLine(log) {
  return el("li", { part: `log log-${log.level}` },
    el("time", { text: formatTime(log.createdAt), attrs: { datetime: log.createdAt } }),
    el("span", { className: `badge ${log.level}`, text: log.level }),
    log.stepName ? el("span", { className: "step", text: log.stepName }) : null,
    el("span", { className: "text", text: log.message }),
    log.data == null ? null : el("code", { className: "data", text: formatJson(log.data) }));
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
    el("strong", { text: "This tab is secondary:" }), bannerText);
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
