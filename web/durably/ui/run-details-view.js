// The DOM of one expanded run: its steps, its logs, and its error, output and input.
// Invariant: at most MAX_LOGS log lines are in the DOM (older ones are summarised in
// one line), new lines are appended rather than re-rendered, and a log list scrolled
// to its end stays at its end as lines arrive.

import { el, setText } from "./dom.js";
import { formatDuration, formatJson, formatTime, timeMs } from "./format.js";

/** Logs shown per run; older lines are summarised in one line. */
export const MAX_LOGS = 500;

/** Steps, logs and the run's data, for one expanded run. */
export class DetailsView {
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

  /** Bring the view up to date with `run` and its details (see detailsView in run-details.js). */
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
        const started = timeMs(step.startedAt);
        const ended = timeMs(step.completedAt);
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
