// A module worker that is durably's worker minus one capability (`?missing=`): the
// tests point the client's `workerUrl` here. Imports run in order, so the capability is
// gone before worker.js runs.
import "./strip-capability.js";
import "../durably/worker.js";
