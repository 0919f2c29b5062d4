"""The PostgreSQL store: many worker processes on one database.

Needs the optional dependencies: ``pip install 'durably[postgres]'``.
"""

from .store import PostgresStore

__all__ = ["PostgresStore"]
