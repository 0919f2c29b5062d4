"""The LISTEN side of cross-process wake-ups: one thread, one dedicated connection.

PostgreSQL delivers a NOTIFY to listeners when the notifying transaction commits. The
thread blocks in the connection's notification wait (no queries while idle) and calls
every registered callback; callbacks must be thread-safe (the runtime's hands the wake
over to its event loop with `call_soon_threadsafe`). A lost connection is reopened with
a backoff; after a reconnect the callbacks run once, since notifications sent while the
listener was away are lost.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

#: How often the thread looks up from its wait to see whether it should stop.
_STOP_CHECK_S = 0.1
_RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)


class Listener:
    def __init__(self, dsn: str, channel: str, kwargs: dict[str, Any]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._kwargs = {**kwargs, "autocommit": True}
        # Invariant: only the listener thread reads `_callbacks` outside the lock, from a
        # copy taken under it.
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="durably-listen", daemon=True)
        self._thread.start()

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _fire(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            # A closed event loop raises: its runtime is going away.
            with contextlib.suppress(Exception):
                callback()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, **self._kwargs) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    if failures:
                        self._fire()  # whatever was announced while we were away
                    failures = 0
                    while not self._stopping.is_set():
                        # Each notification wakes at once; the timeout only lets the
                        # thread notice `stop()`.
                        for _ in conn.notifies(timeout=_STOP_CHECK_S):
                            self._fire()
                            if self._stopping.is_set():
                                break
            except psycopg.Error:
                failures += 1
                self._stopping.wait(_RETRY_S[min(failures, len(_RETRY_S)) - 1])
