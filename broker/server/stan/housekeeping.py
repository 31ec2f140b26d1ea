"""Timers that turn the passing of time into commands: message expiry (max_age)
and deletion of inactive channels (max_inactivity). The proposer reads the clock;
apply decides, so every node drops and deletes the same things."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ...state import envelope, records

if TYPE_CHECKING:
    from .service import StanService, StanSettings

log = logging.getLogger("runnel.stan")


class Housekeeping:
    def __init__(self, service: StanService, settings: StanSettings):
        self._service = service
        self._settings = settings
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        if self._settings.expire_every_s > 0:
            self._tasks.append(asyncio.ensure_future(
                self._every(self._settings.expire_every_s, self._expire)))
        if self._settings.inactivity_every_s > 0:
            self._tasks.append(asyncio.ensure_future(
                self._every(self._settings.inactivity_every_s, self._delete_inactive)))

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _every(self, period_s: float, action) -> None:
        while True:
            await asyncio.sleep(period_s)
            if not self._service.replicator.is_leader():
                continue  # one node proposes the housekeeping of all (the leader)
            try:
                await action()
            except Exception:
                log.exception("housekeeping failed")

    async def _expire(self) -> None:
        await self._service._propose(envelope.EXPIRE, {"now": time.time_ns()})

    async def _delete_inactive(self) -> None:
        """Propose a delete for each channel idle past max_inactivity; apply re-checks."""
        now = time.time_ns()
        idle_ns = int(self._settings.max_inactivity_s * 1e9)
        with self._service.machine.store.read() as txn:
            candidates = [(stored.name, stored.channel_id) for stored in txn.list_channels()
                          if now - records.channel_from_record(stored.record)[1] >= idle_ns]
        for name, channel_id in candidates:
            await self._service._propose(envelope.DELETE_CHANNEL,
                                         {"ch": name, "id": channel_id, "now": now})
