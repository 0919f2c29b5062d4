"""Fixtures of the worker-process tests: a schema per test in the session's PostgreSQL
database (provisioned by tests/unit/pg_server.py), and `Workers`, which starts and
signals real ``python -m durably worker`` processes on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "unit"))
import pg_server  # noqa: E402
from procs import Schema, Workers  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _postgres_database() -> Iterator[None]:
    yield
    pg_server.shutdown()


@pytest.fixture
def schema() -> Iterator[Schema]:
    database = pg_server.database()
    s = Schema(database.url, database.new_schema())
    yield s
    s.conn.close()


@pytest.fixture
def workers(schema: Schema, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(schema.url, tmp_path)
    yield w
    w.stop_all()
