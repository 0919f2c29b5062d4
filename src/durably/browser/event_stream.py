"""Runtime events on their way to the page: encoded once, batched per event-loop turn.

An event's wire form has camelCase keys and its dates as epoch milliseconds (integers
are far cheaper to produce in WebAssembly than ISO strings); each event class's keys and
conversions are worked out once, on its first event. The page's client turns the dates
(`EVENT_DATE_FIELDS`) into ISO-8601 strings, the form every other record's dates take.
Every event emitted in one turn travels in one JSON text, ``{"type": "events", ...}``.
"""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from ..events import EVENT_CLASSES, Event
from ..models import Progress, datetime_to_ms
from .protocol import camel_key

Post = Callable[[str], None]

# Built once: json.dumps with options builds an encoder per call.
_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else datetime_to_ms(value)


def progress_fields(value: Progress | None) -> dict[str, Any] | None:
    # Progress.to_dict() in one expression: a job may report progress in a tight loop.
    if value is None:
        return None
    return {"current": value.current, "total": value.total, "message": value.message}


#: How a field whose value JSON cannot hold as it is gets onto the wire, by its type.
_CONVERSIONS: dict[Any, Callable[[Any], Any]] = {
    datetime: epoch_ms,
    datetime | None: epoch_ms,
    Progress: progress_fields,
    Progress | None: progress_fields,
}


@dataclass(frozen=True)
class WireShape:
    """One event class's wire form: its values read in one call, their keys, the few to convert."""

    read: Callable[[Event], tuple[Any, ...]]
    keys: tuple[str, ...]
    #: (wire key, conversion) of each field that JSON cannot hold as it is.
    converted: tuple[tuple[str, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, event_class: type[Event]) -> WireShape:
        hints = typing.get_type_hints(event_class)
        names = ["type", *(f.name for f in fields(event_class))]
        return cls(
            read=attrgetter(*names),
            keys=tuple(camel_key(name) for name in names),
            converted=tuple(
                (camel_key(name), _CONVERSIONS[hints[name]])
                for name in names
                if hints.get(name) in _CONVERSIONS
            ),
        )


_SHAPES: dict[type[Event], WireShape] = {}


def encode_event(event: Event) -> dict[str, Any]:
    """`event` as the page receives it: ``type`` first, camelCase keys, dates in epoch ms."""
    shape = _SHAPES.get(type(event))
    if shape is None:
        shape = _SHAPES[type(event)] = WireShape.of(type(event))
    # Not strict: both come from the same names, and the check would cost on every event.
    data = dict(zip(shape.keys, shape.read(event), strict=False))
    for key, convert in shape.converted:
        data[key] = convert(data[key])
    return data


def date_fields() -> list[str]:
    """The wire keys of every event's dates (sent as epoch ms), for the page's client."""
    keys = {
        key
        for event_class in EVENT_CLASSES
        for key, convert in WireShape.of(event_class).converted
        if convert is epoch_ms
    }
    return sorted(keys, key=lambda key: (key != "timestamp", key))


class EventBatch:
    """Events waiting to be posted: together, at the end of this turn of the event loop
    (or sooner, when `flush` is called: before a response, so events come first)."""

    def __init__(self, post: Post) -> None:
        self._post = post
        # Encoded events not posted yet, in emission order; `_flush_handle` is their post.
        self._queued: list[dict[str, Any]] = []
        self._flush_handle: asyncio.Handle | None = None

    def add(self, event: Event) -> None:
        self._queued.append(encode_event(event))
        if self._flush_handle is not None:
            return
        try:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no running loop (e.g. while closing): post at once
            self.flush()

    def flush(self) -> None:
        """Post the queued events now, as one message."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._queued:
            return
        events, self._queued = self._queued, []
        self._post(_JSON.encode({"type": "events", "events": events}))
