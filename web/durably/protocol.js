// The message protocol between a page (client.js) and the runtime's worker (worker.js).
//
// The page creates the worker and a MessageChannel, and sends one port with
// {type: CONNECT, protocol}. Everything else travels over that port:
//   request   page → worker  {id, type, ...fields}
//   response  worker → page  {id, ok: true, result}
//                           | {id, ok: false, error: {name, message, fields?}}
//   events    worker → page  {type: "events", events: [{type, ...}, ...]}  (one or more, in order)
// The runtime's responses and events cross as the JSON text its bridge wrote, parsed
// once, on the page (`parseRuntimeMessage`); the worker's own messages are objects. On
// the wire an event's dates (EVENT_DATE_FIELDS) are epoch milliseconds, cheap to write
// in Python; the page's events carry them as ISO-8601 strings, like every record.
// Every request gets exactly one response. A message that is not a valid request
// gets an error response (with id null when it had no usable id).
//
// The requests, their fields, the event types and the error names are defined once, on
// the Python side, and generated into protocol-definition.js (`make setup`).

import { EVENT_DATE_FIELDS, WORKER_EVENT_TYPES } from "./protocol-definition.js";

export {
  PROTOCOL_VERSION,
  RUNTIME_REQUESTS,
  TERMINAL_RUN_EVENTS,
  WORKER_REQUESTS,
} from "./protocol-definition.js";

/** The first message, on the worker itself, carrying the port. */
export const CONNECT = "durably:connect";

/** The worker's own events by name: BOOT ("boot"), SECONDARY ("secondary"), OWNER ("owner"). */
export const WORKER_EVENTS = Object.freeze(
  Object.fromEntries(WORKER_EVENT_TYPES.map((type) => [type.toUpperCase(), type])),
);

/** Database names double as OPFS file names and lock names. */
export const DATABASE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The Web Lock held by the tab that owns `database`. */
export function lockName(database) {
  return `durably:${database}`;
}

/** Turn a protocol error payload back into an Error whose name is the runtime's class;
 * a ValidationError's `fields` (dotted paths of the offending fields) come along. */
export function toError(payload) {
  const error = new Error(payload?.message ?? "unknown error");
  error.name = payload?.name ?? "Error";
  if (Array.isArray(payload?.fields)) error.fields = [...payload.fields];
  return error;
}

/**
 * A message of the runtime (JSON text), as the page sees it: an events message's dates
 * become ISO-8601 strings. Parsed here once, for this tab and for the tabs it relays to.
 * @param {string} text
 */
export function parseRuntimeMessage(text) {
  const message = JSON.parse(text);
  if (message?.type === "events" && Array.isArray(message.events)) {
    for (const event of message.events) {
      for (const key of EVENT_DATE_FIELDS) {
        const value = event[key];
        if (typeof value === "number") event[key] = new Date(value).toISOString();
      }
    }
  }
  return message;
}
