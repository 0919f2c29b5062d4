"""Render the page's copy of the protocol definition: web/durably/protocol-definition.js.

The Python side is the source: the requests and their fields (`protocol.REQUEST_FIELDS`,
`protocol.WORKER_REQUEST_FIELDS`), the event types (`events.EVENT_TYPES`) and the keys
of their dates (`event_stream.date_fields`), the error
names (`errors.py`) and the run statuses (`models.RunStatus`). The JS module is data
only, deeply frozen; `scripts/gen_protocol.py` writes it (``make setup`` runs it) and a
unit test fails when the committed file differs from what `render()` returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import errors
from ..events import EVENT_TYPES, TERMINAL_RUN_EVENTS
from ..models import TERMINAL_STATUSES, RunStatus
from .event_stream import date_fields
from .protocol import (
    PAGE_ERROR_NAMES,
    PROTOCOL_VERSION,
    REQUEST_FIELDS,
    WORKER_EVENT_TYPES,
    WORKER_REQUEST_FIELDS,
    Field,
    kind_of,
    record,
)

#: Where the rendered module lives, relative to the repository's root.
OUTPUT = "web/durably/protocol-definition.js"

_HEADER = """\
// The message protocol's definition, shared by the page (client.js, protocol.js) and the
// worker. GENERATED from the Python side (src/durably/browser/protocol.py, events.py,
// errors.py, models.py) by `python scripts/gen_protocol.py` (run by `make setup`): do
// not edit; change the Python side and regenerate. A unit test fails when it is stale.
//
// A request's fields: {name: {type, required, fields?}}, where type is one of string,
// integer, number, boolean, date (ISO-8601 or epoch ms), string-or-strings, string-map,
// object (with `fields` when they are known) or json (any JSON value: user data).
"""

_FREEZE = """\
/** Freeze a value and everything in it. */
function deepFreeze(value) {
  if (value && typeof value === "object") {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}
"""

#: (name, doc comment, value): the module's exports, in order.
_Export = tuple[str, str, Any]


def field_definition(field: Field) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": kind_of(field.decode), "required": field.required}
    if isinstance(field.decode, record):
        definition["fields"] = fields_definition(field.decode.fields)
    return definition


def fields_definition(fields: Mapping[str, Field]) -> dict[str, Any]:
    return {name: field_definition(field) for name, field in fields.items()}


def error_names() -> list[str]:
    """errors.py's classes in definition order (not aliases), then the page's own."""
    names = [
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, errors.DurablyError)
        and value.__name__ == name
    ]
    return [*names, *PAGE_ERROR_NAMES]


def exports() -> list[_Export]:
    terminal = [t for t in EVENT_TYPES if t in TERMINAL_RUN_EVENTS]
    return [
        ("PROTOCOL_VERSION", "The version a page and a worker must share.", PROTOCOL_VERSION),
        (
            "RUNTIME_REQUESTS",
            "Requests the Python runtime answers (bridge.py HANDLERS), with their fields.",
            {kind: fields_definition(fields) for kind, fields in REQUEST_FIELDS.items()},
        ),
        (
            "WORKER_REQUESTS",
            "Requests the worker answers itself (worker.js), with their fields.",
            {kind: fields_definition(fields) for kind, fields in WORKER_REQUEST_FIELDS.items()},
        ),
        ("EVENT_TYPES", "The runtime's noun:verb event types (events.py).", list(EVENT_TYPES)),
        (
            "EVENT_DATE_FIELDS",
            "Event keys the runtime sends as epoch ms; the page's events hold ISO-8601 strings.",
            date_fields(),
        ),
        (
            "WORKER_EVENT_TYPES",
            "Events the worker posts itself: boot {phase}, secondary {message}, owner {jobs}.",
            list(WORKER_EVENT_TYPES),
        ),
        ("TERMINAL_RUN_EVENTS", "Run events after which a run emits nothing more.", terminal),
        (
            "ERROR_NAMES",
            "Names of the errors a call can reject with (errors.py, then the page's own).",
            error_names(),
        ),
        (
            "RUN_STATUSES",
            "Every run status, in the order a run moves through them.",
            [s.value for s in RunStatus],
        ),
        (
            "TERMINAL_STATUSES",
            "Statuses a run never leaves.",
            [s.value for s in RunStatus if s in TERMINAL_STATUSES],
        ),
    ]


def js_literal(value: Any, indent: str = "") -> str:
    """`value` as a JS literal: objects and lists of plain values on one line, when short."""
    if isinstance(value, dict):
        items = [f"{_key(key)}: {js_literal(item, indent + '  ')}" for key, item in value.items()]
        opening, closing = "{", "}"
    elif isinstance(value, list):
        items = [js_literal(item, indent + "  ") for item in value]
        opening, closing = "[", "]"
    else:
        return json.dumps(value, ensure_ascii=False)
    if not items:
        return opening + closing
    pad = " " if opening == "{" else ""
    flat = f"{opening}{pad}{', '.join(items)}{pad}{closing}"
    if "\n" not in flat and len(indent) + len(flat) <= 88:
        return flat
    inner = indent + "  "
    return opening + "\n" + "".join(f"{inner}{item},\n" for item in items) + indent + closing


def _key(key: str) -> str:
    return key if key.isidentifier() else json.dumps(key)


def render() -> str:
    """The text of web/durably/protocol-definition.js."""
    parts = [_HEADER, _FREEZE]
    for name, doc, value in exports():
        data = js_literal(value)
        frozen = data if isinstance(value, int) else f"deepFreeze({data})"
        parts.append(f"/** {doc} */\nexport const {name} = {frozen};\n")
    return "\n".join(parts)
