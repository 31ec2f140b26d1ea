"""The PubAcks a connection waits for: at most ``max_inflight`` at a time, each with its
own ``pub_ack_wait`` timer (stan.go's ``pubAckMap`` and ``pubAckChan``).

A publisher that finds no room waits, first come first served, until an ack, a timeout
or the close of the connection frees a slot. Every slot is freed exactly once, by
whichever of the three happens first; the others then find the guid gone.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from typing import Awaitable, Callable, Union

from .errors import PublishAckTimeout, ServerError, StanError

log = logging.getLogger("runnel.client")

#: ``ack_handler(guid, error)``: error is None when the message is stored. May be async.
AckHandler = Callable[[str, Union[StanError, None]], Union[None, Awaitable[None]]]


class _Pending:
    __slots__ = ("handler", "timer")

    def __init__(self, handler: AckHandler | None):
        self.handler = handler
        self.timer: asyncio.TimerHandle | None = None


class PubAckTracker:
    def __init__(self, max_inflight: int, ack_wait_s: float):
        assert max_inflight >= 1 and ack_wait_s > 0
        self.max_inflight = max_inflight
        self.ack_wait_s = ack_wait_s
        self._pending: dict[str, _Pending] = {}
        self._waiters: deque[asyncio.Future] = deque()
        self._closed: StanError | None = None
        self._tasks: set[asyncio.Task] = set()

    def __len__(self) -> int:
        return len(self._pending)

    async def reserve(self, guid: str, handler: AckHandler | None) -> None:
        """Take a slot for ``guid`` (waiting for room); raise the close error if closed."""
        while self._closed is None and (len(self._pending) >= self.max_inflight or self._waiters):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif not waiter.cancelled():
                    self._wake_one()  # we were woken for a slot we will not take: pass it on
                raise
            if len(self._pending) < self.max_inflight:
                break
        if self._closed is not None:
            raise self._closed
        assert guid not in self._pending
        self._pending[guid] = _Pending(handler)

    def arm(self, guid: str) -> None:
        """Start the PubAck timer, once the PubMsg has been handed to NATS."""
        pending = self._pending.get(guid)
        if pending is not None:
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(self.ack_wait_s, self._expire, guid)

    def forget(self, guid: str) -> None:
        """The PubMsg could not be sent: free its slot, call nobody."""
        self._take(guid)

    def on_ack(self, guid: str, error_text: str) -> None:
        pending = self._take(guid)
        if pending is not None:
            self._call(pending, guid, ServerError(error_text) if error_text else None)

    def fail_all(self, error: StanError) -> None:
        """The connection is closed or lost: every waiting publish gets ``error``."""
        self._closed = error
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        for guid in list(self._pending):
            pending = self._take(guid)
            if pending is not None:
                self._call(pending, guid, error)

    def _expire(self, guid: str) -> None:
        pending = self._take(guid)
        if pending is not None:
            self._call(pending, guid, PublishAckTimeout(detail=f"guid {guid}, waited "
                                                       f"{self.ack_wait_s:g}s"))

    def _take(self, guid: str) -> _Pending | None:
        pending = self._pending.pop(guid, None)
        if pending is None:
            return None
        if pending.timer is not None:
            pending.timer.cancel()
        self._wake_one()
        return pending

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _call(self, pending: _Pending, guid: str, error: StanError | None) -> None:
        if pending.handler is None:
            return
        try:
            result = pending.handler(guid, error)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
        except Exception:
            log.exception("ack handler for guid %s raised", guid)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ack handler raised", exc_info=task.exception())
