"""The bridge between the event loop and the replicated state machine.

Commands go into the Raft log through `propose`; the Raft tick thread applies them
to the `StateMachine` (the only writer of the store). What apply changed comes
back as effects: the apply thread queues them and wakes the loop once per batch
(`call_soon_threadsafe`), and the loop hands them, in log order, to the handler
the STAN service installed. `propose` returns only after the effects of its own
entry were handled, so a reply never overtakes what the entry caused (a message
reaches subscribers before its PubAck; an ack inbox exists before the
SubscriptionResponse).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import shutil
import tempfile
from typing import Callable

from raft import RaftConfig, RaftNode, SnapshotReader

from ...state import StateMachine, envelope

log = logging.getLogger("runnel.stan")

EffectsHandler = Callable[[list], None]


class ViewReset:
    """An effect of its own: the state was replaced by a snapshot; the effects that
    follow it describe the whole new state."""


VIEW_RESET = ViewReset()


class Replicator:
    def __init__(self, machine: StateMachine, raft_config: RaftConfig,
                 proposal_timeout_s: float = 10.0):
        self.machine = machine
        self.timeout_s = proposal_timeout_s
        self.handle_effects: EffectsHandler = lambda effects: None
        self._queue: collections.deque = collections.deque()
        self._drain_scheduled = False
        self._handled_index = 0
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._batch_last = 0
        self.raft = RaftNode(raft_config, self._apply, take_snapshot=self._take_snapshot,
                             restore_snapshot=self._restore_snapshot,
                             on_apply_batch_end=self._end_batch)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handled_index = self.machine.last_applied
        await self.raft.start()

    async def stop(self) -> None:
        await self.raft.stop()

    def is_leader(self) -> bool:
        return self.raft.status().is_leader

    def status(self):
        return self.raft.status()

    async def propose(self, op: int, body: object, timeout_s: float | None = None):
        """Replicate a command; return its apply result once its effects are handled."""
        index, result = await self.raft.propose(envelope.encode(op, body),
                                                timeout_s or self.timeout_s)
        if self._handled_index < index:
            future = self._loop.create_future()
            self._waiters.append((index, future))
            await future
        return result.value

    # -- apply thread --

    def _apply(self, index: int, command: bytes):
        self._batch_last = index
        return index, self.machine.apply_in_batch(index, command)

    def _end_batch(self, last_index: int = 0) -> None:
        """Raft finished a tick's applies: commit them, then let their effects (and,
        right after this, their results) go to the loop."""
        released = self.machine.end_batch()
        self._queue.extend(released)
        if self._batch_last:
            self._queue.append((self._batch_last, ()))  # entries without effects count too
            self._batch_last = 0
        self._wake_loop()

    def _wake_loop(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

    # -- event loop --

    def _drain(self) -> None:
        self._drain_scheduled = False
        queue = self._queue
        while queue:
            index, effects = queue.popleft()
            try:
                if effects:
                    self.handle_effects(effects)
            except Exception:  # the loop must go on; the state is already committed
                log.exception("handling the effects of index %d failed", index)
            self._handled_index = index
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        handled = self._handled_index
        keep = []
        for index, future in self._waiters:
            if index <= handled:
                if not future.done():
                    future.set_result(None)
            else:
                keep.append((index, future))
        self._waiters = keep

    # -- snapshots (raft threads) --

    def _take_snapshot(self, index: int):
        self._end_batch()  # the snapshot must hold every entry up to index
        store = self.machine.store
        return lambda fileobj: store.snapshot_to(fileobj)

    def _restore_snapshot(self, reader: SnapshotReader) -> None:
        self._end_batch()
        if reader.index <= self.machine.last_applied:
            return  # our own store already holds at least this state
        directory = tempfile.mkdtemp(prefix="runnel-restore-")
        try:
            path = reader.extract_to(os.path.join(directory, "snapshot"))
            self.machine.store.restore_from(path)
            self.machine.load()
            self._queue.append((self.machine.last_applied,
                                [VIEW_RESET] + self.machine.current_state_effects()))
            self._wake_loop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
