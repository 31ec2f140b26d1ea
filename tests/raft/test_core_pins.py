"""Pins: the pysyncobj internals raft/ relies on (DESIGN.md lists them), and
the log entry format, which old logs depend on."""

from __future__ import annotations

import os
import pickle

import pysyncobj
import pysyncobj.pickle
import pysyncobj.syncobj
from pysyncobj.transport import TCPTransport
from pysyncobj.version import VERSION

from raft.core import REPLICATED_METHOD, RaftCore
from raft.journal import DurableJournal

#: The journal entry for command b"abc", as RaftNode writes it (format 1):
#: REGULAR type byte + pickle protocol 4 of (method id 0, (command,)).
GOLDEN_ABC = bytes.fromhex("008004950d000000000000004b00430361626394859486942e")


def test_pysyncobj_version_is_the_pinned_one():
    assert VERSION == "0.3.17"


def test_the_internals_we_use_exist():
    for name in ("_SyncObj__sendAppendEntries", "_applyCommand", "_onTick", "_isLeader",
                 "_getLeader", "_doDestroy", "addOnTickCallback", "forceLogCompaction",
                 "raftLastApplied", "raftCommitIndex", "raftCurrentTerm", "hasQuorum"):
        assert hasattr(pysyncobj.SyncObj, name), name
    assert callable(pysyncobj.syncobj.createJournal)
    for name in ("_onMessageReceived", "_createServer", "addNode", "_onOutgoingConnected",
                 "_onDisconnected", "_onNewIncomingConnection", "_shouldConnect", "send"):
        assert hasattr(TCPTransport, name), name


async def test_one_replicated_method_with_id_zero_and_golden_entry_bytes(kit, tmp_path):
    m = kit.Machine()
    node = await kit.start(kit.config(tmp_path), m)
    core: RaftCore = node._core
    assert core._methodToID == {REPLICATED_METHOD: 0}
    for attr in ("_SyncObj__raftNextIndex", "_SyncObj__transport", "_poller"):
        assert hasattr(core, attr), attr
    result = await node.propose(b"abc", timeout=5)
    assert core.journal.entry(result[1])[0] == GOLDEN_ABC


async def test_entries_in_pysyncobj_own_pickle_format_still_apply(kit, tmp_path):
    """Entries written by pysyncobj's wrapper (pickle protocol 2) replay."""
    config = kit.config(tmp_path)
    os.makedirs(config.data_dir)
    journal = DurableJournal(config.data_dir)
    journal.add(b"\x01", 1, 1)
    legacy = b"\x00" + pysyncobj.pickle.dumps((0, (b"old",)))
    journal.add(legacy, 2, 1)
    journal.add(b"\x00" + pickle.dumps((0, (b"new",)), 4), 3, 1)
    journal.close(flush=True)
    m = kit.Machine()
    node = await kit.start(config, m)
    await node.propose(b"marker", timeout=5)
    assert m.commands() == [b"old", b"new", b"marker"]
