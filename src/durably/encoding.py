"""JSON encoding of inputs, step outputs, outputs and log data.

Everything durably stores is strict JSON (no NaN/Infinity, string keys), so a
value written on CPython reads back the same in the browser and vice versa.
Pydantic models are stored as their JSON-mode dump.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from .errors import SerializationError


def _default(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        raise TypeError("sets have no JSON form; use a list")
    raise TypeError(f"object of type {type(value).__name__} is not JSON serialisable")


#: One encoder for every value: `json.dumps` with options builds a new one per call, a
#: cost every step pays (it shows in the browser, where Python runs in WebAssembly).
_ENCODER = json.JSONEncoder(default=_default, allow_nan=False, separators=(",", ":"))


def to_json(value: object, what: str) -> str:
    """Encode `value` as compact strict JSON; `what` names it in the error."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(
            f"{what} cannot be stored as JSON: {exc}. "
            "Return JSON values (dict, list, str, int, float, bool, None) or a pydantic model."
        ) from exc


def to_json_value(value: object, what: str) -> Any:
    """Return the JSON-decoded form of `value`, i.e. what a replay would return."""
    return json.loads(to_json(value, what))


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
