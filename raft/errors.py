"""The errors raft/ raises. One small hierarchy; each says what the caller may assume."""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error raised by raft/."""


class ProposalError(RaftError):
    """A proposal did not complete. ``outcome_known`` tells whether the command
    is certainly NOT in the log (False means it may still be applied later)."""

    outcome_known = False


class ProposalTimeout(ProposalError, TimeoutError):
    """The command was not applied within its timeout. Outcome unknown: it may
    still commit and be applied later."""


class NoLeader(ProposalTimeout):
    """No leader was known when the timeout expired: this node cannot reach a
    majority of the group (or an election is still running)."""


class LeaderChanged(ProposalError):
    """The leader changed before the command was known to be committed.
    Outcome unknown unless ``outcome_known`` is set (then it was discarded)."""

    def __init__(self, message: str, outcome_known: bool = False) -> None:
        super().__init__(message)
        self.outcome_known = outcome_known


class Overloaded(ProposalError):
    """The command queue is full; the command was not accepted."""

    outcome_known = True


class NodeStopped(ProposalError):
    """The node stopped (or failed) before the command completed."""


class CommandTooLarge(RaftError, ValueError):
    """The command is larger than ``RaftConfig.command_bytes_max``."""


class JournalCorrupt(RaftError):
    """Fatal: the journal, meta or snapshot files are damaged in a way a power
    cut cannot explain. The node must not vote or lead with them."""


class ApplyFailed(RaftError):
    """Fatal: the user's apply (or restore_snapshot) raised. The entry stays
    unapplied and the node stops ticking; the process should exit."""
