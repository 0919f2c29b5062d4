// The runtime's worker, instrumented for the benchmarks: the instrumentation module is
// evaluated first, so every OPFS handle call the runtime makes is counted.
import "./bench-instrument.js";
import "../durably/worker.js";
