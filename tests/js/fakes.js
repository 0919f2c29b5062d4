// Stand-ins for the browser APIs the client and the worker host use: MessageChannel
// ports, navigator.locks, the Worker constructor, and a runtime boot that needs no
// Pyodide. They follow the browser's semantics where the code under test relies on
// them: messages are structured-cloned and delivered in order in a later task, and a
// Web Lock is held until its callback's promise settles, granted first come first served.

import { createWorkerHost } from "../../web/durably/worker.js";
import { CONNECT, PROTOCOL_VERSION, parseRuntimeMessage } from "../../web/durably/protocol.js";

export const WORKER_URL = "http://127.0.0.1:8000/durably/worker.js";

/** The next turn of the event loop (after every queued message is delivered). */
export const tick = () => new Promise((resolve) => setImmediate(resolve));

export class FakePort {
  constructor() {
    /** @type {FakePort | null} */
    this.other = null;
    this.onmessage = null;
    this.closed = false;
  }

  postMessage(data) {
    const copy = structuredClone(data); // throws DataCloneError, as the browser does
    const target = this.other;
    setImmediate(() => {
      if (!this.closed && !target.closed) target.onmessage?.({ data: copy });
    });
  }

  close() {
    this.closed = true;
  }
}

export class FakeMessageChannel {
  constructor() {
    this.port1 = new FakePort();
    this.port2 = new FakePort();
    this.port1.other = this.port2;
    this.port2.other = this.port1;
  }
}

/**
 * BroadcastChannel: every message is structured-cloned and delivered in a later task to
 * every other open channel of the same name (never to the sender), in order. `log`
 * records every message posted on any channel, for assertions.
 */
export class FakeBroadcastChannel {
  static channels = new Set();
  static log = [];

  static reset() {
    FakeBroadcastChannel.channels = new Set();
    FakeBroadcastChannel.log = [];
  }

  constructor(name) {
    this.name = name;
    this.onmessage = null;
    this.closed = false;
    FakeBroadcastChannel.channels.add(this);
  }

  postMessage(data) {
    if (this.closed) throw Object.assign(new Error("the channel is closed"), { name: "InvalidStateError" });
    const copy = structuredClone(data);
    FakeBroadcastChannel.log.push(copy);
    for (const target of FakeBroadcastChannel.channels) {
      if (target === this || target.name !== this.name) continue;
      setImmediate(() => {
        if (!target.closed) target.onmessage?.({ data: structuredClone(copy) });
      });
    }
  }

  close() {
    this.closed = true;
    FakeBroadcastChannel.channels.delete(this);
  }
}

/** navigator.locks: exclusive locks granted in request order; `log` records releases. */
export class FakeLocks {
  constructor(log = []) {
    this.log = log;
    /** name -> the request holding it */
    this.holders = new Map();
    /** name -> requests waiting in line */
    this.queues = new Map();
  }

  request(name, options, callback) {
    if (typeof options === "function") [callback, options] = [options, {}];
    return new Promise((resolve, reject) => {
      const entry = { callback, resolve, reject };
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      if (this.holders.has(name) || queue.length > 0) {
        if (options.ifAvailable) setImmediate(() => this.#run(name, entry, null));
        else queue.push(entry);
      } else {
        this.#grant(name, entry);
      }
    });
  }

  held(name) {
    return this.holders.has(name);
  }

  #grant(name, entry) {
    this.holders.set(name, entry);
    setImmediate(() => this.#run(name, entry, { name, mode: "exclusive" }));
  }

  async #run(name, entry, lock) {
    try {
      entry.resolve(await entry.callback(lock));
    } catch (error) {
      entry.reject(error);
    } finally {
      if (lock) {
        this.holders.delete(name);
        this.log.push(`lock:release ${name}`);
        const next = this.queues.get(name).shift();
        if (next) this.#grant(name, next);
      }
    }
  }
}

/**
 * A boot in two parts, recording what happens in `log`: `prepare` (the lock-free part,
 * held by `prepareGate`, failed by `prepareFailWith`) and `boot`, which acquires a fake
 * OPFS mount and a fake bridge. `gate` (a promise) holds the boot until it settles;
 * `failWith` fails it after the mount is open; `bridgeCloseError` makes the bridge's close fail.
 */
export function fakeRuntime({ log = [], gate = null, failWith = null, bridgeCloseError = null, prepareGate = null, prepareFailWith = null } = {}) {
  const prepare = async () => {
    log.push("prepare");
    if (prepareGate) await prepareGate;
    if (prepareFailWith) throw prepareFailWith;
    log.push("prepared");
    return { jobsImported: true };
  };
  const fake = { prepare, boot: null, log, bridge: null };
  fake.boot = async (config, runtime, { post }, prepared) => {
    if (!prepared?.jobsImported) throw new Error("boot ran before prepare finished");
    log.push("boot");
    if (gate) await gate;
    runtime.mount = { close: () => log.push("mount:close") };
    if (failWith) throw failWith;
    runtime.bridge = {
      handle(text) {
        const message = JSON.parse(text);
        log.push(`handle ${message.type}`);
        const result = message.type === "getRun" ? { id: message.runId, status: "leased" } : { type: message.type };
        post(JSON.stringify({ id: message.id, ok: true, result })); // the bridge posts JSON text
      },
      /** As the bridge forwards one turn's runtime events: one JSON text, dates in epoch ms. */
      postEvents: (events) => post(JSON.stringify({ type: "events", events })),
      async close() {
        log.push("bridge:close");
        if (bridgeCloseError) throw bridgeCloseError;
      },
      set_online: (online) => log.push(`online ${online}`),
      destroy: () => log.push("bridge:destroy"),
    };
    fake.bridge = runtime.bridge;
    return { jobs: ["countdown"], jobErrors: [] };
  };
  return fake;
}

/** The page's end of a host's port: send requests, collect responses and events. */
export class FakePage {
  constructor(port) {
    this.port = port;
    this.nextId = 1;
    this.pending = new Map();
    this.events = [];
    port.onmessage = ({ data }) => {
      // The runtime's messages are JSON text, the worker's own are objects (as in client.js).
      const message = typeof data === "string" ? parseRuntimeMessage(data) : data;
      if (message.type === "events") this.events.push(...message.events);
      else this.pending.get(message.id)?.(message);
    };
  }

  /** Send a request; resolves with the whole response {id, ok, result | error}. */
  send(type, fields = {}) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.port.postMessage({ ...fields, id, type });
    });
  }

  init(database = "app", extra = {}) {
    return this.send("init", { config: { database, jobs: [], ...extra } });
  }

  eventTypes() {
    return this.events.map((event) => event.type);
  }
}

/** A worker host on a fake port, as worker.js wires it in a real worker. */
export function startHost({ locks = new FakeLocks(), runtime = fakeRuntime(), missing = null } = {}) {
  const channel = new FakeMessageChannel();
  const worker = { ended: false };
  const host = createWorkerHost({
    locks,
    location: WORKER_URL,
    missingCapability: () => missing,
    prepare: runtime.prepare,
    boot: runtime.boot,
    endWorker: () => (worker.ended = true),
  });
  host.connect({ type: CONNECT, protocol: PROTOCOL_VERSION }, channel.port2);
  return { host, page: new FakePage(channel.port1), locks, runtime, worker };
}

/**
 * Make `new Worker(...)` start a worker host in this process (as a page's client would
 * start worker.js) and MessageChannel the fake one. Returns the started workers.
 */
export function installFakeWorker({ locks = new FakeLocks(), runtime = () => fakeRuntime() } = {}) {
  const started = [];
  FakeBroadcastChannel.reset();
  globalThis.BroadcastChannel = FakeBroadcastChannel;
  globalThis.MessageChannel = FakeMessageChannel;
  globalThis.Worker = class FakeWorker {
    constructor(url, options) {
      this.url = String(url);
      this.options = options;
      this.terminated = false;
      this.onerror = null;
      this.runtime = runtime();
      this.host = createWorkerHost({
        locks,
        location: WORKER_URL,
        missingCapability: () => null,
        prepare: this.runtime.prepare,
        boot: this.runtime.boot,
        endWorker: () => (this.terminated = true),
      });
      started.push(this);
    }

    postMessage(message, transfer = []) {
      this.host.connect(message, transfer[0]);
    }

    terminate() {
      this.terminated = true;
    }
  };
  return { started, locks };
}
