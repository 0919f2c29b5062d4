import assert from "node:assert/strict";
import { test } from "node:test";

import { DATABASE_NAME, RUNTIME_REQUESTS, WORKER_REQUESTS, lockName, toError } from "../../web/durably/protocol.js";

test("toError rebuilds an Error carrying the runtime's class name and message", () => {
  const error = toError({ name: "NotFoundError", message: "run r1 not found" });
  assert.ok(error instanceof Error);
  assert.equal(error.name, "NotFoundError");
  assert.equal(error.message, "run r1 not found");
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
  assert.deepEqual(WORKER_REQUESTS.filter((type) => RUNTIME_REQUESTS.includes(type)), []);
});
