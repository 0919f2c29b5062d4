"""Storage: the `Store` interface and its SQLite implementation."""

from .base import Lease, NewRun, RunQuery, Store
from .sqlite import SqliteStore

__all__ = ["Lease", "NewRun", "RunQuery", "SqliteStore", "Store"]
