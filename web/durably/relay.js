// The tab relay: lets every tab of an app use the whole client API while exactly one
// tab (the owner, holder of the Web Lock) runs jobs and owns the database. Tabs talk
// over a same-origin BroadcastChannel named after the database:
//   owner         {kind: "owner", from, jobs}          announcement and ~1 s heartbeat
//   who-is-owner  {kind: "who-is-owner", from}         the owner answers with "owner"
//   owner-gone    {kind: "owner-gone", from}           the owner is closing
//   request       {kind: "request", from, to, id, type, fields, timeoutMs}
//   response      {kind: "response", from, to, id, ok, result | error, notOwner?}
//   events        {kind: "events", from, text}         the owner's runtime events: one
//                                                      batch, as the JSON text its worker
//                                                      posted (each tab parses it once)
//   event         {kind: "event", from, event}         one event, from an older owner
// Invariants: a request is answered only by the tab it was sent to, and its response
// goes only to the tab that asked (`to`). A pending request is settled exactly once:
// by its response, its timeout, close(), or an owner change. On an owner change a read
// or a trigger carrying an idempotency key (the relay adds one) is re-sent to the next
// owner; any other call is rejected with OwnerChangedError, because whether the old
// owner applied it is unknown.

import { parseRuntimeMessage, toError } from "./protocol.js";

export const RELAY_VERSION = 1;

export const RELAY_MESSAGES = Object.freeze({
  OWNER: "owner",
  WHO_IS_OWNER: "who-is-owner",
  OWNER_GONE: "owner-gone",
  REQUEST: "request",
  RESPONSE: "response",
  EVENTS: "events",
  /** Sent by owners before events travelled as text; still delivered. */
  EVENT: "event",
});

/** Requests that can be sent again to a new owner without being applied twice. */
const RESENDABLE = new Set(["waitForRun", "getRun", "getRuns", "countRuns", "getSteps", "getLogs", "getJobs"]);

/** Requests that create runs: relayed ones get an idempotency key, so a re-send finds the first run. */
const TRIGGERS = new Set(["trigger", "triggerAndWait"]);

/** The BroadcastChannel shared by the tabs of `database`. */
export function relayChannelName(database) {
  return `durably:${database}`;
}

function namedError(name, message) {
  return Object.assign(new Error(message), { name });
}

function errorPayload(error) {
  const name = typeof error?.name === "string" && error.name !== "Error" ? error.name : "DurablyError";
  return { name, message: error?.message ?? String(error) };
}

/**
 * @typedef {object} RelayOptions
 * @property {string} database
 * @property {string} tabId  This tab's id, unique per client.
 * @property {{postMessage(m: unknown): void, close(): void, onmessage: unknown}} channel
 * @property {(type: string, fields: object, timeoutMs: number) => Promise<unknown>} local
 *   Sends a request to this tab's own worker (used when this tab owns the database).
 * @property {(event: object) => void} deliver  Emits a runtime event relayed by the owner.
 * @property {(state: {ownerTabId: string | null, responsive: boolean, jobs: string[] | null}) => void} onOwnerState
 *   Called when the known owner, or whether it answers, changes.
 * @property {number} [heartbeatMs]  The owner's heartbeat period (default 1000).
 * @property {number} [unresponsiveAfterMs]  Silence after which the owner counts as not responding (default 3500).
 * @property {number} [handoverTimeoutMs]  How long a call waits for an owner to appear (default 120000).
 */

export class Relay {
  /** @param {RelayOptions} options */
  constructor({ database, tabId, channel, local, deliver, onOwnerState, heartbeatMs = 1000, unresponsiveAfterMs = 3500, handoverTimeoutMs = 120_000 }) {
    this.database = database;
    this.tabId = tabId;
    /** "owner" | "secondary" | null: set by the client once its worker knows. */
    this.role = null;
    /** The tab that owns the database as far as this tab knows; null during a handover. */
    this.ownerTabId = null;
    /** False once the known owner missed its heartbeats; true again when it is heard. */
    this.responsive = true;
    /** The owner's job names, from its announcement. */
    this.jobs = null;
    this.closed = false;
    this._channel = channel;
    this._local = local;
    this._deliver = deliver;
    this._onOwnerState = onOwnerState;
    this._heartbeatMs = heartbeatMs;
    this._unresponsiveAfterMs = unresponsiveAfterMs;
    this._handoverTimeoutMs = handoverTimeoutMs;
    this._nextId = 1;
    /** id → {type, fields, timeoutMs, resolve, reject, timer, sentTo}; sentTo null: waiting for an owner. */
    this._pending = new Map();
    this._lastHeard = 0;
    this._ticker = null;
    channel.onmessage = (event) => this._onMessage(event.data);
  }

  // -- the client's side ----------------------------------------------------------------

  /** Send a runtime request to the owner (this tab's worker when it is the owner). */
  request(type, fields, timeoutMs) {
    if (this.closed) return Promise.reject(namedError("DurablyError", "the client is closed"));
    if (this.role === "owner" && this._pending.size === 0) return this._local(type, fields, timeoutMs);
    const id = this._nextId++;
    if (TRIGGERS.has(type)) {
      const options = { ...(fields.options ?? {}) };
      options.idempotencyKey ??= `relay:${this.tabId}:${id}`;
      fields = { ...fields, options };
    }
    return new Promise((resolve, reject) => {
      const entry = { id, type, fields, timeoutMs, resolve, reject, timer: null, sentTo: null };
      this._pending.set(id, entry);
      this._dispatch(entry);
    });
  }

  /** This tab's role changed (its worker took the lock, or found it taken). */
  setRole(role) {
    if (this.closed || role === this.role) return;
    this.role = role;
    clearInterval(this._ticker);
    if (role === "owner") {
      this._announce();
      this._ticker = setInterval(() => this._announce(), this._heartbeatMs);
      this._setOwner(this.tabId, true);
    } else {
      this._post({ kind: RELAY_MESSAGES.WHO_IS_OWNER });
      this._ticker = setInterval(() => this._watch(), this._heartbeatMs);
    }
  }

  /** The owner passes its runtime's events on to the other tabs: `text` is one events
   * message's JSON text, as the worker posted it (not parsed and cloned again). */
  publish(text) {
    if (this.role !== "owner" || this.closed) return;
    this._post({ kind: RELAY_MESSAGES.EVENTS, text });
  }

  /** As the owner, tell the others it is going (the page is unloading, or closing). */
  announceGone() {
    if (this.role !== "owner" || this.closed) return;
    try {
      this._post({ kind: RELAY_MESSAGES.OWNER_GONE });
    } catch {
      // The channel is gone already: the others notice the silence instead.
    }
  }

  /** Stop: tell the others when this tab was the owner, and reject what is pending. */
  close() {
    if (this.closed) return;
    this.announceGone();
    this.closed = true;
    clearInterval(this._ticker);
    for (const entry of this._pending.values()) this._settle(entry, namedError("DurablyError", "the client is closed"));
    this._channel.onmessage = null;
    this._channel.close();
  }

  // -- sending --------------------------------------------------------------------------

  _post(message) {
    this._channel.postMessage({ v: RELAY_VERSION, from: this.tabId, ...message });
  }

  _announce() {
    this._post({ kind: RELAY_MESSAGES.OWNER, jobs: this.jobs ?? [] });
  }

  /** Send `entry` to the current owner, or park it until one is known. */
  _dispatch(entry) {
    clearTimeout(entry.timer);
    entry.timer = null;
    if (this.role === "owner") {
      entry.sentTo = this.tabId;
      this._local(entry.type, entry.fields, entry.timeoutMs).then(
        (result) => this._settle(entry, null, result),
        (error) => this._settle(entry, error),
      );
      return;
    }
    if (this.ownerTabId === null) {
      entry.sentTo = null;
      entry.timer = setTimeout(() => {
        this._settle(entry, namedError("OwnerChangedError", `${entry.type}: no tab took over running the jobs of database "${this.database}" within ${this._handoverTimeoutMs} ms`));
      }, this._handoverTimeoutMs);
      this._post({ kind: RELAY_MESSAGES.WHO_IS_OWNER });
      return;
    }
    entry.sentTo = this.ownerTabId;
    if (entry.timeoutMs > 0) {
      entry.timer = setTimeout(() => {
        this._settle(entry, namedError("TimeoutError", `${entry.type}: no answer from the tab running the jobs within ${entry.timeoutMs} ms`));
      }, entry.timeoutMs);
    }
    try {
      this._post({ kind: RELAY_MESSAGES.REQUEST, to: entry.sentTo, id: entry.id, type: entry.type, fields: entry.fields, timeoutMs: entry.timeoutMs });
    } catch (error) {
      this._settle(entry, namedError("ValidationError", `${entry.type}: the request cannot be sent to the tab running the jobs: ${error.message}`));
    }
  }

  _settle(entry, error, result) {
    if (this._pending.get(entry.id) !== entry) return; // settled already
    this._pending.delete(entry.id);
    clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve(result);
  }

  /** The owner is now `ownerTabId` (null: none known). Requests the previous owner held
   * are re-sent when that is safe and rejected otherwise; parked ones are sent. */
  _setOwner(ownerTabId, responsive) {
    const changed = ownerTabId !== this.ownerTabId || responsive !== this.responsive;
    const previous = this.ownerTabId;
    this.ownerTabId = ownerTabId;
    this.responsive = responsive;
    if (ownerTabId !== previous) {
      for (const entry of [...this._pending.values()]) {
        if (entry.sentTo === ownerTabId) continue;
        if (entry.sentTo === null || RESENDABLE.has(entry.type) || TRIGGERS.has(entry.type)) {
          this._dispatch(entry);
        } else {
          this._settle(entry, namedError("OwnerChangedError", `${entry.type}: the tab running the jobs changed while this call was in flight; it may or may not have been applied`));
        }
      }
    }
    if (changed) this._onOwnerState({ ownerTabId, responsive, jobs: this.jobs });
  }

  /** A secondary's heartbeat check: is the owner still heard? Is there one at all? */
  _watch() {
    if (this.role === "owner") return;
    if (this.ownerTabId === null) {
      this._post({ kind: RELAY_MESSAGES.WHO_IS_OWNER });
    } else if (this.responsive && Date.now() - this._lastHeard > this._unresponsiveAfterMs) {
      this._setOwner(this.ownerTabId, false);
    }
  }

  // -- receiving ------------------------------------------------------------------------

  _onMessage(message) {
    if (this.closed || message?.v !== RELAY_VERSION || typeof message.from !== "string" || message.from === this.tabId) return;
    // Anything the owner sends shows it is alive, not only its heartbeat.
    if (message.from === this.ownerTabId) {
      this._lastHeard = Date.now();
      if (!this.responsive && message.kind !== RELAY_MESSAGES.OWNER_GONE) this._setOwner(this.ownerTabId, true);
    }
    switch (message.kind) {
      case RELAY_MESSAGES.WHO_IS_OWNER:
        if (this.role === "owner") this._announce();
        return;
      case RELAY_MESSAGES.OWNER:
        if (this.role === "owner") {
          console.error(`durably: tab ${message.from} also claims to own database "${this.database}"`);
          return;
        }
        this._lastHeard = Date.now();
        if (Array.isArray(message.jobs)) this.jobs = message.jobs;
        if (message.from !== this.ownerTabId || !this.responsive) this._setOwner(message.from, true);
        return;
      case RELAY_MESSAGES.OWNER_GONE:
        if (message.from === this.ownerTabId) this._setOwner(null, true);
        return;
      case RELAY_MESSAGES.REQUEST:
        if (message.to === this.tabId) this._serve(message);
        return;
      case RELAY_MESSAGES.RESPONSE:
        if (message.to === this.tabId) this._onResponse(message);
        return;
      case RELAY_MESSAGES.EVENTS:
        if (this.role !== "owner" && typeof message.text === "string") this._deliverText(message.text);
        return;
      case RELAY_MESSAGES.EVENT:
        if (this.role !== "owner" && message.event && typeof message.event.type === "string") this._deliver(message.event);
        return;
    }
  }

  _deliverText(text) {
    let message;
    try {
      message = parseRuntimeMessage(text);
    } catch (error) {
      console.error("durably: events relayed by the owner tab could not be read", error);
      return;
    }
    if (message?.type !== "events" || !Array.isArray(message.events)) return;
    for (const event of message.events) {
      if (typeof event?.type === "string") this._deliver(event);
    }
  }

  /** Answer a request another tab sent to this one (only to that tab). */
  _serve({ from, id, type, fields, timeoutMs }) {
    const respond = (body) => {
      try {
        this._post({ kind: RELAY_MESSAGES.RESPONSE, to: from, id, ...body });
      } catch (error) {
        this._post({ kind: RELAY_MESSAGES.RESPONSE, to: from, id, ok: false, error: { name: "ValidationError", message: `${type}: the result cannot be sent to the asking tab: ${error.message}` } });
      }
    };
    if (this.role !== "owner" || typeof type !== "string" || typeof fields !== "object" || fields === null) {
      respond({ ok: false, notOwner: this.role !== "owner", error: { name: "NotOwnerError", message: `this tab does not own database "${this.database}"` } });
      return;
    }
    this._local(type, fields, Number(timeoutMs) || 0).then(
      (result) => !this.closed && respond({ ok: true, result: result ?? null }),
      (error) => !this.closed && respond({ ok: false, error: errorPayload(error) }),
    );
  }

  _onResponse(message) {
    const entry = this._pending.get(message.id);
    if (!entry || entry.sentTo !== message.from) return; // settled, or sent elsewhere since
    if (message.notOwner) {
      // Nothing was applied: find the real owner and send it there.
      entry.sentTo = null;
      if (this.ownerTabId === message.from) this._setOwner(null, true);
      this._dispatch(entry);
      return;
    }
    if (message.ok) this._settle(entry, null, message.result);
    else this._settle(entry, toError(message.error));
  }
}
