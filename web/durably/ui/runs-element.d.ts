// Types for runs-element.js: the <durably-runs> custom element.

import type { BootPhase, DurablyClient, DurablyEvent, RunStatus } from "../client";

export interface RunsFilter {
  /** Only runs with this status; "" for any. */
  status?: RunStatus | "";
  /** Only runs of this job; "" for any. */
  jobName?: string;
}

/**
 * `<durably-runs page-size="10">`: a live list of one database's runs, with a boot
 * indicator and the secondary-tab warning. Styled through CSS custom properties
 * (`--durably-accent`, `--durably-completed`, ...) and parts (`::part(badge)`, ...).
 */
export declare class DurablyRunsElement extends HTMLElement {
  /** The connected client (null until known); setting it calls connect(). */
  client: DurablyClient | null;
  /** Current filter; setting it goes back to the first page. */
  filter: RunsFilter;
  /** Runs per page: the `page-size` attribute, 1–100, default 10. */
  pageSize: number;
  /** Pass as createDurably's `onBoot` when connecting with its promise. */
  readonly onBoot: (phase: BootPhase, event?: DurablyEvent) => void;
  /**
   * Show the runs of a client (listened to at once, so boot phases and the secondary
   * warning show before it is ready) or of the promise createDurably() returned.
   * Resolves once the client is ready or has failed to start.
   */
  connect(source: DurablyClient | Promise<DurablyClient> | null): Promise<void>;
  /** Fetch the current page again. */
  refresh(): void;
}

declare global {
  interface HTMLElementTagNameMap {
    "durably-runs": DurablyRunsElement;
  }
}
