"""The storage contract: what every Runnel store implementation must do.

Storage keeps opaque record bytes (the state machine encodes them with msgpack)
in five tables and owns keys, transactions, durability, growth and snapshots.
It gives records no meaning and imports nothing of Runnel's.

Threads (see DESIGN.md):

* ONE writer: the Raft apply thread (pysyncobj's tick thread) is the only code
  that calls :meth:`Store.write`. Writers are serialised by a lock anyway, but
  the design relies on exactly one.
* Readers: any thread, typically the asyncio loop. A read transaction is short:
  open it, read, close it, and NEVER hold it across an ``await`` (a held reader
  pins old pages, which makes the file grow, and delays map growth).
* A thread has at most one transaction open on a store at a time (read, write
  or snapshot). Opening a second one raises :class:`StoreUsageError`; a write
  transaction can read what it has written, so nothing needs nesting.

Errors. Each method's docstring says which of these it raises:

* :class:`StoreFullError` is a DOMAIN error: the store (map or disk) has no
  room. The whole transaction was abandoned, everything committed before is
  intact, and writes succeed again once room returns. Turn it into an error
  reply; do not exit.
* :class:`StoreUsageError` means the caller broke the contract (unknown
  channel id, sequence not increasing, name too long, ...). It is raised
  BEFORE the operation changes anything, so the transaction is still usable,
  but it is a bug in the caller: inside Raft apply, treat it as fatal.
* :class:`StoreCorruptError` (files unreadable, wrong format) and
  :class:`StoreFatalError` (unexpected engine or I/O error, e.g. EIO from
  fsync) are FATAL: log and exit; the node must not serve from this store.
* :class:`StoreLockedError`: another process has the store open. Fatal.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import BinaryIO, Sequence, Union

#: Largest key LMDB accepts; names, client ids and meta keys are keys.
KEY_BYTES_MAX = 511
#: Sequences, subscription ids, indexes are unsigned 64-bit.
U64_MAX = (1 << 64) - 1

PathOrFile = Union[str, os.PathLike, BinaryIO]


# --------------------------------------------------------------- errors ------
class StoreError(Exception):
    """Base class of every error raised by storage."""


class StoreFullError(StoreError):
    """Domain error: no room (map at map_size_max, disk full, capacity).

    ``reason`` is ``"map"``, ``"disk"`` or ``"capacity"`` (MemoryStore).
    Nothing of the failed transaction was applied.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class StoreUsageError(StoreError):
    """The caller broke the contract. Raised before anything changed."""


class StoreClosedError(StoreUsageError):
    """The store (or the transaction) is closed."""


class StoreCorruptError(StoreError):
    """Fatal: the files are not a store of this format or are damaged."""


class StoreFatalError(StoreError):
    """Fatal: an unexpected engine or I/O error. The transaction is lost."""


class StoreLockedError(StoreError):
    """Fatal: another process (or another open) holds this store."""


# ---------------------------------------------------------- value types ------
@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Per-channel message statistics, kept up to date by every write (O(1)).

    * A new channel has ``first_seq == last_seq == 0``.
    * Appending to a channel with no messages sets ``first_seq`` to the
      first appended sequence.
    * When deletion removes every message, ``first_seq = last_seq + 1``
      (as nats-streaming reports an expired channel).
    * ``bytes`` is the sum of the stored record lengths.
    """

    first_seq: int
    last_seq: int
    msgs: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Channel:
    """A stored channel: its numeric id, name, opaque record and stats."""

    channel_id: int
    name: str
    record: bytes
    stats: ChannelStats


@dataclass(frozen=True, slots=True)
class Removed:
    """What a deletion removed: number of messages and their record bytes."""

    msgs: int
    bytes: int


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A snapshot taken by :meth:`Store.snapshot_to`: the Raft index it
    contains and its size in bytes (-1 when not known: LmdbStore writing
    into a pipe or socket)."""

    last_applied_index: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class StoreUsage:
    """Space accounting. For MemoryStore the sizes are record bytes."""

    used_bytes: int
    map_size: int
    map_size_max: int


# ------------------------------------------------------------ contract -------
class ReadTxn(abc.ABC):
    """A consistent view of the last committed state (or, for a WriteTxn,
    of that state plus this transaction's own writes).

    Reads never raise for missing things: unknown names, ids or sequences
    give ``None`` or an empty list. Values are ``bytes`` copies that stay
    valid after the transaction ends. Using the transaction after its
    ``with`` block raises :class:`StoreClosedError`.
    """

    @abc.abstractmethod
    def get_last_applied_index(self) -> int:
        """The Raft index last applied (0 for a new store)."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> bytes | None:
        """The value stored under ``key`` in the meta table, or None."""

    @abc.abstractmethod
    def get_channel(self, name: str) -> Channel | None:
        """The channel called ``name`` (exact, case-sensitive), or None."""

    @abc.abstractmethod
    def get_channel_by_id(self, channel_id: int) -> Channel | None:
        """The channel with this id, or None."""

    @abc.abstractmethod
    def list_channels(self) -> list[Channel]:
        """Every channel, sorted by name (UTF-8 byte order)."""

    @abc.abstractmethod
    def channel_stats(self, channel_id: int) -> ChannelStats | None:
        """The channel's stats, O(1) (no scan), or None if unknown."""

    @abc.abstractmethod
    def get_message(self, channel_id: int, seq: int) -> bytes | None:
        """The record stored at ``seq``, or None."""

    @abc.abstractmethod
    def read_messages(self, channel_id: int, start_seq: int, count_max: int,
                      bytes_max: int | None = None) -> list[tuple[int, bytes]]:
        """Up to ``count_max`` (>= 1) messages with seq >= ``start_seq``, in
        sequence order. With ``bytes_max``, stop before the total record
        length would exceed it, but always return at least one message when
        there is one. StoreUsageError if ``count_max < 1``."""

    @abc.abstractmethod
    def get_subscription(self, channel_id: int, sub_id: int) -> bytes | None:
        """The subscription record, or None."""

    @abc.abstractmethod
    def list_subscriptions(self, channel_id: int) -> list[tuple[int, bytes]]:
        """``(sub_id, record)`` of every subscription of the channel, by id."""

    @abc.abstractmethod
    def get_client(self, client_id: str) -> bytes | None:
        """The client record, or None."""

    @abc.abstractmethod
    def list_clients(self) -> list[tuple[str, bytes]]:
        """``(client_id, record)`` of every client, by id (UTF-8 order)."""


class WriteTxn(ReadTxn):
    """The single write transaction. Everything done through it commits
    atomically when its ``with`` block ends normally, in ONE engine
    transaction; an exception out of the block abandons all of it.

    Any mutating call may raise :class:`StoreFullError` (then the whole
    transaction is abandoned: let the exception leave the ``with`` block;
    further calls raise StoreClosedError) or :class:`StoreFatalError`.
    Committing (the end of the ``with`` block) may raise the same two.
    """

    @abc.abstractmethod
    def set_last_applied_index(self, index: int) -> None:
        """Record the Raft index this transaction applies. It may not go
        down (StoreUsageError): apply skips entries at or below it."""

    @abc.abstractmethod
    def put_meta(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (e.g. cluster id, state format)."""

    @abc.abstractmethod
    def delete_meta(self, key: str) -> bool:
        """Delete ``key``; False if it was not there."""

    @abc.abstractmethod
    def create_channel(self, name: str, record: bytes) -> int:
        """Create a channel and return its new id. Ids start at 1, grow by
        one and are never reused, even after a delete, so a replayed delete
        cannot hit a newer channel of the same name. StoreUsageError if the
        name exists, is empty or longer than KEY_BYTES_MAX UTF-8 bytes."""

    @abc.abstractmethod
    def put_channel(self, channel_id: int, record: bytes) -> None:
        """Replace the channel's record. StoreUsageError if unknown."""

    @abc.abstractmethod
    def delete_channel(self, channel_id: int) -> Removed:
        """Delete the channel, all its messages and all its subscriptions.
        Cost: one delete per message. StoreUsageError if unknown."""

    @abc.abstractmethod
    def append_messages(self, channel_id: int,
                        messages: Sequence[tuple[int, bytes]]) -> None:
        """Store ``(seq, record)`` pairs. Sequences must be strictly
        increasing and above the channel's ``last_seq`` (gaps are allowed);
        otherwise StoreUsageError and nothing is stored. Empty: no-op."""

    @abc.abstractmethod
    def delete_messages_upto(self, channel_id: int, seq: int) -> Removed:
        """Delete every message with a sequence <= ``seq`` (oldest first).
        Cost: one delete per message removed. StoreUsageError if unknown."""

    @abc.abstractmethod
    def trim_messages(self, channel_id: int, *, msgs_max: int | None = None,
                      bytes_max: int | None = None) -> Removed:
        """Delete the oldest messages until the channel holds at most
        ``msgs_max`` messages and ``bytes_max`` record bytes, always keeping
        the newest message. None means no limit. StoreUsageError if unknown
        or a limit is negative."""

    @abc.abstractmethod
    def put_subscription(self, channel_id: int, sub_id: int,
                         record: bytes) -> None:
        """Create or replace a subscription of an existing channel
        (StoreUsageError if the channel is unknown)."""

    @abc.abstractmethod
    def delete_subscription(self, channel_id: int, sub_id: int) -> bool:
        """Delete a subscription; False if it was not there."""

    @abc.abstractmethod
    def put_client(self, client_id: str, record: bytes) -> None:
        """Create or replace a client record."""

    @abc.abstractmethod
    def delete_client(self, client_id: str) -> bool:
        """Delete a client record; False if it was not there."""


class Store(abc.ABC):
    """A Runnel store. See the module docstring for threads and errors."""

    @abc.abstractmethod
    def read(self) -> ReadTxn:
        """``with store.read() as r:`` a short read transaction. Raises
        StoreClosedError when closed, StoreUsageError if this thread
        already has a transaction open."""

    @abc.abstractmethod
    def write(self) -> WriteTxn:
        """``with store.write() as txn:`` the write transaction (single
        writer: the Raft apply thread). It commits when the block ends
        normally; with ``sync=True`` the commit is durable when the block
        is left. Raises like :meth:`read`, and see :class:`WriteTxn`."""

    @abc.abstractmethod
    def snapshot_to(self, target: PathOrFile) -> SnapshotInfo:
        """Write a consistent, compacted copy of the committed state to a
        path (written to ``<path>.tmp``, fsynced, renamed) or to a binary
        file object (anything with ``write``; a real file is written at its
        current position, and a pipe or socket works). Writers are not
        blocked.
        Cost: reads and writes the whole live data set once. StoreFullError
        if the target disk is full (no partial file is left at a path)."""

    @abc.abstractmethod
    def restore_from(self, source: str | os.PathLike) -> int:
        """Replace the whole contents by a snapshot file made by
        ``snapshot_to`` of the same implementation; return its last applied
        index. The snapshot is checked first: StoreCorruptError if it is
        not valid, and then the current contents are untouched. Waits for
        open transactions; must not be called with one open."""

    @abc.abstractmethod
    def usage(self) -> StoreUsage:
        """Current space accounting (cheap)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Verify every invariant by a full scan (stats match the stored
        messages, indexes agree); StoreCorruptError if one fails. O(data)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the store (idempotent). Waits for open transactions."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
