"""Events on their way to the page: every type's wire form is its `to_dict()` with
camelCase keys and dates as epoch milliseconds, and one turn's events post as one text."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
from harness import Database, FakeClock
from test_events import SCENARIOS

from durably.browser.event_stream import (
    EventBatch,
    date_fields,
    encode_event,
    progress_fields,
)
from durably.browser.protocol import camel_key
from durably.events import EVENT_TYPES, RunWaitEvent, StepStartEvent
from durably.models import Progress, datetime_to_ms, ms_to_datetime

AT = 1_777_777_777_123


@pytest.mark.parametrize("event_type", EVENT_TYPES)
async def test_wire_form_is_to_dict_in_camel_case_with_dates_in_epoch_ms(
    db: Database, clock: FakeClock, event_type: str
) -> None:
    _, _, events = await SCENARIOS[event_type](db, clock)
    for event in [e for e in events if e.type == event_type]:
        expected = {camel_key(key): value for key, value in event.to_dict().items()}
        for key, value in vars(event).items():
            if isinstance(value, datetime):
                expected[camel_key(key)] = datetime_to_ms(value)
        wire = encode_event(event)
        assert wire == expected
        assert list(wire) == list(expected)  # "type" first, then the fields in order
        assert json.loads(json.dumps(wire, allow_nan=False)) == wire


def test_dates_travel_as_integers_and_none_stays_none() -> None:
    at = ms_to_datetime(AT)
    start = StepStartEvent(run_id="r", job_name="j", timestamp=at, step_name="a", step_index=0)
    assert encode_event(start) == {
        "type": "step:start",
        "runId": "r",
        "jobName": "j",
        "timestamp": AT,
        "stepName": "a",
        "stepIndex": 0,
    }
    wait = RunWaitEvent(run_id="r", job_name="j", timestamp=at, kind="event", name="go", until=None)
    assert encode_event(wait)["until"] is None


def test_progress_on_the_wire_is_progress_to_dict() -> None:
    for progress in (Progress(1), Progress(2.5, 10, "half")):
        assert progress_fields(progress) == progress.to_dict()


def test_the_page_learns_every_date_field() -> None:
    assert date_fields() == ["timestamp", "leaseExpiresAt", "until"]


async def test_one_turns_events_post_as_one_json_text() -> None:
    posted: list[str] = []
    batch = EventBatch(posted.append)
    at = ms_to_datetime(AT)
    for index in range(3):
        batch.add(
            StepStartEvent(
                run_id="r", job_name="j", timestamp=at, step_name=f"s{index}", step_index=index
            )
        )
    assert posted == []  # posted at the end of this turn
    await asyncio.sleep(0)
    (text,) = posted
    message = json.loads(text)
    assert message["type"] == "events"
    assert [e["stepIndex"] for e in message["events"]] == [0, 1, 2]
    batch.flush()  # nothing queued: nothing posted
    assert len(posted) == 1
