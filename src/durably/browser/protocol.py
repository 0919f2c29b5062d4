"""Decoding requests from the page and encoding runtime values for it.

Messages are JSON text. Requests are ``{"id", "type", ...}`` with camelCase
fields; results and events use camelCase keys on our own records only (never
inside user data such as inputs, outputs, labels or log data).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ProtocolError

PROTOCOL_VERSION = 1


@functools.cache
def camel_key(key: str) -> str:
    # Only our own records' field names come here: a small, fixed set.
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_camel(record: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a record's own keys to camelCase (values are left as they are)."""
    return {camel_key(key): value for key, value in record.items()}


def require(message: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = message.get(name)
    if value is None or not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ProtocolError(f"{message.get('type')}: field {name!r} must be {_kind_name(kind)}")
    return value


def optional(message: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if message.get(name) is None:
        return None
    return require(message, name, kind)


def optional_number(message: Mapping[str, Any], name: str) -> float | None:
    value = optional(message, name, (int, float))
    if value is not None and (isinstance(value, bool) or value < 0):
        raise ProtocolError(f"{message.get('type')}: field {name!r} must be a number >= 0")
    return None if value is None else float(value)


def parse_time(message: Mapping[str, Any], name: str) -> datetime:
    """An ISO-8601 string or epoch milliseconds."""
    value = message.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ProtocolError(
        f"{message.get('type')}: field {name!r} must be an ISO-8601 date or epoch milliseconds"
    )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        dict: "an object",
        list: "an array",
        bool: "a boolean",
    }
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
