import assert from "node:assert/strict";
import { test } from "node:test";

import { DATABASE_NAME, RUNTIME_REQUESTS, WORKER_REQUESTS, lockName, parseRuntimeMessage, toError } from "../../web/durably/protocol.js";

test("toError rebuilds an Error carrying the runtime's class name and message", () => {
  const error = toError({ name: "NotFoundError", message: "run r1 not found" });
  assert.ok(error instanceof Error);
  assert.equal(error.name, "NotFoundError");
  assert.equal(error.message, "run r1 not found");
});

test("toError keeps a ValidationError's field paths, as a copy", () => {
  const payload = { name: "ValidationError", message: "trigger: field 'options.delayMs' ...", fields: ["options.delayMs"] };
  const error = toError(payload);
  assert.deepEqual(error.fields, ["options.delayMs"]);
  assert.notEqual(error.fields, payload.fields);
  assert.equal(toError({ name: "NotFoundError", message: "gone" }).fields, undefined);
});

test("toError without a payload still gives an Error", () => {
  assert.equal(toError(undefined).message, "unknown error");
});

test("database names double as file and lock names", () => {
  assert.equal(lockName("demo"), "durably:demo");
  assert.ok(DATABASE_NAME.test("app-1.v2"));
  for (const bad of ["", "../x", "a/b", ".hidden", "x".repeat(65)]) assert.ok(!DATABASE_NAME.test(bad), bad);
});

test("worker and runtime requests do not overlap", () => {
  assert.deepEqual(Object.keys(WORKER_REQUESTS).filter((type) => Object.hasOwn(RUNTIME_REQUESTS, type)), []);
});

test("parseRuntimeMessage turns an event's epoch-ms dates into ISO strings, and nothing else", () => {
  const text = JSON.stringify({
    type: "events",
    events: [{ type: "log:write", runId: "r1", timestamp: 1_000, data: { timestamp: 5, until: 6 } }],
  });
  const { events } = parseRuntimeMessage(text);
  assert.equal(events[0].timestamp, "1970-01-01T00:00:01.000Z");
  assert.deepEqual(events[0].data, { timestamp: 5, until: 6 }); // user data stays as sent
  assert.deepEqual(parseRuntimeMessage('{"id":1,"ok":true,"result":{"timestamp":1}}'), { id: 1, ok: true, result: { timestamp: 1 } });
});
