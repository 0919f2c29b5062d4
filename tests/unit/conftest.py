"""Fixtures of the unit suite: `clock` (a FakeClock) and `db`, one temporary
database per test, parameterised over every store in `harness.STORES`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pg_server
import pytest
from harness import STORES, Database, FakeClock, StoreBackend


@pytest.fixture(scope="session", autouse=True)
def _postgres_database() -> Iterator[None]:
    """Drops the session's PostgreSQL test database (if a test made one) at the end."""
    yield
    pg_server.shutdown()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=STORES, ids=[store.id for store in STORES])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Database]:
    store: StoreBackend = request.param
    database = Database(store.id, store.opener(tmp_path), clock)
    yield database
    # Stop every worker before closing any store: ":memory:" runtimes share one.
    for durably in database.runtimes:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(durably.stop(), 5)
    for durably in database.runtimes:
        durably.store.close()
    database.opener.close()
