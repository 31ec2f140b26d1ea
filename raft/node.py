"""RaftNode: the asyncio face of one Raft member.

Threads: the event loop calls ``propose``/``status``/``stop``. One tick thread
(``raft-tick-<address>``) runs pysyncobj, the journal's group commit, the
user's ``apply`` and ``take_snapshot``/``restore_snapshot``. A snapshot writer
thread may run beside it. The tick thread hands results to the loop with ONE
``loop.call_soon_threadsafe`` per tick that completed anything.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

from pysyncobj import FAIL_REASON, SyncObjException
from pysyncobj.poller import POLL_EVENT_TYPE

from raft import errors
from raft.config import RaftConfig
from raft.core import RaftCore
from raft.journal import DurableJournal
from raft.lean import LeanTransport
from raft.snapshot import SnapshotReader, SnapshotStore
from raft.transport import DurableTransport, LocalTransport

logger = logging.getLogger(__name__)

Apply = Callable[[int, bytes], Any]
_LEADER_STATE = 2  # pysyncobj _RAFT_STATE.LEADER


@dataclass(frozen=True)
class RaftStatus:
    self_address: str
    leader: str | None
    is_leader: bool
    term: int
    commit_index: int
    last_applied: int
    log_first_index: int
    log_last_index: int
    synced_index: int
    has_quorum: bool
    snapshot_index: int
    fsyncs: int
    fsync_seconds: float


def exit_process(exc: BaseException) -> None:
    """Default ``on_fatal``: the state machine cannot go on; let the
    supervisor restart the process (ARCHITECTURE.md §2)."""
    logger.critical("raft: fatal error, exiting: %r", exc, exc_info=exc)
    logging.shutdown()
    os._exit(70)


class RaftNode:
    """One member of a Raft group (possibly a group of one)."""

    def __init__(self, config: RaftConfig, apply: Apply,
                 take_snapshot: Callable[[int], object] | None = None,
                 restore_snapshot: Callable[[SnapshotReader], None] | None = None,
                 on_fatal: Callable[[BaseException], None] = exit_process,
                 on_role_change: Callable[[bool], None] | None = None,
                 on_apply_batch_end: Callable[[int], None] | None = None) -> None:
        config.validate()
        self.config = config
        self._apply = apply
        self._on_apply_batch_end = on_apply_batch_end
        self._batch_applied = False
        self._take = take_snapshot
        self._restore = restore_snapshot
        self._on_fatal = on_fatal
        self._on_role_change = on_role_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._core: RaftCore | None = None
        self._snapshots: SnapshotStore | None = None
        self._thread: threading.Thread | None = None
        self._done: collections.deque = collections.deque()
        self._pending: set[asyncio.Future] = set()
        self._stop_mode: str | None = None
        self._fatal_error: BaseException | None = None
        self._wake_fds: tuple[int, int] | None = None
        self._wake_pending = False
        self._has_peers = bool(config.peers)
        self._sent_index = 0
        self._sent_commit = 0
        self._last_applied_seen = 0
        self.apply_calls = 0

    # -- lifecycle (event loop) -------------------------------------------------
    async def start(self) -> None:
        """Open the journal, bind the peer port, start the tick thread.
        Raises JournalCorrupt or RaftError (cannot bind)."""
        if self._thread is not None:
            raise errors.RaftError("already started")
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._build)
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"raft-tick-{self.config.self_address}")
        self._thread.start()

    async def stop(self, flush: bool = True) -> None:
        """Stop the tick thread and close sockets and files. ``flush=False``
        drops what is not yet written, as a crash would (tests)."""
        if self._thread is None:
            return
        if self._stop_mode is None:
            self._stop_mode = "stop" if flush else "kill"
        self._wake()
        await asyncio.to_thread(self._thread.join)
        self._close_wake_pipe()
        self._fail_pending(errors.NodeStopped(f"raft node {self.config.self_address} stopped"))

    def _close_wake_pipe(self) -> None:
        """After the tick thread ended, on the loop thread (the only other
        writer), so no write can hit a closed or reused descriptor."""
        fds, self._wake_fds = self._wake_fds, None
        for fd in fds or ():
            os.close(fd)

    # -- proposals (event loop) -------------------------------------------------
    async def propose(self, command: bytes, timeout: float) -> Any:
        """Replicate ``command``; return what ``apply`` returned for it on THIS
        node. Raises ProposalTimeout/NoLeader (outcome unknown), LeaderChanged,
        Overloaded, NodeStopped, CommandTooLarge."""
        if self._stop_mode is not None or self._fatal_error is not None or self._core is None:
            raise errors.NodeStopped(f"raft node {self.config.self_address} is not running")
        if len(command) > self.config.command_bytes_max:
            raise errors.CommandTooLarge(f"command of {len(command)} bytes exceeds "
                                         f"{self.config.command_bytes_max}")
        loop = self._loop
        fut = loop.create_future()
        self._pending.add(fut)
        self._core.submit(command, functools.partial(self._complete, fut))
        self._wake()
        handle = loop.call_later(timeout, self._expire, fut, timeout)
        try:
            return await fut
        finally:
            handle.cancel()
            self._pending.discard(fut)

    def snapshot_now(self) -> None:
        """Ask for a snapshot (and log compaction) at the next tick."""
        self._core.forceLogCompaction()

    def status(self) -> RaftStatus:
        core = self._core
        journal = core.journal
        return RaftStatus(
            self_address=self.config.self_address, leader=core.leader_address,
            is_leader=core._isLeader(), term=core.raftCurrentTerm,
            commit_index=core.raftCommitIndex, last_applied=core.raftLastApplied,
            log_first_index=journal.first_index, log_last_index=journal.last_index,
            synced_index=journal.synced_index, has_quorum=_has_quorum(core),
            snapshot_index=self._snapshots.last_index, fsyncs=journal.fsyncs,
            fsync_seconds=journal.fsync_seconds)

    def peer_states(self) -> list[dict]:
        """The other members as this node sees them (a read on the loop thread of
        values the tick thread replaces whole; good enough for monitoring)."""
        return [] if self._core is None else self._core.peer_states()

    async def wait_leader(self, timeout: float) -> str:
        """Wait until this node knows a leader; return its address."""
        return await self._wait_for(lambda: self._core.leader_address, timeout, "a leader")

    async def wait_applied(self, index: int, timeout: float) -> None:
        """Wait until this node applied ``index``."""
        await self._wait_for(lambda: self._core.raftLastApplied >= index, timeout,
                             f"index {index} applied")

    async def _wait_for(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = self._loop.time() + timeout
        while True:
            value = probe()
            if value:
                return value
            if self._fatal_error is not None:
                raise errors.NodeStopped("raft node failed") from self._fatal_error
            if self._loop.time() >= deadline:
                raise errors.ProposalTimeout(f"{self.config.self_address}: no {what} within {timeout} s")
            await asyncio.sleep(0.005)

    # -- construction (worker thread, before the tick thread exists) -----------
    def _build(self) -> None:
        cfg = self.config
        os.makedirs(cfg.data_dir, exist_ok=True)
        journal = DurableJournal(cfg.data_dir, cfg.fs, cfg.sync)
        snapshots = SnapshotStore(cfg.data_dir, cfg.fs, journal, self._take, self._restore,
                                  self._record_fatal)
        conf = cfg.syncobj_conf(snapshots, self._on_state_changed, self._take is not None)
        if not cfg.peers:
            transport_class = LocalTransport
        else:
            transport_class = LeanTransport if cfg.lean_transport else DurableTransport
        try:
            core = RaftCore(cfg.self_address, cfg.peers, conf, journal, transport_class,
                            self._apply_entry)
        except BaseException as exc:
            journal.close(flush=False)
            if isinstance(exc, SyncObjException):
                raise errors.RaftError(f"cannot bind the raft port {conf.bindAddress}") from exc
            raise
        core.transport.fix_next_index = cfg.fix_next_index
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self._wake_fds = (read_fd, write_fd)
        core._poller.subscribe(read_fd, self._on_wake, POLL_EVENT_TYPE.READ)
        core.addOnTickCallback(self._after_commands)
        self._snapshots = snapshots
        self._core = core

    # -- the tick thread ---------------------------------------------------------
    def _run(self) -> None:
        core = self._core
        try:
            while self._stop_mode is None:
                self._group_commit()
                core._onTick(self.config.tick_s)
                self._snapshots.started_up = True
                self._deliver()
                if self._fatal_error is not None:
                    raise self._fatal_error
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._shutdown()

    def _group_commit(self) -> None:
        """fsync everything appended since the last one, then let the held
        append-entries acknowledgements go."""
        self._core.journal.flush()
        self._core.transport.release()

    def _after_commands(self) -> None:
        """pysyncobj tick callback: runs after the tick drained the proposal
        queue and before it polls the sockets."""
        core = self._core
        journal = core.journal
        if self._has_peers and core._isLeader():
            if journal.last_index > self._sent_index or core.raftCommitIndex > self._sent_commit:
                self._sent_index = journal.last_index
                self._sent_commit = core.raftCommitIndex
                core.send_append_entries()
        did_sync = journal.flush()
        core.transport.release()
        if did_sync and not self._has_peers:
            self._wake()  # a group of one commits at the next tick: do not poll idle
        if self._batch_applied:
            self._batch_applied = False
            if self._on_apply_batch_end is not None:
                self._on_apply_batch_end(self._last_applied_seen)
        self._deliver()  # what this tick applied, before the poll may wait

    def _apply_entry(self, index: int, data: bytes) -> Any:
        entry = self._core.journal.entry(index)
        if index <= self._last_applied_seen or entry is None or entry[0][:1] != b"\x00":
            raise errors.JournalCorrupt(f"apply index {index} does not match the journal "
                                        f"(last applied {self._last_applied_seen})")
        self._last_applied_seen = index
        self._batch_applied = True
        self.apply_calls += 1
        try:
            return self._apply(index, data)
        except BaseException as exc:
            raise errors.ApplyFailed(f"apply of index {index} raised {exc!r}") from exc

    def _complete(self, fut: asyncio.Future, result: Any, error: int) -> None:
        self._done.append((fut, result, error))

    def _deliver(self) -> None:
        """One call_soon_threadsafe for every proposal completed this tick."""
        done = self._done
        if not done:
            return
        batch = []
        try:
            while True:
                batch.append(done.popleft())
        except IndexError:
            pass
        self._call_soon(self._resolve, batch)

    def _call_soon(self, fn, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    def _on_wake(self, fd: int, _event: int) -> None:
        # Drain first, then clear the flag: clearing first lets a wake() that runs
        # between the two set the flag, write a byte we then drain, and leave the flag
        # set with an empty pipe, after which every wake() is skipped and proposals
        # wait for the poll timeout.
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass
        self._wake_pending = False

    def _wake(self) -> None:
        fds = self._wake_fds
        if self._wake_pending or fds is None:
            return
        self._wake_pending = True
        try:
            os.write(fds[1], b"w")
        except (BlockingIOError, OSError):
            pass

    def _on_state_changed(self, old: int, new: int) -> None:
        self._sent_index = self._sent_commit = 0
        if self._on_role_change is not None and (old == _LEADER_STATE or new == _LEADER_STATE):
            self._call_soon(self._on_role_change, new == _LEADER_STATE)

    def _record_fatal(self, exc: BaseException) -> None:
        if self._fatal_error is None:
            self._fatal_error = exc

    def _fail(self, exc: BaseException) -> None:
        self._record_fatal(exc)
        logger.critical("raft node %s stops: %r", self.config.self_address, exc, exc_info=exc)
        try:
            self._on_fatal(exc)
        finally:
            self._call_soon(self._fail_pending, errors.NodeStopped("raft node failed: %r" % (exc,)))

    def _shutdown(self) -> None:
        core = self._core
        if self._stop_mode == "kill" or self._fatal_error is not None:
            core.journal.close(flush=False)
        try:
            core.destroy_now()
        except Exception:
            logger.exception("raft node %s: error while closing", self.config.self_address)

    # -- event loop side of completions -------------------------------------------
    def _resolve(self, batch: list) -> None:
        for fut, result, error in batch:
            if fut.done():
                continue
            if error == FAIL_REASON.SUCCESS:
                fut.set_result(result)
            else:
                fut.set_exception(_error_for(error))

    def _expire(self, fut: asyncio.Future, timeout: float) -> None:
        if fut.done():
            return
        if self._core.leader_address is None:
            fut.set_exception(errors.NoLeader(
                f"no leader within {timeout} s: {self.config.self_address} cannot reach a "
                "majority of the group (outcome unknown)"))
        else:
            fut.set_exception(errors.ProposalTimeout(
                f"not applied within {timeout} s (leader {self._core.leader_address}); "
                "outcome unknown"))

    def _fail_pending(self, exc: BaseException) -> None:
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(exc)


def _has_quorum(core: RaftCore) -> bool:
    for _ in range(3):
        try:
            return core.hasQuorum
        except RuntimeError:  # the tick thread changed the set while we read it
            continue
    return False


def _error_for(code: int) -> errors.ProposalError:
    if code == FAIL_REASON.QUEUE_FULL:
        return errors.Overloaded("the raft command queue is full")
    if code == FAIL_REASON.MISSING_LEADER:
        return errors.NoLeader("no leader is known")
    if code == FAIL_REASON.DISCARDED:
        return errors.LeaderChanged("discarded: a new leader put another entry at its index",
                                    outcome_known=True)
    if code == FAIL_REASON.NOT_LEADER:
        return errors.LeaderChanged("the node it was sent to is no longer the leader",
                                    outcome_known=True)
    if code == FAIL_REASON.LEADER_CHANGED:
        return errors.LeaderChanged("the leader changed before it answered (outcome unknown)")
    return errors.ProposalError(f"proposal failed (pysyncobj reason {code}, outcome unknown)")
