"""``RaftCore``: the pysyncobj ``SyncObj`` subclass with the ONE replicated
method, and every access to pysyncobj internals in one place.

Pinned to pysyncobj 0.3.17 (DESIGN.md, "pysyncobj internals relied upon").
A test (test_core_pins.py) fails if these names move.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pysyncobj.syncobj as _syncobj_module
from pysyncobj import SyncObj, replicated

from raft.journal import DurableJournal

#: pysyncobj numbers replicated methods by sorted name; there is exactly one,
#: ``command`` (its numbered alias ``command_v0`` gets id 0). Never add another
#: and never rename it: the ids are written into every log entry.
REPLICATED_METHOD = "command_v0"

_CONSTRUCT_LOCK = threading.Lock()

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
