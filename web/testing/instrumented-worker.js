// durably's worker with test instrumentation installed first (imports run in order).
import "./count-sync-handles.js";
import "../durably/worker.js";
