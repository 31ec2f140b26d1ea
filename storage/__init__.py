"""Runnel storage: channels, messages, subscriptions, clients and meta as
opaque records, behind one contract (``storage.api``) with two
implementations: ``LmdbStore`` (LMDB files) and ``MemoryStore`` (tests).

A leaf package: it imports nothing of Runnel's. See DESIGN.md.
"""

from .api import (KEY_BYTES_MAX, Channel, ChannelStats, ReadTxn, Removed,
                  SnapshotInfo, Store, StoreClosedError, StoreCorruptError,
                  StoreError, StoreFatalError, StoreFullError,
                  StoreLockedError, StoreUsage, StoreUsageError, WriteTxn)
from .lmdb_store import LmdbStore
from .memory_store import MemoryStore

__all__ = [
    "KEY_BYTES_MAX", "Channel", "ChannelStats", "LmdbStore", "MemoryStore",
    "ReadTxn", "Removed", "SnapshotInfo", "Store", "StoreClosedError",
    "StoreCorruptError", "StoreError", "StoreFatalError", "StoreFullError",
    "StoreLockedError", "StoreUsage", "StoreUsageError", "WriteTxn",
]
