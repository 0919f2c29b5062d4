"""The server goes away under load and comes back: worker processes reconnect and carry
on, and a trigger during the outage fails with StorageError instead of hanging.

Runs on a throwaway cluster of its own (pg_server.Cluster), never on a shared server that
other people use: stopping that one is not ours to do."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pg_jobs
import pytest
from pg_server import Cluster, with_options
from procs import Schema, Workers

from durably import PostgresStore, create_durably
from durably.errors import StorageError


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    try:
        own = Cluster()
    except Exception as exc:  # no server binaries and no way to install them
        pytest.skip(f"cannot start a throwaway PostgreSQL cluster to restart: {exc}")
    yield own
    own.destroy()


def test_workers_carry_on_across_a_server_restart(cluster: Cluster, tmp_path: Path) -> None:
    schema = Schema(with_options(cluster.url, "-c synchronous_commit=on"), "restart")
    workers = Workers(schema.url, tmp_path)
    lease = ("--lease-ms", "1500", "--lease-renew-interval-ms", "300",
             "--polling-interval-ms", "200")  # fmt: skip
    try:
        for _ in range(2):
            workers.start(*lease, concurrency=2)
        asyncio.run(_load_restart_and_finish(cluster, schema))
        assert all(p.poll() is None for p in workers.procs), "a worker died with the server"
    finally:
        workers.stop_all()
        with contextlib.suppress(Exception):
            schema.conn.close()


async def _load_restart_and_finish(cluster: Cluster, schema: Schema) -> None:
    store = PostgresStore(schema.url, timeout=2)
    durably = create_durably(store, [pg_jobs.short])
    await durably.migrate()
    ids = []
    for n in range(60):
        ids.append((await durably.jobs["short"].trigger({"n": n, "steps": 3, "sleep_ms": 20})).id)
    await asyncio.sleep(0.5)  # runs in flight on both workers
    schema.conn.close()
    cluster.stop("fast")
    started = time.monotonic()
    with pytest.raises(StorageError):
        await durably.jobs["short"].trigger({"n": -1, "steps": 1})
    assert time.monotonic() - started < 10, "a trigger during the outage hung"
    await asyncio.sleep(1)
    cluster.start()
    for n in range(60, 100):
        ids.append((await durably.jobs["short"].trigger({"n": n, "steps": 1})).id)
    deadline = time.monotonic() + 60
    while True:
        statuses = store.get_statuses(ids)
        if all(s == "completed" for s in statuses.values()) and len(statuses) == 100:
            break
        left = {i: str(s) for i, s in statuses.items() if s != "completed"}
        assert time.monotonic() < deadline, f"not all runs completed: {left}"
        await asyncio.sleep(0.2)
    await durably.close()
