// <durably-runs>: the custom element. It owns the lifecycle (connect a client, follow
// its events while in the document, stop when removed), the attributes and public API,
// the controls, and render scheduling. Invariant: at most one render per animation
// frame, however many events arrive; state lives in RunsModel, drawing in RunsRenderer.

import { RunsModel } from "./runs-model.js";
import { RunsRenderer } from "./runs-renderer.js";
import { isActionable, runAction } from "./run-actions.js";
import { RUNS_STYLE } from "./runs-style.js";
import { buildShell } from "./runs-view.js";
import { StorageBar } from "./storage-bar.js";

const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 100;

/**
 * A live, paginated list of one database's runs (status, progress, times, steps and
 * logs, cancel / retrigger / delete), with a boot indicator while the runtime starts
 * and a persistent warning while another tab owns the runtime.
 *
 * Usage:
 *   import "/durably/ui/runs-element.js";
 *   const runs = document.querySelector("durably-runs");
 *   runs.connect(new DurablyClient({ database, jobs }));          // boot phases included
 *   // or: runs.connect(createDurably({ database, jobs, onBoot: runs.onBoot }));
 */
export class DurablyRunsElement extends HTMLElement {
  static observedAttributes = ["page-size"];

  #model = new RunsModel({
    invalidate: () => this.#invalidate(),
    isConnected: () => this.isConnected,
    pageSize: () => this.pageSize,
  });
  /** Stops following the client's events; null while not following. */
  #unsubscribe = null;
  /** The pending animation frame's id; 0 when no render is scheduled. */
  #frame = 0;
  #ui;
  #renderer;
  /** Persistence notice, quota warning and "Download backup". */
  #storage = new StorageBar();

  /**
   * Pass as `onBoot` to createDurably() when connecting with its promise, so the boot
   * indicator can show each start-up phase: createDurably({ ..., onBoot: element.onBoot }).
   */
  onBoot = (phase) => this.#model.setBootPhase(phase);

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    this.#ui = buildShell(root, RUNS_STYLE);
    this.#renderer = new RunsRenderer(root, this.#ui, this.#model, () => this.#invalidate());
    root.insertBefore(this.#storage.node, this.#ui.toolbar);
    root.addEventListener("click", (event) => this.#onClick(event));
    root.addEventListener("change", (event) => {
      const key = event.target.dataset?.filter;
      if (key) this.filter = { ...this.#model.filter, [key]: event.target.value };
    });
  }

  // -- public API ---------------------------------------------------------------------

  /** The connected DurablyClient (null until known). Setting it calls connect(). */
  get client() {
    return this.#model.client;
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
    const model = this.#model;
    const connection = model.startConnection();
    this.#detach();
    this.#storage.connect(null);
    if (!source) {
      model.state = "idle";
      this.#invalidate();
      return Promise.resolve();
    }
    model.state = "booting";
    const isClient = typeof source.on === "function";
    if (isClient) this.#attach(source);
    this.#invalidate();
    const ready = isClient ? (source.ready ?? Promise.resolve(source)) : Promise.resolve(source);
    return ready.then(
      (client) => {
        if (connection !== model.connection) return;
        if (!isClient) this.#attach(client);
        model.onReady(client);
        this.#storage.connect(client);
      },
      (error) => {
        if (connection !== model.connection) return;
        model.onFailedToStart(error);
      },
    );
  }

  /** The run filter: {status, jobName}; "" (or missing) means any. */
  get filter() {
    return { ...this.#model.filter };
  }

  set filter(value) {
    this.#model.setFilter(value);
    this.#ui.status.value = this.#model.filter.status;
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
    this.#model.refresh();
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
    const model = this.#model;
    if (model.client && !this.#unsubscribe) {
      // Back in the document after a removal: events were missed, so start over.
      this.#attach(model.client);
      model.onReattached();
    }
    model.layoutDirty = true;
    this.refresh();
  }

  disconnectedCallback() {
    // Stop listening while detached, so a removed element can be collected.
    this.#detach();
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#renderer.stop();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (name === "page-size" && oldValue !== newValue) {
      this.#model.showPage(0);
      this.refresh();
    }
  }

  // -- following a client -------------------------------------------------------------

  #attach(client) {
    this.#model.client = client;
    this.#unsubscribe = client.on("*", (event) => this.#model.applyEvent(event));
  }

  #detach() {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  // -- controls -----------------------------------------------------------------------

  #onClick(event) {
    const button = event.target.closest?.("button[data-action]");
    if (!button || !isActionable(button)) return;
    const model = this.#model;
    const action = button.dataset.action;
    const id = button.dataset.runId;
    if (action === "toggle") {
      this.#renderer.rows.get(id)?.setExpanded(model.toggleDetails(id));
    } else if (action === "dismiss") {
      model.notice = null;
      model.layoutChanged();
    } else if (action === "previous" || action === "next") {
      model.showPage(model.offset + (action === "next" ? this.pageSize : -this.pageSize));
      this.refresh();
    } else if (id) {
      runAction(model, action, id, button);
    }
  }

  // -- rendering ----------------------------------------------------------------------

  /** Render in the next animation frame (once, however often this is called). */
  #invalidate() {
    if (this.#frame || !this.isConnected) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#renderer.render();
    });
  }
}

if (!customElements.get("durably-runs")) customElements.define("durably-runs", DurablyRunsElement);
