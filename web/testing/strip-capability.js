// Removes one browser capability from this worker's global before durably's worker
// starts (see without-capability.js): `?missing=` names it, as a page without that
// capability (an old browser, an insecure context) would lack it.

const missing = new URLSearchParams(self.location.search).get("missing");
const removals = {
  FileSystemSyncAccessHandle: () => delete self.FileSystemSyncAccessHandle,
  getDirectory: () => delete StorageManager.prototype.getDirectory,
  locks: () => delete WorkerNavigator.prototype.locks,
  secureContext: () => Object.defineProperty(self, "isSecureContext", { value: false }),
};
if (!Object.hasOwn(removals, missing)) throw new Error(`unknown capability ${missing}`);
removals[missing]();
