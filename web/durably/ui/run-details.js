// The steps and logs of an expanded run: fetched when it is expanded, then kept current
// by step:* and log:write events. Invariant: events that arrive before an answer are
// already part of it (the worker answers and emits over one ordered port), so each list
// takes events only once it is loaded, and an answer for a collapsed run is dropped.

/** The details of a run just expanded: nothing loaded yet. */
export function newDetails() {
  return { steps: [], logs: [], stepsLoaded: false, logsLoaded: false, stepsVersion: 0, logsVersion: 0 };
}

/**
 * Fetch the steps and logs of run `id` into `details`. `isCurrent()` says whether the
 * details are still shown; `changed()` is called after each answer is applied, and
 * `failed(error)` when a fetch fails.
 */
export function loadDetails(client, id, details, { isCurrent, changed, failed }) {
  const settle = (apply) => (value) => {
    if (!isCurrent()) return; // collapsed or refetched meanwhile
    apply(value);
    changed();
  };
  client.getSteps(id).then(settle((steps) => {
    details.steps = steps.map((step) => ({ ...step, durationMs: null }));
    details.stepsLoaded = true;
    details.stepsVersion++;
  }), settle((error) => { details.stepsLoaded = true; failed(error); }));
  client.getLogs(id).then(settle((logs) => {
    details.logs = logs;
    details.logsLoaded = true;
    details.logsVersion++;
  }), settle((error) => { details.logsLoaded = true; failed(error); }));
}

/** Apply a step or log event to an expanded run's details; true if anything changed. */
export function applyDetailEvent(details, event) {
  if (event.type === "log:write") {
    if (!details.logsLoaded) return false;
    details.logs.push({ level: event.level, message: event.message, data: event.data, stepName: event.stepName ?? null, createdAt: event.timestamp });
    return true;
  }
  if (!event.type.startsWith("step:") || !details.stepsLoaded) return false;
  let step = details.steps.find((candidate) => candidate.index === event.stepIndex);
  if (!step) {
    step = { name: event.stepName, index: event.stepIndex, status: "running", startedAt: event.timestamp, completedAt: null, durationMs: null, error: null };
    details.steps.push(step);
    details.steps.sort((a, b) => a.index - b.index);
  }
  if (event.type === "step:start") Object.assign(step, { status: "running", startedAt: event.timestamp, completedAt: null, durationMs: null });
  else if (event.type === "step:complete") Object.assign(step, { status: "completed", completedAt: event.timestamp, durationMs: event.durationMs ?? null });
  else if (event.type === "step:fail") Object.assign(step, { status: "failed", completedAt: event.timestamp, error: event.error ?? null });
  else if (event.type === "step:cancel") Object.assign(step, { status: "cancelled", completedAt: event.timestamp });
  details.stepsVersion++;
  return true;
}

/** What DetailsView.update needs: the lists and whether they are still loading. */
export function detailsView(details) {
  return { ...details, loading: !details.stepsLoaded || !details.logsLoaded };
}
