"""Coalescing of work into proposals: while one proposal is in flight, new items wait
and go together into the next one (ARCHITECTURE §4: batching is the main lever)."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger("runnel.stan")


class Batcher:
    """Items in, batches out: ``flush(items)`` runs for one batch at a time.

    A batch closes at ``count_max`` items or ``bytes_max`` bytes; the next batch
    starts as soon as the previous flush returns.
    """

    def __init__(self, flush: Callable[[list], Awaitable[None]], *, count_max: int = 4096,
                 bytes_max: int = 4 << 20, in_flight_max: int = 1):
        self._flush = flush
        self._count_max = count_max
        self._bytes_max = bytes_max
        self._in_flight_max = in_flight_max
        self._items: list = []
        self._sizes: list[int] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task] = set()

    @property
    def waiting(self) -> int:
        return len(self._items)

    def add(self, item: object, size: int = 0) -> None:
        self._items.append(item)
        self._sizes.append(size)
        if self._in_flight < self._in_flight_max:
            self._start()

    def _start(self) -> None:
        count, total = 0, 0
        for size in self._sizes:
            if count == self._count_max or (count and total + size > self._bytes_max):
                break
            count += 1
            total += size
        batch = self._items[:count]
        del self._items[:count]
        del self._sizes[:count]
        self._in_flight += 1
        task = asyncio.ensure_future(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list) -> None:
        try:
            await self._flush(batch)
        except Exception:  # a flush must answer every item itself; never lose the loop
            log.exception("batch of %d items failed", len(batch))
        finally:
            self._in_flight -= 1
            if self._items and self._in_flight < self._in_flight_max:
                self._start()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
