"""Storage: the `Store` interface and its SQLite implementation."""

from .base import Claim, Lease, NewLog, NewRun, RunQuery, Store, Wait, WaitKind
from .sqlite import SqliteStore

__all__ = [
    "Claim",
    "Lease",
    "NewLog",
    "NewRun",
    "RunQuery",
    "SqliteStore",
    "Store",
    "Wait",
    "WaitKind",
]
