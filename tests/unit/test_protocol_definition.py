"""The protocol is defined once, on the Python side: the page's copy
(web/durably/protocol-definition.js) must be what the generator renders now, and the
requests, handlers, events and errors it lists must agree with the runtime."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from durably import errors, events
from durably.browser.bridge import HANDLERS
from durably.browser.protocol import REQUEST_FIELDS, WORKER_REQUEST_FIELDS
from durably.browser.protocol_js import OUTPUT, error_names, render

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_definition_is_current() -> None:
    committed = (REPO / OUTPUT).read_text(encoding="utf-8")
    assert committed == render(), f"{OUTPUT} differs from the Python side: run make setup"


def test_the_check_command_passes_on_the_committed_definition() -> None:
    script = REPO / "scripts" / "gen_protocol.py"
    ok = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_handlers_and_request_fields_name_the_same_requests() -> None:
    # Adding a request: one REQUEST_FIELDS entry, one handler, then `make setup`.
    assert set(HANDLERS) == set(REQUEST_FIELDS), (
        f"only a handler: {sorted(set(HANDLERS) - set(REQUEST_FIELDS))}; "
        f"only fields: {sorted(set(REQUEST_FIELDS) - set(HANDLERS))}"
    )


def test_worker_and_runtime_requests_do_not_overlap() -> None:
    assert not set(WORKER_REQUEST_FIELDS) & set(REQUEST_FIELDS)


def test_every_event_class_is_listed_once() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(events, inspect.isclass)
        if issubclass(cls, events.Event) and cls is not events.Event
    ]
    assert sorted(cls.type for cls in classes) == sorted(events.EVENT_TYPES)
    assert len(set(events.EVENT_TYPES)) == len(events.EVENT_TYPES)
    assert set(events.EVENT_TYPES) >= events.TERMINAL_RUN_EVENTS


def test_every_error_class_is_named() -> None:
    classes = {
        cls.__name__
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.DurablyError)
    }
    names = error_names()
    assert classes <= set(names)
    assert len(set(names)) == len(names)
