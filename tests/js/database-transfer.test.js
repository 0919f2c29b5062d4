// The worker's side of exportDatabase and importDatabase (worker.js transferDatabase):
// bytes cross as a transferable ArrayBuffer and a temporary file the Python side names,
// the file is always removed, and a bad request is answered with a ValidationError.

import assert from "node:assert/strict";
import { test } from "node:test";

import { transferDatabase } from "../../web/durably/worker.js";

/** A stand-in for the bridge's PyProxy: answers call() and keeps temporary files. */
function fakeBridge(answer) {
  const files = new Map();
  const calls = [];
  return {
    files,
    calls,
    async call(text) {
      const request = JSON.parse(text);
      calls.push(request);
      return JSON.stringify(answer(request, files));
    },
    read_temporary_file(path) {
      const bytes = files.get(path);
      files.delete(path);
      return bytes;
    },
    write_temporary_file(data) {
      const path = `/tmp/import-${files.size}`;
      files.set(path, data.slice());
      return path;
    },
    remove_temporary_file(path) {
      files.delete(path);
    },
  };
}

test("an export's bytes are transferred and its temporary file removed", async () => {
  const bridge = fakeBridge((request, files) => {
    files.set("/tmp/export", new Uint8Array([83, 81, 76]));
    return { id: request.id, ok: true, result: { file: "/tmp/export", bytes: 3 } };
  });
  const { response, transfer } = await transferDatabase(bridge, { id: 7, type: "exportDatabase" });
  assert.deepEqual(bridge.calls, [{ id: 7, type: "exportDatabase" }]);
  assert.equal(response.id, 7);
  assert.ok(response.ok);
  assert.deepEqual([...new Uint8Array(response.result)], [83, 81, 76]);
  assert.deepEqual(transfer, [response.result]);
  assert.equal(bridge.files.size, 0);
});

test("a failed export passes the runtime's error through", async () => {
  const error = { name: "StorageError", message: "disk full" };
  const bridge = fakeBridge((request) => ({ id: request.id, ok: false, error }));
  const { response, transfer } = await transferDatabase(bridge, { id: 1, type: "exportDatabase" });
  assert.deepEqual(response, { id: 1, ok: false, error });
  assert.deepEqual(transfer, []);
});

test("an import goes through a temporary file that is removed whatever the outcome", async () => {
  for (const ok of [true, false]) {
    let seen = null;
    const bridge = fakeBridge((request, files) => {
      seen = [...files.get(request.file)];
      return ok ? { id: request.id, ok, result: { runs: 1, reclaimedRuns: 0 } } : { id: request.id, ok, error: { name: "ValidationError", message: "bad" } };
    });
    const data = new Uint8Array([0, 1, 2, 3, 4]).subarray(1, 4);
    const { response } = await transferDatabase(bridge, { id: 2, type: "importDatabase", data });
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(response.ok, ok);
    assert.equal(bridge.calls[0].type, "importDatabase");
    assert.equal(bridge.files.size, 0);
  }
});

test("an import without bytes, or with unknown fields, is refused before Python", async () => {
  const bridge = fakeBridge(() => assert.fail("the runtime must not be asked"));
  const missing = await transferDatabase(bridge, { id: 3, type: "importDatabase", data: "x" });
  assert.equal(missing.response.error.name, "ValidationError");
  assert.deepEqual(missing.response.error.fields, ["data"]);
  const extra = await transferDatabase(bridge, { id: 4, type: "exportDatabase", path: "/etc" });
  assert.deepEqual(extra.response.error.fields, ["path"]);
});
