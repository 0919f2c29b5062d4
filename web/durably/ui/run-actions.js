// Cancel, retrigger and delete, started from a run's buttons. Invariant: while an
// action runs its button is aria-disabled (not disabled, which would drop the keyboard
// focus) and further clicks on it are ignored; the list itself changes through the
// events the action causes, never here.

import { describeError, shortId } from "./format.js";

const ACTIONS = {
  cancel: (client, id) => client.cancel(id),
  retrigger: (client, id) => client.retrigger(id),
  delete: (client, id) => client.deleteRun(id),
};

/** Whether a click on `button` may start its action. */
export function isActionable(button) {
  return !button.disabled && button.getAttribute("aria-disabled") !== "true";
}

/**
 * Run `action` ("cancel" | "retrigger" | "delete") on run `id` of the model's client;
 * on success clear an error notice, on failure show one.
 * @param {import("./runs-model.js").RunsModel} model
 */
export async function runAction(model, action, id, button) {
  const client = model.client;
  if (!client) return;
  button.setAttribute("aria-disabled", "true");
  try {
    await ACTIONS[action]?.(client, id);
    if (model.notice?.kind === "error") model.notice = null;
  } catch (error) {
    model.notice = { kind: "error", text: `Could not ${action} run ${shortId(id)}: ${describeError(error)}` };
  } finally {
    button.removeAttribute("aria-disabled");
    model.layoutChanged();
  }
}
