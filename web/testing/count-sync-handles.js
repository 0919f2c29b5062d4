// Test instrumentation for a durably worker (see instrumented-worker.js): reports every
// createSyncAccessHandle() call to the page (`window.workerReports` on the test page),
// so a test can prove a secondary tab's worker never opened the database.

const original = FileSystemFileHandle.prototype.createSyncAccessHandle;
FileSystemFileHandle.prototype.createSyncAccessHandle = function (...args) {
  self.postMessage({ type: "durably-test:sync-access-handle", name: this.name });
  return original.apply(this, args);
};
