"""``RaftCore``: the pysyncobj ``SyncObj`` subclass with the ONE replicated
method, and every access to pysyncobj internals in one place.

Pinned to pysyncobj 0.3.17 (DESIGN.md, "pysyncobj internals relied upon").
A test (test_core_pins.py) fails if these names move.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any, Callable

import pysyncobj.syncobj as _syncobj_module
from pysyncobj import SyncObj, replicated
from pysyncobj.syncobj import _COMMAND_TYPE

from raft.journal import DurableJournal

#: pysyncobj numbers replicated methods by sorted name; there is exactly one,
#: ``command`` (its numbered alias ``command_v0`` gets id 0). Never add another
#: and never rename it: the ids are written into every log entry.
REPLICATED_METHOD = "command_v0"

_CONSTRUCT_LOCK = threading.Lock()
#: Pickle protocol of the log entries we write. pysyncobj's own wrapper uses
#: protocol 2, which stores bytes as latin-1 text: 1.5x larger for binary data
#: and ~200x slower at 100 KB. Both decode with the same pickle.loads.
PICKLE_PROTOCOL = 4
_REGULAR = _COMMAND_TYPE.REGULAR

ApplyHook = Callable[[int, bytes], Any]


class RaftCore(SyncObj):
    """One Raft member. Ticked by RaftNode's thread (``autoTick=False``)."""

    def __init__(self, self_address: str, peers, conf, journal: DurableJournal,
                 transport_class, on_apply: ApplyHook) -> None:
        self.journal = journal
        self._on_apply = on_apply
        # SyncObj.__init__ builds its journal with the module-level function
        # ``createJournal(conf.journalFile)``; hand it ours for the duration.
        with _CONSTRUCT_LOCK:
            saved = _syncobj_module.createJournal
            _syncobj_module.createJournal = lambda _path: journal
            try:
                SyncObj.__init__(self, self_address, list(peers), conf,
                                 transportClass=transport_class)
            finally:
                _syncobj_module.createJournal = saved
        self._command_id = self._methodToID[REPLICATED_METHOD]

    def submit(self, data: bytes, callback) -> None:
        """Queue ``data`` for the log: what ``self.command(data, callback=...)``
        does, with pickle protocol 4 (raw bytes). Thread-safe."""
        self._applyCommand(pickle.dumps((self._command_id, (data,)), PICKLE_PROTOCOL),
                           callback, _REGULAR)

    @replicated
    def command(self, data):
        """THE replicated method. During apply pysyncobj has not yet counted
        this entry: ``raftLastApplied + 1`` is its Raft index."""
        return self._on_apply(self.raftLastApplied + 1, data)

    # -- pysyncobj internals, by their mangled names ---------------------------
    def send_append_entries(self) -> None:
        """Send new entries / the commit index to followers now (leader only)."""
        self._SyncObj__sendAppendEntries()

    def next_index(self, node) -> int | None:
        return self._SyncObj__raftNextIndex.get(node)

    def peer_states(self) -> list[dict]:
        """Each other member: connected now, and (leader only) its match/next index."""
        connected = self._SyncObj__connectedNodes
        match = self._SyncObj__raftMatchIndex
        nexts = self._SyncObj__raftNextIndex
        return [{"address": node.id, "connected": node in connected,
                 "match_index": match.get(node), "next_index": nexts.get(node)}
                for node in sorted(self._SyncObj__otherNodes, key=lambda n: n.id)]

    def keep_next_index(self, node, before: int | None) -> None:
        """Undo pysyncobj's regression of nextIndex on a stale success reply
        (see DESIGN.md, "the truncating already-applied CRITICAL log")."""
        if before is None or not self._isLeader():
            return
        next_index = self._SyncObj__raftNextIndex
        if next_index.get(node, 0) < before:
            next_index[node] = before

    @property
    def transport(self):
        return self._SyncObj__transport

    @property
    def leader_address(self) -> str | None:
        leader = self._getLeader()
        return None if leader is None else leader.id

    def destroy_now(self) -> None:
        """Close sockets and files from the tick thread (autoTick is off)."""
        self._doDestroy()
