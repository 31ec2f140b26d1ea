"""raft/: replicate opaque command bytes through a Raft group (pysyncobj 0.3.17).

A leaf package: it knows nothing of NATS and imports nothing of Runnel's.
See DESIGN.md beside this file.
"""

from raft.config import RaftConfig
from raft.errors import (ApplyFailed, CommandTooLarge, JournalCorrupt, LeaderChanged, NodeStopped,
                         NoLeader, Overloaded, ProposalError, ProposalTimeout, RaftError)
from raft.fsio import OsFS
from raft.node import RaftNode, RaftStatus, exit_process
from raft.snapshot import SnapshotReader

__all__ = [
    "ApplyFailed", "CommandTooLarge", "JournalCorrupt", "LeaderChanged", "NoLeader",
    "NodeStopped", "OsFS", "Overloaded", "ProposalError", "ProposalTimeout", "RaftConfig",
    "RaftError", "RaftNode", "RaftStatus", "SnapshotReader", "exit_process",
]
