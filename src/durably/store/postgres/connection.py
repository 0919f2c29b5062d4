"""Plumbing shared by the PostgreSQL store's parts: pooled connections, errors mapped to
StorageError, one-statement helpers, the lease guard and the wake-up notification.

Every write made for a lease holder carries `LEASE_GUARD` (``status = 'leased' AND
lease_generation = ...``), so a stale holder or a cancelled run changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import StorageError, StorageUnavailableError
from ..base import Lease
from ..sql import lease_guard

#: The shared lease guard with named parameters (see `guard`).
LEASE_GUARD = lease_guard("%s").replace("%s", "%(id)s", 1).replace("%s", "%(gen)s", 1)


def guard(lease: Lease) -> dict[str, Any]:
    """The parameters of `LEASE_GUARD`."""
    return {"id": lease.run_id, "gen": lease.generation}


class PostgresConnection:
    """What the store's parts share; `PostgresStore.__init__` sets these up."""

    dsn: str
    #: The NOTIFY/LISTEN channel of this store's schema.
    _channel: str
    _pool: ConnectionPool[psycopg.Connection[dict[str, Any]]]

    def _where(self) -> str:
        """The server for messages, without a password."""
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError:
            return "the PostgreSQL server"
        return f"PostgreSQL {info.get('host', 'localhost')}:{info.get('port', 5432)}/" + str(
            info.get("dbname", "")
        )

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection; server and network failures surface as StorageError.
        Constraint violations pass through (callers retry or report them)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StorageUnavailableError(f"no connection to {self._where()}: {exc}") from exc
        except psycopg.IntegrityError:
            raise
        except psycopg.OperationalError as exc:  # the connection broke, the server is going down
            raise StorageUnavailableError(f"lost {self._where()}: {exc}") from exc
        except psycopg.Error as exc:
            raise StorageError(f"database error on {self._where()}: {exc}") from exc

    def _one(self, query: str, params: dict[str, Any] | Sequence[Any] = ()) -> Any:
        with self._connection() as conn:
            return conn.execute(query, params).fetchone()

    def _all(self, query: str, params: dict[str, Any] | Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(query, params).fetchall()

    def _write(self, query: str, params: dict[str, Any]) -> bool:
        """A single-statement write; True if it changed (or returned) a row."""
        with self._connection() as conn:
            return conn.execute(query, params).rowcount > 0

    def _notify(self) -> str:
        return f"pg_notify('{self._channel}', '')"
