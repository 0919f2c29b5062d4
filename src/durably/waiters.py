"""Waiting for runs to finish: `wait_for_run` and `subscribe`.

Waiters are resolved by this process's terminal events; for runs executed by another
process one shared poller reads all waited-for statuses in one query per interval. A
failed read is reported as ``worker:error`` and retried, never the end of the poller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

from .errors import (
    DurablyError,
    NotFoundError,
    RunCancelledError,
    RunFailedError,
    WaitTimeoutError,
)
from .events import TERMINAL_RUN_EVENTS, Event, EventEmitter
from .models import Run, RunStatus
from .store import Store


class _PollDue:
    """Put in a subscription's queue when its polling interval passed without an event."""


_POLL_DUE = _PollDue()


class RunWaiters:
    def __init__(self, store: Store, emitter: EventEmitter, polling_interval_ms: int) -> None:
        self._store = store
        self._emitter = emitter
        self._interval = polling_interval_ms / 1000
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        # Queues of live subscriptions; close() puts None in each to end them.
        self._subscribers: set[asyncio.Queue[Event | _PollDue | None]] = set()
        for event_type in TERMINAL_RUN_EVENTS:
            emitter.on(event_type, self._on_terminal)

    async def close(self) -> None:
        """End every wait and subscription: the runtime is closing."""
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            with suppress(asyncio.CancelledError):
                await self._poller
        for futures in self._waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(DurablyError("the runtime was closed while waiting"))
        self._waiting.clear()
        for queue in self._subscribers:
            queue.put_nowait(None)

    def _on_terminal(self, event: Event) -> None:
        if event.run_id is not None:
            self._resolve(event.run_id)

    def _resolve(self, run_id: str) -> None:
        for future in self._waiting.pop(run_id, []):
            if not future.done():
                future.set_result(None)

    async def wait(self, run_id: str, timeout: float | None) -> Run:
        """The finished run, or RunFailedError, RunCancelledError, NotFoundError or
        WaitTimeoutError."""
        if self._closed:
            raise DurablyError("the runtime is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Register before reading, so a run finishing in between is not missed.
        self._waiting.setdefault(run_id, []).append(future)
        try:
            run = self._store.get_run(run_id)
            if run is None:
                raise NotFoundError(f"run {run_id} not found")
            if not run.status.is_terminal:
                self._ensure_poller()
                # asyncio.wait, not wait_for, which on Python 3.11 can swallow a
                # cancellation arriving as the run finishes.
                done, _ = await asyncio.wait({future}, timeout=timeout)
                if not done:
                    raise WaitTimeoutError(
                        f"run {run_id} did not finish within {timeout} s; it is still "
                        f"{self._status_text(run_id)}"
                    )
                future.result()  # raises the DurablyError of a closed runtime
                run = self._store.get_run(run_id)
        finally:
            self._forget(run_id, future)
        if run is None:
            raise NotFoundError(f"run {run_id} was deleted while waiting for it")
        if run.status == RunStatus.FAILED:
            raise RunFailedError(run_id, run.error)
        if run.status == RunStatus.CANCELLED:
            raise RunCancelledError(f"run {run_id} was cancelled")
        return run

    def _status_text(self, run_id: str) -> str:
        run = self._store.get_run(run_id)
        return "deleted" if run is None else str(run.status)

    def _forget(self, run_id: str, future: asyncio.Future[None]) -> None:
        futures = self._waiting.get(run_id)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._waiting[run_id]

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        interval = self._interval
        while self._waiting:
            await asyncio.sleep(interval)
            ids = list(self._waiting)
            statuses = self._read_statuses(ids)
            if statuses is None:
                continue
            for run_id in ids:
                status = statuses.get(run_id)
                if status is None or status.is_terminal:
                    self._resolve(run_id)

    def _read_statuses(self, run_ids: list[str]) -> dict[str, RunStatus] | None:
        """The runs' statuses, or None when the read failed. A failure (a busy or briefly
        unreadable database) is reported and the caller polls again at its next interval:
        giving up would leave every wait to time out on runs that did finish."""
        try:
            return self._store.get_statuses(run_ids)
        except Exception as exc:
            self._emitter.report(exc, "waiting for runs")
            return None

    async def subscribe(self, run_id: str) -> AsyncIterator[Event]:
        """This process's events of one run, ending after its terminal event (or when
        the runtime closes)."""
        queue: asyncio.Queue[Event | _PollDue | None] = asyncio.Queue()

        def enqueue(event: Event) -> None:
            if event.run_id == run_id:
                queue.put_nowait(event)

        unsubscribe = self._emitter.on("*", enqueue)
        self._subscribers.add(queue)
        try:
            if self._closed:
                return
            run = self._store.get_run(run_id)
            if run is None:
                raise NotFoundError(f"run {run_id} not found")
            if run.status.is_terminal:
                return
            interval = self._interval
            loop = asyncio.get_running_loop()
            while True:
                # A timer puts _POLL_DUE in the queue rather than asyncio.wait_for, which
                # on Python 3.11 can swallow a cancellation arriving with an event.
                timer = loop.call_later(interval, queue.put_nowait, _POLL_DUE)
                try:
                    event = await queue.get()
                finally:
                    timer.cancel()
                if isinstance(event, _PollDue):
                    if self._closed:
                        return
                    # Fallback for runs finished by another process.
                    statuses = self._read_statuses([run_id])
                    if statuses is None:
                        continue
                    status = statuses.get(run_id)
                    if (status is None or status.is_terminal) and queue.empty():
                        return
                    continue
                if event is None:
                    return
                yield event
                if event.type in TERMINAL_RUN_EVENTS:
                    return
        finally:
            self._subscribers.discard(queue)
            unsubscribe()
