// Draws a RunsModel into the element's shell: the chrome (boot indicator, banner, notice,
// toolbar, pager) and one RunRow per listed run, and ticks elapsed times while runs run.
// Invariant: only what the model marked dirty is redrawn, and rows are moved only when
// out of place, so focus and scroll positions survive; when the focused run leaves the
// list, the focus moves to the run that took its place.

import { detailsView } from "./run-details.js";
import { el } from "./dom.js";
import { RunRow } from "./runs-view.js";

/** Start-up phases (the client's boot events), in order, as the indicator words them. */
const BOOT_PHASES = {
  "waiting-for-lock": "Waiting for the database",
  "loading-python": "Loading Python",
  "installing-packages": "Installing packages",
  "loading-jobs": "Loading jobs",
  "opening-database": "Opening the database",
};

export class RunsRenderer {
  /** id → RunRow of every listed run. */
  rows = new Map();
  /** The model's order as last rendered (to find where a removed row was). */
  #renderedOrder = [];
  /** The interval that ticks elapsed times; 0 while no listed run is running. */
  #ticker = 0;
  #root;
  #ui;
  #model;
  #invalidate;

  /**
   * @param {ShadowRoot} root the element's shadow root
   * @param {ReturnType<import("./runs-view.js").buildShell>} ui its shell
   * @param {import("./runs-model.js").RunsModel} model
   * @param {() => void} invalidate schedules a render
   */
  constructor(root, ui, model, invalidate) {
    this.#root = root;
    this.#ui = ui;
    this.#model = model;
    this.#invalidate = invalidate;
  }

  /** Draw what changed since the last render. */
  render() {
    const model = this.#model;
    const now = Date.now();
    if (model.layoutDirty) {
      model.layoutDirty = false;
      this.#renderChrome();
      this.#renderRows();
    }
    for (const id of model.dirty) {
      const run = model.runs.get(id);
      const row = this.rows.get(id);
      if (!run || !row) continue;
      row.update(run, now);
      const details = model.details.get(id);
      if (details) row.renderDetails(run, detailsView(details), now);
    }
    model.dirty.clear();
    this.#updateTicker();
  }

  /** Stop ticking (the element left the document); the next render starts it again. */
  stop() {
    clearInterval(this.#ticker);
    this.#ticker = 0;
  }

  #renderChrome() {
    const ui = this.#ui;
    const model = this.#model;
    const state = model.state;
    ui.boot.hidden = !(state === "booting" || (state === "secondary" && model.bootPhase));
    const phases = Object.keys(BOOT_PHASES);
    const index = phases.indexOf(model.bootPhase);
    ui.bootText.textContent = `Starting the job runtime: ${BOOT_PHASES[model.bootPhase] ?? "connecting"}…`;
    ui.bootProgress.max = phases.length;
    ui.bootProgress.value = Math.max(0, index);

    ui.banner.hidden = state !== "secondary";
    ui.banner.classList.toggle("unresponsive", !model.ownerResponsive);
    ui.bannerText.textContent = model.ownerResponsive
      ? "This tab shows them and sends its actions there; it takes over if that tab closes."
      : "The tab running jobs is not responding (a background tab the browser suspended, or a busy one); actions wait until it answers or closes.";

    ui.notice.hidden = !model.notice;
    ui.notice.className = `message ${model.notice?.kind ?? ""}`;
    ui.noticeText.textContent = model.notice?.text ?? "";

    const listed = model.isListed();
    ui.toolbar.hidden = !listed;
    ui.table.hidden = !listed;
    ui.table.setAttribute("aria-busy", String(!model.loaded));

    const jobs = [...model.jobs].sort();
    const current = [...ui.job.options].slice(1).map((option) => option.value);
    if (jobs.join("\n") !== current.join("\n")) {
      ui.job.replaceChildren(el("option", { text: "All jobs", attrs: { value: "" } }),
        ...jobs.map((job) => el("option", { text: job, attrs: { value: job } })));
    }
    ui.job.value = model.filter.jobName;
    ui.status.value = model.filter.status;

    const shown = model.order.length;
    ui.range.textContent = !model.loaded
      ? "Loading…"
      : model.total === 0
        ? "No runs"
        : `${model.offset + 1}–${model.offset + shown} of ${model.total}`;
    ui.previous.disabled = model.offset === 0;
    ui.next.disabled = model.offset + shown >= model.total;
  }

  #renderRows() {
    const model = this.#model;
    const tbody = this.#ui.tbody;
    const nodes = [];
    for (const id of model.order) {
      let row = this.rows.get(id);
      if (!row) {
        row = new RunRow(model.runs.get(id));
        this.rows.set(id, row);
        row.setExpanded(model.details.has(id));
        model.dirty.add(id);
      }
      nodes.push(row.row, row.detailsRow);
    }
    const active = this.#root.activeElement;
    let refocusAt = -1;
    for (const [id, row] of this.rows) {
      if (model.runs.has(id)) continue;
      if (active && (row.row.contains(active) || row.detailsRow.contains(active))) {
        refocusAt = Math.max(0, this.#renderedOrder.indexOf(id));
      }
      this.rows.delete(id);
    }
    this.#renderedOrder = [...model.order];
    if (model.loaded && nodes.length === 0) {
      this.#ui.emptyCell.textContent = model.filter.status || model.filter.jobName ? "No runs match these filters." : "No runs yet.";
      nodes.push(this.#ui.emptyRow);
    }
    // Move only what is out of place, so focus and scroll positions survive.
    let cursor = tbody.firstChild;
    for (const node of nodes) {
      if (node === cursor) cursor = cursor.nextSibling;
      else tbody.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    if (refocusAt >= 0) {
      // The focused run went away (deleted): keep the keyboard user near where it was.
      const id = model.order[Math.min(refocusAt, model.order.length - 1)];
      (id ? this.rows.get(id).toggle : this.#ui.status).focus();
    }
  }

  /** Tick elapsed times once a second while something runs; stop when nothing does. */
  #updateTicker() {
    const model = this.#model;
    const running = model.order.some((id) => model.runs.get(id)?.status === "leased");
    if (running && !this.#ticker) {
      this.#ticker = setInterval(() => {
        const now = Date.now();
        for (const id of model.order) {
          const run = model.runs.get(id);
          if (run?.status !== "leased") continue;
          this.rows.get(id)?.updateElapsed(run, now);
          if (model.details.has(id)) model.dirty.add(id);
        }
        this.#updateTicker();
        this.#invalidate();
      }, 1000);
    } else if (!running && this.#ticker) {
      this.stop();
    }
  }
}
