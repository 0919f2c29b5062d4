"""Fixtures of the unit suite: `clock` (a FakeClock) and `db`, one temporary
database per test, parameterised over every store backend in `harness.STORE_KINDS`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import STORE_KINDS, Database, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(STORE_KINDS))
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Database]:
    database = Database(request.param, STORE_KINDS[request.param](tmp_path), clock)
    yield database
    # Stop every worker before closing any store: ":memory:" runtimes share one.
    for durably in database.runtimes:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(durably.stop(), 5)
    for durably in database.runtimes:
        durably.store.close()
    database.opener.close()
