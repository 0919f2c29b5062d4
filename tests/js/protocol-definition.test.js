// The generated protocol definition (web/durably/protocol-definition.js) against what the
// page side declares by hand: client.d.ts's event and error types and client methods, and
// the runtime calls of client.js. (tests/unit/test_protocol_definition.py checks that the
// file matches the Python side.)

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  ERROR_NAMES,
  EVENT_TYPES,
  RUNTIME_REQUESTS,
  TERMINAL_RUN_EVENTS,
  WORKER_EVENT_TYPES,
} from "../../web/durably/protocol-definition.js";

const read = (name) => readFileSync(new URL(`../../web/durably/${name}`, import.meta.url), "utf8");
const TYPES = read("client.d.ts");

/** The string literals of a `type Name = "a" | "b" ...;` declaration in client.d.ts. */
function unionMembers(name) {
  const match = TYPES.match(new RegExp(`export type ${name} =([^;]*);`));
  assert.ok(match, `client.d.ts declares no type ${name}`);
  return [...match[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

test("client.d.ts's DurablyEventType lists exactly the runtime's event types", () => {
  assert.deepEqual(unionMembers("DurablyEventType").sort(), [...EVENT_TYPES].sort());
});

test("client.d.ts's WorkerEventType lists exactly the worker's own events", () => {
  assert.deepEqual(unionMembers("WorkerEventType").sort(), [...WORKER_EVENT_TYPES].sort());
});

test("client.d.ts's DurablyErrorName lists exactly the error names", () => {
  assert.deepEqual(unionMembers("DurablyErrorName").sort(), [...ERROR_NAMES].sort());
});

test("every runtime request has a method in client.js and in client.d.ts", () => {
  const client = read("client.js");
  for (const type of Object.keys(RUNTIME_REQUESTS)) {
    assert.match(client, new RegExp(`\\(\\s*"${type}"`), `client.js never sends ${type}`);
    assert.match(TYPES, new RegExp(`^\\s+${type}(<[^>]*>)?\\(`, "m"), `client.d.ts declares no method ${type}`);
  }
});

test("terminal run events are runtime events, and the definition cannot be changed", () => {
  for (const type of TERMINAL_RUN_EVENTS) assert.ok(EVENT_TYPES.includes(type), type);
  assert.throws(() => EVENT_TYPES.push("x:y"), TypeError);
  assert.throws(() => {
    "use strict";
    RUNTIME_REQUESTS.getRun.runId.required = false;
  }, TypeError);
});
