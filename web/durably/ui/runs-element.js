// <durably-runs>: a live, paginated list of one database's runs (status, progress,
// times, steps and logs, cancel / retrigger / delete), with a boot indicator while the
// runtime starts and a persistent warning while another tab owns the runtime.
//
// Events are applied to an in-memory model as they arrive; the DOM is rendered from
// that model at most once per animation frame, and only the rows that changed. The
// page of runs is fetched again only when its membership can change (a run triggered,
// coalesced, deleted or purged; a status change while filtering by status), never by
// polling. Deleted and purged runs leave the list at once, before that fetch.
//
// Usage:
//   import "/durably/ui/runs-element.js";
//   const runs = document.querySelector("durably-runs");
//   runs.connect(new DurablyClient({ database, jobs }));          // boot phases included
//   // or: runs.connect(createDurably({ database, jobs, onBoot: runs.onBoot }));

import { RUNS_STYLE } from "./runs-style.js";
import { RunRow, buildShell, el, shortId } from "./runs-view.js";

/** Run events that change a run's status, and the status they set. */
const STATUS_OF_EVENT = { "run:leased": "leased", "run:complete": "completed", "run:fail": "failed", "run:cancel": "cancelled" };
/** Run events after which the current page may hold different runs. */
const MEMBERSHIP_EVENTS = new Set(["run:trigger", "run:coalesced", "run:delete"]);
const BOOT_PHASES = {
  "waiting-for-lock": "Waiting for the database",
  "loading-python": "Loading Python",
  "installing-packages": "Installing packages",
  "loading-jobs": "Loading jobs",
  "opening-database": "Opening the database",
};
const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 100;

function describe(error) {
  if (!error) return "unknown error";
  const name = error.name && error.name !== "Error" ? `${error.name}: ` : "";
  return `${name}${error.message ?? String(error)}`;
}

export class DurablyRunsElement extends HTMLElement {
  static observedAttributes = ["page-size"];

  // -- connection ---------------------------------------------------------------------
  /** The DurablyClient whose events we listen to (set before it is ready when we can). */
  #client = null;
  /** Incremented by every connect(); async work started for an older value is dropped. */
  #connection = 0;
  #unsubscribe = null;
  /** "idle" (no client) | "booting" | "ready" (owner) | "secondary" | "failed" */
  #state = "idle";
  #bootPhase = null;
  #secondaryMessage = null;
  /** A message above the list: {kind: "error" | "info", text}; null when none. */
  #notice = null;

  // -- model: the current page, newest first ------------------------------------------
  /** id → run as returned by the client, then updated in place by events. */
  #runs = new Map();
  /** Display order of #runs (the order getRuns returned). */
  #order = [];
  #total = 0;
  #offset = 0;
  #filter = { status: "", jobName: "" };
  /** Bumped when the filter or page changes, so an answer to an older query is dropped. */
  #query = 0;
  #loaded = false;
  /** Job names offered by the job filter: the client's jobs and every job seen. */
  #jobs = new Set();
  /** id → progress from run:progress events: newer than the stored copy, which the
   * runtime writes at most every 250 ms, so a refetch never moves a bar backwards. */
  #liveProgress = new Map();
  /** id → {steps, logs, stepsLoaded, logsLoaded, stepsVersion, logsVersion} of expanded runs. */
  #details = new Map();

  // -- scheduling ---------------------------------------------------------------------
  /** Runs whose rows need rendering. */
  #dirty = new Set();
  /** Rows added, removed or reordered, or the toolbar, banner or notice changed. */
  #layoutDirty = true;
  #frame = 0;
  #fetching = false;
  #refetchWanted = false;
  #ticker = 0;

  // -- view ---------------------------------------------------------------------------
  /** id → RunRow of every listed run. */
  #rows = new Map();
  /** #order as last rendered (to find where a removed row was). */
  #renderedOrder = [];
  #ui;

  /**
   * Pass as `onBoot` to createDurably() when connecting with its promise, so the boot
   * indicator can show each start-up phase: createDurably({ ..., onBoot: element.onBoot }).
   */
  onBoot = (phase) => this.#setBootPhase(phase);

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    this.#ui = this.#build(root);
  }

  // -- public API ---------------------------------------------------------------------

  /** The connected DurablyClient (null until known). Setting it calls connect(). */
  get client() {
    return this.#client;
  }

  set client(value) {
    this.connect(value);
  }

  /**
   * Show the runs of a DurablyClient, or of the promise createDurably() returned.
   * A client is listened to at once, so its boot phases and a secondary role show up
   * before it is ready. Resolves when the client is ready (or has failed to start).
   * @param {import("../client").DurablyClient | Promise<import("../client").DurablyClient> | null} source
   */
  connect(source) {
    const connection = ++this.#connection;
    this.#detach();
    this.#resetModel();
    this.#client = null;
    this.#notice = null;
    this.#secondaryMessage = null;
    if (!source) {
      this.#state = "idle";
      this.#invalidate();
      return Promise.resolve();
    }
    this.#state = "booting";
    const isClient = typeof source.on === "function";
    if (isClient) this.#attach(source);
    this.#invalidate();
    const ready = isClient ? (source.ready ?? Promise.resolve(source)) : Promise.resolve(source);
    return ready.then(
      (client) => {
        if (connection !== this.#connection) return;
        if (!isClient) this.#attach(client);
        this.#onReady(client);
      },
      (error) => {
        if (connection !== this.#connection) return;
        this.#state = "failed";
        this.#bootPhase = null;
        this.#notice = { kind: "error", text: `The job runtime could not start: ${describe(error)}` };
        this.#layoutDirty = true;
        this.#invalidate();
      },
    );
  }

  /** The run filter: {status, jobName}; "" (or missing) means any. */
  get filter() {
    return { ...this.#filter };
  }

  set filter(value) {
    this.#filter = { status: value?.status ?? "", jobName: value?.jobName ?? "" };
    this.#ui.status.value = this.#filter.status;
    this.#offset = 0;
    this.#query++;
    this.#layoutDirty = true;
    this.refresh();
  }

  /** Runs per page: the `page-size` attribute (1–100, default 10). */
  get pageSize() {
    const size = Number.parseInt(this.getAttribute("page-size") ?? "", 10);
    return Number.isFinite(size) && size > 0 ? Math.min(size, MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
  }

  set pageSize(value) {
    this.setAttribute("page-size", String(value));
  }

  /** Fetch the current page again. */
  refresh() {
    this.#scheduleRefetch();
    this.#invalidate();
  }

  // -- custom element lifecycle -------------------------------------------------------

  connectedCallback() {
    // A `client` set before this element was defined shadows the accessor: re-apply it.
    if (Object.hasOwn(this, "client")) {
      const value = this.client;
      delete this.client;
      this.connect(value);
      return;
    }
    if (this.#client && !this.#unsubscribe) {
      // Back in the document after a removal: events were missed, so start over.
      this.#attach(this.#client);
      this.#details.clear();
      if (this.#state === "secondary" && this.#client.role === "owner") this.#state = "ready";
    }
    this.#layoutDirty = true;
    this.refresh();
  }

  disconnectedCallback() {
    // Stop listening while detached, so a removed element can be collected.
    this.#detach();
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    clearInterval(this.#ticker);
    this.#ticker = 0;
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (name === "page-size" && oldValue !== newValue) {
      this.#offset = 0;
      this.#query++;
      this.refresh();
    }
  }

  // -- connection ---------------------------------------------------------------------

  #attach(client) {
    this.#client = client;
    this.#unsubscribe = client.on("*", (event) => this.#onEvent(event));
  }

  #detach() {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  #onReady(client) {
    for (const job of client.jobs ?? []) this.#jobs.add(job);
    this.#bootPhase = null;
    if (client.role === "secondary") {
      this.#state = "secondary";
    } else {
      this.#state = "ready";
      this.#scheduleRefetch();
    }
    this.#layoutDirty = true;
    this.#invalidate();
  }

  #setBootPhase(phase) {
    if (phase === "ready") {
      this.#bootPhase = null;
    } else {
      this.#bootPhase = phase;
      if (this.#state !== "failed") this.#state = "booting";
    }
    this.#layoutDirty = true;
    this.#invalidate();
  }

  // -- events -------------------------------------------------------------------------

  #onEvent(event) {
    switch (event.type) {
      case "boot":
        this.#setBootPhase(event.phase);
        return;
      case "secondary":
        this.#state = "secondary";
        this.#bootPhase = null;
        this.#secondaryMessage = typeof event.message === "string" ? event.message : null;
        this.#layoutDirty = true;
        this.#invalidate();
        return;
      case "owner":
        this.#state = "ready";
        this.#bootPhase = null;
        this.#secondaryMessage = null;
        for (const job of this.#client?.jobs ?? []) this.#jobs.add(job);
        this.#layoutDirty = true;
        this.refresh();
        return;
      case "runs:purge":
        // Bulk deletion names its runs in one event: drop them now, then refill the page.
        if (Array.isArray(event.runIds)) for (const id of event.runIds) this.#forget(id);
        this.#scheduleRefetch();
        this.#invalidate();
        return;
      case "worker:error":
        if (event.context === "boot") this.#state = "failed"; // taking over from another tab failed
        this.#notice = { kind: "error", text: `The job runtime reported an error: ${event.error}` };
        this.#layoutDirty = true;
        this.#invalidate();
        return;
    }
    if (typeof event.runId === "string") this.#applyRunEvent(event);
  }

  #applyRunEvent(event) {
    const id = event.runId;
    if (typeof event.jobName === "string" && !this.#jobs.has(event.jobName)) {
      this.#jobs.add(event.jobName);
      this.#layoutDirty = true;
    }
    const status = STATUS_OF_EVENT[event.type];
    const run = this.#runs.get(id);
    if (event.type === "run:progress") {
      this.#liveProgress.set(id, event.progress);
      if (run) run.progress = event.progress;
    } else if (status && run) {
      run.status = status;
      if (status === "leased") {
        run.startedAt ??= event.timestamp;
      } else {
        run.completedAt = event.timestamp;
        run.updatedAt = event.timestamp;
        this.#liveProgress.delete(id);
      }
      if (event.type === "run:complete") run.output = event.output;
      if (event.type === "run:fail") run.error = event.error;
    }
    if (run) this.#dirty.add(id);
    if (MEMBERSHIP_EVENTS.has(event.type) || (status && this.#filter.status)) this.#scheduleRefetch();
    if (event.type === "run:delete") this.#forget(id);

    const details = this.#details.get(id);
    if (details && applyDetailEvent(details, event)) this.#dirty.add(id);
    this.#invalidate();
  }

  #forget(id) {
    if (!this.#runs.delete(id)) return;
    this.#order = this.#order.filter((other) => other !== id);
    this.#total = Math.max(0, this.#total - 1);
    this.#details.delete(id);
    this.#liveProgress.delete(id);
    this.#layoutDirty = true;
  }

  // -- fetching -----------------------------------------------------------------------

  #resetModel() {
    this.#runs = new Map();
    this.#order = [];
    this.#total = 0;
    this.#offset = 0;
    this.#loaded = false;
    this.#jobs = new Set();
    this.#liveProgress = new Map();
    this.#details = new Map();
    this.#dirty.clear();
    this.#query++;
    this.#layoutDirty = true;
  }

  /** Fetch the page soon; any number of calls while a fetch runs cause one more fetch. */
  #scheduleRefetch() {
    if (this.#state !== "ready" || !this.#client || !this.isConnected) return;
    this.#refetchWanted = true;
    if (!this.#fetching) this.#refetchLoop();
  }

  async #refetchLoop() {
    this.#fetching = true;
    const connection = this.#connection;
    try {
      while (this.#refetchWanted && connection === this.#connection) {
        this.#refetchWanted = false;
        // Let a burst of events (say, a hundred triggers) land first: one fetch for all.
        await new Promise((resolve) => setTimeout(resolve, 15));
        await this.#loadPage(connection);
      }
    } catch (error) {
      this.#refetchWanted = false;
      if (connection === this.#connection) {
        this.#notice = { kind: "error", text: `Could not load runs: ${describe(error)}` };
        this.#layoutDirty = true;
        this.#invalidate();
      }
    } finally {
      this.#fetching = false;
      if (this.#refetchWanted) this.#scheduleRefetch(); // asked for by a newer connection
    }
  }

  async #loadPage(connection) {
    const client = this.#client;
    if (!client || this.#state !== "ready") return;
    const query = this.#query;
    const filter = {};
    if (this.#filter.status) filter.status = this.#filter.status;
    if (this.#filter.jobName) filter.jobName = this.#filter.jobName;
    const limit = this.pageSize;
    const offset = this.#offset;
    const [runs, total] = await Promise.all([client.getRuns({ ...filter, limit, offset }), client.countRuns(filter)]);
    if (connection !== this.#connection || query !== this.#query) return; // a newer query is queued
    if (runs.length === 0 && offset > 0 && total > 0) {
      // The page emptied (runs deleted elsewhere): show the last page instead.
      this.#offset = Math.floor((total - 1) / limit) * limit;
      this.#query++;
      this.#refetchWanted = true;
      return;
    }
    const next = new Map();
    for (const run of runs) {
      const live = this.#liveProgress.get(run.id);
      if (live && run.status === "leased") run.progress = live;
      next.set(run.id, run);
      this.#dirty.add(run.id);
      if (typeof run.jobName === "string") this.#jobs.add(run.jobName);
    }
    this.#runs = next;
    this.#order = runs.map((run) => run.id);
    this.#total = total;
    this.#loaded = true;
    for (const id of [...this.#details.keys()]) if (!next.has(id)) this.#details.delete(id);
    for (const id of [...this.#liveProgress.keys()]) if (!next.has(id)) this.#liveProgress.delete(id);
    this.#layoutDirty = true;
    this.#invalidate();
  }

  #toggle(id) {
    const row = this.#rows.get(id);
    if (this.#details.has(id)) {
      this.#details.delete(id);
      row?.setExpanded(false);
      return;
    }
    const details = { steps: [], logs: [], stepsLoaded: false, logsLoaded: false, stepsVersion: 0, logsVersion: 0 };
    this.#details.set(id, details);
    row?.setExpanded(true);
    this.#dirty.add(id);
    this.#invalidate();
    const client = this.#client;
    const settle = (apply) => (value) => {
      if (this.#details.get(id) !== details) return; // collapsed or refetched meanwhile
      apply(value);
      this.#dirty.add(id);
      this.#invalidate();
    };
    const failed = (error) => {
      this.#notice = { kind: "error", text: `Could not load run ${shortId(id)}: ${describe(error)}` };
      this.#layoutDirty = true;
    };
    // Events that arrive before an answer are already part of it (the worker answers and
    // emits over one ordered port), so each list takes events only once it is loaded.
    client.getSteps(id).then(settle((steps) => {
      details.steps = steps.map((step) => ({ ...step, durationMs: null }));
      details.stepsLoaded = true;
      details.stepsVersion++;
    }), settle((error) => { details.stepsLoaded = true; failed(error); }));
    client.getLogs(id).then(settle((logs) => {
      details.logs = logs;
      details.logsLoaded = true;
      details.logsVersion++;
    }), settle((error) => { details.logsLoaded = true; failed(error); }));
  }

  async #act(action, id, button) {
    const client = this.#client;
    if (!client) return;
    // aria-disabled rather than disabled: a disabled button loses the keyboard focus.
    button.setAttribute("aria-disabled", "true");
    try {
      if (action === "cancel") await client.cancel(id);
      else if (action === "retrigger") await client.retrigger(id);
      else if (action === "delete") await client.deleteRun(id);
      if (this.#notice?.kind === "error") this.#notice = null;
    } catch (error) {
      this.#notice = { kind: "error", text: `Could not ${action} run ${shortId(id)}: ${describe(error)}` };
    } finally {
      button.removeAttribute("aria-disabled");
      this.#layoutDirty = true;
      this.#invalidate();
    }
  }

  // -- rendering ----------------------------------------------------------------------

  /** Render in the next animation frame (once, however often this is called). */
  #invalidate() {
    if (this.#frame || !this.isConnected) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#render();
    });
  }

  #render() {
    const now = Date.now();
    if (this.#layoutDirty) {
      this.#layoutDirty = false;
      this.#renderChrome();
      this.#renderRows();
    }
    for (const id of this.#dirty) {
      const run = this.#runs.get(id);
      const row = this.#rows.get(id);
      if (!run || !row) continue;
      row.update(run, now);
      const details = this.#details.get(id);
      if (details) row.renderDetails(run, detailsView(details), now);
    }
    this.#dirty.clear();
    this.#updateTicker();
  }

  #renderChrome() {
    const ui = this.#ui;
    const state = this.#state;
    ui.boot.hidden = state !== "booting";
    const phases = Object.keys(BOOT_PHASES);
    const index = phases.indexOf(this.#bootPhase);
    ui.bootText.textContent = `Starting the job runtime: ${BOOT_PHASES[this.#bootPhase] ?? "connecting"}…`;
    ui.bootProgress.max = phases.length;
    ui.bootProgress.value = Math.max(0, index);

    ui.banner.hidden = state !== "secondary";
    const database = this.#client?.database;
    ui.bannerText.textContent =
      this.#secondaryMessage ??
      `another tab owns the job runtime${database ? ` for database "${database}"` : ""}; this tab will take over when it closes`;

    ui.notice.hidden = !this.#notice;
    ui.notice.className = `message ${this.#notice?.kind ?? ""}`;
    ui.noticeText.textContent = this.#notice?.text ?? "";

    const listed = state === "ready";
    ui.toolbar.hidden = !listed;
    ui.table.hidden = !listed;
    ui.table.setAttribute("aria-busy", String(!this.#loaded));

    const jobs = [...this.#jobs].sort();
    const current = [...ui.job.options].slice(1).map((option) => option.value);
    if (jobs.join("\n") !== current.join("\n")) {
      ui.job.replaceChildren(el("option", { text: "All jobs", attrs: { value: "" } }),
        ...jobs.map((job) => el("option", { text: job, attrs: { value: job } })));
    }
    ui.job.value = this.#filter.jobName;
    ui.status.value = this.#filter.status;

    const shown = this.#order.length;
    ui.range.textContent = !this.#loaded
      ? "Loading…"
      : this.#total === 0
        ? "No runs"
        : `${this.#offset + 1}–${this.#offset + shown} of ${this.#total}`;
    ui.previous.disabled = this.#offset === 0;
    ui.next.disabled = this.#offset + shown >= this.#total;
  }

  #renderRows() {
    const tbody = this.#ui.tbody;
    const nodes = [];
    for (const id of this.#order) {
      let row = this.#rows.get(id);
      if (!row) {
        row = new RunRow(this.#runs.get(id));
        this.#rows.set(id, row);
        row.setExpanded(this.#details.has(id));
        this.#dirty.add(id);
      }
      nodes.push(row.row, row.detailsRow);
    }
    const active = this.shadowRoot.activeElement;
    let refocusAt = -1;
    for (const [id, row] of this.#rows) {
      if (this.#runs.has(id)) continue;
      if (active && (row.row.contains(active) || row.detailsRow.contains(active))) {
        refocusAt = Math.max(0, this.#renderedOrder.indexOf(id));
      }
      this.#rows.delete(id);
    }
    this.#renderedOrder = [...this.#order];
    if (this.#loaded && nodes.length === 0) {
      this.#ui.emptyCell.textContent = this.#filter.status || this.#filter.jobName ? "No runs match these filters." : "No runs yet.";
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
      const id = this.#order[Math.min(refocusAt, this.#order.length - 1)];
      (id ? this.#rows.get(id).toggle : this.#ui.status).focus();
    }
  }

  /** Tick elapsed times once a second while something runs; stop when nothing does. */
  #updateTicker() {
    const running = this.#order.some((id) => this.#runs.get(id)?.status === "leased");
    if (running && !this.#ticker) {
      this.#ticker = setInterval(() => {
        const now = Date.now();
        for (const id of this.#order) {
          const run = this.#runs.get(id);
          if (run?.status !== "leased") continue;
          this.#rows.get(id)?.updateElapsed(run, now);
          if (this.#details.has(id)) this.#dirty.add(id);
        }
        this.#updateTicker();
        this.#invalidate();
      }, 1000);
    } else if (!running && this.#ticker) {
      clearInterval(this.#ticker);
      this.#ticker = 0;
    }
  }

  // -- the shell and its controls --------------------------------------------------------

  #build(root) {
    const ui = buildShell(root, RUNS_STYLE);
    root.addEventListener("click", (event) => {
      const button = event.target.closest?.("button[data-action]");
      if (!button || button.disabled || button.getAttribute("aria-disabled") === "true") return;
      const action = button.dataset.action;
      const id = button.dataset.runId;
      if (action === "toggle") this.#toggle(id);
      else if (action === "dismiss") {
        this.#notice = null;
        this.#layoutDirty = true;
        this.#invalidate();
      } else if (action === "previous" || action === "next") {
        const step = action === "next" ? this.pageSize : -this.pageSize;
        this.#offset = Math.max(0, this.#offset + step);
        this.#query++;
        this.refresh();
      } else if (id) this.#act(action, id, button);
    });
    root.addEventListener("change", (event) => {
      const key = event.target.dataset?.filter;
      if (key) this.filter = { ...this.#filter, [key]: event.target.value };
    });
    return ui;
  }
}

/** Apply a step or log event to an expanded run's details; true if anything changed. */
function applyDetailEvent(details, event) {
  if (event.type === "log:write") {
    if (!details.logsLoaded) return false;
    details.logs.push({ level: event.level, message: event.message, data: event.data, stepName: event.stepName ?? null, createdAt: event.timestamp });
    return true;
  }
  if (!event.type.startsWith("step:") || !details.stepsLoaded) return false;
  let step = details.steps.find((candidate) => candidate.index === event.stepIndex);
  if (!step) {
    step = { name: event.stepName, index: event.stepIndex, status: "running", startedAt: event.timestamp, completedAt: null, durationMs: null, error: null };
    details.steps.push(step);
    details.steps.sort((a, b) => a.index - b.index);
  }
  if (event.type === "step:start") Object.assign(step, { status: "running", startedAt: event.timestamp, completedAt: null, durationMs: null });
  else if (event.type === "step:complete") Object.assign(step, { status: "completed", completedAt: event.timestamp, durationMs: event.durationMs ?? null });
  else if (event.type === "step:fail") Object.assign(step, { status: "failed", completedAt: event.timestamp, error: event.error ?? null });
  else if (event.type === "step:cancel") Object.assign(step, { status: "cancelled", completedAt: event.timestamp });
  details.stepsVersion++;
  return true;
}

/** What RunRow.renderDetails needs: the lists and whether they are still loading. */
function detailsView(details) {
  return { ...details, loading: !details.stepsLoaded || !details.logsLoaded };
}


if (!customElements.get("durably-runs")) customElements.define("durably-runs", DurablyRunsElement);
