"""Key layout and table operations on one open LMDB transaction.

Sub-databases (all keys compare as raw bytes, so big-endian integers sort in
numeric order and one channel's messages are one contiguous key range):

=========  ==========================  =========================================
name       key                         value
=========  ==========================  =========================================
sys        b"format", b"next_channel"  u64 big-endian (storage's own bookkeeping)
           b"last_applied", b"bump"
meta       UTF-8 key                   opaque bytes
chan_name  UTF-8 channel name          channel id, u64 BE
chan       channel id, u64 BE          ``>QQQQH`` first, last, msgs, bytes,
                                       name length; then name; then record
msgs       channel id u64 BE + seq     record
           u64 BE (16 bytes)
subs       channel id u64 BE + sub id  record
           u64 BE (16 bytes)
clients    UTF-8 client id             record
=========  ==========================  =========================================

Every mutating function checks first and mutates after, so a
StoreUsageError leaves the transaction unchanged.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

import lmdb

from ._common import STORAGE_FORMAT, is_u64
from .api import (Channel, ChannelStats, Removed, StoreCorruptError,
                  StoreUsageError)

DB_NAMES = ("sys", "meta", "chan_name", "chan", "msgs", "subs", "clients")
_HEAD = struct.Struct(">QQQQH")
_U64 = struct.Struct(">Q")
_KEY_FORMAT = b"format"
_KEY_NEXT_CHANNEL = b"next_channel"
_KEY_LAST_APPLIED = b"last_applied"
_KEY_BUMP = b"bump"


class Dbs:
    """Handles of the sub-databases of one open environment."""

    __slots__ = DB_NAMES

    def __init__(self, env: lmdb.Environment, txn: lmdb.Transaction,
                 create: bool = True) -> None:
        for name in DB_NAMES:
            setattr(self, name,
                    env.open_db(name.encode(), txn=txn, create=create))


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def _get_sys(txn: Any, dbs: Dbs, key: bytes) -> int:
    raw = txn.get(key, db=dbs.sys)
    return 0 if raw is None else _U64.unpack(raw)[0]


def init_or_check(txn: Any, dbs: Dbs) -> None:
    """On a new store write the format; on an old one verify it."""
    if txn.get(_KEY_FORMAT, db=dbs.sys) is None:
        if txn.stat(dbs.chan)["entries"] or txn.stat(dbs.msgs)["entries"]:
            raise StoreCorruptError("store has data but no format marker")
        txn.put(_KEY_FORMAT, u64(STORAGE_FORMAT), db=dbs.sys)
        txn.put(_KEY_NEXT_CHANNEL, u64(1), db=dbs.sys)
        txn.put(_KEY_LAST_APPLIED, u64(0), db=dbs.sys)
    check_format(txn, dbs)


def check_format(txn: Any, dbs: Dbs) -> None:
    raw = txn.get(_KEY_FORMAT, db=dbs.sys)
    version = _U64.unpack(raw)[0] if raw is not None and len(raw) == 8 else raw
    if version != STORAGE_FORMAT:
        raise StoreCorruptError(
            f"storage format {version!r}, this code reads {STORAGE_FORMAT}")


# ------------------------------------------------------------- reads ---------
def last_applied(txn: Any, dbs: Dbs) -> int:
    return _get_sys(txn, dbs, _KEY_LAST_APPLIED)


def _decode_channel(cid: int, raw: bytes) -> Channel:
    first, last, msgs, nbytes, name_len = _HEAD.unpack_from(raw)
    end = _HEAD.size + name_len
    name = raw[_HEAD.size:end].decode("utf-8")
    return Channel(cid, name, raw[end:], ChannelStats(first, last, msgs, nbytes))


def channel_by_id(txn: Any, dbs: Dbs, cid: int) -> Channel | None:
    if not is_u64(cid):
        return None
    raw = txn.get(u64(cid), db=dbs.chan)
    return None if raw is None else _decode_channel(cid, raw)


def channel_by_name(txn: Any, dbs: Dbs, name_key: bytes) -> Channel | None:
    raw = txn.get(name_key, db=dbs.chan_name)
    return None if raw is None else channel_by_id(txn, dbs, _U64.unpack(raw)[0])


def list_channels(txn: Any, dbs: Dbs) -> list[Channel]:
    out = []
    for _name, raw_id in txn.cursor(db=dbs.chan_name):
        out.append(channel_by_id(txn, dbs, _U64.unpack(raw_id)[0]))
    return out


def stats(txn: Any, dbs: Dbs, cid: int) -> ChannelStats | None:
    if not is_u64(cid):
        return None
    raw = txn.get(u64(cid), db=dbs.chan)
    return None if raw is None else ChannelStats(*_HEAD.unpack_from(raw)[:4])


def get_pair(txn: Any, db: Any, a: int, b: int) -> bytes | None:
    """A value of a (u64, u64)-keyed table (messages, subscriptions)."""
    if not (is_u64(a) and is_u64(b)):
        return None
    return txn.get(u64(a) + u64(b), db=db)


def read_messages(txn: Any, dbs: Dbs, cid: int, start: int, count_max: int,
                  bytes_max: int | None) -> list[tuple[int, bytes]]:
    if not (is_u64(cid) and is_u64(start)):
        return []
    prefix = u64(cid)
    cur = txn.cursor(db=dbs.msgs)
    out: list[tuple[int, bytes]] = []
    if not cur.set_range(prefix + u64(start)):
        return out
    total = 0
    for key, value in cur:
        if key[:8] != prefix:
            break
        total += len(value)
        if bytes_max is not None and out and total > bytes_max:
            break
        out.append((int.from_bytes(key[8:], "big"), value))
        if len(out) >= count_max:
            break
    return out


def list_pairs(txn: Any, db: Any, a: int) -> list[tuple[int, bytes]]:
    """``(b, value)`` of every key (a, b) of a (u64, u64)-keyed table."""
    if not is_u64(a):
        return []
    prefix = u64(a)
    cur = txn.cursor(db=db)
    out = []
    if cur.set_range(prefix):
        for key, value in cur:
            if key[:8] != prefix:
                break
            out.append((int.from_bytes(key[8:], "big"), value))
    return out


def list_clients(txn: Any, dbs: Dbs) -> list[tuple[str, bytes]]:
    return [(key.decode("utf-8"), value)
            for key, value in txn.cursor(db=dbs.clients)]


# ------------------------------------------------------------ writes ---------
def bump(txn: Any, dbs: Dbs) -> None:
    """A minimal change, so that a commit happens (frees recycle)."""
    txn.put(_KEY_BUMP, u64(_get_sys(txn, dbs, _KEY_BUMP) + 1), db=dbs.sys)


def set_last_applied(txn: Any, dbs: Dbs, index: int) -> None:
    current = last_applied(txn, dbs)
    if index < current:
        raise StoreUsageError(
            f"last applied index may not go down ({current} -> {index})")
    txn.put(_KEY_LAST_APPLIED, u64(index), db=dbs.sys)


def _require(txn: Any, dbs: Dbs, cid: int) -> bytes:
    raw = txn.get(u64(cid), db=dbs.chan) if is_u64(cid) else None
    if raw is None:
        raise StoreUsageError(f"unknown channel id {cid!r}")
    return raw


def _put_head(txn: Any, dbs: Dbs, cid: int, raw: bytes,
              first: int, last: int, msgs: int, nbytes: int) -> None:
    name_len = _HEAD.unpack_from(raw)[4]
    value = _HEAD.pack(first, last, msgs, nbytes, name_len) + raw[_HEAD.size:]
    txn.put(u64(cid), value, db=dbs.chan)


def create_channel(txn: Any, dbs: Dbs, name_key: bytes, record: bytes) -> int:
    if txn.get(name_key, db=dbs.chan_name) is not None:
        raise StoreUsageError(f"channel {name_key!r} already exists")
    cid = _get_sys(txn, dbs, _KEY_NEXT_CHANNEL)
    if cid < 1:
        raise StoreCorruptError("next channel id is missing")
    txn.put(_KEY_NEXT_CHANNEL, u64(cid + 1), db=dbs.sys)
    txn.put(name_key, u64(cid), db=dbs.chan_name)
    value = _HEAD.pack(0, 0, 0, 0, len(name_key)) + name_key + record
    txn.put(u64(cid), value, db=dbs.chan)
    return cid


def put_channel(txn: Any, dbs: Dbs, cid: int, record: bytes) -> None:
    raw = _require(txn, dbs, cid)
    name_len = _HEAD.unpack_from(raw)[4]
    txn.put(u64(cid), raw[:_HEAD.size + name_len] + record, db=dbs.chan)


def _delete_range(cur: Any, prefix: bytes) -> None:
    if not cur.set_range(prefix):
        return
    while cur.key()[:8] == prefix:
        if not cur.delete():
            break


def delete_channel(txn: Any, dbs: Dbs, cid: int) -> Removed:
    raw = _require(txn, dbs, cid)
    channel = _decode_channel(cid, raw)
    prefix = u64(cid)
    _delete_range(txn.cursor(db=dbs.msgs), prefix)
    _delete_range(txn.cursor(db=dbs.subs), prefix)
    txn.delete(prefix, db=dbs.chan)
    txn.delete(channel.name.encode("utf-8"), db=dbs.chan_name)
    return Removed(channel.stats.msgs, channel.stats.bytes)


def append_messages(txn: Any, dbs: Dbs, cid: int,
                    batch: list[tuple[int, bytes]]) -> None:
    """``batch`` has passed ``check_append`` (increasing seqs, bytes)."""
    raw = _require(txn, dbs, cid)
    first, last, msgs, nbytes, _n = _HEAD.unpack_from(raw)
    if not batch:
        return
    if batch[0][0] <= last:
        raise StoreUsageError(f"message seq {batch[0][0]} must be above the "
                              f"channel's last_seq {last}")
    prefix = u64(cid)
    items = [(prefix + seq.to_bytes(8, "big"), rec) for seq, rec in batch]
    cur = txn.cursor(db=dbs.msgs)
    # MDB_APPEND (no tree search, full pages) is valid when the batch sorts
    # after every key in the table: the usual case for the newest channel.
    at_end = not cur.last() or cur.key() < items[0][0]
    cur.putmulti(items, append=at_end)
    added = sum(len(rec) for _seq, rec in batch)
    if msgs == 0:
        first = batch[0][0]
    _put_head(txn, dbs, cid, raw, first, batch[-1][0],
              msgs + len(batch), nbytes + added)


def _scan_upto(cur: Any, prefix: bytes, end_key: bytes) -> tuple[int, int]:
    """Count the channel's messages (and bytes) with keys <= ``end_key``,
    from the cursor's position (the channel's first message)."""
    count = size = 0
    for key, value in cur:
        if key > end_key or key[:8] != prefix:
            break
        count += 1
        size += len(value)
    return count, size


def _scan_trim(cur: Any, msgs: int, nbytes: int, msgs_cap: float,
               bytes_cap: float) -> tuple[int, int]:
    """Count the oldest messages to drop so that at most ``msgs_cap``
    messages and ``bytes_cap`` bytes remain, keeping at least one."""
    count = size = 0
    for _key, value in cur:
        if msgs - count <= 1 or (msgs - count <= msgs_cap
                                 and nbytes - size <= bytes_cap):
            break
        count += 1
        size += len(value)
    return count, size


def _delete_front(txn: Any, dbs: Dbs, cid: int, raw: bytes,
                  scan: Callable[[Any, int, int], tuple[int, int]]) -> Removed:
    """Delete the ``count`` oldest messages that ``scan(cursor, msgs, bytes)``
    counts (cursor on the first message); fix the stats. Scanning first keeps
    the delete loop to one C call per message."""
    first, last, msgs, nbytes, _n = _HEAD.unpack_from(raw)
    prefix = u64(cid)
    cur = txn.cursor(db=dbs.msgs)
    if not msgs or not cur.set_range(prefix):
        return Removed(0, 0)
    count, size = scan(cur, msgs, nbytes)
    if not count:
        return Removed(0, 0)
    cur.set_range(prefix)
    for _ in range(count):
        cur.delete()
    if count == msgs:
        first = last + 1
    else:
        key = cur.key()
        if key[:8] != prefix:
            raise StoreCorruptError(f"channel {cid} has fewer messages than "
                                    f"its stats say")
        first = int.from_bytes(key[8:], "big")
    _put_head(txn, dbs, cid, raw, first, last, msgs - count, nbytes - size)
    return Removed(count, size)


def delete_messages_upto(txn: Any, dbs: Dbs, cid: int, upto: int) -> Removed:
    raw = _require(txn, dbs, cid)
    prefix = u64(cid)
    end_key = prefix + u64(upto)
    return _delete_front(txn, dbs, cid, raw,
                         lambda cur, _m, _b: _scan_upto(cur, prefix, end_key))


def trim_messages(txn: Any, dbs: Dbs, cid: int, msgs_max: int | None,
                  bytes_max: int | None) -> Removed:
    raw = _require(txn, dbs, cid)
    msgs_cap = float("inf") if msgs_max is None else msgs_max
    bytes_cap = float("inf") if bytes_max is None else bytes_max
    return _delete_front(
        txn, dbs, cid, raw,
        lambda cur, msgs, nbytes: _scan_trim(cur, msgs, nbytes, msgs_cap,
                                             bytes_cap))


def put_subscription(txn: Any, dbs: Dbs, cid: int, sid: int,
                     record: bytes) -> None:
    _require(txn, dbs, cid)
    txn.put(u64(cid) + u64(sid), record, db=dbs.subs)


def delete_key(txn: Any, _dbs: Dbs, db: Any, key: bytes) -> bool:
    return txn.delete(key, db=db)


def put_key(txn: Any, _dbs: Dbs, db: Any, key: bytes, value: bytes) -> None:
    txn.put(key, value, db=db)


def scan_check(txn: Any, dbs: Dbs) -> None:
    """Full-scan invariant check (raises StoreCorruptError)."""
    channels = {c.channel_id: c for c in list_channels(txn, dbs)}
    if len(channels) != txn.stat(dbs.chan)["entries"]:
        raise StoreCorruptError("channel name index and channel table differ")
    seen: dict[int, list[int]] = {}
    for key, value in txn.cursor(db=dbs.msgs):
        cid, seq = _U64.unpack(key[:8])[0], _U64.unpack(key[8:])[0]
        acc = seen.setdefault(cid, [seq, seq, 0, 0])
        acc[1] = seq
        acc[2] += 1
        acc[3] += len(value)
    for cid, channel in channels.items():
        st = channel.stats
        acc = seen.pop(cid, None)
        if acc is None:
            ok = st.msgs == 0 and st.bytes == 0 and st.first_seq in (
                0, st.last_seq + 1) and (st.first_seq or not st.last_seq)
        else:
            ok = (acc[2] == st.msgs and acc[3] == st.bytes and
                  acc[0] == st.first_seq and acc[1] == st.last_seq)
        if not ok:
            raise StoreCorruptError(f"channel {cid} stats {st} != stored {acc}")
    if seen:
        raise StoreCorruptError(f"messages of unknown channels {sorted(seen)}")
    for key in txn.cursor(db=dbs.subs).iternext(values=False):
        if _U64.unpack(key[:8])[0] not in channels:
            raise StoreCorruptError("subscription of an unknown channel")
    if channels and max(channels) >= _get_sys(txn, dbs, _KEY_NEXT_CHANNEL):
        raise StoreCorruptError("a channel id is not below next_channel")
