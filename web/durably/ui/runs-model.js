// The state behind <durably-runs>: the connection (client, role, boot phase, notice),
// the current page of runs and the details of expanded runs, kept current by events.
// Invariant: the page is fetched again only when its membership can change (a run
// triggered, coalesced, deleted or purged; a status change while filtering by status),
// never by polling, and an answer for an older connection or query is dropped.

import { describeError, shortId } from "./format.js";
import { applyDetailEvent, loadDetails, newDetails } from "./run-details.js";

/** Run events that change a run's status, and the status they set. */
const STATUS_OF_EVENT = {
  "run:leased": "leased", "run:complete": "completed", "run:fail": "failed", "run:cancel": "cancelled",
  "run:wait": "waiting", "run:resume": "pending",
};
/** Run events after which the current page may hold different runs. */
const MEMBERSHIP_EVENTS = new Set(["run:trigger", "run:coalesced", "run:delete"]);

export class RunsModel {
  // -- connection ---------------------------------------------------------------------
  /** The DurablyClient whose events are applied here (set before it is ready when we can). */
  client = null;
  /** Incremented by every startConnection(); async work started for an older value is dropped. */
  connection = 0;
  /** "idle" (no client) | "booting" | "ready" (owner) | "secondary" | "failed".
   * A secondary tab lists runs and acts on them too: its client relays to the owner tab. */
  state = "idle";
  bootPhase = null;
  /** A secondary: false while the tab running jobs misses its heartbeats. */
  ownerResponsive = true;
  /** A message above the list: {kind: "error" | "info", text}; null when none. */
  notice = null;

  // -- the current page, newest first ------------------------------------------------
  /** id → run as returned by the client, then updated in place by events. */
  runs = new Map();
  /** Display order of `runs` (the order getRuns returned). */
  order = [];
  total = 0;
  offset = 0;
  filter = { status: "", jobName: "" };
  /** Bumped when the filter or page changes, so an answer to an older query is dropped. */
  query = 0;
  loaded = false;
  /** Job names offered by the job filter: the client's jobs and every job seen. */
  jobs = new Set();
  /** id → progress from run:progress events: newer than the stored copy, which the
   * runtime writes at most every 250 ms, so a refetch never moves a bar backwards. */
  liveProgress = new Map();
  /** id → details (see run-details.js) of expanded runs. */
  details = new Map();

  // -- what the next render must redo -----------------------------------------------
  /** Runs whose rows need rendering. */
  dirty = new Set();
  /** Rows added, removed or reordered, or the toolbar, banner or notice changed. */
  layoutDirty = true;

  #fetching = false;
  #refetchWanted = false;
  #host;

  /**
   * @param {{invalidate(): void, isConnected(): boolean, pageSize(): number}} host
   *   the element: schedules a render, says whether it is in the document, sizes pages
   */
  constructor(host) {
    this.#host = host;
  }

  /** Schedule a render of everything but the rows. */
  layoutChanged() {
    this.layoutDirty = true;
    this.#host.invalidate();
  }

  /** Show an error above the list (until dismissed or replaced). */
  showError(text) {
    this.notice = { kind: "error", text };
    this.layoutChanged();
  }

  // -- connection ---------------------------------------------------------------------

  /** Forget the previous client and its runs; returns the new connection's number. */
  startConnection() {
    this.connection++;
    this.#reset();
    this.client = null;
    this.notice = null;
    this.ownerResponsive = true;
    return this.connection;
  }

  onReady(client) {
    for (const job of client.jobs ?? []) this.jobs.add(job);
    this.bootPhase = null;
    this.state = client.role === "secondary" ? "secondary" : "ready";
    this.ownerResponsive = client.ownerResponsive ?? true;
    this.scheduleRefetch();
    this.layoutChanged();
  }

  onFailedToStart(error) {
    this.state = "failed";
    this.bootPhase = null;
    this.showError(`The job runtime could not start: ${describeError(error)}`);
  }

  setBootPhase(phase) {
    if (phase === "ready") {
      this.bootPhase = null;
    } else {
      this.bootPhase = phase;
      // A secondary taking over keeps its list (served by the old owner until it went).
      if (this.state !== "failed" && this.state !== "secondary") this.state = "booting";
    }
    this.layoutChanged();
  }

  /** Back in the document after a removal: events were missed, so start over. */
  onReattached() {
    this.details.clear();
    if (this.isListed()) this.state = this.client.role === "secondary" ? "secondary" : "ready";
  }

  /** Whether runs are shown: in the owner tab and in every secondary tab. */
  isListed() {
    return this.state === "ready" || this.state === "secondary";
  }

  // -- events -------------------------------------------------------------------------

  applyEvent(event) {
    switch (event.type) {
      case "boot":
        this.setBootPhase(event.phase);
        return;
      case "secondary":
        this.state = "secondary";
        this.bootPhase = null;
        this.refresh();
        this.layoutChanged();
        return;
      case "owner":
        this.state = "ready";
        this.bootPhase = null;
        this.ownerResponsive = true;
        for (const job of this.client?.jobs ?? []) this.jobs.add(job);
        this.layoutDirty = true;
        this.refresh();
        return;
      case "role":
        // The owner changed or stopped (or started again) answering its heartbeats.
        if (this.state === "failed") return;
        if (event.role === "secondary") this.state = "secondary";
        this.ownerResponsive = event.ownerResponsive !== false;
        for (const job of this.client?.jobs ?? []) this.jobs.add(job);
        this.layoutChanged();
        if (event.role === "secondary" && this.ownerResponsive) this.scheduleRefetch(); // events may have been missed
        return;
      case "runs:purge":
        // Bulk deletion names its runs in one event: drop them now, then refill the page.
        if (Array.isArray(event.runIds)) for (const id of event.runIds) this.#forget(id);
        this.refresh();
        return;
      case "worker:error":
        if (event.context === "boot") this.state = "failed"; // taking over from another tab failed
        this.showError(`The job runtime reported an error: ${event.error}`);
        return;
    }
    if (typeof event.runId === "string") this.#applyRunEvent(event);
  }

  #applyRunEvent(event) {
    const id = event.runId;
    if (typeof event.jobName === "string" && !this.jobs.has(event.jobName)) {
      this.jobs.add(event.jobName);
      this.layoutDirty = true;
    }
    const status = STATUS_OF_EVENT[event.type];
    const run = this.runs.get(id);
    if (event.type === "run:progress") {
      this.liveProgress.set(id, event.progress);
      if (run) run.progress = event.progress;
    } else if (status && run) {
      run.status = status;
      if (status === "leased") {
        run.startedAt ??= event.timestamp;
        run.waitingFor = null;
        run.wakeAt = null;
      } else if (status === "waiting") {
        run.waitingFor = { kind: event.kind, name: event.name, until: event.until };
        run.wakeAt = event.until;
      } else if (status === "pending") {
        run.error = null;
        run.completedAt = null;
      } else {
        run.completedAt = event.timestamp;
        run.updatedAt = event.timestamp;
        this.liveProgress.delete(id);
      }
      if (event.type === "run:complete") run.output = event.output;
      if (event.type === "run:fail") run.error = event.error;
    }
    if (run) this.dirty.add(id);
    if (MEMBERSHIP_EVENTS.has(event.type) || (status && this.filter.status)) this.scheduleRefetch();
    if (event.type === "run:delete") this.#forget(id);

    const details = this.details.get(id);
    if (details && applyDetailEvent(details, event)) this.dirty.add(id);
    this.#host.invalidate();
  }

  #forget(id) {
    if (!this.runs.delete(id)) return;
    this.order = this.order.filter((other) => other !== id);
    this.total = Math.max(0, this.total - 1);
    this.details.delete(id);
    this.liveProgress.delete(id);
    this.layoutDirty = true;
  }

  // -- details of expanded runs --------------------------------------------------------

  /** Expand run `id` (fetching its steps and logs) or collapse it; true if now expanded. */
  toggleDetails(id) {
    if (this.details.has(id)) {
      this.details.delete(id);
      return false;
    }
    const details = newDetails();
    this.details.set(id, details);
    this.dirty.add(id);
    this.#host.invalidate();
    loadDetails(this.client, id, details, {
      isCurrent: () => this.details.get(id) === details,
      changed: () => {
        this.dirty.add(id);
        this.#host.invalidate();
      },
      failed: (error) => {
        this.notice = { kind: "error", text: `Could not load run ${shortId(id)}: ${describeError(error)}` };
        this.layoutDirty = true;
      },
    });
    return true;
  }

  // -- paging and fetching ------------------------------------------------------------

  /** Filter by {status, jobName} ("" or missing: any), from the first page. */
  setFilter(value) {
    this.filter = { status: value?.status ?? "", jobName: value?.jobName ?? "" };
    this.layoutDirty = true;
    this.showPage(0);
  }

  /** Show the page starting at `offset` (fetched by the next refresh). */
  showPage(offset) {
    this.offset = Math.max(0, offset);
    this.query++;
  }

  /** Fetch the current page again, and render. */
  refresh() {
    this.scheduleRefetch();
    this.#host.invalidate();
  }

  #reset() {
    this.runs = new Map();
    this.order = [];
    this.total = 0;
    this.offset = 0;
    this.loaded = false;
    this.jobs = new Set();
    this.liveProgress = new Map();
    this.details = new Map();
    this.dirty.clear();
    this.query++;
    this.layoutDirty = true;
  }

  /** Fetch the page soon; any number of calls while a fetch runs cause one more fetch. */
  scheduleRefetch() {
    if (!this.isListed() || !this.client || !this.#host.isConnected()) return;
    this.#refetchWanted = true;
    if (!this.#fetching) this.#refetchLoop();
  }

  async #refetchLoop() {
    this.#fetching = true;
    const connection = this.connection;
    try {
      while (this.#refetchWanted && connection === this.connection) {
        this.#refetchWanted = false;
        // Let a burst of events (say, a hundred triggers) land first: one fetch for all.
        await new Promise((resolve) => setTimeout(resolve, 15));
        await this.#loadPage(connection);
      }
    } catch (error) {
      this.#refetchWanted = false;
      if (connection === this.connection) this.showError(`Could not load runs: ${describeError(error)}`);
    } finally {
      this.#fetching = false;
      if (this.#refetchWanted) this.scheduleRefetch(); // asked for by a newer connection
    }
  }

  async #loadPage(connection) {
    const client = this.client;
    if (!client || !this.isListed()) return;
    const query = this.query;
    const filter = {};
    if (this.filter.status) filter.status = this.filter.status;
    if (this.filter.jobName) filter.jobName = this.filter.jobName;
    const limit = this.#host.pageSize();
    const offset = this.offset;
    const [runs, total] = await Promise.all([client.getRuns({ ...filter, limit, offset }), client.countRuns(filter)]);
    if (connection !== this.connection || query !== this.query) return; // a newer query is queued
    if (runs.length === 0 && offset > 0 && total > 0) {
      // The page emptied (runs deleted elsewhere): show the last page instead.
      this.showPage(Math.floor((total - 1) / limit) * limit);
      this.#refetchWanted = true;
      return;
    }
    const next = new Map();
    for (const run of runs) {
      const live = this.liveProgress.get(run.id);
      if (live && run.status === "leased") run.progress = live;
      next.set(run.id, run);
      this.dirty.add(run.id);
      if (typeof run.jobName === "string") this.jobs.add(run.jobName);
    }
    this.runs = next;
    this.order = runs.map((run) => run.id);
    this.total = total;
    this.loaded = true;
    for (const id of [...this.details.keys()]) if (!next.has(id)) this.details.delete(id);
    for (const id of [...this.liveProgress.keys()]) if (!next.has(id)) this.liveProgress.delete(id);
    this.layoutChanged();
  }
}
